#!/usr/bin/env bash
# Issue 20, must-hold 4 on glibc: ninja from the record against `makescope rebuild`
# (and make) on one glibc subdirectory of a COPY of a built tree (the glibc source
# stays untouched: the edit is to the copy's config.h, which every compile reads).
#   1. delete the objects of the subdirectory's first N sources and record their
#      remaking: `makescope make -r -j2 -C SRC/SUBDIR objdir=COPY subdir_lib`;
#   2. export ninja; no-ops alternately: ninja, makescope rebuild;
#   3. append a comment to COPY/config.h: `rebuild --dry-run` (what it would re-run),
#      then ninja (what it re-runs, timed), ninja again (nothing), then `rebuild`
#      for real, timed (what it ran, and what it cut off as byte-identical);
#   4. make, twice (its first run is no no-op: see below).
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

echo "== no-ops, alternately: ninja, makescope rebuild (load $(load))"
for round in 1 2 3; do
    echo "round $round: ninja $(t ninja -f "$SUB.ninja"): $(tail -1 /tmp/bench-ninja.out); rebuild $(t "$M" rebuild): $(tail -1 /tmp/bench-ninja.out)"
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
grep -v '^makescope' /tmp/bench-ninja.out | awk '/^  [^ ]/ {print $1, $2}' | sort > /tmp/bench-ninja.rebuild-ran
sed -n 's/.*byte-identical: //p' /tmp/bench-ninja.out | tr ',' '\n' | sed 's/^ *//' | grep . | sort > /tmp/bench-ninja.rebuild-cut
grep '^makescope' /tmp/bench-ninja.out | tail -3
echo "rebuild ran $(wc -l < /tmp/bench-ninja.rebuild-ran), cut off $(wc -l < /tmp/bench-ninja.rebuild-cut) (byte-identical): $(tr '\n' ' ' < /tmp/bench-ninja.rebuild-cut)"
sort /tmp/bench-ninja.rebuild-ran /tmp/bench-ninja.rebuild-cut > /tmp/bench-ninja.rebuild-all
if diff /tmp/bench-ninja.rebuild-all /tmp/bench-ninja.ninja-ran > /tmp/bench-ninja.diff; then
    echo "ninja re-ran exactly rebuild's ran + cut off"
else
    echo "ninja against rebuild's ran + cut off:"; cat /tmp/bench-ninja.diff
fi
echo "rebuild again: $(t "$M" rebuild --dry-run): $(tail -1 /tmp/bench-ninja.out)"
cp -p /tmp/bench-ninja.config.h config.h

# Last: make's first run after the recorded one is no no-op in glibc (it turns the
# `.dt` files the recorded compiles left into `.d` and removes them: those are
# outputs of the ninja file's compiles, which ninja would then re-run).
echo "== make, twice (load $(load))"
for round in 1 2; do
    echo "make $(t make -r -C "$SRC/$SUB" "objdir=$COPY" subdir_lib): $(grep -c '^sed\|^gcc\|^echo\|^mv' /tmp/bench-ninja.out) recipe lines run"
done
