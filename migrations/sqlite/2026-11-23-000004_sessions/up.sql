-- Sessions end with their password: each account and service account has a token epoch, bumped (in the same
-- transaction) by a password change or reset, a role or department change, deactivation and secret rotation.
-- Access and refresh tokens carry the epoch they were issued in; older ones are refused.
ALTER TABLE accounts ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE service_accounts ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject);

-- A subject revoked "up to now" becomes an epoch bump: its earlier tokens stay void.
UPDATE accounts SET token_epoch = token_epoch + 1 WHERE id IN (SELECT value FROM revocations WHERE kind = 'sub');
UPDATE service_accounts SET token_epoch = token_epoch + 1 WHERE id IN (SELECT value FROM revocations WHERE kind = 'sub');

-- Revocations: single tokens (kind 'jti') and whole sign-in sessions (kind 'session': every access token of a
-- refresh-token family, on logout or when a used refresh token is presented again).
CREATE TABLE revocations_new (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'session')),
    value       TEXT NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
INSERT INTO revocations_new (id, kind, value, expires_at, created_at)
SELECT id, kind, value, expires_at, created_at FROM revocations WHERE kind = 'jti';
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_expires ON revocations (expires_at);

-- Withdrawals: who entered the reading (staff or the provincial platform; the platform may not overwrite
-- staff readings), and readings above what the permit can physically draw, accepted only when confirmed.
ALTER TABLE withdrawals ADD COLUMN source TEXT NOT NULL DEFAULT 'staff' CHECK (source IN ('staff', 'platform'));
ALTER TABLE withdrawals ADD COLUMN over_capacity BOOLEAN NOT NULL DEFAULT FALSE;
