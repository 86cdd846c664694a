"""The package on a record of a real build: tests/fixtures/python/package recorded by
``makescope make --hooks hooks.py`` (skipped when no makescope binary can record)."""

from __future__ import annotations

import os

import makescope

ODD = b"caf\xe9"


def test_builds_and_commands(recorded):
    rec = makescope.open(recorded)
    build = rec.build()
    assert build.state == "complete" and build.exit_code == 0
    assert build.hooks_failed is False
    targets = [c.target for c in rec.commands()]
    assert "out/app.txt" in targets and "out/t1.result" in targets
    assert all(c.state == "ok" for c in rec.commands())


def test_hooks_results_are_in_the_record(recorded):
    rec = makescope.open(recorded)
    assert sorted((t.name, t.result) for t in rec.tests()) == [("t1", "PASS"), ("t2", "FAIL")]
    assert rec.command("out/t1.result").label == "TEST t1"
    assert rec.command("out/main.txt").label == "UPPER out/main.txt"
    assert rec.command("out/app.txt").tags["kind"] == "link"
    assert {t.command_id for t in rec.tags(name="kind")} == {c.id for c in rec.commands(tag="kind")}


def test_non_utf8_paths(recorded):
    rec = makescope.open(recorded)
    odd_target = os.fsdecode(b"out/" + ODD + b".txt")
    cmd = rec.command(odd_target)
    assert os.fsencode(cmd.target) == b"out/" + ODD + b".txt"
    assert cmd.label == "UPPER out/caf\ufffd.txt"
    if rec.build().traced:
        root = os.path.dirname(os.path.dirname(os.fsencode(recorded)))
        source = os.path.join(root, b"src", ODD + b".in")
        assert os.fsdecode(source) in cmd.reads
        assert [w.id for w in rec.writers(os.path.join(root, b"out", ODD + b".txt"))] == [cmd.id]
        assert cmd.id in [c.id for c in rec.readers(source)]


def test_the_dag(recorded):
    rec = makescope.open(recorded)
    if not rec.build().traced:
        return
    root = os.path.dirname(os.path.dirname(os.fsdecode(recorded)))
    affected = rec.affected(os.path.join(root, "src", "main.in"))
    assert {c.target for c in affected} >= {"out/main.txt", "out/app.txt", "out/t1.result", "out/t2.result"}
    assert {c.test_name for c in affected if c.test_name} == {"t1", "t2"}
    app = rec.command("out/app.txt")
    assert {c.target for c, _ in app.dependents()} >= {"out/t1.result", "out/t2.result"}


def test_replay_runs_the_recipe_and_records_the_run(recorded):
    rec = makescope.open(recorded)
    cmd = rec.command("out/main.txt")
    result = rec.replay(cmd)
    assert result.exit_status == 0, result.stderr
    assert result.recorded and rec.command(result.recorded[-1]).target == cmd.target
    # The last build is still the project's, not the replay's run.
    assert rec.build().id == cmd.build_id
    untraced = rec.replay(cmd.id, trace=False)
    assert untraced.exit_status == 0 and untraced.recorded == []

