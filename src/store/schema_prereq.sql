-- makescope record: make's declared graph.
--
-- For every target a make process considered while it ran (on the way from a goal,
-- whether or not its recipe ran), the prerequisites as make had resolved them when it
-- exited: normal ones (`$^`, explicit and from the pattern rule it chose) and
-- order-only ones (`$|`), each list in make's order. Names are as make spells them:
-- relative to the make's directory unless absolute. They come from the make database
-- the plugin dumps when each make exits (`make.makedb_path`); make's special targets
-- that change ordering (`.NOTPARALLEL`) are kept whether considered or not.
-- "Did make know that B needs A?":
--   SELECT * FROM prerequisites WHERE target = 'B' AND prerequisite = 'A';

CREATE TABLE prereq (
    build_id          INTEGER NOT NULL REFERENCES build(id),
    make_id           INTEGER NOT NULL REFERENCES make(id),
    target            BLOB NOT NULL,
    phony             INTEGER NOT NULL,
    recipe_file       BLOB,               -- where its recipe is, when it has one
    recipe_line       INTEGER,
    prerequisites     TEXT NOT NULL,      -- JSON array of names
    order_only        TEXT NOT NULL       -- JSON array of names
);
CREATE INDEX prereq_make ON prereq(make_id);

CREATE VIEW prerequisites AS
SELECT p.build_id, p.make_id, CAST(m.directory AS TEXT) AS directory,
       CAST(p.target AS TEXT) AS target, e.value AS prerequisite, 0 AS order_only
FROM prereq p JOIN make m ON m.id = p.make_id CROSS JOIN json_each(p.prerequisites) e
UNION ALL
SELECT p.build_id, p.make_id, CAST(m.directory AS TEXT) AS directory,
       CAST(p.target AS TEXT) AS target, e.value AS prerequisite, 1 AS order_only
FROM prereq p JOIN make m ON m.id = p.make_id CROSS JOIN json_each(p.order_only) e;
