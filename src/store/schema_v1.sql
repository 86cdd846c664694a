-- makescope record, schema version 1.
--
-- Tables are singular and hold raw facts; the plural views below are the public
-- interface for people with the `sqlite3` shell and are documented in the README.
-- Paths, argv, environments and output are bytes: stored as TEXT when they are UTF-8
-- and as BLOB when not, so nothing is lost and `WHERE target = 'all'` works. Lists (argv, environment) are
-- NUL-separated (SQLite's text functions stop at NUL, so `args_text` columns hold the
-- same lists shell-quoted for reading). Times are nanoseconds since the Unix epoch.
--
-- Released migrations are never edited: a change is a new schema_vN.sql.

CREATE TABLE build (
    id                INTEGER PRIMARY KEY,
    argv              BLOB NOT NULL,      -- make's arguments as given to makescope
    args_text         TEXT NOT NULL,      -- the same, shell-quoted, for reading
    directory         BLOB NOT NULL,      -- where `makescope make` ran
    started_ns        INTEGER NOT NULL,
    ended_ns          INTEGER,
    state             TEXT NOT NULL,      -- running | complete | failed | interrupted
    exit_code         INTEGER,            -- make's exit status
    signal            INTEGER,            -- the signal that ended make, if one did
    traced            INTEGER NOT NULL,   -- 1: commands' file accesses were traced
    hooks_failed      INTEGER NOT NULL DEFAULT 0,
    makescope_version TEXT NOT NULL
);

-- One row per make process: the top make and every sub-make.
CREATE TABLE make (
    id                INTEGER PRIMARY KEY,
    build_id          INTEGER NOT NULL REFERENCES build(id),
    pid               INTEGER NOT NULL,
    parent_make_id    INTEGER REFERENCES make(id),
    parent_command_id INTEGER REFERENCES command(id),  -- the recipe command that ran it
    level             INTEGER NOT NULL,   -- MAKELEVEL
    directory         BLOB NOT NULL,
    argv              BLOB NOT NULL,
    args_text         TEXT NOT NULL,      -- argv shell-quoted, for reading
    started_ns        INTEGER NOT NULL,
    ended_ns          INTEGER,
    default_goal      BLOB,
    makefiles         BLOB,               -- MAKEFILE_LIST when it exited
    makedb_path       BLOB                -- make's database dump taken by the plugin
);

-- One row per recipe line make ran (each line is one shell).
CREATE TABLE command (
    id                INTEGER PRIMARY KEY,
    build_id          INTEGER NOT NULL REFERENCES build(id),
    make_id           INTEGER REFERENCES make(id),
    job               INTEGER NOT NULL,   -- make's job number: a recipe's lines share it
    line_index        INTEGER NOT NULL,   -- 0-based position among the job's lines run
    target            BLOB NOT NULL,      -- $@
    recipe_file       BLOB,               -- makefile holding the recipe
    recipe_line       INTEGER,            -- the recipe's first line there
    newer             BLOB,               -- $?: prerequisites newer than the target
    target_existed    INTEGER,            -- 1 if the target existed when it started
    directory         BLOB NOT NULL,
    shell             BLOB,               -- the makefile's SHELL
    shell_flags       BLOB,               -- .SHELLFLAGS
    command           BLOB NOT NULL,      -- the expanded command text
    environment_id    INTEGER REFERENCES environment(id),
    pid               INTEGER,
    started_ns        INTEGER NOT NULL,
    ended_ns          INTEGER,
    state             TEXT NOT NULL,      -- running | ok | failed | killed | lost
    exit_code         INTEGER,
    signal            INTEGER,
    user_us           INTEGER,
    system_us         INTEGER,
    max_rss_kib       INTEGER,
    stdout            BLOB,
    stderr            BLOB,
    label             TEXT,               -- short label, e.g. `CC elf/dl-load.os`
    test_name         TEXT,               -- set when the command runs a test case
    test_result       TEXT,               -- PASS | FAIL | … as a hook or rule decided
    traced            INTEGER NOT NULL,   -- 1: files complete; 0: not traced; 2: runs a sub-make (whose commands are traced)
    left_behind       BLOB                -- processes still running when it ended
);
CREATE INDEX command_build ON command(build_id);

