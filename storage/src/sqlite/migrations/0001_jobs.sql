-- RuneKernel SQLite schema, version 1: the jobs, their history and the lease-token counter.
CREATE TABLE rk_jobs (
    id               BLOB    NOT NULL PRIMARY KEY,
    machine          TEXT    NOT NULL,
    fingerprint      INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    priority         INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    timeout_ms       INTEGER,
    lease_owner      TEXT,
    lease_token      INTEGER,
    lease_expires_at INTEGER,
    version          INTEGER NOT NULL,
    idempotency_key  TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_error       TEXT
);

-- Claims read only these partial indexes, so their cost does not grow with
-- the number of finished jobs.
CREATE INDEX rk_jobs_ready ON rk_jobs (priority, run_at, id) WHERE status = 'pending';
CREATE INDEX rk_jobs_leases ON rk_jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX rk_jobs_finished ON rk_jobs (updated_at) WHERE status IN ('completed', 'failed', 'cancelled');
CREATE UNIQUE INDEX rk_jobs_idempotency ON rk_jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE rk_history (
    job_id     BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    error      TEXT,
    at         INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    worker     TEXT,
    payload    TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- The next lease token: strictly increasing across restarts and processes.
CREATE TABLE rk_meta (
    key   TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO rk_meta (key, value) VALUES ('next_lease_token', 1);
