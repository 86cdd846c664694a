"""Read makescope records: the builds, commands, processes, files, DAG and tests of GNU
make runs recorded by ``makescope make``.

>>> import makescope
>>> rec = makescope.open()                      # .makescope/db.sqlite, or $MAKESCOPE_DB
>>> for cmd in rec.commands(failed=True):
...     print(cmd.label, cmd.recipe_file, cmd.recipe_line)
>>> [c.target for c in rec.writers("build/libc.so")]
>>> [t.name for t in rec.tests(result="FAIL")]
>>> {c.test_name for c in rec.affected("string/strlen.c") if c.test_name}

Text from the record (paths, targets, commands, argv, environment) is ``str`` decoded
the way :func:`os.fsdecode` does: UTF-8, with bytes that are not UTF-8 kept as surrogate
escapes, so ``os.fsencode(cmd.target)`` gives back exactly the bytes make used. What a
command printed (``stdout``/``stderr``) is ``bytes``. Path arguments may be ``str``,
``bytes`` or :class:`os.PathLike`; relative ones are taken from the current directory.

Every query is answered by makescope's own Rust store (the one the CLI reads), through
``makescope._native``. Queries take ``build=`` (a :class:`Build` or its id); the default
is the newest build. The record is only read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterator, List, Optional, Sequence, Tuple, Union

from . import _native
from ._native import RecordError

#: makescope's version: the package follows the makescope crate it reads records with.
__version__: str = _native.VERSION

__all__ = [
    "open",
    "Record",
    "RecordError",
    "Build",
    "Make",
    "Command",
    "Process",
    "FileAccess",
    "Tag",
    "Test",
    "OutOfDate",
    "Replay",
    "ACCESS_KINDS",
    "WRITE_KINDS",
    "READ_KINDS",
]

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
BuildArg = Union["Build", int, None]

# The access kinds are defined once, in makescope's Rust `access` module; these are its.
#: Every kind of file access the record knows, as ``FileAccess.kind`` spells it: read,
#: write, create, truncate, append, exec, stat, probe, list, remove, rename_from,
#: rename_to, mkdir, symlink, link, chdir.
ACCESS_KINDS: Tuple[str, ...] = _native.ACCESS_KINDS
#: Kinds that put something at a path (write, create, truncate, append, rename_to,
#: mkdir, symlink, link): their command is a *writer* of it.
WRITE_KINDS: FrozenSet[str] = _native.WRITE_KINDS
#: Kinds through which a command depends on a path (read, exec, stat, list, probe; the
#: DAG's edges): a *reader* of it.
READ_KINDS: FrozenSet[str] = _native.READ_KINDS


def _seconds(ns: Optional[int]) -> Optional[float]:
    return None if ns is None else ns / 1e9


def _duration(start: Optional[int], end: Optional[int]) -> Optional[float]:
    return None if start is None or end is None else (end - start) / 1e9


@dataclass(frozen=True)
class Build:
    """One ``makescope make`` run."""

    id: int
    argv: List[str]
    """make's arguments as given to makescope."""
    directory: str
    """Where ``makescope make`` ran: labels and relative paths are taken from here."""
    started_ns: int
    ended_ns: Optional[int]
    state: str
    """``running`` (or cut short without a trace), ``complete``, ``failed``, ``interrupted``."""
    exit_code: Optional[int]
    signal: Optional[int]
    traced: bool
    """Whether commands' file accesses were traced."""
    hooks_failed: bool
    """Whether a user hook raised (the build then exits 3 if make succeeded)."""
    _record: Optional["Record"] = field(default=None, repr=False, compare=False)

    @property
    def started(self) -> float:
        """Start, in seconds since the Unix epoch."""
        return self.started_ns / 1e9

    @property
    def duration(self) -> Optional[float]:
        """Wall-clock seconds, None while it runs."""
        return _duration(self.started_ns, self.ended_ns)

    def commands(self, **filters: Any) -> List["Command"]:
        """This build's commands; the filters are :meth:`Record.commands`'."""
        assert self._record is not None
        return self._record.commands(build=self, **filters)


@dataclass(frozen=True)
class Make:
    """One make process: the top make or a sub-make."""

    id: int
    build_id: int
    pid: int
    parent_make_id: Optional[int]
    parent_command_id: Optional[int]
    """The recipe command that ran this make, for sub-makes."""
    level: int
    """``MAKELEVEL``."""
    directory: str
    argv: List[str]
    started_ns: int
    ended_ns: Optional[int]
    default_goal: Optional[str]
    makefiles: List[str]
    """``MAKEFILE_LIST`` when it exited."""

    @property
    def duration(self) -> Optional[float]:
        return _duration(self.started_ns, self.ended_ns)


