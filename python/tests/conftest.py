"""Records for the package's tests.

``handmade`` is written row by row in schema version 1 (the shape of a small traced
build, with a non-UTF-8 file name), so every query has known answers; opening it runs
the store's migrations, so the package's tests also read a migrated record.
``recorded`` is a real ``makescope make`` run of a fixture project; it needs the
``makescope`` binary (``cargo build``; or $MAKESCOPE_BIN) and is skipped without one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "src" / "store" / "schema_v1.sql"
APPLICATION_ID = 0x4D6B5363

S = 1_000_000_000
T0 = 1_700_000_000 * S

# Paths of the hand-made build (under /w, which need not exist).
SRC_C = b"/w/src/main.c"
HDR = b"/w/src/config.h"
MAIN_O = b"/w/build/main.o"
ODD_C = b"/w/src/caf\xe9.c"  # Latin-1 e-acute: not UTF-8
ODD_O = b"/w/build/caf\xe9.o"
APP = b"/w/build/app"
MISSING = b"/w/src/missing.h"
T1_OUT = b"/w/build/t1.out"
T2_OUT = b"/w/build/t2.out"
CC = b"/usr/bin/cc"


def nul(*items: bytes) -> bytes:
    return b"\0".join(items)


def stored(value):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def make_record(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA.read_text())
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")

    def q(sql, params=()):
        # As the store's writer does: UTF-8 byte strings as TEXT, others as BLOB.
        return db.execute(sql, tuple(stored(p) for p in params))
    # An older build with one command, to show that queries default to the newest.
    BUILD = "INSERT INTO build (id, argv, args_text, directory, started_ns, ended_ns, state, exit_code, signal, traced, hooks_failed, makescope_version) VALUES "
    MAKE = "INSERT INTO make (id, build_id, pid, parent_make_id, parent_command_id, level, directory, argv, args_text, started_ns, ended_ns, default_goal, makefiles, makedb_path) VALUES "
    q(BUILD + "(1, ?, '-j2', ?, ?, ?, 'complete', 0, NULL, 1, 0, '0.1.0')", (b"-j2", b"/w/build", T0 - 100 * S, T0 - 90 * S))
    q(MAKE + "(1, 1, 100, NULL, NULL, 0, ?, ?, 'make -j2', ?, ?, NULL, NULL, NULL)", (b"/w/build", nul(b"make", b"-j2"), T0 - 100 * S, T0 - 90 * S))
    command(q, 1, 1, 1, b"old.o", b"cc -c old.c", T0 - 99 * S, T0 - 98 * S, 0, "CC old.o")

    q(BUILD + "(2, ?, '-j2 check', ?, ?, ?, 'failed', 2, NULL, 1, 1, '0.1.0')", (nul(b"-j2", b"check"), b"/w/build", T0, T0 + 60 * S))
    q(MAKE + "(2, 2, 200, NULL, NULL, 0, ?, ?, 'make -j2 check', ?, ?, ?, ?, NULL)", (b"/w/build", nul(b"make", b"-j2", b"check"), T0, T0 + 60 * S, b"all", b"Makefile rules.mk"))
    q(MAKE + "(3, 2, 201, 2, 15, 1, ?, ?, 'make -C sub', ?, ?, NULL, NULL, NULL)", (b"/w/build/sub", nul(b"make", b"-C", b"sub"), T0 + 50 * S, T0 + 55 * S))
    command(q, 10, 2, 2, MAIN_O, b"cc -c ../src/main.c -o main.o", T0 + 1 * S, T0 + 3 * S, 0, "CC main.o", env=nul(b"PATH=/usr/bin", b"CFLAGS=-O2 -g", b"GITHUB_TOKEN=<redacted>"))
    command(q, 11, 2, 2, ODD_O, b"cc -c '../src/caf\xe9.c' -o 'caf\xe9.o'", T0 + 2 * S, T0 + 4 * S, 0, "CC caf\ufffd.o")
    command(q, 12, 2, 2, APP, b"cc main.o caf\xe9.o -o app", T0 + 5 * S, T0 + 6 * S, 0, "LINK app", stdout=b"linked\n")
    command(q, 13, 2, 2, T1_OUT, b"./app 1 > t1.out", T0 + 7 * S, T0 + 8 * S, 0, "TEST t1", test=("t1", "PASS"))
    command(q, 14, 2, 2, T2_OUT, b"./app 2 > t2.out", T0 + 7 * S, T0 + 9 * S, 1, "TEST t2", test=("t2", "FAIL"), stderr=b"boom\xff\n")
    command(q, 15, 2, 2, b"sub", b"make -C sub", T0 + 50 * S, T0 + 55 * S, 0, "MAKE sub")
    command(q, 16, 2, 3, b"docs", b"false", T0 + 51 * S, T0 + 52 * S, 2, "GEN docs", make_level=1)

    for cid, name, value in [(10, "lang", "c"), (11, "lang", "c"), (11, "odd", None), (13, "suite", "unit"), (14, "suite", "unit")]:
        q("INSERT INTO tag VALUES (?, ?, ?)", (cid, name, value))

    paths = [SRC_C, HDR, MAIN_O, ODD_C, ODD_O, APP, MISSING, T1_OUT, T2_OUT, CC, b"/w/old.o"]
    pid = {p: i + 1 for i, p in enumerate(paths)}
    for p, i in pid.items():
        q("INSERT INTO path VALUES (?, ?)", (i, p))
    kind = {"read": 1, "create": 3, "truncate": 4, "exec": 6, "stat": 7, "probe": 8}
    accesses = [
        (1, 1, b"/w/old.o", "create"),
        (2, 10, SRC_C, "read"), (2, 10, HDR, "read"), (2, 10, CC, "exec"), (2, 10, MAIN_O, "create"),
        (2, 11, ODD_C, "read"), (2, 11, HDR, "read"), (2, 11, CC, "exec"), (2, 11, ODD_O, "create"),
        (2, 12, MAIN_O, "read"), (2, 12, ODD_O, "read"), (2, 12, CC, "exec"), (2, 12, APP, "create"),
        (2, 13, APP, "exec"), (2, 13, T1_OUT, "truncate"),
        (2, 14, APP, "exec"), (2, 14, T2_OUT, "truncate"),
    ]
    for build, cid, path, k in accesses:
        q("INSERT INTO access (build_id, command_id, path_id, kind, process_id, first_ns, count) VALUES (?, ?, ?, ?, ?, ?, ?)",
          (build, cid, pid[path], kind[k], cid * 10, T0, 2 if k == "read" else 1))
    q("INSERT INTO probe_set (build_id, command_id, make_id, count, path_ids) VALUES (2, 10, NULL, 1, ?)", (encode_ids([pid[MISSING]]),))
    for src, dst, path in [(10, 12, MAIN_O), (11, 12, ODD_O), (12, 13, APP), (12, 14, APP)]:
        q("INSERT INTO edge VALUES (2, ?, ?, ?)", (src, dst, pid[path]))
    PROCESS = "INSERT INTO process (id, build_id, command_id, make_id, pid, parent_pid, exe, argv, args_text, cwd, started_ns, ended_ns, exit_code) VALUES "
    for cid in (10, 11, 12, 13, 14):
        q(PROCESS + "(?, 2, ?, NULL, ?, 200, ?, ?, 'sh -c x', ?, ?, ?, 0)",
          (cid * 10, cid, 1000 + cid, b"/bin/sh", None, b"/w/build", T0 + cid, T0 + cid + 5))
    q(PROCESS + "(101, 2, 10, NULL, 2001, 1010, ?, ?, 'cc -c ../src/main.c', ?, ?, ?, 0)",
      (CC, None, b"/w/build", T0 + 1, T0 + 2))
    db.commit()
    db.close()


def environment(q, entries: bytes):
    """The id of an environment row (stored once per content, as the writer does)."""
    import hashlib
    digest = bytearray(hashlib.sha256(entries).digest())
    row = q("SELECT id FROM environment WHERE hash = ?", (digest,)).fetchone()
    if row:
        return row[0]
    return q("INSERT INTO environment (hash, entries) VALUES (?, ?)", (digest, entries)).lastrowid


def encode_ids(ids):
    """Sorted ids as LEB128 varints of their differences (the store's probe_set)."""
    out, previous = bytearray(), 0
    for i in sorted(ids):
        delta, previous = i - previous, i
        while True:
            byte, delta = delta & 0x7F, delta >> 7
            out.append(byte | (0x80 if delta else 0))
            if not delta:
                break
    return bytearray(out)  # a BLOB, as the writer stores it (not decoded to TEXT)


def command(q, cid, build, make, target, text, start, end, code, label, *, test=(None, None), env=b"", stdout=None, stderr=None, make_level=0):
    state = "ok" if code == 0 else "failed"
    directory = b"/w/build/sub" if make == 3 else b"/w/build"
    q(
        """INSERT INTO command (id, build_id, make_id, job, line_index, target, recipe_file, recipe_line, newer,
           target_existed, directory, shell, shell_flags, command, environment_id, pid, started_ns, ended_ns, state,
           exit_code, signal, user_us, system_us, max_rss_kib, stdout, stderr, label, test_name, test_result, traced)
           VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 1000, 500, 2048, ?, ?, ?, ?, ?, 1)""",
        (cid, build, make, cid, target, b"Makefile", cid, b"../src/main.c", directory, b"/bin/sh", b"-c", text, environment(q, env),
         1000 + cid, start, end, state, code, stdout, stderr, label, test[0], test[1]),
    )


@pytest.fixture(scope="session")
def handmade(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("record") / "db.sqlite"
    make_record(path)
    return path


def makescope_binary() -> Path | None:
    candidates = [os.environ.get("MAKESCOPE_BIN"), ROOT / "target" / "debug" / "makescope", shutil.which("makescope")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


FIXTURE = ROOT / "tests" / "fixtures" / "python" / "package"


@pytest.fixture(scope="session")
def recorded(tmp_path_factory) -> Path:
    """A real build of tests/fixtures/python/package, recorded with its hooks file."""
    binary = makescope_binary()
    if binary is None:
        pytest.skip("no makescope binary (cargo build, or set MAKESCOPE_BIN)")
    work = tmp_path_factory.mktemp("build")
    shutil.copytree(FIXTURE, work, dirs_exist_ok=True)
    os.makedirs(work / "src", exist_ok=True)
    with open(os.path.join(os.fsencode(work), b"src", b"caf\xe9.in"), "wb") as f:
        f.write(b"odd\n")
    result = subprocess.run(
        [str(binary), "make", "--hooks", "hooks.py", "-j2"], cwd=work, capture_output=True, timeout=120
    )
    db = work / ".makescope" / "db.sqlite"
    if not db.exists():
        pytest.skip(f"makescope make did not record (recorder not available?): {result.stderr.decode(errors='replace')[:300]}")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return db
