"""makescope hooks for glibc: every test run becomes a test case.

    makescope make --hooks examples/hooks/glibc.py -C <build> check -j2
    makescope tests            # string/test-strlen  PASS  …

glibc runs each test through one recipe (Rules: `$(objpfx)%.out`, tests-special, the
container and unsupported rules) that ends in `$(evaluate-test)` (Makeconfig):

    … > $(objpfx)test-strlen.out; \\
    scripts/evaluate-test.sh string/test-strlen $? false false \\
        > $(common-objpfx)string/test-strlen.test-result

evaluate-test.sh's first argument is the test's name, and the `.test-result` file it
writes starts with `PASS: string/test-strlen` (or FAIL, UNSUPPORTED, XFAIL, XPASS).
The recipe itself exits 0 for a failed test unless stop-on-test-failure is set, so the
result comes from that file, not from the exit status.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from makescope.hooks import Command

# `…/evaluate-test.sh NAME RC XFAIL STOP > RESULT-FILE` as Makeconfig writes it.
EVALUATE = re.compile(r"evaluate-test\.sh\s+(?P<name>\S+)\s+\S+\s+\S+\s+\S+\s*>\s*(?P<result>\S+)")
# The summaries `make check` writes per subdirectory and at the top.
SUMMARY = re.compile(r"merge-test-results\.sh\s+-[st]\s+\S+\s+(?P<subdir>\S+)")


def test_of(cmd: Command) -> Optional[re.Match]:
    if "evaluate-test.sh" not in cmd.command:
        return None
    return EVALUATE.search(cmd.command)


def label(cmd: Command):
    test = test_of(cmd)
    if test:
        return "TEST " + test["name"]
    summary = SUMMARY.search(cmd.command)
    if summary:
        return "SUMMARY " + summary["subdir"]
    return None


def started(cmd: Command) -> None:
    test = test_of(cmd)
    if test:
        cmd.test_name = test["name"]
        cmd.tags["subdir"] = test["name"].split("/", 1)[0] if "/" in test["name"] else "."


def finished(cmd: Command) -> None:
    if cmd.test_name is None:
        return
    test = test_of(cmd)
    assert test is not None
    result_file = test["result"]
    if not os.path.isabs(result_file):
        result_file = os.path.join(cmd.directory, result_file)
    try:
        with open(result_file, encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except OSError:
        first = ""
    result, sep, _ = first.partition(":")
    if sep and result.strip():
        cmd.test_result = result.strip()  # PASS, FAIL, UNSUPPORTED, XFAIL, XPASS
    else:
        # No result file: the recipe was killed, or stop-on-test-failure stopped it.
        cmd.test_result = "FAIL" if cmd.exit_code != 0 else "PASS"
        cmd.tag("no-result-file")
