-- warden schema v8: the other wardens this one knows (fleet nodes).

-- `token` is an API token of the node; it is sent only to that node and never shown
-- back (the data directory is warden's user's alone). `fingerprint` pins the SHA-256 of
-- the node's TLS certificate; `allow_insecure` records that plain HTTP to a host that
-- is not loopback was explicitly allowed.
CREATE TABLE fleet_nodes (
    name            TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    token           TEXT NOT NULL,
    fingerprint     TEXT,
    allow_insecure  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
) STRICT;
