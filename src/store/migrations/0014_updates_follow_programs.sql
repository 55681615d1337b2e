-- An update record belongs to its program: deleting the program deletes it in the same
-- transaction, whatever deletes it, so a new program of the same name never inherits
-- another's template, source or installed build. Records of programs already gone are
-- dropped. (SQLite adds a foreign key only by rebuilding the table.)
CREATE TABLE program_updates_new (
    program    TEXT PRIMARY KEY REFERENCES programs(name) ON DELETE CASCADE,
    record     TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
INSERT INTO program_updates_new (program, record, updated_ms)
    SELECT program, record, updated_ms FROM program_updates
    WHERE program IN (SELECT name FROM programs);
DROP TABLE program_updates;
ALTER TABLE program_updates_new RENAME TO program_updates;
