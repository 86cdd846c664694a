#!/usr/bin/env python3
"""Compare `makescope tests` with glibc's own summary of one subdirectory's tests.

    scripts/check-tests-glibc.py RECORD OBJDIR SUBDIR [MAKESCOPE]
    scripts/check-tests-glibc.py --list-only SRCDIR OBJDIR SUBDIR [MAKESCOPE]

RECORD is a record of `makescope make -C SRC/SUBDIR objdir=OBJDIR check`; the names and
results it lists must equal OBJDIR/SUBDIR/subdir-tests.sum exactly (none missing, none
extra). With --list-only, `makescope tests --list-only -C SRCDIR/SUBDIR objdir=OBJDIR`
(nothing recorded, nothing run) must give the same names. Exit 1 when they differ.
"""
import json
import subprocess
import sys

args = sys.argv[1:]
list_only = args[:1] == ["--list-only"]
if list_only:
    args = args[1:]
first, objdir, subdir = args[0:3]
makescope = args[3] if len(args) > 3 else "target/release/makescope"
with open(f"{objdir}/{subdir}/subdir-tests.sum") as f:
    glibc = sorted(line.strip() for line in f if line.strip())
if list_only:
    listed = json.loads(
        subprocess.check_output(
            [makescope, "tests", "--list-only", "--json", "-C", f"{first}/{subdir}", f"objdir={objdir}"]
        )
    )["tests"]
    mine = sorted(t["name"] for t in listed)
    glibc = sorted(line.split(": ", 1)[1] for line in glibc)
    what = "listed without running"
else:
    listed = json.loads(
        subprocess.check_output([makescope, "--db", first, "tests", "--json"])
    )["tests"]
    mine = sorted(f"{t['result']}: {t['name']}" for t in listed)
    what = "listed"
if mine == glibc:
    print(f"{subdir}: {len(mine)} {what}, {len(glibc)} in subdir-tests.sum: equal")
    sys.exit(0)
print(f"{subdir}: {len(mine)} {what}, {len(glibc)} in subdir-tests.sum")
for line in sorted(set(glibc) - set(mine)):
    print(f"  missing  {line}")
for line in sorted(set(mine) - set(glibc)):
    print(f"  extra    {line}")
sys.exit(1)
