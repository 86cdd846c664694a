#!/usr/bin/env python3
"""What storing a build's file accesses costs SQLite: one row each (schema v1, with its
two indexes, or none) against one JSON set per (owner, kind) for reads and stats
(schema v2). Replays a traced build's accesses from RECORD into fresh databases with
the writer's pragmas and 20,000-row transactions; prints CPU seconds and size.

    scripts/bench-access-rows.py RECORD [ROUNDS]
"""
import itertools, json, os, resource, sqlite3, sys, tempfile, time

PRAGMAS = ("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
           "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 8192;")
ROW = ("CREATE TABLE access (build_id INTEGER NOT NULL, command_id INTEGER, make_id INTEGER, "
       "path_id INTEGER NOT NULL, kind INTEGER NOT NULL, process_id INTEGER, first_ns INTEGER, "
       "count INTEGER NOT NULL DEFAULT 1);")
INDEXES = "CREATE INDEX access_command ON access(command_id); CREATE INDEX access_path ON access(path_id);"
SETS = ("CREATE TABLE access_set (build_id INTEGER NOT NULL, command_id INTEGER, make_id INTEGER, "
        "kind INTEGER NOT NULL, count INTEGER NOT NULL, accesses TEXT NOT NULL);"
        "CREATE INDEX access_set_command ON access_set(command_id);")


def load(record):
    db = sqlite3.connect(f"file:{record}?mode=ro", uri=True)
    rows = list(db.execute("SELECT build_id, command_id, make_id, path_id, kind, process_id, first_ns, count "
                           "FROM access ORDER BY rowid"))
    if db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'access_set'").fetchone()[0]:
        for b, c, m, k, text in db.execute("SELECT build_id, command_id, make_id, kind, accesses FROM access_set"):
            rows += [(b, c, m, p, k, proc, 0, n) for p, n, proc in json.loads(text)]
        rows.sort(key=lambda r: (r[0], r[1] or 0, r[2] or 0))
    return rows


def run(name, batches, schema):
    """Insert `batches` (lists of (sql, rows)), one transaction each, timing only that."""
    path = tempfile.mktemp(prefix="makescope-access-", suffix=".sqlite")
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(PRAGMAS + schema)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.time()
    for batch in batches:
        db.execute("BEGIN")
        for sql, rows in batch:
            db.executemany(sql, rows)
        db.execute("COMMIT")
    after = resource.getrusage(resource.RUSAGE_SELF)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(path)
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"{name}\t{cpu:.2f} CPU-s\t{time.time() - start:.2f} s\t{size / 1e6:.1f} MB", flush=True)


ROW_SQL = "INSERT INTO access VALUES (?,?,?,?,?,?,?,?)"
SET_SQL = "INSERT INTO access_set VALUES (?,?,?,?,?,?)"


def as_rows(rows):
    return [[(ROW_SQL, rows[i:i + 20000])] for i in range(0, len(rows), 20000)]


def as_sets(rows):
    """The writer's shape: per owner, its rare kinds as rows, reads and stats as sets."""
    batches, batch, n = [], [], 0
    for owner, group in itertools.groupby(rows, key=lambda r: r[:3]):
        group = list(group)
        batch.append((ROW_SQL, [r for r in group if r[4] not in (1, 7)]))
        sets = []
        for kind in (1, 7):
            mine = sorted((r for r in group if r[4] == kind), key=lambda r: r[3])
            if mine:
                text = "[" + ",".join("[%d,%d,%s]" % (r[3], r[7], r[5] if r[5] is not None else "null")
                                      for r in mine) + "]"
                sets.append((*owner, kind, len(mine), text))
        batch.append((SET_SQL, sets))
        n += len(group)
        if n >= 20000:
            batches.append(batch)
            batch, n = [], 0
    batches.append(batch)
    return batches


def main():
    record, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rows = load(record)
    print(f"{len(rows)} accesses (probes aside)")
    rowwise, setwise = as_rows(rows), as_sets(rows)
    for _ in range(rounds):
        run("rows, two indexes", rowwise, ROW + INDEXES)
        run("rows, no index", rowwise, ROW)
        run("sets for reads and stats", setwise, ROW + INDEXES + SETS)


if __name__ == "__main__":
    main()
