#!/bin/sh
# GNU make's own test suite (tests/run_make_tests.pl of make 4.3), run three times on
# this machine: with /usr/bin/make, and with makescope standing in for it, traced and
# with --no-trace. Prints each run's summary and the tests whose results differ from
# make's, each run again alone once more (timing-sensitive tests fail on a loaded
# machine, make's too); exits 1 when a difference persists. Not part of CI: it needs
# make's source and takes minutes. (BENCHMARKS.md, "Issue 25: make's test suite".)
#
#   scripts/make-testsuite.sh [MAKE_SOURCE_DIR]
#
# MAKE_SOURCE_DIR is make 4.3's source (`apt-get source make-dfsg`); without it the
# script fetches it into its work directory. MAKESCOPE names the binary (default
# target/release/makescope, built if missing). KEEP=1 keeps the work directory.
#
# Set-up: a `make` script that runs `makescope make --plain --quiet --make-name "$0"
# --make-program /usr/bin/make -- "$@"` (its record in the work directory): make runs
# under the script's name, so `$(MAKE)`, which the harness takes as the make to test,
# is the script, as it would be were the script make itself.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
makescope=${MAKESCOPE:-$repo/target/release/makescope}
if [ ! -x "$makescope" ]; then
    (cd "$repo" && cargo build --release --quiet)
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/make-testsuite-XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$work"' EXIT
fi
echo "work directory: $work" >&2

source=${1:-}
if [ -z "$source" ]; then
    (cd "$work" && apt-get source make-dfsg >/dev/null 2>&1)
    source=$(echo "$work"/make-dfsg-*/)
fi
source=$(cd "$source" && pwd)
[ -f "$source/tests/run_make_tests.pl" ] || {
    echo "make-testsuite: $source has no tests/run_make_tests.pl" >&2
    exit 2
}

# run NAME MAKE: the suite with MAKE as make; "NAME RESULT" per test in $work/NAME.results.
run() {
    name=$1
    make=$2
    mkdir -p "$work/$name"
    cp -R "$source/tests" "$work/$name/tests"
    started=$(date +%s)
    (cd "$work/$name/tests" &&
        perl run_make_tests.pl -srcdir "$source" -make "$make" >"$work/$name.log" 2>&1) || true
    ended=$(date +%s)
    # "features/load ..... ok     (4 passed)", "... FAILED (2/9 passed)" or "... N/A",
    # the result perhaps on a later line, after the harness's own complaint.
    awk '/^[a-z_]+\/[^ ]+ \.\.\./ { test = $1 }
         test && match($0, /ok +\([0-9]+ passed\)|FAILED \([0-9]+\/[0-9]+ passed\)|N\/A/) {
             result = substr($0, RSTART, RLENGTH); gsub(/ +/, " ", result)
             print test, result; test = "" }' "$work/$name.log" | sort >"$work/$name.results"
    awk -v name="$name" -v seconds="$((ended - started))" '
        / FAILED \(/ { split($3, n, "/"); gsub(/[^0-9]/, "", n[1]); gsub(/[^0-9]/, "", n[2])
                       failed += n[2] - n[1]; categories++ }
        END { printf "%-9s %d categories; %d tests failed in %d categories (%d s)\n",
                     name, NR, failed, categories, seconds }' "$work/$name.results"
}

wrapper() {
    name=$1
    shift
    mkdir -p "$work/bin-$name"
    cat >"$work/bin-$name/make" <<WRAPPER
#!/bin/sh
exec "$makescope" --db "$work/$name.sqlite" make --plain --quiet $* --make-name "\$0" --make-program /usr/bin/make -- "\$@"
WRAPPER
    chmod +x "$work/bin-$name/make"
    echo "$work/bin-$name/make"
}

run make /usr/bin/make
run traced "$(wrapper traced)"
run untraced "$(wrapper untraced --no-trace)"

# again NAME MAKE TEST: TEST alone, once more, in NAME's copy of the suite: its result.
again() {
    (cd "$work/$1/tests" && perl run_make_tests.pl -srcdir "$source" -make "$2" "$3" 2>&1) |
        awk 'match($0, /ok +\([0-9]+ passed\)|FAILED \([0-9]+\/[0-9]+ passed\)|N\/A/) {
                 r = substr($0, RSTART, RLENGTH); gsub(/ +/, " ", r) }
             /timed out/ { t++ }
             END { printf "%s%s", r, t ? " (" t " timed out)" : "" }'
}

# timeouts NAME TEST: how many of TEST's runs the harness stopped at its 5 s limit.
timeouts() {
    awk -v test="$2" '/^[a-z_]+\/[^ ]+ \.\.\./ { in_test = ($1 == test) }
                      in_test && /timed out/ { n++ } END { print n + 0 }' "$work/$1.log"
}

# A test file whose result differs is run again alone, with make and with makescope:
# the parallel tests wait for each other's files with a 5 s limit, which a loaded
# machine can pass. A difference that persists is one to fix or explain.
status=0
for name in traced untraced; do
    if ! diff -U0 "$work/make.results" "$work/$name.results" >"$work/$name.diff"; then
        echo "differences, make (-) and makescope $name (+):"
        grep '^[-+][a-z]' "$work/$name.diff"
        # The harness's .diff files of this run; running a test again replaces them.
        cp -R "$work/$name/tests/work" "$work/$name-first-run" 2>/dev/null || true
        for test in $(grep '^+[a-z]' "$work/$name.diff" | cut -c2- | cut -d' ' -f1); do
            make_again=$(again make /usr/bin/make "$test")
            ours_again=$(again "$name" "$work/bin-$name/make" "$test")
            echo "  $test: $(timeouts "$name" "$test") timed out in the run; alone once more:" \
                "make $make_again, makescope $ours_again"
            if [ "${make_again% (*}" != "${ours_again% (*}" ]; then
                status=1
            fi
        done
    else
        echo "makescope $name: no difference"
    fi
done
exit $status
