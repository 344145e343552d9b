-- Idempotency keys: the claim token of the request holding an in-flight key. The write that answers the request
-- marks the key done in its own transaction only while the token is still its own, so a retry that took an
-- abandoned key over and the original request can never both commit.
ALTER TABLE idempotency_keys ADD COLUMN claim_token TEXT NOT NULL DEFAULT '';
