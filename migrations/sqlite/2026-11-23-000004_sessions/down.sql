ALTER TABLE withdrawals DROP COLUMN over_capacity;
ALTER TABLE withdrawals DROP COLUMN source;
CREATE TABLE revocations_old (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sub')),
    value       TEXT NOT NULL,
    not_before  TIMESTAMP,
    expires_at  TIMESTAMP NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
INSERT INTO revocations_old (id, kind, value, not_before, expires_at, created_at)
SELECT id, kind, value, NULL, expires_at, created_at FROM revocations WHERE kind = 'jti';
DROP TABLE revocations;
ALTER TABLE revocations_old RENAME TO revocations;
CREATE INDEX revocations_expires ON revocations (expires_at);
DROP INDEX refresh_tokens_subject;
ALTER TABLE refresh_tokens DROP COLUMN epoch;
ALTER TABLE service_accounts DROP COLUMN token_epoch;
ALTER TABLE accounts DROP COLUMN token_epoch;
