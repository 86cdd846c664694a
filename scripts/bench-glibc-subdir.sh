#!/usr/bin/env bash
# A/B on one glibc subdirectory of an already built tree: delete its objects, rebuild
# them with `make subdir_lib`, alternating variants; reports wall, user+sys of everything,
# and the CPU of makescope's own process (sampled from /proc/PID/stat).
#
#   scripts/bench-glibc-subdir.sh OBJDIR SUBDIR ROUNDS VARIANT...
#   VARIANT: plain | notrace | traced | traponly (traced, --trap-only) | bear | strace,
#   optionally followed by @BINARY to run another makescope binary (A/B of two builds:
#   `traced@/tmp/old/makescope traced`)
set -euo pipefail
objdir=$(realpath "$1"); subdir=$2; rounds=$3; shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
makescope=${MAKESCOPE:-$here/target/release/makescope}
src=$(sed -n "s/^srcdir *= *//p" "$objdir/Makefile")
cd "$objdir"; src=$(realpath "$src")
tick=$(getconf CLK_TCK)
printf 'variant\tround\twall_s\tuser_s\tsys_s\tself_cpu_s\n'
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
            traced) cmd=("$ms" make "${make[@]:1}") ;;
            traponly) cmd=("$ms" make --trap-only "${make[@]:1}") ;;
            bear) cmd=(bear --output /tmp/bench-subdir.json -- "${make[@]}") ;;
            strace) cmd=(strace -f --seccomp-bpf -e trace=%file,%process -o /tmp/bench-subdir.strace "${make[@]}") ;;
            *) echo "unknown variant $variant" >&2; exit 2 ;;
        esac
        start=$(date +%s.%N)
        /usr/bin/time -f '%U %S' -o /tmp/bench-subdir.time "${cmd[@]}" > /tmp/bench-subdir.log 2>&1 &
        sleep 0.05
        pid=$(pgrep -n -x makescope || true)
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
        read -r user sys < /tmp/bench-subdir.time
        case $variant in plain|bear|strace) self=0 ;; esac
        rm -f /tmp/bench-subdir.strace /tmp/bench-subdir.json
        printf '%s\t%s\t%.2f\t%s\t%s\t%.2f\n' "$spec" "$round" "$(echo "$end - $start" | bc)" "$user" "$sys" "$(echo "$self / $tick" | bc -l)"
    done
done
