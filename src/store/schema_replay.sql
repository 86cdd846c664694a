-- makescope record: replays are runs too.
--
-- `makescope replay` runs one recorded recipe again, traced, and records that run as a
-- build of its own: `build.kind` says which builds are builds of the project (`make`)
-- and which are replays (`replay`); each of a replay's commands names the recorded
-- command it re-ran (`command.replay_of`). `log` and "the last build" skip replays;
-- `show` lists a command's replays and compares their files with its own.

ALTER TABLE build ADD COLUMN kind TEXT NOT NULL DEFAULT 'make';   -- make | replay
ALTER TABLE command ADD COLUMN replay_of INTEGER REFERENCES command(id);
CREATE INDEX command_replay_of ON command(replay_of) WHERE replay_of IS NOT NULL;