@dataclass(frozen=True)
class Command:
    """One recipe line make ran (each line is one shell).

    Hooks receive an object with the same field names (see :mod:`makescope.hooks`).
    ``tags``, ``stdout``, ``stderr``, ``reads``, ``writes`` and ``accesses`` are read
    from the record when first asked for.
    """

    id: int
    build_id: int
    make_id: Optional[int]
    make_level: Optional[int]
    job: int
    """make's job number: the lines of one recipe share it."""
    line_index: int
    target: str
    """``$@``."""
    recipe_file: Optional[str]
    recipe_line: Optional[int]
    newer: List[str]
    """``$?``: the prerequisites newer than the target."""
    target_existed: Optional[bool]
    why: str
    """Why make ran it, in words."""
    directory: str
    shell: Optional[str]
    shell_flags: Optional[str]
    command: str
    """The expanded command text (the shell's ``-c`` argument)."""
    argv: List[str]
    """What make executed."""
    env: Dict[str, str]
    """The environment (secret-looking values redacted unless recorded with --keep-secrets)."""
    pid: Optional[int]
    started_ns: int
    ended_ns: Optional[int]
    state: str
    """``running``, ``ok``, ``failed``, ``killed`` or ``lost``."""
    exit_code: Optional[int]
    signal: Optional[int]
    user_us: Optional[int]
    system_us: Optional[int]
    max_rss_kib: Optional[int]
    label: Optional[str]
    """The concise label, e.g. ``CC elf/dl-load.os`` (a hook may have chosen it)."""
    test_name: Optional[str]
    test_result: Optional[str]
    traced: bool
    """Whether its file accesses are complete."""
    build_directory: str = ""
    """Where ``makescope make`` ran (the build's directory)."""
    _record: Optional["Record"] = field(default=None, repr=False, compare=False)

    @property
    def started(self) -> float:
        """Start, in seconds since the Unix epoch."""
        return self.started_ns / 1e9

    @property
    def ended(self) -> Optional[float]:
        return _seconds(self.ended_ns)

    @property
    def duration(self) -> Optional[float]:
        """Wall-clock seconds, None if it never ended."""
        return _duration(self.started_ns, self.ended_ns)

    def _cached(self, name: str, compute: Any) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        if name not in cache:
            cache[name] = compute()
        return cache[name]

    def _native(self) -> "_native.NativeRecord":
        if self._record is None:
            raise RecordError("this Command is not attached to an open record")
        return self._record._native

    @property
    def tags(self) -> Dict[str, Optional[str]]:
        """Tags hooks attached: name → value (None for a bare tag)."""
        return self._cached("tags", lambda: dict(self._native().tags(self.id)))

    @property
    def stdout(self) -> bytes:
        return self._cached("output", lambda: self._native().output(self.id))[0]

    @property
    def stderr(self) -> bytes:
        return self._cached("output", lambda: self._native().output(self.id))[1]

    @property
    def accesses(self) -> List["FileAccess"]:
        """Every file access of its processes, by kind then path."""
        return self._cached(
            "accesses", lambda: [FileAccess(**a) for a in self._native().accesses(self.build_id, self.id)]
        )

    @property
    def reads(self) -> List[str]:
        """Paths it read, executed, stat'ed, listed or probed."""
        return sorted({a.path for a in self.accesses if a.kind in READ_KINDS})

    @property
    def writes(self) -> List[str]:
        """Paths it wrote, created, truncated, appended, renamed into place, made."""
        return sorted({a.path for a in self.accesses if a.kind in WRITE_KINDS})

    @property
    def processes(self) -> List["Process"]:
        return [Process(**p) for p in self._native().processes(self.build_id, self.id)]

    def dependencies(self) -> List[Tuple["Command", str]]:
        """The commands this one depends on, with the path through which: it read what they wrote."""
        assert self._record is not None
        return [(self._record.command(i), p) for i, p in self._native().dependencies(self.id)]

    def dependents(self) -> List[Tuple["Command", str]]:
        """The commands that read what this one wrote, with the path."""
        assert self._record is not None
        return [(self._record.command(i), p) for i, p in self._native().dependents(self.id)]


@dataclass(frozen=True)
class Process:
    """A process of a traced command (or of a make)."""

    id: int
    build_id: int
    command_id: Optional[int]
    make_id: Optional[int]
    pid: int
    parent_pid: Optional[int]
    exe: Optional[str]
    argv: List[str]
    cwd: Optional[str]
    started_ns: Optional[int]
    ended_ns: Optional[int]
    exit_code: Optional[int]

    @property
    def duration(self) -> Optional[float]:
        return _duration(self.started_ns, self.ended_ns)


