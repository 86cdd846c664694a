#!/bin/sh
# Issue 19, must-hold 3: after an edit of a file of libc (default: the SSE2 strlen, which
# on x86_64 is what string/ builds strlen from), `makescope test TEST` (what the test
# needs, re-run through rebuild from the record, then the test) against glibc's own
# `make test t=TEST` from OBJDIR, alternately, each after a fresh edit of FILE (a comment
# line put first: the objects' line numbers change, so the chain really re-runs).
#   scripts/bench-test-stale-glibc.sh SRC OBJDIR RECORD [MAKESCOPE] [ROUNDS] [TEST] [FILE]
# SRC: a glibc source tree you may edit (a copy); OBJDIR: its build tree (a copy);
# RECORD: a record of `makescope make -C SRC/string objdir=OBJDIR check` in which FILE's
# objects, libc.so and TEST were made (touch FILE before recording it).
# Prints each round's times and keeps the first makescope round's stderr (the list of
# what it re-ran) in OBJDIR/../test-stale-first.err.
set -eu
src=$1 objdir=$2 record=$3
makescope=${4:-target/release/makescope}
rounds=${5:-2}
test=${6:-string/test-strlen}
file=${7:-sysdeps/x86_64/multiarch/strlen-sse2.S}
n=0
edit() {
  n=$((n + 1))
  { printf '/* bench edit %s */\n' "$n"; cat "$src/$file"; } > "$src/$file.new"
  mv "$src/$file.new" "$src/$file"
}
t() { # seconds of wall time of "$@", its stdout and stderr to $out
  s=$(date +%s.%N); "$@" > "$out" 2>&1 || true; e=$(date +%s.%N)
  echo "$e - $s" | bc
}
first="$objdir/../test-stale-first.err"
i=1
while [ "$i" -le "$rounds" ]; do
  edit
  out=/tmp/bench-test-stale.$$.a
  a=$(t "$makescope" --db "$record" test -j2 "$test")
  [ "$i" -eq 1 ] && cp "$out" "$first"
  ra=$(grep -c '^makescope: test: first: ' "$out" || true)
  pa=$(grep -E "^[A-Z]+: $test " "$out" | cut -d: -f1)
  edit
  out=/tmp/bench-test-stale.$$.b
  b=$(t make -C "$objdir" -j2 test "t=$test")
  pb=$(grep -E "^[A-Z]+: $test\$" "$out" | head -1 | cut -d: -f1)
  echo "round $i: makescope test $a s ($ra recipes first, $pa) | make test t= $b s ($pb) | load $(cut -d' ' -f1 /proc/loadavg)"
  i=$((i + 1))
done
rm -f /tmp/bench-test-stale.$$.a /tmp/bench-test-stale.$$.b
