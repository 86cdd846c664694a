#!/bin/sh
# Time `makescope targets` against bash-completion's method (`make -npq .DEFAULT`) in
# DIR (default: the glibc build directory), best of N runs each, and check that every
# target bash-completion finds is listed.
# Usage: scripts/bench-targets.sh [DIR] [N]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/work/glibc/build}
n=${2:-5}
makescope=${MAKESCOPE:-$here/target/release/makescope}
cd "$dir"

best() { # best wall time of $n runs of "$@", in seconds
    b=
    i=0
    while [ $i -lt "$n" ]; do
        s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
        i=$((i + 1))
    done
    printf '%.3f' "$b"
}

echo "directory: $dir ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "make -npq .DEFAULT           $(best sh -c 'LC_ALL=C make -npq .DEFAULT')"
echo "makescope targets            $(best "$makescope" targets)"
echo "makescope targets --json     $(best "$makescope" targets --json)"
echo "makescope targets --phony    $(best "$makescope" targets --phony)"

"$makescope" targets | awk '{print $1}' | sort -u > /tmp/bench-targets.ours
"$here/scripts/bash-completion-targets.sh" | grep -v '^vpath ' > /tmp/bench-targets.bc
missing=$(comm -23 /tmp/bench-targets.bc /tmp/bench-targets.ours | wc -l)
echo "bash-completion finds $(wc -l < /tmp/bench-targets.bc), makescope lists $(wc -l < /tmp/bench-targets.ours), missing: $missing"
for t in check tests xcheck install subdirs; do
    if "$makescope" targets --phony | awk '{print $1}' | grep -qx "$t"; then echo "phony $t: listed"; else echo "phony $t: NOT listed"; fi
done
