#!/usr/bin/env bash
# A/B on one glibc subdirectory of a built tree (as bench-glibc-subdir.sh), reporting the
# machine's idle and steal time (/proc/stat) and the event loop's own run and wait times,
# with the event loop optionally made real-time (SCHED_FIFO, `chrt -f -p 1` on its
# thread once it exists; needs root or CAP_SYS_NICE).
#
#   scripts/bench-loop-sched.sh OBJDIR SUBDIR ROUNDS VARIANT...
#   VARIANT: traced | fifo (traced, the event loop SCHED_FIFO) | notrace, optionally
#   followed by @BINARY to run another makescope binary
set -euo pipefail
objdir=$(realpath "$1"); subdir=$2; rounds=$3; shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
makescope=${MAKESCOPE:-$here/target/release/makescope}
cd "$objdir"; src=$(realpath "$(sed -n "s/^srcdir *= *//p" Makefile)")
tick=$(getconf CLK_TCK)
idle_steal() { awk '$1 == "cpu" { print $5 + $6, $9; exit }' /proc/stat; }
printf 'variant\tround\twall_s\tidle_s\tsteal_s\tuser_s\tsys_s\tloop_ran_ms\tloop_waited_ms\n'
for round in $(seq 1 "$rounds"); do
    variants=("$@")
    [ $((round % 2)) -eq 0 ] && variants=($(printf '%s\n' "$@" | tac))
    for spec in "${variants[@]}"; do
        variant=${spec%%@*}
        ms=$makescope
        [ "$spec" != "$variant" ] && ms=${spec#*@}
        rm -f "$objdir/$subdir"/*.o "$objdir/$subdir"/*.os "$objdir/$subdir"/*.oS
        rm -rf "$objdir/.makescope"
        extra=()
        [ "$variant" = notrace ] && extra=(--no-trace)
        read -r idle0 steal0 < <(idle_steal)
        start=$(date +%s.%N)
        MAKESCOPE_TRACE_STATS=1 /usr/bin/time -f '%U %S' -o /tmp/bench-loop.time \
            "$ms" make "${extra[@]}" -C "$src/$subdir" subdir="$subdir" objdir="$objdir" -j2 subdir_lib \
            > /tmp/bench-loop.log 2>&1 &
        build=$!
        if [ "$variant" = fifo ]; then
            for _ in $(seq 1 200); do
                pid=$(pgrep -P $build | head -1 || true)
                tid=$([ -n "$pid" ] && grep -lx events /proc/$pid/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5 || true)
                if [ -n "$tid" ]; then chrt -f -p 1 "$tid"; break; fi
                sleep 0.01
            done
        fi
        wait $build || { echo "$spec failed" >&2; tail /tmp/bench-loop.log >&2; exit 1; }
        end=$(date +%s.%N)
        read -r idle1 steal1 < <(idle_steal)
        read -r user sys < /tmp/bench-loop.time
        loop=$(sed -n 's/.*event loop: ran \([0-9]*\) ms, waited for a CPU \([0-9]*\) ms.*/\1\t\2/p' /tmp/bench-loop.log)
        printf '%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\n' "$spec" "$round" "$(echo "$end - $start" | bc)" \
            "$(echo "($idle1 - $idle0) / $tick" | bc -l)" "$(echo "($steal1 - $steal0) / $tick" | bc -l)" \
            "$user" "$sys" "${loop:-	}"
    done
done
