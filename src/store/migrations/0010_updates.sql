-- What an installed server is and where its update stands: template, source and installed
-- build, the last check, and the step of an update under way (persisted before every
-- irreversible step so a restarted warden can roll it back). One JSON record per program.
CREATE TABLE program_updates (
    program    TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
