-- makescope record: a test's result when `makescope test` ran it again.
--
-- Each re-run is recorded as a replay (a build of kind `replay`, each of its commands
-- naming the recorded command it re-ran in `command.replay_of`); this table keeps the
-- results the test's convention reported for that run, one row per test (a DejaGnu
-- command runs many), and what `tests` listed for it just before. `tests` lists a
-- test's newest re-run result, and what the build said:
--   SELECT t.name, t.result, t.before FROM test_rerun t JOIN command c ON c.id = t.command_id
--   WHERE c.replay_of = 42 ORDER BY c.id;

CREATE TABLE test_rerun (
    command_id  INTEGER NOT NULL REFERENCES command(id),  -- the replay's command
    name        TEXT NOT NULL,          -- as the convention names the test
    result      TEXT NOT NULL,          -- as the project spells it (PASS, FAIL, ...)
    before      TEXT NOT NULL,          -- the result `tests` listed before this run
    note        TEXT,                   -- why, when makescope decided the result
    seconds     REAL,                   -- the test command's run time
    PRIMARY KEY (command_id, name)
);