-- Environments, stored once per distinct content (most commands of a make share one):
-- NAME=VALUE entries, NUL-separated, secrets redacted, without makescope's own
-- per-job MAKESCOPE_* variables. What make executed is `shell`, `shell_flags` and
-- `command` in that order.
CREATE TABLE environment (
    id                INTEGER PRIMARY KEY,
    hash              BLOB NOT NULL UNIQUE,
    entries           BLOB NOT NULL
);
CREATE INDEX command_target ON command(target);

CREATE TABLE tag (
    command_id        INTEGER NOT NULL REFERENCES command(id),
    name              TEXT NOT NULL,
    value             TEXT
);
CREATE INDEX tag_command ON tag(command_id);

-- Every process of a traced command (and of sub-makes).
CREATE TABLE process (
    id                INTEGER PRIMARY KEY,
    build_id          INTEGER NOT NULL REFERENCES build(id),
    command_id        INTEGER REFERENCES command(id),   -- NULL: a make's own process
    make_id           INTEGER REFERENCES make(id),
    pid               INTEGER NOT NULL,
    parent_pid        INTEGER,
    exe               BLOB,
    args_text         TEXT,               -- argv, shell-quoted (exact when UTF-8)
    argv              BLOB,               -- the exact argv, only when not UTF-8
    cwd               BLOB,
    started_ns        INTEGER,
    ended_ns          INTEGER,
    exit_code         INTEGER
);
CREATE INDEX process_command ON process(command_id);

CREATE TABLE path (
    id                INTEGER PRIMARY KEY,
    path              BLOB NOT NULL UNIQUE  -- absolute, normalised
);

CREATE TABLE access_kind (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    description       TEXT NOT NULL
);
INSERT INTO access_kind (id, name, description) VALUES
    (1,  'read',        'opened for reading'),
    (2,  'write',       'opened for writing, existing content kept'),
    (3,  'create',      'created by opening it'),
    (4,  'truncate',    'opened for writing and truncated'),
    (5,  'append',      'opened for appending'),
    (6,  'exec',        'executed'),
    (7,  'stat',        'metadata looked at (stat, access, readlink); it existed'),
    (8,  'probe',       'looked for and found missing'),
    (9,  'list',        'directory listed'),
    (10, 'remove',      'unlinked or removed'),
    (11, 'rename_from', 'renamed away'),
    (12, 'rename_to',   'renamed into place'),
    (13, 'mkdir',       'directory created'),
    (14, 'symlink',     'symbolic link created'),
    (15, 'link',        'hard link created'),
    (16, 'chdir',       'changed directory into');

