-- RuneKernel Postgres schema. Runs with search_path set to the configured
-- schema, so every name here lands in it.
CREATE TABLE rk_jobs (
    id               uuid    PRIMARY KEY,
    machine          text    NOT NULL,
    fingerprint      bigint  NOT NULL,
    state            text    NOT NULL,
    payload          json    NOT NULL, -- json, not jsonb: keeps any string (jsonb rejects \u0000)
    status           text    NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    priority         integer NOT NULL,
    run_at           bigint  NOT NULL,
    attempts         integer NOT NULL,
    max_attempts     integer NOT NULL,
    timeout_ms       bigint,
    lease_owner      text,
    lease_token      bigint,
    lease_expires_at bigint,
    version          bigint  NOT NULL,
    idempotency_key  text,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at       bigint  NOT NULL,
    updated_at       bigint  NOT NULL,
    last_error       text
);

-- Claims read only these partial indexes, so finished jobs do not slow them.
CREATE INDEX rk_jobs_ready ON rk_jobs (priority, run_at, id) WHERE status = 'pending';
CREATE INDEX rk_jobs_leases ON rk_jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX rk_jobs_finished ON rk_jobs (updated_at) WHERE status IN ('completed', 'failed', 'cancelled');
CREATE UNIQUE INDEX rk_jobs_idempotency ON rk_jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE rk_history (
    job_id     uuid    NOT NULL,
    seq        bigint  NOT NULL,
    from_state text,
    to_state   text    NOT NULL,
    status     text    NOT NULL,
    error      text,
    at         bigint  NOT NULL,
    attempt    integer NOT NULL,
    worker     text,
    payload    json    NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Fencing tokens, strictly increasing across every process.
CREATE SEQUENCE rk_lease_tokens;
