"""The access kinds the package exports are documented API: their values stay these."""

import makescope
from makescope import _native


def test_access_kinds_are_the_records_kinds_by_id():
    assert makescope.ACCESS_KINDS == (
        "read", "write", "create", "truncate", "append", "exec", "stat", "probe", "list",
        "remove", "rename_from", "rename_to", "mkdir", "symlink", "link", "chdir",
    )
    assert isinstance(makescope.ACCESS_KINDS, tuple)


def test_read_and_write_kinds_are_the_dags_readers_and_writers():
    assert makescope.WRITE_KINDS == frozenset(
        {"write", "create", "truncate", "append", "rename_to", "mkdir", "symlink", "link"}
    )
    assert makescope.READ_KINDS == frozenset({"read", "exec", "stat", "list", "probe"})
    assert isinstance(makescope.WRITE_KINDS, frozenset)
    assert isinstance(makescope.READ_KINDS, frozenset)


def test_the_kinds_come_from_the_native_module():
    assert makescope.ACCESS_KINDS is _native.ACCESS_KINDS
    assert makescope.WRITE_KINDS is _native.WRITE_KINDS
    assert makescope.READ_KINDS is _native.READ_KINDS