-- One row per (owner, path, kind): repeated accesses are counted, not repeated.
-- The owner is a command, or a make process for make's own file activity.
CREATE TABLE access (
    build_id          INTEGER NOT NULL REFERENCES build(id),
    command_id        INTEGER REFERENCES command(id),
    make_id           INTEGER REFERENCES make(id),
    path_id           INTEGER NOT NULL REFERENCES path(id),
    kind              INTEGER NOT NULL REFERENCES access_kind(id),
    process_id        INTEGER REFERENCES process(id),  -- the first process that did it
    first_ns          INTEGER,
    count             INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX access_command ON access(command_id);
CREATE INDEX access_path ON access(path_id);

-- Probes (paths looked for and found missing: include-path and PATH searches) are by far
-- the most numerous accesses, about 2,500 per glibc compile, so each owner's probes are
-- one row: the path ids, sorted, as LEB128 varints of the differences between
-- consecutive ids. `makescope show --files` and the Python package decode them.
CREATE TABLE probe_set (
    build_id          INTEGER NOT NULL REFERENCES build(id),
    command_id        INTEGER REFERENCES command(id),
    make_id           INTEGER REFERENCES make(id),
    count             INTEGER NOT NULL,
    path_ids          BLOB NOT NULL
);
CREATE INDEX probe_set_command ON probe_set(command_id);

-- The command DAG: computed when a build ends. An edge from the command that wrote a
-- path to each later command that read, executed, stat'ed, listed or probed it.
CREATE TABLE edge (
    build_id          INTEGER NOT NULL REFERENCES build(id),
    from_command_id   INTEGER NOT NULL REFERENCES command(id),
    to_command_id     INTEGER NOT NULL REFERENCES command(id),
    path_id           INTEGER NOT NULL REFERENCES path(id)
);
CREATE INDEX edge_from ON edge(from_command_id);
CREATE INDEX edge_to ON edge(to_command_id);

-- Public views.
CREATE VIEW builds AS
SELECT id, args_text AS argv, CAST(directory AS TEXT) AS directory,
       datetime(started_ns / 1000000000, 'unixepoch') AS started,
       (ended_ns - started_ns) / 1e9 AS seconds, state, exit_code, signal, traced,
       (SELECT count(*) FROM command c WHERE c.build_id = build.id) AS commands
FROM build;

CREATE VIEW makes AS
SELECT id, build_id, pid, parent_make_id, parent_command_id, level,
       CAST(directory AS TEXT) AS directory, args_text AS argv,
       (ended_ns - started_ns) / 1e9 AS seconds, CAST(default_goal AS TEXT) AS default_goal
FROM make;

CREATE VIEW commands AS
SELECT c.id, c.build_id, c.make_id, m.level AS make_level, c.job, c.line_index,
       CAST(c.target AS TEXT) AS target, CAST(c.recipe_file AS TEXT) AS recipe_file, c.recipe_line,
       CASE WHEN c.target_existed = 0 THEN 'target did not exist'
            WHEN length(c.newer) > 0 THEN 'newer: ' || CAST(c.newer AS TEXT)
            ELSE 'always remade (phony or forced)' END AS why,
       CAST(c.directory AS TEXT) AS directory, CAST(c.shell AS TEXT) AS shell,
       CAST(c.command AS TEXT) AS command, c.label, c.state, c.exit_code, c.signal,
       datetime(c.started_ns / 1000000000, 'unixepoch') AS started,
       (c.ended_ns - c.started_ns) / 1e9 AS seconds,
       c.test_name, c.test_result, c.traced,
       length(c.stdout) AS stdout_bytes, length(c.stderr) AS stderr_bytes
FROM command c LEFT JOIN make m ON m.id = c.make_id;

CREATE VIEW processes AS
SELECT p.id, p.build_id, p.command_id, p.make_id, p.pid, p.parent_pid,
       CAST(p.exe AS TEXT) AS exe, p.args_text AS argv,
       CAST(p.cwd AS TEXT) AS cwd, (p.ended_ns - p.started_ns) / 1e9 AS seconds, p.exit_code
FROM process p;

CREATE VIEW file_accesses AS
SELECT a.build_id, a.command_id, a.make_id, CAST(c.target AS TEXT) AS target,
       CAST(p.path AS TEXT) AS path, k.name AS kind, a.count, a.process_id
FROM access a
JOIN path p ON p.id = a.path_id
JOIN access_kind k ON k.id = a.kind
LEFT JOIN command c ON c.id = a.command_id;

CREATE VIEW edges AS
SELECT e.build_id, e.from_command_id, CAST(f.target AS TEXT) AS from_target,
       e.to_command_id, CAST(t.target AS TEXT) AS to_target, CAST(p.path AS TEXT) AS path
FROM edge e
JOIN command f ON f.id = e.from_command_id
JOIN command t ON t.id = e.to_command_id
JOIN path p ON p.id = e.path_id;

CREATE VIEW tags AS
SELECT t.command_id, CAST(c.target AS TEXT) AS target, t.name, t.value
FROM tag t JOIN command c ON c.id = t.command_id;

CREATE VIEW tests AS
SELECT c.id AS command_id, c.build_id, c.test_name AS name, c.test_result AS result,
       CAST(c.target AS TEXT) AS target, CAST(c.directory AS TEXT) AS directory,
       (c.ended_ns - c.started_ns) / 1e9 AS seconds, c.exit_code
FROM command c WHERE c.test_name IS NOT NULL;
