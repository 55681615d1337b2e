-- Backups: per-program settings, one row per backup attempt, one row per restore.

CREATE TABLE backup_settings (
    program     TEXT PRIMARY KEY REFERENCES programs(name) ON DELETE CASCADE,
    settings    TEXT NOT NULL,            -- BackupSettings as JSON (same field names as the API)
    updated_at  INTEGER NOT NULL          -- unix ms
) STRICT;

-- No foreign key to programs: a backup outlives the program it was taken of (its files
-- stay on disk until deleted or pruned).
CREATE TABLE backups (
    id               INTEGER PRIMARY KEY,
    program          TEXT NOT NULL,
    status           TEXT NOT NULL,       -- running | ok | failed | cancelled | interrupted
    reason           TEXT NOT NULL,       -- who or what asked for it
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    path             TEXT,                -- the finished backup's directory (archive + manifest)
    archive_bytes    INTEGER,
    files            INTEGER,
    data_bytes       INTEGER,
    checksum         TEXT,                -- BLAKE3 of the archive file, hex
    error            TEXT,
    warnings         TEXT,                -- JSON array of strings
    verified_at      INTEGER,
    verify_ok        INTEGER,             -- 0/1 of the last verification
    verify_problems  TEXT                 -- JSON array of {path, problem}
) STRICT;
CREATE INDEX backups_by_program ON backups(program, id);

CREATE TABLE restores (
    id            INTEGER PRIMARY KEY,
    backup_id     INTEGER NOT NULL,
    program       TEXT NOT NULL,
    status        TEXT NOT NULL,          -- running | ok | failed | interrupted
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    target        TEXT NOT NULL,          -- the directory being replaced
    staging       TEXT NOT NULL,          -- where the archive is extracted first
    rollback      TEXT,                   -- the previous data, set just before the swap
    error         TEXT,
    discarded_at  INTEGER                 -- when the rollback copy was deleted
) STRICT;
CREATE INDEX restores_by_program ON restores(program, id);
