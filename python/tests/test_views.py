"""The views from Python (``Record.stats``, ``lint``, ``coverage``, ``trace``,
``report``): each is the same document as the command's ``--json`` (or the same page),
on a real traced build of tests/fixtures/views/chain."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import makescope

from conftest import ROOT, makescope_binary


@pytest.fixture
def chain(tmp_path):
    binary = makescope_binary()
    if binary is None:
        pytest.skip("no makescope binary (cargo build, or set MAKESCOPE_BIN)")
    shutil.copytree(ROOT / "tests" / "fixtures" / "views" / "chain", tmp_path, dirs_exist_ok=True)
    result = subprocess.run([str(binary), "make", "-j4"], cwd=tmp_path, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return tmp_path


def cli(directory, *args):
    result = subprocess.run(
        [str(makescope_binary()), *args], cwd=directory, capture_output=True, timeout=120
    )
    return result.returncode, result.stdout


def test_stats_is_the_commands_document_with_the_known_critical_path(chain):
    rec = makescope.open(chain / ".makescope" / "db.sqlite")
    stats = rec.stats()
    assert stats == json.loads(cli(chain, "stats", "--json")[1])
    targets = [rec.command(c["id"]).target for c in stats["critical_path"]["commands"]]
    assert targets == ["a", "b", "e", "final"]


def test_lint_coverage_and_trace_are_the_commands_documents(chain):
    rec = makescope.open(chain / ".makescope" / "db.sqlite")
    assert rec.lint() == json.loads(cli(chain, "lint", "--json")[1])
    assert rec.coverage(packages=["make"]) == json.loads(
        cli(chain, "coverage", "--json", "--package", "make")[1]
    )
    trace = rec.trace()
    assert trace == json.loads(cli(chain, "export", "trace")[1])
    assert sum(1 for e in trace["traceEvents"] if e["ph"] == "X" and e["pid"] == 1) == 7


def test_report_is_the_page(chain):
    rec = makescope.open(chain / ".makescope" / "db.sqlite")
    page = rec.report()
    assert page.startswith("<!DOCTYPE html>")
    assert 'id="timeline"' in page and 'id="critical-path"' in page


def test_a_view_lint_cannot_judge_raises(chain):
    subprocess.run([str(makescope_binary()), "make", "--no-trace", "-B", "-j4"], cwd=chain, capture_output=True, timeout=120, check=True)
    rec = makescope.open(chain / ".makescope" / "db.sqlite")
    with pytest.raises(makescope.RecordError, match="without tracing"):
        rec.lint()
