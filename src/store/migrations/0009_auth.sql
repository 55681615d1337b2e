-- warden schema v9: two-factor login (TOTP), recovery codes, visible sessions, a
-- stored security policy.

-- The user's TOTP secret, sealed (`seal::AUTH`): never plain text in this file. Set at
-- enrolment; `totp_enabled` only once a code from it was confirmed. `totp_last_step`
-- is the last 30 s step a code was accepted for, so a code works once.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;

-- One-time recovery codes, stored as SHA-256 (each a random 50-bit value).
CREATE TABLE recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- Sessions a user can see and end: a public id (never the cookie or its hash), where
-- and with what the session was opened, and when it was last used.
ALTER TABLE sessions ADD COLUMN public_id TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER;
ALTER TABLE sessions ADD COLUMN address TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
UPDATE sessions SET public_id = lower(hex(randomblob(8))), last_seen_at = created_at;
CREATE UNIQUE INDEX sessions_by_public_id ON sessions(public_id);

-- Site-wide security settings (`require_2fa`: 'true' or 'false').
CREATE TABLE auth_settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;
