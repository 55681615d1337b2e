-- Alerts: channel and rule definitions, and the delivery outbox (which doubles as the
-- delivery log: rows stay after delivery until pruned).

CREATE TABLE alert_channels (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,            -- the channel definition as JSON, secrets included
    created_at  INTEGER NOT NULL,         -- unix ms
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE alert_rules (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,            -- the rule definition as JSON
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- One row per (notification, channel). Written before any delivery is attempted.
CREATE TABLE alert_outbox (
    id               INTEGER PRIMARY KEY,
    channel_id       INTEGER NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
    created_at       INTEGER NOT NULL,    -- unix ms when queued
    severity         INTEGER NOT NULL,    -- 0 info, 1 warning, 2 critical (drop order when full)
    event            TEXT NOT NULL,       -- event kind, e.g. crashed
    program          TEXT,
    notification     TEXT NOT NULL,       -- the notification as JSON; rendered per channel at send time
    status           TEXT NOT NULL,       -- pending | delivered | failed | dropped
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          INTEGER NOT NULL,    -- unix ms of the next attempt (pending rows)
    last_attempt_at  INTEGER,
    last_status      INTEGER,             -- HTTP status of the last answer
    last_error       TEXT,                -- readable; never contains URLs or tokens
    done_at          INTEGER              -- unix ms when it left `pending`
) STRICT;
CREATE INDEX alert_outbox_pending ON alert_outbox(channel_id, id) WHERE status = 'pending';
CREATE INDEX alert_outbox_pending_drop ON alert_outbox(severity, id) WHERE status = 'pending';
CREATE INDEX alert_outbox_by_channel ON alert_outbox(channel_id, id);
CREATE INDEX alert_outbox_done ON alert_outbox(done_at) WHERE status != 'pending';
