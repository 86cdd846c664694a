#!/bin/sh
# Issue 19's figures on glibc, each pair run alternately in one run (the machine is noisy):
#   scripts/bench-tests-glibc.sh SRC OBJDIR RECORD TEST [MAKESCOPE] [ROUNDS]
# SRC: glibc's source tree; OBJDIR: a built glibc (a copy you may write into: `make -n`
# and `make test` write there); RECORD: a record of `makescope make -C SRC/DIR
# objdir=OBJDIR check` that ran TEST (e.g. stdlib/tst-strtod).
#  1. `makescope tests --list-only` on SRC/string against `make -n check` there;
#  2. `makescope test TEST` against glibc's own `make test t=TEST` from OBJDIR;
#  3. `makescope tests` on RECORD.
set -eu
src=$1 objdir=$2 record=$3 test=$4
makescope=${5:-target/release/makescope}
rounds=${6:-3}
t() { # seconds of wall time of "$@", output discarded
  s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
  echo "$e - $s" | bc
}
i=1
while [ "$i" -le "$rounds" ]; do
  a=$(t "$makescope" tests --list-only -C "$src/string" "objdir=$objdir")
  b=$(t make -C "$src/string" "objdir=$objdir" -n check)
  c=$(t "$makescope" --db "$record" test "$test")
  d=$(t make -C "$objdir" test "t=$test")
  e=$(t "$makescope" --db "$record" tests)
  echo "round $i: list-only $a s | make -n check $b s | makescope test $c s | make test t= $d s | tests $e s"
  i=$((i + 1))
done
