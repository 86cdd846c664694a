#!/usr/bin/env bash
# Full glibc 2.36 builds, alternating variants in one run, each in a freshly configured
# build directory: wall, user and system time, output size, record size.
#
#   scripts/bench-glibc.sh WORKDIR ROUNDS VARIANT...
#   VARIANT: plain | notrace | traced | bear | strace
#
# Results go to WORKDIR/results.tsv (one line per run: wall, the build's user and system
# time, and from /proc/stat the whole machine's idle and steal time during the run, in
# CPU-seconds: steal is time the hypervisor gave this VM's CPUs to others, the noise that
# makes back-to-back builds differ) and each run's output to
# WORKDIR/<variant>-<round>.log. Needs: glibc-source gawk bison texinfo (installed by
# scripts/glibc-fresh.sh), and bear/strace for those variants. Never run in CI.
set -euo pipefail
work=$(realpath -m "$1"); rounds=$2; shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
makescope=${MAKESCOPE:-$here/target/release/makescope}
jobs=${JOBS:-2}
mkdir -p "$work"
[ -f "$work/results.tsv" ] || printf 'variant\tround\twall_s\tuser_s\tsys_s\texit\toutput_bytes\trecord_bytes\tidle_s\tsteal_s\n' > "$work/results.tsv"
tick=$(getconf CLK_TCK)
# The machine's idle and steal jiffies so far (all CPUs), from /proc/stat's cpu line.
idle_steal() { awk '$1 == "cpu" { print $5 + $6, $9; exit }' /proc/stat; }
for round in $(seq 1 "$rounds"); do
    variants=("$@")
    if [ $((round % 2)) -eq 0 ]; then  # reverse the order every other round
        for ((i = 0, j = ${#variants[@]} - 1; i < j; i++, j--)); do
            t=${variants[i]}; variants[i]=${variants[j]}; variants[j]=$t
        done
    fi
    for variant in "${variants[@]}"; do
        dir="$work/build-$variant"
        "$here/scripts/glibc-fresh.sh" "$dir"
        case $variant in
            plain)   cmd=(make -j"$jobs") ;;
            notrace) cmd=("$makescope" make --no-trace -j"$jobs") ;;
            traced)  cmd=("$makescope" make -j"$jobs") ;;
            bear)    cmd=(bear --output "$work/compile_commands.json" -- make -j"$jobs") ;;
            strace)  cmd=(strace -f --seccomp-bpf -e trace=%file,%process -o "$work/strace.out" make -j"$jobs") ;;
            *) echo "unknown variant $variant" >&2; exit 2 ;;
        esac
        log="$work/$variant-$round.log"
        read -r idle0 steal0 < <(idle_steal)
        start=$(date +%s.%N)
        set +e
        ( cd "$dir" && /usr/bin/time -f '%U %S' -o "$work/time.tmp" "${cmd[@]}" > "$log" 2>&1 )
        status=$?
        set -e
        end=$(date +%s.%N)
        read -r idle1 steal1 < <(idle_steal)
        read -r user sys < <(tail -1 "$work/time.tmp")
        record=0
        [ -f "$dir/.makescope/db.sqlite" ] && record=$(du -cb "$dir"/.makescope/db.sqlite* | tail -1 | cut -f1)
        [ "$variant" = strace ] && record=$(stat -c %s "$work/strace.out") && rm -f "$work/strace.out"
        printf '%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\n' "$variant" "$round" "$(echo "$end - $start" | bc)" \
            "$user" "$sys" "$status" "$(stat -c %s "$log")" "$record" \
            "$(echo "($idle1 - $idle0) / $tick" | bc -l)" "$(echo "($steal1 - $steal0) / $tick" | bc -l)" | tee -a "$work/results.tsv"
    done
done
