-- Queues. Every job waits in one queue, and a claim asks for one queue, so
-- the ready index leads with it: a claim reads only its own queue's ready
-- jobs, however many wait in others (a paused queue's backlog included).
-- A column with a constant default is added without rewriting the table.
ALTER TABLE rk_jobs ADD COLUMN queue text NOT NULL DEFAULT 'default';

DROP INDEX rk_jobs_ready;
CREATE INDEX rk_jobs_ready ON rk_jobs (queue, priority, run_at, id) WHERE status = 'pending';

-- The paused queues: no claim takes their jobs.
CREATE TABLE rk_paused_queues (
    queue text PRIMARY KEY
);
