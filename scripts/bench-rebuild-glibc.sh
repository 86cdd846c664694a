#!/usr/bin/env bash
# Issue 18 figures for `makescope rebuild` on a fully built, traced glibc tree:
#   1. the record's growth from file states (taken on a copy of the record);
#   2. a no-op `makescope rebuild` against a no-op `make -j2`, alternately;
#   3. one edited .c file: a touch, a comment at its end, a real change: what rebuild
#      runs (and cuts off), against what `make -j2` runs for the same edit, and whether
#      the files they make are byte-identical.
# The tree must be as its build left it; the edited source is restored exactly.
#
#   scripts/bench-rebuild-glibc.sh BUILD_DIR RECORD_COPY [SOURCE_FILE]
# e.g. scripts/bench-rebuild-glibc.sh /work/glibc/bt /tmp/rb/glibc.sqlite string/strsep.c
set -euo pipefail
BT=$1
DB=$2
FILE=${3:-string/strsep.c}
M=${MAKESCOPE:-$(cd "$(dirname "$0")/.." && pwd)/target/release/makescope}
SRC=$(sed -n 's/^srcdir *= *//p' "$BT/config.make" | head -1)
[ -f "$SRC/$FILE" ] || { echo "no $SRC/$FILE" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -p "$SRC/$FILE" "$WORK/source.orig"
restore() { cp -p "$WORK/source.orig" "$SRC/$FILE"; }
trap 'restore; rm -rf "$WORK"' EXIT

t() { local s e; s=$(date +%s.%N); "$@" >"$WORK/out" 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
size() { sqlite3 "$DB" "SELECT sum(pgsize) FROM dbstat WHERE name IN ($1)"; }

echo "== states"
if [ "$(sqlite3 "$DB" "SELECT count(*) FROM sqlite_master WHERE name = 'file_state_taken'")" = 0 ] ||
   [ "$(sqlite3 "$DB" 'SELECT count(*) FROM file_state_taken')" = 0 ]; then
    "$M" --db "$DB" rebuild --take-states
fi
sqlite3 "$DB" "SELECT 'taken: files', files, 'hashed', hashed, 'seconds', round(seconds, 2) FROM file_state_taken"
sqlite3 "$DB" "SELECT 'rows', count(*), 'with a state', count(size) FROM file_state"
all=$(sqlite3 "$DB" "SELECT sum(pgsize) FROM dbstat")
states=$(size "'file_state', 'file_state_taken', 'rerun'")
echo "record $all bytes; file states $states bytes ($(echo "scale=2; 100 * $states / ($all - $states)" | bc)% growth)"

echo "== no-op: rebuild vs make -j2 (alternately)"
for round in 1 2 3; do
    echo "round $round: rebuild $(t "$M" --db "$DB" rebuild) s; make -j2 $(t make -C "$BT" -j2) s"
done
"$M" --db "$DB" rebuild 2>&1 | tail -1

trial() {
    local name=$1
    echo "== $name"
    "$M" --db "$DB" rebuild --dry-run > "$WORK/dry" 2>&1 || true
    tail -2 "$WORK/dry"
    echo "rebuild -j2: $(t "$M" --db "$DB" rebuild -j2) s"
    tail -3 "$WORK/out"
    grep -E '^  [A-Z]+ ' "$WORK/out" | awk '{print $2}' | sort > "$WORK/$name.rebuild" || true
    echo "rebuild ran $(wc -l < "$WORK/$name.rebuild") recipes"
}

touch "$SRC/$FILE"
trial touch
printf '/* makescope rebuild trial */\n' >> "$SRC/$FILE"
trial comment
restore
trial restore-comment
sed -i '0,/return/s/return \(.*\);/return (\1);/' "$SRC/$FILE"
diff "$WORK/source.orig" "$SRC/$FILE" || true
trial change
# What rebuild made, kept to compare with make's.
mkdir -p "$WORK/made"
for f in $(sqlite3 "$DB" "SELECT DISTINCT CAST(p.path AS TEXT) FROM rerun r JOIN access a ON a.command_id = r.command_id JOIN path p ON p.id = a.path_id WHERE a.kind IN (2,3,4,5,12) AND r.ended_ns = (SELECT max(ended_ns) FROM rerun)"); do
    [ -f "$f" ] && cp "$f" "$WORK/made/$(echo "$f" | tr / _)"
done
restore
echo "restore: rebuild -j2 $(t "$M" --db "$DB" rebuild -j2) s"
sed -i '0,/return/s/return \(.*\);/return (\1);/' "$SRC/$FILE"
echo "== change, make -j2 (recorded untraced into a scratch record to list what it ran)"
echo "make -j2: $(t "$M" --db "$WORK/make.sqlite" make --no-trace -C "$BT" -j2) s"
sqlite3 "$WORK/make.sqlite" "SELECT CAST(target AS TEXT), label FROM command WHERE label NOT LIKE 'MAKE %'" | awk -F'|' '{print $2}' | awk '{print $2}' | sort > "$WORK/change.make"
echo "make ran $(wc -l < "$WORK/change.make") commands (sub-makes aside)"
echo "only rebuild:"; comm -23 "$WORK/change.rebuild" "$WORK/change.make" | head -20
echo "only make:"; comm -13 "$WORK/change.rebuild" "$WORK/change.make" | head -40
same=0; differ=0
for f in "$WORK"/made/*; do
    orig=$(basename "$f" | tr _ /)
    if cmp -s "$f" "$orig"; then same=$((same + 1)); else differ=$((differ + 1)); echo "differs: $orig"; fi
done
echo "files rebuild made: $same byte-identical to make's, $differ differ"
restore
echo "restore: make -j2 $(t make -C "$BT" -j2) s"
echo "after make, rebuild --dry-run:"; "$M" --db "$DB" rebuild --dry-run 2>&1 | tail -2
