-- warden schema v6: per-program grants, a readable audit log.

-- Permissions given to one user or API token on all programs, one program, or programs
-- with a tag. `perms` is a comma-separated list of permission names.
CREATE TABLE grants (
    id            INTEGER PRIMARY KEY,
    subject_kind  TEXT NOT NULL,          -- 'user' or 'token'
    subject       TEXT NOT NULL,          -- user name or token public id
    scope_kind    TEXT NOT NULL,          -- 'all', 'program' or 'tag'
    scope         TEXT NOT NULL,          -- program name or tag ('' for all)
    perms         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE(subject_kind, subject, scope_kind, scope)
) STRICT;

-- The audit log names the program a change touched, how it ended and where it came from.
ALTER TABLE audit ADD COLUMN program TEXT;
ALTER TABLE audit ADD COLUMN result TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE audit ADD COLUMN address TEXT;
CREATE INDEX audit_by_ts ON audit(ts);
