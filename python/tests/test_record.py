"""The package's queries on a hand-made record with known answers (issue 6)."""

from __future__ import annotations

import os
import sqlite3

import pytest

import makescope
from conftest import APP, HDR, MAIN_O, MISSING, ODD_C, ODD_O, SRC_C, T0, T1_OUT


def fs(b: bytes) -> str:
    return os.fsdecode(b)


@pytest.fixture
def rec(handmade):
    with makescope.open(handmade) as record:
        yield record


def test_open_default_path_uses_makescope_db(handmade, monkeypatch):
    monkeypatch.setenv("MAKESCOPE_DB", str(handmade))
    assert makescope.open().build().id == 2


def test_open_errors_are_record_errors(tmp_path):
    with pytest.raises(makescope.RecordError, match="no record at"):
        makescope.open(tmp_path / "nope.sqlite")
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    with pytest.raises(makescope.RecordError, match="not a makescope record"):
        makescope.open(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"B" * 8192)
    with pytest.raises(makescope.RecordError, match="corrupt"):
        makescope.open(garbage)


def test_builds(rec):
    builds = rec.builds()
    assert [b.id for b in builds] == [1, 2]
    last = rec.build()
    assert last.id == 2 and last.state == "failed" and last.exit_code == 2
    assert last.argv == ["-j2", "check"]
    assert last.directory == "/w/build"
    assert last.hooks_failed is True and last.traced is True
    assert last.duration == 60.0
    assert last.started == T0 / 1e9
    with pytest.raises(LookupError):
        rec.build(99)


def test_makes(rec):
    top, sub = rec.makes()
    assert (top.level, top.default_goal, top.makefiles) == (0, "all", ["Makefile", "rules.mk"])
    assert (sub.level, sub.parent_make_id, sub.parent_command_id) == (1, 2, 15)
    assert sub.argv == ["make", "-C", "sub"]


def test_commands_default_to_the_newest_build_in_order(rec):
    ids = [c.id for c in rec.commands()]
    assert ids == [10, 11, 12, 13, 14, 15, 16]
    assert [c.id for c in rec.commands(build=1)] == [1]
    assert [c.id for c in rec.build(1).commands()] == [1]
    assert [c.id for c in rec] == ids


def test_command_fields(rec):
    c = rec.command(10)
    assert c.target == "/w/build/main.o"
    assert c.command == "cc -c ../src/main.c -o main.o"
    assert c.argv == ["/bin/sh", "-c", "cc -c ../src/main.c -o main.o"]
    assert c.env == {"PATH": "/usr/bin", "CFLAGS": "-O2 -g", "GITHUB_TOKEN": "<redacted>"}
    assert (c.recipe_file, c.recipe_line) == ("Makefile", 10)
    assert c.newer == ["../src/main.c"]
    assert c.why == "target did not exist"
    assert (c.state, c.exit_code, c.duration) == ("ok", 0, 2.0)
    assert (c.make_level, c.shell, c.shell_flags) == (0, "/bin/sh", "-c")
    assert c.label == "CC main.o"
    assert c.build_directory == "/w/build"
    assert c.tags == {"lang": "c"}
    assert (c.user_us, c.system_us, c.max_rss_kib) == (1000, 500, 2048)


def test_output_is_bytes(rec):
    assert rec.command(12).stdout == b"linked\n"
    assert rec.command(14).stderr == b"boom\xff\n"
    assert rec.command(10).stdout == b""


def test_command_filters(rec):
    assert [c.id for c in rec.commands(failed=True)] == [14, 16]
    assert [c.id for c in rec.commands(failed=False)] == [10, 11, 12, 13, 15]
    assert [c.id for c in rec.commands(target=".out")] == [13, 14]
    assert [c.id for c in rec.commands(label="TEST")] == [13, 14]
    assert [c.id for c in rec.commands(state="failed")] == [14, 16]
    assert [c.id for c in rec.commands(tag="lang")] == [10, 11]
    assert [c.id for c in rec.commands(test=True)] == [13, 14]
    assert [c.id for c in rec.commands(directory="/w/build/sub")] == [16]
    assert rec.commands(target="nothing-like-this") == []


def test_command_by_reference(rec):
    assert rec.command(12).id == 12
    assert rec.command(fs(APP)).id == 12, "by target"
    assert rec.command(APP).id == 12, "bytes work as well"
    with pytest.raises(LookupError):
        rec.command(999)
    with pytest.raises(LookupError):
        rec.command("/w/nowhere")


