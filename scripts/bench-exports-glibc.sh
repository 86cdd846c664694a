#!/usr/bin/env bash
# Issue 20 figures: `lint`, `export compdb` and `export ninja` on a full traced glibc
# record, alternately with a baseline binary (the machine is shared: load average and
# CPU time beside each wall time). Works on a COPY of the record (lint may read the
# make database dumps the record names; nothing is written to the record).
#
#   scripts/bench-exports-glibc.sh RECORD_COPY BASELINE_BINARY [ROUNDS]
# e.g. scripts/bench-exports-glibc.sh /tmp/r5-20/glibc.sqlite /work/base/makescope-s12 3
set -uo pipefail
DB=$1
BASE=$2
ROUNDS=${3:-3}
M=${MAKESCOPE:-$(cd "$(dirname "$0")/.." && pwd)/target/release/makescope}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

one() { # NAME BINARY ARGS...: one timed run, its wall/user/sys/peak memory and the load
    local name=$1 bin=$2
    shift 2
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$bin" --db "$DB" "$@" > "$WORK/out" 2> "$WORK/err"
    local rc=$?
    read -r wall user sys kb < <(tail -1 "$WORK/time")
    printf '%-8s %-32s wall %6.2f s  cpu %5.2f s (user %5.2f)  %4d MB  load %s  exit %d\n' \
        "$name" "$*" "$wall" "$(echo "$user + $sys" | bc)" "$user" $((kb / 1024)) \
        "$(cut -d' ' -f1 /proc/loadavg)" "$rc"
}

for round in $(seq "$ROUNDS"); do
    echo "== round $round"
    for args in "lint --json" "export compdb -o $WORK/cc.json" "export ninja -o $WORK/build.ninja"; do
        # shellcheck disable=SC2086
        one base "$BASE" $args
        # shellcheck disable=SC2086
        one new "$M" $args
    done
done
"$M" --db "$DB" export ninja -o "$WORK/build.ninja"
"$M" --db "$DB" export compdb -o "$WORK/cc.json"
ls -la "$WORK/build.ninja" "$WORK/cc.json" | awk '{print $5, $9}'
