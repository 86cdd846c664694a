#!/usr/bin/env python3
"""Recompute a record's command DAG from its accesses, independently of makescope's
code, and compare with its `edge` table: an edge from a command that wrote a path to
every other command that started no earlier and read, executed, stat'ed, listed or
probed it. Reads schema v1 (reads and stats as rows) and v2 (as `access_set` JSON).

    scripts/check-edges.py RECORD
"""
import json, sqlite3, sys

WRITE = (2, 3, 4, 5, 12, 13, 14, 15)
READ = (1, 6, 7, 9)


def decode_ids(blob):
    ids, value, shift, previous = [], 0, 0, 0
    for byte in blob:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            previous += value
            ids.append(previous)
            value = shift = 0
    return ids


def main():
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    started = dict(db.execute("SELECT id, started_ns FROM command"))
    writers = {}
    for path, command in db.execute(
            f"SELECT path_id, command_id FROM access WHERE command_id IS NOT NULL AND kind IN {WRITE}"):
        writers.setdefault(path, []).append(command)
    edges = set()

    def reach(reader, path):
        for writer in writers.get(path, ()):
            if writer != reader and started[reader] >= started[writer]:
                edges.add((writer, reader, path))

    for path, command in db.execute(
            f"SELECT path_id, command_id FROM access WHERE command_id IS NOT NULL AND kind IN {READ}"):
        reach(command, path)
    if db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'access_set'").fetchone()[0]:
        for command, text in db.execute("SELECT command_id, accesses FROM access_set WHERE command_id IS NOT NULL"):
            for path, _, _ in json.loads(text):
                reach(command, path)
    for command, blob in db.execute("SELECT command_id, path_ids FROM probe_set WHERE command_id IS NOT NULL"):
        for path in decode_ids(blob):
            reach(command, path)
    stored = set(db.execute("SELECT from_command_id, to_command_id, path_id FROM edge"))
    print(f"{len(edges)} edges recomputed, {len(stored)} stored, "
          f"{len(edges - stored)} missing from the record, {len(stored - edges)} extra")
    sys.exit(0 if edges == stored else 1)


if __name__ == "__main__":
    main()
