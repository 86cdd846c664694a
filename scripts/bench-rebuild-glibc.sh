#!/usr/bin/env bash
# Issue 18 figures and trials for `makescope rebuild` on a fully built, traced glibc tree:
#   1. the record's growth from file states;
#   2. no-op: `makescope rebuild` against `make -j2` and against ninja on the file
#      `makescope export ninja` writes for the same tree (`ninja -n`), alternately;
#   3. edits, each followed by `rebuild -j2` and compared with what `make -j2` runs for the
#      same edit (make's set from an untraced `makescope make` record of its run, less what
#      a no-op make runs anyway) and with the files make writes (byte for byte):
#      a touch (nothing may run), one .c changed, one header included by several .c files
#      changed, one object deleted, a new header shadowing a system one on the include
#      path; after each, a second rebuild must run nothing.
#
# The glibc source is shared and read-only: every edit is a changed copy bind-mounted
# over the source file in a private mount namespace this script runs in (root only), so
# nothing outside it ever sees the edit, and unmounting restores the file exactly.
#
#   scripts/bench-rebuild-glibc.sh BUILD_DIR RECORD [TRIALS...]
# e.g. scripts/bench-rebuild-glibc.sh /work/glibc/bt /work/glibc/bt/.makescope/db.sqlite
# TRIALS: any of noop touch c c-rebuild header delete shadow (default: all but c-rebuild).
set -euo pipefail
if [ -z "${IN_PRIVATE_NS:-}" ]; then
    exec env IN_PRIVATE_NS=1 unshare -m --propagation private "$0" "$@"
fi
BT=$1
DB=$2
shift 2
TRIALS=${*:-noop touch c header delete shadow}
M=${MAKESCOPE:-$(cd "$(dirname "$0")/.." && pwd)/target/release/makescope}
SRC=$(cd "$BT" && realpath "$(sed -n 's/^srcdir *= *//p' "$BT/Makefile" | head -1)")
C_FILE=${C_FILE:-string/strsep.c}
H_FILE=${H_FILE:-string/str-two-way.h}
O_FILE=${O_FILE:-string/strspn.o}
# A real change to strsep.c's code (the branch hint flips).
C_EDIT=${C_EDIT:-"sed -i 's/if (begin == NULL)/if (__builtin_expect (begin == NULL, 1))/'"}
WORK=$(mktemp -d)
KEEP=${KEEP:-/tmp}   # each trial's dry-run listings are copied here
trap 'umount -q "$SRC/$C_FILE" "$SRC/$H_FILE" 2>/dev/null || true; rm -f "$BT/string/stddef.h"; rm -rf "$WORK"' EXIT
echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg); makescope $M"

