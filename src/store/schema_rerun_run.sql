-- makescope record: rebuild's re-runs are traced runs, and a file state says when it
-- was taken.
--
-- `makescope rebuild` re-runs each out-of-date recipe as a traced replay (a build of
-- kind `replay`, each command naming the one it re-ran, as `makescope replay` records
-- it). `rerun.run_command_id` is the newest successful such run of a recorded line:
-- what that run read, executed, wrote and probed is what the next out-of-date query
-- uses for the line instead of the build's accesses (NULL: not re-run traced yet).
--
-- `file_state.taken_ns`: when `rebuild` rewrote the row (NULL: when the build's states
-- were taken, `file_state_taken.taken_ns`). A file whose mtime is not older than its
-- state's taking by more than a timestamp tick is "racily clean" (git's term): an
-- edit in the same tick could leave its stat unchanged, so it is hashed again.

ALTER TABLE rerun ADD COLUMN run_command_id INTEGER REFERENCES command(id);
ALTER TABLE file_state ADD COLUMN taken_ns INTEGER;
