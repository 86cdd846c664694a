-- makescope record, schema version 2: reads and stats as one set per owner and kind.
--
-- A glibc build records ~2.2 million (owner, path, kind) reads and stats, ~500 per
-- compile. As one row each (version 1), with an index by owner and one by path, they
-- were most of the record (~125 MB of 270) and most of the writer's time (~9 CPU
-- seconds of SQLite B-tree work, competing with the build for its CPUs). They are the
-- one kind of access nobody looks up one at a time: a command's reads are wanted
-- together, and "who read this file" is answered from the DAG (`edge`) or by a scan.
-- Now each owner's reads, and its stats, are one row: a JSON array of
-- [path_id, count, process_id] (process_id null when unknown), by path id.
-- `file_accesses` expands them (json_each), so the view is unchanged. Writes, execs and
-- the other rare kinds stay one row each in `access`, indexed by path.

CREATE TABLE access_set (
    build_id          INTEGER NOT NULL REFERENCES build(id),
    command_id        INTEGER REFERENCES command(id),
    make_id           INTEGER REFERENCES make(id),
    kind              INTEGER NOT NULL REFERENCES access_kind(id),  -- read or stat
    count             INTEGER NOT NULL,   -- paths in the set
    accesses          TEXT NOT NULL       -- JSON: [[path_id, count, process_id], ...]
);
CREATE INDEX access_set_command ON access_set(command_id);

INSERT INTO access_set (build_id, command_id, make_id, kind, count, accesses)
SELECT build_id, command_id, make_id, kind, count(*),
       json_group_array(json_array(path_id, count, process_id))
FROM (SELECT * FROM access WHERE kind IN (1, 7)
      ORDER BY build_id, command_id, make_id, kind, path_id)
GROUP BY build_id, command_id, make_id, kind;
DELETE FROM access WHERE kind IN (1, 7);

DROP VIEW file_accesses;
CREATE VIEW file_accesses AS
SELECT a.build_id, a.command_id, a.make_id, CAST(c.target AS TEXT) AS target,
       CAST(p.path AS TEXT) AS path, k.name AS kind, a.count, a.process_id
FROM access a
JOIN path p ON p.id = a.path_id
JOIN access_kind k ON k.id = a.kind
LEFT JOIN command c ON c.id = a.command_id
UNION ALL
SELECT s.build_id, s.command_id, s.make_id, CAST(c.target AS TEXT) AS target,
       CAST(p.path AS TEXT) AS path, k.name AS kind, e.value ->> 1 AS count,
       e.value ->> 2 AS process_id
FROM access_set s
CROSS JOIN json_each(s.accesses) e   -- CROSS: this order (else SQLite may scan path
CROSS JOIN path p ON p.id = e.value ->> 0  -- first and expand every set for each path)
JOIN access_kind k ON k.id = s.kind
LEFT JOIN command c ON c.id = s.command_id;
