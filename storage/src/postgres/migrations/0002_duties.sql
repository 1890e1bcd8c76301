-- Who holds each runtime-wide duty (pruning), and until when.
CREATE TABLE rk_duties (
    name       TEXT   NOT NULL PRIMARY KEY,
    owner      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
