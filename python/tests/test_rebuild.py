"""``Record.out_of_date()``: the rebuild query (the same Rust code as ``makescope
rebuild --dry-run``) on a real traced build of tests/fixtures/rebuild."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import makescope

from conftest import ROOT, makescope_binary


@pytest.fixture
def built(tmp_path):
    binary = makescope_binary()
    if binary is None:
        pytest.skip("no makescope binary (cargo build, or set MAKESCOPE_BIN)")
    shutil.copytree(ROOT / "tests" / "fixtures" / "rebuild", tmp_path, dirs_exist_ok=True)
    result = subprocess.run([str(binary), "make"], cwd=tmp_path, capture_output=True, timeout=120)
    if not (tmp_path / ".makescope" / "db.sqlite").exists():
        pytest.skip(f"makescope make did not record: {result.stderr.decode(errors='replace')[:300]}")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return tmp_path


def test_an_edit_makes_its_compile_out_of_date_and_what_follows_downstream(built):
    rec = makescope.open(built / ".makescope" / "db.sqlite")
    assert rec.out_of_date() == []
    source = built / "lib" / "a.c"
    source.write_text(source.read_text().replace("x * SCALE", "x * SCALE + 1"))
    stale = rec.out_of_date()
    assert [(s.label, s.reason, s.direct) for s in stale][0] == ("CC lib/a.o", "lib/a.c changed", True)
    assert [s.label for s in stale] == ["CC lib/a.o", "AR lib/libfoo.a", "LD app"]
    assert not any(s.direct for s in stale[1:])
    assert stale[0].commands[0].target == "a.o"


def test_an_untraced_build_is_refused(built):
    binary = makescope_binary()
    subprocess.run([str(binary), "make", "--no-trace", "-B"], cwd=built, capture_output=True, timeout=120, check=True)
    with pytest.raises(makescope.RecordError, match="traced build"):
        makescope.open(built / ".makescope" / "db.sqlite").out_of_date()
