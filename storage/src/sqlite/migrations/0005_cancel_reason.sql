-- RuneKernel SQLite schema, version 5: the reason given with a request to
-- cancel a running job, which its worker records when it commits the
-- cancellation. Cleared, with the request, when the job finishes.
ALTER TABLE rk_jobs ADD COLUMN cancel_reason TEXT;
