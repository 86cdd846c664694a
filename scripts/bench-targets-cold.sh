#!/usr/bin/env bash
# `targets --recursive` on a recorded build, the baseline binary against this one,
# alternating in one run: the baseline cold (its cache removed: every dump parsed), this
# binary "first after the build" (the listings the recorder made as each make ended are
# kept, only the whole-output file removed), and both warm (run again).
#
#   scripts/bench-targets-cold.sh TREE ROUNDS BASELINE [NEW]
#
# TREE: the build tree (its record is TREE/.makescope/db.sqlite, its cache beside it);
# the baseline's cache goes to a temporary directory. Prints one line per run with the
# load average. Never run in CI.
set -euo pipefail
tree=$(realpath "$1"); rounds=$2; base=$3
here=$(cd "$(dirname "$0")/.." && pwd)
new=${4:-$here/target/release/makescope}
db=$tree/.makescope/db.sqlite
base_cache=$(mktemp -d)
trap 'rm -rf "$base_cache"' EXIT
run() {  # LABEL CMD...
    local label=$1; shift
    /usr/bin/time -f "$label %e s wall %U s user %S s sys" "$@" targets --recursive --db "$db" > /dev/null 2> "$base_cache/err" \
        || { cat "$base_cache/err" >&2; exit 1; }
    printf '%s\tload %s\n' "$(tail -1 "$base_cache/err")" "$(cut -d' ' -f1 /proc/loadavg)"
}
cd "$tree"
for round in $(seq 1 "$rounds"); do
    rm -rf "$base_cache/c"
    MAKESCOPE_CACHE_DIR=$base_cache/c run "base cold" "$base"
    rm -f "$tree"/.makescope/cache/*.out.zst
    run "new first" "$new"
    MAKESCOPE_CACHE_DIR=$base_cache/c run "base warm" "$base"
    run "new warm" "$new"
done
