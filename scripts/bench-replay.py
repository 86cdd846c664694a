#!/usr/bin/env python3
"""What a replay adds to a command: one recorded command run as plain `sh -c`, as
`makescope replay --no-trace`, as a traced (and recorded) replay, and as
`replay --sandbox`, alternately, ROUNDS times each in one run (the machine is noisy);
medians and the sandbox's own split (namespaces, mounts, teardown) from
MAKESCOPE_SANDBOX_TIMES.

    scripts/bench-replay.py [ROUNDS] [compile|copy]   (target/release/makescope, else debug)

The command: a small C compile (`cc -c main.c -o main.o`, one header), or `cp defs.h
copy.h`, recorded by `makescope make` in a temporary directory. Results go in
BENCHMARKS.md.
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
        f.write(
            "main.o: main.c defs.h\n\tcc -c main.c -o main.o\n"
            "copy.h: defs.h\n\tcp defs.h copy.h\n"
        )
    subprocess.run([BIN, "make", "main.o", "copy.h"], cwd=work, check=True, capture_output=True)
    env = dict(os.environ, MAKESCOPE_SANDBOX_TIMES="1")
    which = sys.argv[2] if len(sys.argv) > 2 else "compile"
    ref, text = ("1", "cc -c main.c -o main.o") if which == "compile" else ("2", "cp defs.h copy.h")
    ways = {
        "sh -c": ["sh", "-c", text],
        "replay --no-trace": [BIN, "replay", ref, "--no-trace"],
        "replay (traced, recorded)": [BIN, "replay", ref],
        "replay --sandbox": [BIN, "replay", ref, "--sandbox"],
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
    print(f"{ROUNDS} rounds, alternating, `{text}`; {BIN}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<28} median {median:7.1f} ms   added {median - base:+7.1f} ms")
    print("  --sandbox split (median): " + ", ".join(
        f"{k} {statistics.median(v):.1f} ms" for k, v in split.items() if v))


if __name__ == "__main__":
    main()
