-- RuneKernel SQLite schema, version 2: no IN lists in the status CHECK or in
-- the finished-jobs index. SQLite evaluates `x IN (a, b, c)` of three or more
-- values through a temporary B-tree built at each execution, and every UPDATE
-- of a job evaluated three of them: a third of the writer thread's time.
-- SQLite cannot alter a CHECK constraint, so the table is rebuilt as
-- https://sqlite.org/lang_altertable.html#otheralter describes; the history
-- refers to jobs by id, so it is unaffected.
CREATE TABLE rk_jobs_v2 (
    id               BLOB    NOT NULL PRIMARY KEY,
    machine          TEXT    NOT NULL,
    fingerprint      INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status = 'pending' OR status = 'running' OR status = 'completed'
                                             OR status = 'failed' OR status = 'cancelled'),
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

INSERT INTO rk_jobs_v2 (id, machine, fingerprint, state, payload, status, priority, run_at, attempts, max_attempts,
                        timeout_ms, lease_owner, lease_token, lease_expires_at, version, idempotency_key,
                        cancel_requested, created_at, updated_at, last_error)
SELECT id, machine, fingerprint, state, payload, status, priority, run_at, attempts, max_attempts,
       timeout_ms, lease_owner, lease_token, lease_expires_at, version, idempotency_key,
       cancel_requested, created_at, updated_at, last_error
FROM rk_jobs;

DROP TABLE rk_jobs;
ALTER TABLE rk_jobs_v2 RENAME TO rk_jobs;

-- Claims read only these partial indexes, so their cost does not grow with
-- the number of finished jobs. A query uses a partial index only if its WHERE
-- clause repeats the index's condition word for word.
CREATE INDEX rk_jobs_ready ON rk_jobs (priority, run_at, id) WHERE status = 'pending';
CREATE INDEX rk_jobs_leases ON rk_jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX rk_jobs_finished ON rk_jobs (updated_at) WHERE status <> 'pending' AND status <> 'running';
CREATE UNIQUE INDEX rk_jobs_idempotency ON rk_jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
