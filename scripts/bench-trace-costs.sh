#!/usr/bin/env bash
# What tracing costs per unit of work, through the real binary: CPU (user + system of
# everything, makescope included) of the builds below, traced and with --no-trace,
# alternating, -j1; the differences give
#   a command:        100 × `prog loop 1`         (a dynamic program making 2 file calls)
#   a fast-path call: 10 × `prog loop 5000`       (10,000 calls each through the ring)
#   a trapped call:   10 × `prog-static loop 5000` (the same calls from a static program)
#
#   scripts/bench-trace-costs.sh ROUNDS
set -euo pipefail
rounds=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
makescope=${MAKESCOPE:-$here/target/release/makescope}
work=$(mktemp -d /tmp/bench-trace-costs.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
gcc -O1 -pthread -o prog "$here/tests/fixtures/trace/prog.c"
gcc -O1 -pthread -static -o prog-static "$here/tests/fixtures/trace/prog.c"
for v in command ring trapped; do
    case $v in
        command) recipe="./prog loop 1" ;;
        ring) recipe="./prog loop 5000" ;;
        trapped) recipe="./prog-static loop 5000" ;;
    esac
    n=10; [ "$v" = command ] && n=100
    { printf 'all:'; for i in $(seq "$n"); do printf ' %s%d' "$v" "$i"; done
      printf '\n%s%%:\n\t@%s\n' "$v" "$recipe"; } > "Makefile.$v"
done
for round in $(seq "$rounds"); do
    for v in command ring trapped; do
        for mode in notrace traced; do
            flag=(); [ "$mode" = notrace ] && flag=(--no-trace)
            rm -rf .makescope
            /usr/bin/time -f '%U %S' -o time "$makescope" make "${flag[@]}" -q -f "Makefile.$v" -j1 > /dev/null 2>&1
            read -r user sys < time
            echo "$v $mode $(echo "$user + $sys" | bc)"
        done
    done
done > results
python3 - results <<'PY'
import sys, statistics
cpu = {}
for line in open(sys.argv[1]):
    v, mode, c = line.split()
    cpu.setdefault((v, mode), []).append(float(c))
m = {k: statistics.median(x) for k, x in cpu.items()}
extra = {v: m[(v, "traced")] - m[(v, "notrace")] for v in ("command", "ring", "trapped")}
for (v, mode), x in sorted(m.items()):
    print(f"{v:8} {mode:8} median CPU {x:.3f} s")
command, ring, trapped = extra["command"], extra["ring"], extra["trapped"]
print(f"per traced command: +{command / 100 * 1e3:.2f} ms CPU")
print(f"per fast-path call: +{(ring - command / 10) / 100000 * 1e6:.2f} us CPU")
print(f"per trapped call:   +{(trapped - command / 10) / 100000 * 1e6:.2f} us CPU")
PY
