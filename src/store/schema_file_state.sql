-- makescope record: file states, what `makescope rebuild` compares the tree with.
--
-- For every path a command of a traced build read, executed, wrote or probed, the state
-- the build left it in, taken once by the recorder after make exits: size, mtime, ctime
-- and inode (a stat), and a content hash (BLAKE3, its first 16 bytes). A path a command
-- looked for and did not find, and that did not exist when the build ended, has NULL
-- there: it matters only if it appears (a removed temporary has no row). Directories and paths under /proc, /dev and /sys have
-- no state. One row per (build, path): ~50 bytes for a file, ~10 for a missing path.
-- Checking a tree against it is a scan of stats: a file whose size, mtime, ctime and
-- inode are unchanged is unchanged (as git's index decides); only the others are read
-- and hashed, and a new hash equal to the old one is a `touch`, not a change.
-- `makescope rebuild` rewrites the rows it re-ran or found touched, so that a second
-- rebuild finds nothing to do.

CREATE TABLE file_state (
    build_id          INTEGER NOT NULL REFERENCES build(id),
    path_id           INTEGER NOT NULL REFERENCES path(id),
    size              INTEGER,            -- NULL: missing when the build ended
    mtime_ns          INTEGER,
    ctime_ns          INTEGER,
    inode             INTEGER,
    hash              BLOB,               -- BLAKE3 of the content, first 16 bytes
    PRIMARY KEY (build_id, path_id)
) WITHOUT ROWID;

-- When a build's file states were taken (a build without a row here has none: it was
-- not traced, or was recorded by an older makescope) and what it cost.
CREATE TABLE file_state_taken (
    build_id          INTEGER PRIMARY KEY REFERENCES build(id),
    taken_ns          INTEGER NOT NULL,
    files             INTEGER NOT NULL,   -- rows with a state (existing files)
    hashed            INTEGER NOT NULL,   -- files read and hashed (the rest reused a hash)
    seconds           REAL NOT NULL
);

-- The last time `makescope rebuild` re-ran a recorded command, and how it ended: a
-- command of the build that failed, or never finished, is out of date until a re-run
-- succeeds.
CREATE TABLE rerun (
    command_id        INTEGER PRIMARY KEY REFERENCES command(id),
    build_id          INTEGER NOT NULL REFERENCES build(id),
    ended_ns          INTEGER NOT NULL,
    exit_code         INTEGER             -- NULL: killed by a signal
);

CREATE VIEW file_states AS
SELECT f.build_id, CAST(p.path AS TEXT) AS path, f.size,
       f.mtime_ns / 1e9 AS mtime, f.inode, hex(f.hash) AS hash
FROM file_state f JOIN path p ON p.id = f.path_id;
