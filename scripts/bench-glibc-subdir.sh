#!/usr/bin/env bash
# A/B on one glibc subdirectory of an already built tree: delete its objects, rebuild
# them with `make subdir_lib`, alternating variants; reports wall, user+sys of everything,
# the CPU of makescope's own process (sampled from /proc/PID/stat), the whole machine's
# idle and steal time during the run (/proc/stat, CPU-seconds), and for traced runs the
# event loop's run and wait times (its stats line).
#
#   scripts/bench-glibc-subdir.sh OBJDIR SUBDIR ROUNDS VARIANT...
#   VARIANT: plain | notrace | traced | traponly (traced, --trap-only) | fifo (traced, the
#   event loop made SCHED_FIFO with `chrt -f -p 1` once its thread exists: needs root or
#   CAP_SYS_NICE) | bear | strace, optionally followed by @BINARY to run another
#   makescope binary (A/B of two builds: `traced@/tmp/old/makescope traced`)
set -euo pipefail
objdir=$(realpath "$1"); subdir=$2; rounds=$3; shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
makescope=${MAKESCOPE:-$here/target/release/makescope}
src=$(sed -n "s/^srcdir *= *//p" "$objdir/Makefile")
cd "$objdir"; src=$(realpath "$src")
tick=$(getconf CLK_TCK)
idle_steal() { awk '$1 == "cpu" { print $5 + $6, $9; exit }' /proc/stat; }
printf 'variant\tround\twall_s\tuser_s\tsys_s\tself_cpu_s\tidle_s\tsteal_s\tloop_ran_ms\tloop_waited_ms\n'
for round in $(seq 1 "$rounds"); do
    variants=("$@")
    [ $((round % 2)) -eq 0 ] && variants=($(printf '%s\n' "$@" | tac))
    for spec in "${variants[@]}"; do
        variant=${spec%%@*}
        ms=$makescope
        [ "$spec" != "$variant" ] && ms=${spec#*@}
        rm -f "$objdir/$subdir"/*.o "$objdir/$subdir"/*.os "$objdir/$subdir"/*.oS
        rm -rf "$objdir/.makescope"
        make=(make -C "$src/$subdir" subdir="$subdir" objdir="$objdir" -j2 subdir_lib)
        case $variant in
            plain) cmd=("${make[@]}") ;;
            notrace) cmd=("$ms" make --no-trace "${make[@]:1}") ;;
            traced|fifo) cmd=("$ms" make "${make[@]:1}") ;;
            traponly) cmd=("$ms" make --trap-only "${make[@]:1}") ;;
            bear) cmd=(bear --output /tmp/bench-subdir.json -- "${make[@]}") ;;
            strace) cmd=(strace -f --seccomp-bpf -e trace=%file,%process -o /tmp/bench-subdir.strace "${make[@]}") ;;
            *) echo "unknown variant $variant" >&2; exit 2 ;;
        esac
        read -r idle0 steal0 < <(idle_steal)
        start=$(date +%s.%N)
        MAKESCOPE_TRACE_STATS=1 /usr/bin/time -f '%U %S' -o /tmp/bench-subdir.time "${cmd[@]}" > /tmp/bench-subdir.log 2>&1 &
        pid=
        for _ in $(seq 1 200); do
            pid=$(pgrep -P $! | head -1 || true)
            [ -n "$pid" ] && [ "$variant" != fifo ] && break
            tid=$([ -n "$pid" ] && grep -lx events /proc/$pid/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5 || true)
            if [ -n "$tid" ]; then chrt -f -p 1 "$tid"; break; fi
            sleep 0.01
        done
        self=0
        while kill -0 $! 2>/dev/null; do
            if [ -n "$pid" ] && [ -r /proc/$pid/stat ]; then
                s=$(awk '{print $14 + $15}' /proc/$pid/stat 2>/dev/null || echo "$self")
                [ -n "$s" ] && self=$s
            fi
            sleep 0.1
        done
        wait $! || { echo "$spec failed" >&2; tail /tmp/bench-subdir.log >&2; exit 1; }
        end=$(date +%s.%N)
        read -r idle1 steal1 < <(idle_steal)
        read -r user sys < /tmp/bench-subdir.time
        loop=$(sed -n 's/.*event loop: ran \([0-9]*\) ms, waited for a CPU \([0-9]*\) ms.*/\1\t\2/p' /tmp/bench-subdir.log)
        case $variant in plain|bear|strace) self=0 ;; esac
        rm -f /tmp/bench-subdir.strace /tmp/bench-subdir.json
        printf '%s\t%s\t%.2f\t%s\t%s\t%.2f\t%.2f\t%.2f\t%s\n' "$spec" "$round" "$(echo "$end - $start" | bc)" "$user" "$sys" \
            "$(echo "$self / $tick" | bc -l)" "$(echo "($idle1 - $idle0) / $tick" | bc -l)" \
            "$(echo "($steal1 - $steal0) / $tick" | bc -l)" "${loop:-	}"
    done
done
