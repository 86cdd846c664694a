-- Ids reserved in blocks (store/write.rs): several recorders may write one record at
-- once, each numbering its rows from blocks it reserved here, never from max(id).
-- One row per table whose ids recorders assign: the first id nobody has reserved.
CREATE TABLE next_id (
    name              TEXT PRIMARY KEY,   -- build | make | command | process
    next              INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO next_id (name, next)
    SELECT 'build', coalesce(max(id), 0) + 1 FROM build
    UNION ALL SELECT 'make', coalesce(max(id), 0) + 1 FROM make
    UNION ALL SELECT 'command', coalesce(max(id), 0) + 1 FROM command
    UNION ALL SELECT 'process', coalesce(max(id), 0) + 1 FROM process;
