#!/usr/bin/env python3
"""`makescope replay --sandbox` of N compile commands of a full glibc record, chosen at
random: how many succeed, and the paths the failures touched outside their record (each
a tracer gap). Every file a replayed compile writes is saved first and compared after:
an output the replay changed is put back (and counted), so the build tree keeps its
bytes.

    scripts/glibc-replay-sandbox.py RECORD [N] [SEED]

RECORD is your own copy of the record (replays are recorded into it). Compiles are the
commands whose label starts with `CC ` (gcc -c). Results go in BENCHMARKS.md.
"""

import os
import random
import re
import shutil
import sqlite3
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


def main():
    record = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 18
    db = sqlite3.connect(record)
    build = db.execute("SELECT max(id) FROM build WHERE kind = 'make'").fetchone()[0]
    compiles = [
        r[0]
        for r in db.execute(
            "SELECT id FROM command WHERE build_id = ? AND label LIKE 'CC %' AND state = 'ok' AND traced = 1",
            (build,),
        )
    ]
    chosen = random.Random(seed).sample(compiles, min(n, len(compiles)))
    print(f"{len(compiles)} compiles in build {build}; replaying {len(chosen)} (seed {seed})")
    ok, failed, changed = 0, [], []
    gaps = {}
    backup = tempfile.mkdtemp(prefix="glibc-replay-")
    started = time.time()
    for i, cid in enumerate(chosen):
        outputs = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT CAST(p.path AS TEXT) FROM access a JOIN path p ON p.id = a.path_id "
                "WHERE a.command_id = ? AND a.kind IN (2, 3, 4, 5, 12)",
                (cid,),
            )
        ]
        saved = {}
        for j, path in enumerate(outputs):
            if os.path.isfile(path):
                copy = os.path.join(backup, f"{cid}.{j}")
                shutil.copy2(path, copy)
                saved[path] = copy
        done = subprocess.run(
            [BIN, "--db", record, "replay", str(cid), "--sandbox"],
            capture_output=True,
            text=True,
            errors="replace",
        )
        for path, copy in saved.items():
            same = os.path.exists(path) and open(path, "rb").read() == open(copy, "rb").read()
            if not same:
                changed.append((cid, path))
                shutil.copy2(copy, path)
        misses = re.findall(r"outside its record: (\S+) (.*)", done.stderr)
        for kind, path in misses:
            gaps.setdefault(path, []).append((cid, kind))
        if done.returncode == 0:
            ok += 1
        else:
            failed.append((cid, done.returncode, done.stderr.strip().splitlines()[-3:]))
            print(f"  failed: command {cid} exit {done.returncode}: {' | '.join(failed[-1][2])}", flush=True)
        if (i + 1) % 20 == 0:
            print(f"  {i + 1} replayed, {ok} ok, {time.time() - started:.0f} s", flush=True)
    shutil.rmtree(backup)
    print(f"{ok} of {len(chosen)} succeeded in the sandbox; {len(changed)} output(s) changed (put back)")
    for cid, code, tail in failed:
        print(f"  failed: command {cid} exit {code}: {' | '.join(tail)}")
    for path, who in sorted(gaps.items()):
        print(f"  outside the record: {path} ({len(who)} command(s), e.g. {who[0][0]} {who[0][1]})")
    for cid, path in changed:
        print(f"  changed by the replay of {cid}: {path}")


if __name__ == "__main__":
    main()