def test_non_utf8_paths_round_trip_as_fsdecode(rec):
    c = rec.command(11)
    assert c.target == fs(ODD_O) == "/w/build/caf\udce9.o"
    assert os.fsencode(c.target) == ODD_O
    assert c.command == "cc -c '../src/caf\udce9.c' -o 'caf\udce9.o'"
    assert c.reads == sorted([fs(ODD_C), fs(HDR), "/usr/bin/cc"])
    assert c.writes == [fs(ODD_O)]
    assert rec.command(ODD_O).id == 11, "a non-UTF-8 reference as bytes"
    assert rec.command(fs(ODD_O)).id == 11, "and as a surrogate-escaped str"
    assert [w.id for w in rec.writers(ODD_O)] == [11]
    assert [r.id for r in rec.readers(fs(ODD_O))] == [12]
    odd = rec.file_accesses(path=ODD_C)
    assert [(a.command_id, a.kind, os.fsencode(a.path)) for a in odd] == [(11, "read", ODD_C)]


def test_processes(rec):
    procs = rec.processes(command=10)
    assert [p.id for p in procs] == [100, 101]
    cc = procs[1]
    assert (cc.exe, cc.argv, cc.cwd, cc.parent_pid) == ("/usr/bin/cc", ["cc", "-c", "../src/main.c"], "/w/build", 1010)
    assert [p.command_id for p in rec.processes()] == [10, 10, 11, 12, 13, 14]
    assert [p.id for p in rec.command(10).processes] == [100, 101]


def test_file_accesses(rec):
    every = rec.file_accesses()
    assert len(every) == 17
    assert {a.build_id for a in every} == {2}
    mine = rec.file_accesses(command=10)
    assert [(a.kind, a.path) for a in mine] == [
        ("read", fs(HDR)), ("read", fs(SRC_C)), ("create", fs(MAIN_O)), ("exec", "/usr/bin/cc"), ("probe", fs(MISSING))
    ]
    assert rec.file_accesses(command=10, kind="probe")[0].path == fs(MISSING)
    assert [a.command_id for a in rec.file_accesses(path=HDR)] == [10, 11]
    assert [a.count for a in rec.file_accesses(path=HDR)] == [2, 2]
    assert [a.command_id for a in rec.file_accesses(kind=["exec"])] == [10, 11, 12, 13, 14]
    with pytest.raises(ValueError, match="unknown access kind"):
        rec.file_accesses(kind="wrote")
    assert [a.path for a in rec.file_accesses(build=1)] == ["/w/old.o"]


def test_tags(rec):
    tags = rec.tags()
    assert [(t.command_id, t.name, t.value) for t in tags] == [
        (10, "lang", "c"), (11, "lang", "c"), (11, "odd", None), (13, "suite", "unit"), (14, "suite", "unit")
    ]
    assert [t.command_id for t in rec.tags(name="suite")] == [13, 14]
    assert rec.command(11).tags == {"lang": "c", "odd": None}


def test_tests(rec):
    tests = rec.tests()
    assert [(t.name, t.result) for t in tests] == [("t1", "PASS"), ("t2", "FAIL")]
    assert tests[0].command.target == fs(T1_OUT) and tests[0].command_id == 13
    assert tests[1].duration == 2.0
    assert [t.name for t in rec.tests(result="FAIL")] == ["t2"]
    assert [t.name for t in rec.tests(name="1")] == ["t1"]
    assert rec.tests(build=1) == []


def test_writers_and_readers(rec):
    assert [c.id for c in rec.writers(MAIN_O)] == [10]
    assert [c.id for c in rec.readers(MAIN_O)] == [12]
    assert [c.id for c in rec.readers(HDR)] == [10, 11]
    assert [c.id for c in rec.readers(MISSING)] == [10], "a probe for a missing file is a dependency"
    assert rec.writers(SRC_C) == []


def test_relative_paths_are_taken_from_the_current_directory(rec, monkeypatch):
    monkeypatch.chdir("/")
    assert [c.id for c in rec.writers("w/build/main.o")] == [10]


def test_dependencies_and_dependents(rec):
    link = rec.command(12)
    assert [(c.id, p) for c, p in link.dependencies()] == [(10, fs(MAIN_O)), (11, fs(ODD_O))]
    assert [(c.id, p) for c, p in link.dependents()] == [(13, fs(APP)), (14, fs(APP))]


def test_affected_is_transitive(rec):
    assert [c.id for c in rec.affected(HDR)] == [10, 11, 12, 13, 14]
    assert [c.id for c in rec.affected(ODD_C)] == [11, 12, 13, 14]
    assert {c.test_name for c in rec.affected(SRC_C) if c.test_name} == {"t1", "t2"}
    assert rec.affected(T1_OUT) == []


def test_closed_record_refuses_queries(handmade):
    record = makescope.open(handmade)
    record.close()
    with pytest.raises(makescope.RecordError, match="closed"):
        record.builds()
