#!/usr/bin/env python3
"""What a replay adds to a command: one recorded command run as plain `sh -c`, as
`makescope replay --no-trace`, as a traced (and recorded) replay, and as
`replay --sandbox`, alternately, ROUNDS times each in one run (the machine is noisy);
medians and the sandbox's own split (namespaces, mounts, teardown) from
MAKESCOPE_SANDBOX_TIMES.

    scripts/bench-replay.py [ROUNDS]      (target/release/makescope, else target/debug)

The command: a small C compile (`cc -c main.c -o main.o`, one header), recorded by
`makescope make` in a temporary directory. Results go in BENCHMARKS.md.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = next(
    p
    for p in (
        os.path.join(ROOT, "target", "release", "makescope"),
        os.path.join(ROOT, "target", "debug", "makescope"),
    )
    if os.path.exists(p)
)
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def main():
    work = tempfile.mkdtemp(prefix="bench-replay-")
    with open(os.path.join(work, "defs.h"), "w") as f:
        f.write("#define ANSWER 42\n")
    with open(os.path.join(work, "main.c"), "w") as f:
        f.write('#include "defs.h"\nint answer(void) { return ANSWER; }\n')
    with open(os.path.join(work, "Makefile"), "w") as f:
        f.write("main.o: main.c defs.h\n\tcc -c main.c -o main.o\n")
    subprocess.run([BIN, "make"], cwd=work, check=True, capture_output=True)
    env = dict(os.environ, MAKESCOPE_SANDBOX_TIMES="1")
    ways = {
        "sh -c": ["sh", "-c", "cc -c main.c -o main.o"],
        "replay --no-trace": [BIN, "replay", "1", "--no-trace"],
        "replay (traced, recorded)": [BIN, "replay", "1"],
        "replay --sandbox": [BIN, "replay", "1", "--sandbox"],
    }
    times = {name: [] for name in ways}
    split = {"namespaces": [], "mounts": [], "teardown": []}
    for _ in range(ROUNDS):
        for name, argv in ways.items():
            started = time.perf_counter()
            done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
            times[name].append((time.perf_counter() - started) * 1000)
            assert done.returncode == 0, done.stderr
            m = re.search(
                r"namespaces ([\d.]+) ms, mounts ([\d.]+) ms, teardown ([\d.]+) ms", done.stderr
            )
            if m:
                for key, value in zip(split, m.groups()):
                    split[key].append(float(value))
    base = statistics.median(times["sh -c"])
    print(f"{ROUNDS} rounds, alternating; {BIN}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<28} median {median:7.1f} ms   added {median - base:+7.1f} ms")
    print("  --sandbox split (median): " + ", ".join(
        f"{k} {statistics.median(v):.1f} ms" for k, v in split.items() if v))


if __name__ == "__main__":
    main()