@dataclass(frozen=True)
class FileAccess:
    """One (owner, path, kind): repeated accesses are counted, not repeated."""

    build_id: int
    command_id: Optional[int]
    """None when the access was make's own."""
    make_id: Optional[int]
    path: str
    """Absolute and normalised."""
    kind: str
    """One of :data:`ACCESS_KINDS`."""
    count: int
    process_id: Optional[int]


@dataclass(frozen=True)
class Tag:
    command_id: int
    name: str
    value: Optional[str]


@dataclass(frozen=True)
class Test:
    """A command that ran a test case (named by a hook or a rule)."""

    name: str
    result: Optional[str]
    """``PASS``, ``FAIL``, ``UNSUPPORTED``, …"""
    command: Command

    @property
    def command_id(self) -> int:
        return self.command.id

    @property
    def duration(self) -> Optional[float]:
        return self.command.duration


@dataclass
class Replay:
    """What :meth:`Record.replay` ran: the recipe's status and output, what differed
    from the recorded run (``notes``), the processes it left running and that were
    killed, what a sandboxed run touched outside its record (``misses``: (path, access
    kind) pairs), and the new run's command ids in the record (``recorded``)."""

    exit_status: int
    stdout: bytes
    stderr: bytes
    notes: List[str]
    killed: List[str]
    misses: List[Tuple[str, str]]
    recorded: List[int]

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.misses


def _path_bytes(path: PathArg) -> bytes:
    return os.fsencode(os.path.abspath(os.fsdecode(path)))


def _env(items: Sequence[str]) -> Dict[str, str]:
    env: Dict[str, str] = {}
    for item in items:
        name, _, value = item.partition("=")
        env[name] = value
    return env


@dataclass
class OutOfDate:
    """A recipe ``makescope rebuild`` would re-run (:meth:`Record.out_of_date`)."""

    commands: List["Command"]
    label: str
    reason: str
    direct: bool


