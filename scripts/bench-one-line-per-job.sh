#!/usr/bin/env bash
# Issue 24: lines and bytes of makescope's piped output against plain make's log of the
# same build, alternating plain and makescope rounds; with the record's commands (recipe
# lines) and jobs, and scripts/check-output.sh's check that every warning/error line of
# the plain log is kept.
#
#   scripts/bench-one-line-per-job.sh ROUNDS zlib SRCDIR
#       SRCDIR: a configured zlib (`apt-get source zlib; cd zlib-*; ./configure`);
#       each round `make clean` then `make -j2`.
#   scripts/bench-one-line-per-job.sh ROUNDS glibc OBJDIR SUBDIR
#       OBJDIR: a built glibc tree of your own (a copy); each round deletes SUBDIR's
#       objects and dependency files and runs `make -C SRC/SUBDIR subdir=SUBDIR
#       objdir=OBJDIR -j2 subdir_lib`.
#
# Both run in the build's top directory (zlib's, or OBJDIR), where the record goes.
# MAKESCOPE (default target/release/makescope) is the binary; logs go to $OUT (default
# a temporary directory, printed). Prints two rows per round (tab-separated).
set -euo pipefail
rounds=$1 kind=$2; shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
makescope=${MAKESCOPE:-$here/target/release/makescope}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
case $kind in
    zlib)
        dir=$(realpath "$1")
        clean() { make -C "$dir" clean > /dev/null 2>&1; rm -rf "$dir/.makescope"; }
        top=$dir
        build=(make -j2)
        ;;
    glibc)
        objdir=$(realpath "$1") subdir=$2
        src=$(realpath "$(sed -n 's/^srcdir *= *//p' "$objdir/Makefile")")
        clean() {
            rm -f "$objdir/$subdir"/*.o "$objdir/$subdir"/*.os "$objdir/$subdir"/*.oS \
                "$objdir/$subdir"/*.d "$objdir/$subdir"/*.dt "$objdir/$subdir"/*.T \
                "$objdir/$subdir"/stamp.*
            rm -rf "$objdir/.makescope"
        }
        top=$objdir
        build=(make -C "$src/$subdir" subdir="$subdir" objdir="$objdir" -j2 subdir_lib)
        ;;
    *) echo "usage: $0 ROUNDS zlib SRCDIR | ROUNDS glibc OBJDIR SUBDIR" >&2; exit 2 ;;
esac
echo "logs in $out" >&2
printf 'round\tvariant\tlines\tbytes\tshare_of_plain\tcommands\tjobs\tlabel_lines\twarnings_kept\n'
for round in $(seq 1 "$rounds"); do
    variants=(plain makescope)
    [ $((round % 2)) -eq 0 ] && variants=(makescope plain)
    for variant in "${variants[@]}"; do
        clean
        log=$out/$variant-$round.log
        case $variant in
            plain) (cd "$top" && "${build[@]}") > "$log" 2>&1 || true ;;
            makescope)
                (cd "$top" && "$makescope" "${build[@]}") > "$log" 2>&1 || true
                # The record's recipe lines and jobs, before the next clean removes it.
                db=$top/.makescope/db.sqlite
                last="build_id = (SELECT max(id) FROM build)"
                commands=$(sqlite3 "$db" "SELECT count(*) FROM command WHERE $last")
                jobs=$(sqlite3 "$db" "SELECT count(*) FROM (SELECT DISTINCT make_id, job FROM command WHERE $last)")
                ;;
        esac
    done
    plain=$out/plain-$round.log ours=$out/makescope-$round.log
    share=$(awk -v a="$(wc -c < "$ours")" -v b="$(wc -c < "$plain")" 'BEGIN { printf "%.2f%%", 100 * a / b }')
    labels=$(grep -c '^  [A-Z]' "$ours" || true)
    kept=$("$here/scripts/check-output.sh" "$plain" "$ours" 100 | sed -n 's/.*: \([0-9]*\) distinct; missing from makescope.s output: \([0-9]*\)/\2 missing of \1/p')
    printf '%s\tplain\t%s\t%s\t\t\t\t\t\n' "$round" "$(wc -l < "$plain")" "$(wc -c < "$plain")"
    printf '%s\tmakescope\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$(wc -l < "$ours")" "$(wc -c < "$ours")" "$share" "$commands" "$jobs" "$labels" "$kept"
done
