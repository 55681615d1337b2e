-- Schedules (timed task chains) and batch jobs: definitions, run history, leases.

CREATE TABLE schedules (
    name          TEXT PRIMARY KEY,
    spec          TEXT NOT NULL,          -- the ScheduleSpec as JSON (same field names as the API)
    created_at    INTEGER NOT NULL,       -- unix ms
    updated_at    INTEGER NOT NULL,
    last_fire_at  INTEGER                 -- the fire time (unix ms) of the last run; missed runs are counted from it
) STRICT;

-- One execution of a schedule's task chain (fired by time, run by hand, or skipped).
CREATE TABLE schedule_runs (
    id             INTEGER PRIMARY KEY,
    schedule       TEXT NOT NULL REFERENCES schedules(name) ON DELETE CASCADE,
    source         TEXT NOT NULL,         -- 'schedule', 'missed' or 'manual:<user>'
    scheduled_for  INTEGER,               -- the fire time it belongs to (NULL for manual runs)
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER,
    state          TEXT NOT NULL,         -- running, succeeded, failed, cancelled, skipped, interrupted
    error          TEXT,
    tasks          TEXT NOT NULL          -- JSON array of per-task results
) STRICT;
CREATE INDEX schedule_runs_by_schedule ON schedule_runs(schedule, id);

CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,            -- the JobSpec as JSON
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- One run of a job. Skipped triggers are recorded too, so history explains every trigger.
CREATE TABLE job_runs (
    id                INTEGER PRIMARY KEY,
    job               TEXT NOT NULL REFERENCES jobs(name) ON DELETE CASCADE,
    source            TEXT NOT NULL,      -- 'manual:<user>', 'schedule:<name>'
    state             TEXT NOT NULL,      -- running, succeeded, failed, cancelled, skipped, interrupted
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    duration_ms       INTEGER,
    retries           INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    predicted_p50_ms  INTEGER,            -- the prediction shown when the run started
    predicted_p90_ms  INTEGER,
    owner             TEXT                -- lease owner (warden instance) that ran it
) STRICT;
CREATE INDEX job_runs_by_job ON job_runs(job, id);
CREATE INDEX job_runs_running ON job_runs(state) WHERE state = 'running';

-- One attempt of one step. pid + start_time identify the process across warden restarts.
CREATE TABLE step_runs (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES job_runs(id) ON DELETE CASCADE,
    step         TEXT NOT NULL,
    attempt      INTEGER NOT NULL,        -- 0 for the first try; equals the retry count
    state        TEXT NOT NULL,           -- running, succeeded, failed, cancelled, lost
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    duration_ms  INTEGER,
    pid          INTEGER,
    start_time   INTEGER,                 -- OS start time of pid (see os::process_start_time)
    exit_code    INTEGER,
    signal       TEXT,
    failure      TEXT,                    -- exit, timeout, spawn, cancelled
    message      TEXT,
    output_tail  TEXT
) STRICT;
CREATE INDEX step_runs_by_run ON step_runs(run_id, id);

-- At most one runner per job: a warden instance holds the row while a run is in progress
-- and renews it; an expired row, or one whose owner process is gone, may be taken over.
CREATE TABLE job_leases (
    job               TEXT PRIMARY KEY REFERENCES jobs(name) ON DELETE CASCADE,
    owner             TEXT NOT NULL,      -- random id of the warden instance
    owner_pid         INTEGER NOT NULL,
    owner_start_time  INTEGER NOT NULL,
    run_id            INTEGER,
    acquired_at       INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL
) STRICT;
