#!/usr/bin/env python3
"""Issue 3's oracle on a real build: every file a compiler's depfile names must be
among the files the record says that compile read.

For each recorded compile (a command with -MD, -MMD or -MF) that wrote a depfile
(`-MD -MF X.dt` / `X.d`), read the
depfile as it is on disk now (glibc rewrites `X.dt` into `X.d` with `$(common-objpfx)`
for the build directory), take the first rule's prerequisites, make them absolute
against the command's directory, and look them up among its `read` accesses.

    scripts/check-depfiles.py RECORD BUILD_DIR
"""
import os, sqlite3, sys


def prerequisites(text, objpfx):
    text = text.replace("$(common-objpfx)", objpfx).replace("\\\n", " ")
    first = text.split("\n\n")[0].split("\n")[0]
    _, _, deps = first.partition(": ")
    return deps.split()


def main():
    record, build = sys.argv[1], os.path.realpath(sys.argv[2])
    db = sqlite3.connect(record)
    db.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
    build_id = db.execute("SELECT max(id) FROM build").fetchone()[0]
    writers = db.execute(
        """SELECT DISTINCT a.command_id, p.path, c.directory FROM access a
           JOIN path p ON p.id = a.path_id JOIN command c ON c.id = a.command_id
           WHERE a.build_id = ? AND a.kind IN (2, 3, 4) AND (p.path LIKE '%.dt' OR p.path LIKE '%.d')""",
        (build_id,),
    ).fetchall()
    checked = missing_total = commands = 0
    examples = []
    compile_flags = ("-MD", "-MMD", "-MF")
    for command_id, depfile, directory in writers:
        text_of_command = db.execute("SELECT command FROM command WHERE id = ?", (command_id,)).fetchone()[0]
        if not any(flag in text_of_command.split() for flag in compile_flags):
            continue  # not a compile: e.g. glibc's sed that rewrites X.dt into X.d
        final = depfile[:-1] if depfile.endswith(".dt") else depfile
        try:
            text = open(final, encoding="utf-8", errors="surrogateescape").read()
        except FileNotFoundError:
            continue
        reads = {
            row[0]
            for row in db.execute(
                "SELECT path FROM file_accesses WHERE command_id = ? AND kind = 'read'",
                (command_id,),
            )
        }
        commands += 1
        for dep in prerequisites(text, build + "/"):
            path = os.path.normpath(os.path.join(directory, dep))
            checked += 1
            if path not in reads:
                missing_total += 1
                if len(examples) < 10:
                    examples.append((command_id, path))
    print(f"{commands} compiles with depfiles, {checked} prerequisites, {missing_total} not among the recorded reads "
          f"({100.0 * (checked - missing_total) / max(checked, 1):.3f}% found)")
    for command_id, path in examples:
        print(f"  command {command_id}: {path}")
    return 1 if missing_total or not commands else 0


if __name__ == "__main__":
    sys.exit(main())