t() { local s e; s=$(date +%s.%N); "$@" >"$WORK/out" 2>&1 || true; e=$(date +%s.%N); printf '%.2f' "$(echo "$e - $s" | bc)"; }
# A changed copy of a source file, bind-mounted over it (CMD edits the copy in place).
edit_src() {
    local file=$1 cmd=$2 copy
    copy="$WORK/edit.$(echo "$file" | tr / _)"
    umount -q "$SRC/$file" 2>/dev/null || true
    cp "$SRC/$file" "$copy"
    eval "$cmd \"\$copy\""
    mount --bind "$copy" "$SRC/$file"
}
unedit() { umount -q "$SRC/$1" 2>/dev/null || true; }
# What `rebuild` ran (objects, from its labels) and cut off; `second` must be empty.
rebuild_trial() {
    local name=$1
    "$M" --db "$DB" rebuild --dry-run > "$WORK/$name.dry" 2>&1 || true
    grep "touched" "$WORK/$name.dry" || true
    echo "dry-run: $(tail -1 "$WORK/$name.dry")"
    grep -m3 -E '^  [A-Z]' "$WORK/$name.dry" || true
    echo "rebuild -j2: $(t "$M" --db "$DB" rebuild -j2) s; $(tail -1 "$WORK/out")"
    grep -E '^  [A-Z]+ ' "$WORK/out" | awk '{print $2}' | sort -u > "$WORK/$name.rebuild" || true
    grep -o 'early cutoff: .*' "$WORK/out" | cut -c1-300 || true
    echo "rebuild ran $(wc -l < "$WORK/$name.rebuild") recipes: $(head -8 "$WORK/$name.rebuild" | tr '\n' ' ')"
    "$M" --db "$DB" rebuild --dry-run > "$WORK/$name.second" 2>&1 || true
    echo "second rebuild --dry-run: $(tail -1 "$WORK/$name.second")"
    cp "$WORK/$name.dry" "$WORK/$name.second" "$KEEP/" || true
    # What the re-runs wrote, to compare with make's.
    rm -rf "$WORK/made" && mkdir -p "$WORK/made"
    sqlite3 "$DB" "SELECT DISTINCT CAST(p.path AS TEXT) FROM rerun r JOIN access a ON a.command_id = r.command_id JOIN path p ON p.id = a.path_id WHERE a.kind IN (2,3,4,5,12) AND r.ended_ns = (SELECT max(ended_ns) FROM rerun)" |
        while read -r f; do if [ -f "$f" ]; then cp "$f" "$WORK/made/$(echo "$f" | tr / '|')"; fi; done
}
# What `make -j2` runs for the same edit, against rebuild's set; the files compared.
# The no-op make's own commands (glibc re-runs some every time): run on the tree as
# the record has it, before any edit.
noop_make() {
    if [ ! -e "$WORK/noop.make" ]; then
        "$M" --db "$WORK/noop.sqlite" make --no-trace -C "$BT" -j2 > /dev/null 2>&1 || true
        labels "$WORK/noop.sqlite" > "$WORK/noop.make"
        echo "a no-op make -j2 runs $(wc -l < "$WORK/noop.make") commands: $(head -5 "$WORK/noop.make" | tr '\n' ' ')"
        settle
    fi
}
# The objects of a recorded make's commands, relative to the build tree.
labels() {
    sqlite3 "$1" "SELECT label FROM command WHERE label NOT LIKE 'MAKE %'" | awk '{print $2}' |
        sed -E "s#^(\.\./)*([^ ]*/)?$(basename "$BT")/##" | sort -u
}
make_trial() {
    local name=$1
    rm -f "$WORK/make.sqlite"
    echo "make -j2: $(t "$M" --db "$WORK/make.sqlite" make --no-trace -C "$BT" -j2) s"
    labels "$WORK/make.sqlite" > "$WORK/$name.make.all"
    comm -23 "$WORK/$name.make.all" "$WORK/noop.make" > "$WORK/$name.make"
    echo "make ran $(wc -l < "$WORK/$name.make.all") commands, $(wc -l < "$WORK/$name.make") beyond what a no-op make runs"
    echo "only rebuild: $(comm -23 "$WORK/$name.rebuild" "$WORK/$name.make" | tr '\n' ' ')"
    echo "only make: $(comm -13 "$WORK/$name.rebuild" "$WORK/$name.make" | wc -l): $(comm -13 "$WORK/$name.rebuild" "$WORK/$name.make" | head -30 | tr '\n' ' ')"
    local same=0 differ=0
    for f in "$WORK"/made/*; do
        [ -e "$f" ] || continue
        orig=$(basename "$f" | tr '|' /)
        if cmp -s "$f" "$orig"; then same=$((same + 1)); else differ=$((differ + 1)); echo "differs: $orig"; fi
    done
    echo "files rebuild made: $same byte-identical to make's, $differ differ"
}
# Back to the recorded state: the source restored, rebuild brings the tree back.
settle() {
    echo "settle: rebuild -j2 $(t "$M" --db "$DB" rebuild -j2) s; $(tail -1 "$WORK/out")"
}

echo "== states"
if [ "$(sqlite3 "$DB" 'SELECT count(*) FROM file_state_taken')" = 0 ]; then
    "$M" --db "$DB" rebuild --take-states
fi
sqlite3 "$DB" "SELECT 'taken: files', files, 'hashed', hashed, 'seconds', round(seconds, 2) FROM file_state_taken"
all=$(sqlite3 "$DB" "SELECT sum(pgsize) FROM dbstat")
states=$(sqlite3 "$DB" "SELECT sum(pgsize) FROM dbstat WHERE name IN ('file_state', 'file_state_taken', 'rerun')")
echo "record $all bytes; file states $states bytes ($(echo "scale=2; 100 * $states / ($all - $states)" | bc)% growth)"


case " $TRIALS " in *" c "*|*" header "*|*" delete "*) noop_make ;; esac
for trial in $TRIALS; do
    echo "== $trial ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
    case $trial in
    noop)
        "$M" --db "$DB" export ninja -o "$WORK/build.ninja" 2>&1 | tail -1
        for round in $(seq 1 "${ROUNDS:-3}"); do
            r=$(t "$M" --db "$DB" rebuild); rl=$(tail -1 "$WORK/out")
            m=$(t make -C "$BT" -j2)
            n=$(t ninja -C "$WORK" -f "$WORK/build.ninja" -n); nl=$(tail -1 "$WORK/out")
            echo "round $round: rebuild $r s ($rl); make -j2 $m s; ninja -n $n s ($nl); load $(cut -d' ' -f1 /proc/loadavg)"
        done
        settle
        ;;
    touch)
        edit_src "$C_FILE" "touch"
        rebuild_trial touch
        unedit "$C_FILE"; settle
        ;;
    c)
        edit_src "$C_FILE" "$C_EDIT"
        rebuild_trial c
        unedit "$C_FILE"; settle
        edit_src "$C_FILE" "$C_EDIT"
        make_trial c
        unedit "$C_FILE"; make -C "$BT" -j2 > /dev/null 2>&1; settle
        ;;
    c-rebuild)
        # The rebuild half of `c` alone (make's half: `c`).
        edit_src "$C_FILE" "$C_EDIT"
        rebuild_trial c
        unedit "$C_FILE"; settle
        ;;
    header)
        edit_src "$H_FILE" "sed -i '0,/^#include/s//#define MAKESCOPE_TRIAL 1\n#include/'"
        rebuild_trial header
        unedit "$H_FILE"; settle
        edit_src "$H_FILE" "sed -i '0,/^#include/s//#define MAKESCOPE_TRIAL 1\n#include/'"
        make_trial header
        unedit "$H_FILE"; make -C "$BT" -j2 > /dev/null 2>&1; settle
        ;;
    delete)
        cp -p "$BT/$O_FILE" "$WORK/deleted.o"
        rm "$BT/$O_FILE"
        rebuild_trial delete
        cmp -s "$WORK/deleted.o" "$BT/$O_FILE" && echo "$O_FILE came back byte-identical"
        rm "$BT/$O_FILE"
        make_trial delete
        settle
        ;;
    shadow)
        # A copy of gcc's own stddef.h, earlier on string/'s include path.
        cp "$(gcc -print-file-name=include)/stddef.h" "$BT/string/stddef.h"
        rebuild_trial shadow
        rm "$BT/string/stddef.h"; settle
        echo "(make does not see the new header: its prerequisites do not name it)"
        ;;
    esac
done
echo "== end $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