class Record:
    """An open record. Use :func:`open`; closes with ``with`` or :meth:`close`."""

    def __init__(self, path: PathArg):
        self._open: Optional[_native.NativeRecord] = _native.NativeRecord(os.fsdecode(path))
        self._directories: Dict[int, str] = {}

    def __enter__(self) -> "Record":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database; queries afterwards raise :class:`RecordError`."""
        self._open = None

    @property
    def _native(self) -> "_native.NativeRecord":
        if self._open is None:
            raise RecordError("the record is closed")
        return self._open

    def __repr__(self) -> str:
        return f"<makescope.Record {self.path!r}>"

    @property
    def path(self) -> str:
        return self._native.path

    # builds and makes

    def builds(self) -> List[Build]:
        """Every build, oldest first."""
        return [self._build(b) for b in self._native.builds()]

    def build(self, id: Optional[int] = None) -> Build:
        """One build by id; the newest without one. Raises LookupError if there is none."""
        row = self._native.build(id)
        if row is None:
            raise LookupError(f"no build {id} in {self.path}" if id is not None else f"no build in {self.path}")
        return self._build(row)

    def _build(self, row: Dict[str, Any]) -> Build:
        build = Build(**row, _record=self)
        self._directories[build.id] = build.directory
        return build

    def _build_id(self, build: BuildArg) -> int:
        if isinstance(build, Build):
            return build.id
        if build is None:
            return self.build().id
        return int(build)

    def _build_directory(self, build_id: int) -> str:
        if build_id not in self._directories:
            self.build(build_id)
        return self._directories[build_id]

    def makes(self, build: BuildArg = None) -> List[Make]:
        """The make processes of a build, top make first."""
        return [Make(**m) for m in self._native.makes(self._build_id(build))]

    # commands

    def _command(self, row: Dict[str, Any]) -> Command:
        row["env"] = _env(row["env"])
        return Command(**row, build_directory=self._build_directory(row["build_id"]), _record=self)

    def commands(
        self,
        build: BuildArg = None,
        *,
        target: Optional[str] = None,
        failed: Optional[bool] = None,
        state: Optional[str] = None,
        label: Optional[str] = None,
        directory: Optional[PathArg] = None,
        tag: Optional[str] = None,
        test: Optional[bool] = None,
    ) -> List[Command]:
        """A build's commands in the order they started.

        target: the target contains this text (as ``makescope log --target``).
        failed: True for commands that did not end ``ok`` (False: only ``ok`` ones).
        state: exactly this state. label: the label contains this text.
        directory: ran in this directory. tag: has a tag with this name.
        test: True for commands that ran a test case, False for the others.
        """
        rows = self._native.commands(
            self._build_id(build),
            bool(failed),
            os.fsencode(target) if target is not None else None,
        )
        commands = [self._command(r) for r in rows]
        if failed is False:
            commands = [c for c in commands if c.state in ("ok", "running")]
        if state is not None:
            commands = [c for c in commands if c.state == state]
        if label is not None:
            commands = [c for c in commands if c.label is not None and label in c.label]
        if directory is not None:
            wanted = os.fsdecode(_path_bytes(directory))
            commands = [c for c in commands if c.directory == wanted]
        if tag is not None:
            tagged = {t.command_id for t in self.tags(build, name=tag)}
            commands = [c for c in commands if c.id in tagged]
        if test is not None:
            commands = [c for c in commands if (c.test_name is not None) == test]
        return commands

    def __iter__(self) -> Iterator[Command]:
        """The newest build's commands."""
        return iter(self.commands())

    def command(self, ref: Union[int, PathArg], build: BuildArg = None) -> Command:
        """A command by id, by target name (the last command that built it), or by a
        path it wrote (the last writer). Raises LookupError."""
        if isinstance(ref, int):
            row = self._native.command(ref)
            if row is None:
                raise LookupError(f"no command {ref} in {self.path}")
            return self._command(row)
        build_id = self._build_id(build)
        ids = self._native.commands_for_target(build_id, os.fsencode(ref))
        if not ids:
            ids = self._native.writers_of(build_id, _path_bytes(ref))
        if not ids:
            raise LookupError(f"no command built or wrote {os.fsdecode(ref)!r} in build {build_id}")
        return self.command(ids[-1])

    def replay(
        self,
        cmd: Union[Command, int],
        *,
        line: Optional[int] = None,
        trace: bool = True,
        sandbox: bool = False,
    ) -> Replay:
        """Run a recorded command's recipe again, as ``makescope replay`` does (the same
        Rust executor): its directory, shell, flags and environment, output captured.
        Traced and recorded as a new run of the command unless ``trace=False``;
        ``sandbox=True`` runs it where only its recorded files exist. ``line``: only
        that line (from 1). Processes it leaves running are killed only in the sandbox
        (its PID namespace): outside it, a traced replay waits for them. Raises
        RecordError when it cannot start (an unknown command, a missing secret, a
        directory that is gone)."""
        cid = cmd.id if isinstance(cmd, Command) else cmd
        return Replay(**self._native.replay(cid, line, trace, sandbox))

    # processes, files, tags, tests

    def processes(self, build: BuildArg = None, *, command: Union[Command, int, None] = None) -> List[Process]:
        """Processes of a build, or of one command."""
        if command is not None:
            cid = command.id if isinstance(command, Command) else command
            bid = command.build_id if isinstance(command, Command) else self.command(cid).build_id
            return [Process(**p) for p in self._native.processes(bid, cid)]
        return [Process(**p) for p in self._native.build_processes(self._build_id(build))]

    def file_accesses(
        self,
        build: BuildArg = None,
        *,
        path: Optional[PathArg] = None,
        command: Union[Command, int, None] = None,
        kind: Union[str, Sequence[str], None] = None,
    ) -> List[FileAccess]:
        """File accesses of a build, of one path, or of one command; ``kind`` keeps
        only those kinds (see :data:`ACCESS_KINDS`)."""
        build_id = self._build_id(build)
        if command is not None:
            cid = command.id if isinstance(command, Command) else command
            rows = self._native.accesses(build_id, cid)
        elif path is not None:
            rows = self._native.accesses_to(build_id, _path_bytes(path))
        else:
            rows = self._native.build_accesses(build_id)
        accesses = [FileAccess(**a) for a in rows]
        if path is not None and command is not None:
            wanted = os.fsdecode(_path_bytes(path))
            accesses = [a for a in accesses if a.path == wanted]
        if kind is not None:
            kinds = {kind} if isinstance(kind, str) else set(kind)
            unknown = kinds - set(ACCESS_KINDS)
            if unknown:
                raise ValueError(f"unknown access kind {sorted(unknown)}; known: {', '.join(ACCESS_KINDS)}")
            accesses = [a for a in accesses if a.kind in kinds]
        return accesses

    def tags(self, build: BuildArg = None, *, name: Optional[str] = None) -> List[Tag]:
        """Tags hooks attached to a build's commands."""
        tags = [Tag(c, n, v) for c, n, v in self._native.build_tags(self._build_id(build))]
        return [t for t in tags if name is None or t.name == name]

    def tests(
        self, build: BuildArg = None, *, result: Optional[str] = None, name: Optional[str] = None
    ) -> List[Test]:
        """Test cases of a build in the order they ran; ``name`` keeps names containing it."""
        tests = []
        for cid in self._native.tests(self._build_id(build)):
            cmd = self.command(cid)
            assert cmd.test_name is not None
            tests.append(Test(cmd.test_name, cmd.test_result, cmd))
        if result is not None:
            tests = [t for t in tests if t.result == result]
        if name is not None:
            tests = [t for t in tests if name in t.name]
        return tests

    # the DAG

    def writers(self, path: PathArg, build: BuildArg = None) -> List[Command]:
        """Commands that wrote the file (see :data:`WRITE_KINDS`), in order."""
        return [self.command(i) for i in self._native.writers_of(self._build_id(build), _path_bytes(path))]

    def readers(self, path: PathArg, build: BuildArg = None) -> List[Command]:
        """Commands whose result depends on the file: they read, executed, stat'ed,
        listed or probed it (see :data:`READ_KINDS`), in order."""
        return [self.command(i) for i in self._native.readers_of(self._build_id(build), _path_bytes(path))]

    def affected(self, path: PathArg, build: BuildArg = None) -> List[Command]:
        """What a change to the file reaches: its readers and, transitively, every
        command that read what they wrote. Tests among them have ``test_name`` set."""
        return [self.command(i) for i in self._native.affected(self._build_id(build), _path_bytes(path))]

    def out_of_date(self, build: BuildArg = None) -> List["OutOfDate"]:
        """What ``makescope rebuild`` would re-run, in dependency order: each recipe's
        commands with the first reason (``"string/strlen.c changed"``). ``direct`` is
        False for recipes only downstream of others (they re-run only if those change
        what they read: early cutoff). A touch that keeps the content is no reason.
        Raises :class:`RecordError` for a build that was not traced or has no file
        states."""
        return [
            OutOfDate(
                commands=[self.command(i) for i in row["command_ids"]],
                label=row["label"],
                reason=row["reason"],
                direct=row["direct"],
            )
            for row in self._native.out_of_date(self._build_id(build))
        ]

    # the views: the same documents as the commands' --json

    def stats(self, build: BuildArg = None) -> Dict[str, Any]:
        """``makescope stats --json``: wall and CPU time, parallelism, the critical path,
        time per directory and per make level, the slowest commands."""
        return json.loads(self._native.view("stats", self._build_id(build), [], []))

    def lint(self, build: BuildArg = None) -> Dict[str, Any]:
        """``makescope lint --json``: the findings (``findings``, each with its ``kind``,
        ``file``, ``subject``, ``other`` and the prerequisite to ``add``). Raises
        :class:`RecordError` for a build lint cannot judge (untraced, interrupted)."""
        return json.loads(self._native.view("lint", self._build_id(build), [], []))

    def coverage(
        self,
        build: BuildArg = None,
        *,
        prefixes: Sequence[PathArg] = (),
        packages: Sequence[str] = (),
    ) -> Dict[str, Any]:
        """``makescope coverage --json``: the installed packages (dpkg's lists) whose files
        the build opened, with the files, and those named in ``packages`` or under
        ``prefixes`` that it never touched."""
        paths = [os.fsdecode(_path_bytes(p)) for p in prefixes]
        return json.loads(self._native.view("coverage", self._build_id(build), paths, list(packages)))

    def trace(self, build: BuildArg = None) -> Dict[str, Any]:
        """``makescope export trace``: the Chrome trace-event document (``traceEvents``),
        for Perfetto or ``chrome://tracing``."""
        return json.loads(self._native.view("trace", self._build_id(build), [], []))

    def report(self, build: BuildArg = None) -> str:
        """``makescope report``: the one self-contained HTML page, as text."""
        return self._native.view("report", self._build_id(build), [], [])


def default_path() -> str:
    """``$MAKESCOPE_DB`` if set, else ``.makescope/db.sqlite`` (as the CLI)."""
    return os.environ.get("MAKESCOPE_DB") or os.path.join(".makescope", "db.sqlite")


def open(path: Optional[PathArg] = None) -> Record:  # noqa: A001 - the package's entry point
    """Open a record for reading: ``path``, else :func:`default_path`.

    Raises :class:`RecordError` (missing, not a makescope record, corrupt, newer schema).
    """
    return Record(default_path() if path is None else path)
