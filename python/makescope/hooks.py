"""The hook API: what ``makescope make`` calls in a user's hooks file.

A hooks file (``--hooks FILE``, ``$MAKESCOPE_HOOKS``, or ``.makescope/hooks.py`` where
``makescope make`` runs) is a Python module that may define any of::

    def label(cmd: Command) -> str | tuple[str, str] | None: ...
    def started(cmd: Command) -> None: ...
    def finished(cmd: Command) -> None: ...

makescope loads it once, into one interpreter embedded in the recorder (never inside
the traced command), and calls the functions for every recipe command make runs, in
order: ``label`` (return ``"VERB object"``, ``(verb, object)``, or None for the default
label), then ``started``, then ``finished`` once the command ended. The same ``cmd``
object is passed to all three, so ``started`` may leave attributes for ``finished``.

In ``started`` or ``finished`` a hook may set ``cmd.test_name`` (the command runs a test
case), ``cmd.test_result`` (``PASS``, ``FAIL``, ``UNSUPPORTED``, … ; when a test is named
without a result, makescope records ``PASS`` for exit status 0 and ``FAIL`` otherwise)
and tags (``cmd.tags["k"] = "v"`` or ``cmd.tag("k")``). The record keeps all of it:
``makescope log --json``, ``makescope tests``, and :class:`makescope.Command` show it.

If a hook raises, makescope prints the traceback once per hook function, the command
keeps its default, the build goes on, and ``makescope make`` exits 3 where make itself
succeeded. A hooks file that does not compile or raises while loading is reported with
file and line; the build runs without hooks and also exits 3.

This module only describes the object for type checkers and readers; at run time the
recorder passes its own ``makescope.Command``. In a hooks file::

    from __future__ import annotations
    from typing import TYPE_CHECKING
    if TYPE_CHECKING:
        from makescope.hooks import Command
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

try:
    from typing import Protocol
except ImportError:  # Python < 3.8
    Protocol = object  # type: ignore[assignment,misc]

__all__ = ["Command", "LabelResult"]

#: What ``label()`` may return.
LabelResult = Union[str, Tuple[str, str], None]


class Command(Protocol):
    """A recipe command as hooks see it: the fields of :class:`makescope.Command` that
    are known while the build runs, with ``test_name``, ``test_result`` and ``tags``
    writable. Text is ``str`` decoded as :func:`os.fsdecode` does."""

    @property
    def id(self) -> int: ...
    @property
    def target(self) -> str:
        """``$@``."""
    @property
    def directory(self) -> str:
        """The directory the command ran in."""
    @property
    def build_directory(self) -> str:
        """Where ``makescope make`` ran."""
    @property
    def command(self) -> str:
        """The expanded command text."""
    @property
    def recipe_file(self) -> Optional[str]: ...
    @property
    def recipe_line(self) -> Optional[int]: ...
    @property
    def make_level(self) -> int: ...
    @property
    def label(self) -> str:
        """``"VERB object"``: the default label inside ``label()``, the final one after."""
    @property
    def state(self) -> str:
        """``running``; in ``finished``: ``ok``, ``failed`` or ``killed``."""
    @property
    def exit_code(self) -> Optional[int]:
        """None until it finished, or if a signal ended it."""
    @property
    def signal(self) -> Optional[int]: ...
    @property
    def duration(self) -> Optional[float]:
        """Seconds it ran; None until it finished."""
    @property
    def reads(self) -> Optional[List[str]]:
        """In ``finished``, when traced: files it read, executed, stat'ed, listed or probed
        (the kinds in ``makescope.READ_KINDS``). Else None."""
    @property
    def writes(self) -> Optional[List[str]]:
        """In ``finished``, when traced: files it wrote, created, truncated, appended,
        renamed into place or made (a directory, a symlink, a hard link): the kinds in
        ``makescope.WRITE_KINDS``. Else None."""

    test_name: Optional[str]
    test_result: Optional[str]

    @property
    def tags(self) -> Dict[str, Optional[str]]:
        """Tags to record (values are stored as ``str(value)``; None for a bare tag)."""

    def tag(self, name: str, value: object = None) -> None:
        """``cmd.tags[name] = value``."""
