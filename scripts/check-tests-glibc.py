#!/usr/bin/env python3
"""Compare `makescope tests` with glibc's own summary of one subdirectory's tests.

    scripts/check-tests-glibc.py RECORD OBJDIR SUBDIR [MAKESCOPE]

RECORD is a record of `makescope make -C SRC/SUBDIR objdir=OBJDIR check`; the names and
results it lists must equal OBJDIR/SUBDIR/subdir-tests.sum exactly (none missing, none
extra). Exit 1 when they differ.
"""
import json
import subprocess
import sys

record, objdir, subdir = sys.argv[1:4]
makescope = sys.argv[4] if len(sys.argv) > 4 else "target/release/makescope"
listed = json.loads(
    subprocess.check_output([makescope, "--db", record, "tests", "--json"])
)["tests"]
mine = sorted(f"{t['result']}: {t['name']}" for t in listed)
with open(f"{objdir}/{subdir}/subdir-tests.sum") as f:
    glibc = sorted(line.strip() for line in f if line.strip())
if mine == glibc:
    print(f"{subdir}: {len(mine)} listed, {len(glibc)} in subdir-tests.sum: equal")
    sys.exit(0)
print(f"{subdir}: {len(mine)} listed, {len(glibc)} in subdir-tests.sum")
for line in sorted(set(glibc) - set(mine)):
    print(f"  missing  {line}")
for line in sorted(set(mine) - set(glibc)):
    print(f"  extra    {line}")
sys.exit(1)
