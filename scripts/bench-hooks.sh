#!/usr/bin/env bash
# The cost of a label hook (issue 6): a build of COMMANDS recipe commands recorded by
# `makescope make` with and without a hooks file whose label() runs for every command,
# alternating the two in each round so that machine noise hits both alike.
# Target: with hooks / without <= 1.03 (median wall time).
#
#   scripts/bench-hooks.sh [ROUNDS=5] [COMMANDS=5000]
#   MAKESCOPE_BIN=target/release/makescope  JOBS=2  EXTRA="--no-trace"  scripts/bench-hooks.sh
set -euo pipefail

rounds=${1:-5}
commands=${2:-5000}
jobs=${JOBS:-2}
bin=$(realpath "${MAKESCOPE_BIN:-target/release/makescope}")
[ -x "$bin" ] || { echo "no makescope binary at $bin (cargo build --release, or set MAKESCOPE_BIN)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

cat > Makefile <<MAKEFILE
OBJECTS := \$(shell seq -f 'obj/file%g.o' 1 $commands)
all: \$(OBJECTS)
obj:
	@mkdir -p obj
obj/%.o: | obj
	@echo \$@ > \$@
MAKEFILE

cat > hooks.py <<'PY'
import os

def label(cmd):
    # What a real label hook does: look at the target and the command, return a label.
    name = os.path.basename(cmd.target)
    if name.endswith(".o") and "echo" in cmd.command:
        return "GEN " + name
    return None
PY

run() {  # run MODE -> seconds
    rm -rf obj .makescope
    local start end
    start=$(date +%s.%N)
    if [ "$1" = hooks ]; then
        "$bin" make --hooks hooks.py ${EXTRA:-} -j"$jobs" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    else
        "$bin" make ${EXTRA:-} -j"$jobs" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    fi
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

run plain >/dev/null   # warm the page cache and the record's directory
: > times
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) = 1 ]; then order="plain hooks"; else order="hooks plain"; fi
    for mode in $order; do
        t=$(run "$mode")
        echo "$mode $t" >> times
        printf 'round %d %-5s %.3f s\n' "$round" "$mode" "$t" >&2
    done
done

# Check that the hooks really ran: every command of a hooks build got the hook's label.
run hooks >/dev/null
labelled=$(python3 - <<'PY'
import sqlite3
db = sqlite3.connect(".makescope/db.sqlite")
print(db.execute("SELECT count(*) FROM command WHERE label LIKE 'GEN %'").fetchone()[0])
PY
)

python3 - "$commands" "$labelled" <<'PY'
import statistics, sys
commands, labelled = int(sys.argv[1]), sys.argv[2]
times = {"plain": [], "hooks": []}
for line in open("times"):
    mode, t = line.split()
    times[mode].append(float(t))
plain, hooks = statistics.median(times["plain"]), statistics.median(times["hooks"])
print(f"{commands} commands, {len(times['plain'])} rounds, median wall time:")
print(f"  without hooks  {plain:8.3f} s   (min {min(times['plain']):.3f})")
print(f"  label hook     {hooks:8.3f} s   (min {min(times['hooks']):.3f})")
print(f"  ratio          {hooks / plain:8.3f}   (target <= 1.03); a hooks build labelled {labelled} commands")
PY
