-- warden schema v1: programs, their live process identity, lifecycle events, users, tokens, sessions, audit.

CREATE TABLE programs (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,            -- the ProgramSpec as JSON (same field names as the API)
    created_at  INTEGER NOT NULL,         -- unix ms
    updated_at  INTEGER NOT NULL
) STRICT;

-- Identity of a child that is (or was, until warden crashed) running: pid plus the
-- process start time read from the OS, so a reused pid is never mistaken for our child.
CREATE TABLE program_runtime (
    name        TEXT PRIMARY KEY REFERENCES programs(name) ON DELETE CASCADE,
    pid         INTEGER NOT NULL,
    start_time  INTEGER NOT NULL,
    started_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,            -- unix ms
    program  TEXT,                        -- NULL for warden's own events
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL,
    data     TEXT                         -- JSON details
) STRICT;
CREATE INDEX events_by_program ON events(program, id);
CREATE INDEX events_by_ts ON events(ts);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,         -- argon2id PHC string
    role           TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    public_id     TEXT NOT NULL UNIQUE,   -- the non-secret part of the token, for lookup
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    secret_hash   BLOB NOT NULL,          -- SHA-256 of the secret part
    created_by    TEXT,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
) STRICT;

CREATE TABLE sessions (
    id_hash     BLOB PRIMARY KEY,         -- SHA-256 of the cookie value
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    ts      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT
) STRICT;
