"""The package's version is makescope's: the wheel's metadata, the module and the crate
all say the same."""

from __future__ import annotations

import importlib.metadata
import re

import makescope
from conftest import ROOT


def crate_version(path) -> str:
    text = path.read_text()
    package = text[text.index("[package]") :]
    return re.search(r'^version\s*=\s*"([^"]+)"', package, re.M).group(1)


def test_the_package_version_follows_the_crate() -> None:
    crate = crate_version(ROOT / "Cargo.toml")
    assert crate_version(ROOT / "python" / "Cargo.toml") == crate
    assert makescope.__version__ == crate
    assert importlib.metadata.version("makescope") == crate
