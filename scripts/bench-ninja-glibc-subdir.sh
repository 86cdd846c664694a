#!/usr/bin/env bash
# Issue 20, must-hold 4 on glibc: ninja from the record against `makescope rebuild`
# (and make) on one glibc subdirectory of a COPY of a built tree (the glibc source
# stays untouched: the edit is to the copy's config.h, which every compile reads).
#   1. delete the objects of the subdirectory's first N sources and record their
#      remaking: `makescope make -r -j2 -C SRC/SUBDIR objdir=COPY subdir_lib`;
#   2. export ninja; no-ops alternately: ninja, make, makescope rebuild;
#   3. append a comment to COPY/config.h: `rebuild --dry-run` (what it would re-run),
#      then ninja (what it re-runs, timed), ninja again (nothing), then `rebuild`
#      for real, timed (it re-runs the same, each output byte-identical).
#
#   scripts/bench-ninja-glibc-subdir.sh COPY [SUBDIR] [N]
# e.g. scripts/bench-ninja-glibc-subdir.sh /work/glibc/r5-20-string string 10
set -uo pipefail
COPY=$(realpath "$1")
SUB=${2:-string}
N=${3:-10}
M=${MAKESCOPE:-$(cd "$(dirname "$0")/.." && pwd)/target/release/makescope}
SRC=$(sed -n "s/^srcdir *= *//p" "$COPY/Makefile" | head -1)
cd "$COPY" || exit 2
t() { local s e; s=$(date +%s.%N); "$@" > /tmp/bench-ninja.out 2>&1; local rc=$?; e=$(date +%s.%N); printf '%.2f s (exit %d)' "$(echo "$e - $s" | bc)" "$rc"; }
load() { cut -d' ' -f1 /proc/loadavg; }
labels() { sed -n 's/^\[[0-9]*\/[0-9]*\] //p' | awk '{print $1, $2}' | sort; }

echo "== record: the objects of the first $N sources of $SUB/ remade (load $(load))"
rm -rf .makescope
for o in $(ls "$COPY/$SUB"/*.o | head -"$N"); do
    b=${o%.o}
    rm -f "$b.o" "$b.os" "$b.oS"
done
echo "makescope make: $(t "$M" make -r -j2 -C "$SRC/$SUB" "objdir=$COPY" subdir_lib)"
tail -1 /tmp/bench-ninja.out
"${MAKESCOPE_EXPORT:-$M}" export ninja -o "$COPY/$SUB.ninja"

echo "== no-ops, alternately (load $(load))"
for round in 1 2 3; do
    echo "round $round: ninja $(t ninja -f "$SUB.ninja"); make $(t make -r -C "$SRC/$SUB" "objdir=$COPY" subdir_lib); rebuild $(t "$M" rebuild)"
done

echo "== edit: a comment appended to config.h (load $(load))"
cp -p config.h /tmp/bench-ninja.config.h
sleep 0.05
echo "/* $(date +%s.%N) */" >> config.h
"$M" rebuild --dry-run > /tmp/bench-ninja.dry 2>&1
sed -n 's/^  \([^ ].*\)/\1/p' /tmp/bench-ninja.dry | awk '{print $1, $2}' | sort > /tmp/bench-ninja.rebuild-would
echo "rebuild --dry-run would re-run $(wc -l < /tmp/bench-ninja.rebuild-would): $(tail -1 /tmp/bench-ninja.dry)"
echo "ninja: $(t ninja -f "$SUB.ninja")"
labels < /tmp/bench-ninja.out > /tmp/bench-ninja.ninja-ran
echo "ninja re-ran $(wc -l < /tmp/bench-ninja.ninja-ran)"
if diff /tmp/bench-ninja.rebuild-would /tmp/bench-ninja.ninja-ran > /tmp/bench-ninja.diff; then
    echo "the same commands as rebuild's"
else
    echo "DIFFERENT from rebuild's:"; cat /tmp/bench-ninja.diff
fi
echo "ninja again: $(t ninja -f "$SUB.ninja"): $(tail -1 /tmp/bench-ninja.out)"
echo "rebuild: $(t "$M" rebuild -j2)"
tail -2 /tmp/bench-ninja.out
echo "rebuild again: $(t "$M" rebuild --dry-run): $(tail -1 /tmp/bench-ninja.out)"
cp -p /tmp/bench-ninja.config.h config.h
