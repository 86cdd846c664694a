#!/usr/bin/env python3
"""Issue 2's figure: what recording costs per command.

Generates a project of N independent trivial recipes and builds it with plain `make -jJ`
and with `makescope make` (tracing off, and on), alternating in one run so that a noisy
machine hurts every variant alike. Prints medians, the cost per command and the ratio.

    scripts/bench-record.py [--commands 5000] [--rounds 5] [--jobs 2] [--recipe 'touch $@']
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--commands", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--recipe", default="touch $@")
    p.add_argument("--makescope", default=os.path.join(ROOT, "target/release/makescope"))
    p.add_argument("--traced", action="store_true", help="also measure with file tracing on")
    p.add_argument("--hooks", help="also measure with this hooks file")
    a = p.parse_args()

    work = tempfile.mkdtemp(prefix="makescope-bench-")
    names = [f"t{i}" for i in range(a.commands)]
    with open(os.path.join(work, "Makefile"), "w") as f:
        f.write("all: " + " ".join(names) + "\n")
        f.write(f"t%:\n\t@{a.recipe}\n")
    variants = {"make": ["make", f"-j{a.jobs}", "-s"],
                "makescope --no-trace": [a.makescope, "make", "--no-trace", "-q", f"-j{a.jobs}"]}
    if a.traced:
        variants["makescope (traced)"] = [a.makescope, "make", "-q", f"-j{a.jobs}"]
    if a.hooks:
        variants["makescope --no-trace --hooks"] = [a.makescope, "make", "--no-trace", "-q", "--hooks", a.hooks, f"-j{a.jobs}"]
    times = {k: [] for k in variants}
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(k, None)
    for r in range(a.rounds):
        order = list(variants.items())
        if r % 2:
            order.reverse()
        for name, cmd in order:
            for n in names:
                try:
                    os.unlink(os.path.join(work, n))
                except FileNotFoundError:
                    pass
            shutil.rmtree(os.path.join(work, ".makescope"), ignore_errors=True)
            t = time.monotonic()
            subprocess.run(cmd, cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.monotonic() - t)
    base = statistics.median(times["make"])
    print(f"{a.commands} recipes `{a.recipe}`, -j{a.jobs}, {a.rounds} alternating rounds, medians:")
    for name, ts in times.items():
        med = statistics.median(ts)
        extra = (med - base) / a.commands * 1000
        print(f"  {name:32s} {med:7.2f} s   ratio {med / base:5.2f}   +{extra:6.3f} ms/command   (all: {', '.join(f'{t:.2f}' for t in ts)})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
