-- Shared machinery: the audit trail (hash chain, also the change feed), accounts, tokens, idempotency, counters, water users.
-- Instants are UTC `timestamp` (microseconds); ids are UUIDv7 text; money/volumes BIGINT.

CREATE TABLE ledger_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    audit_seq   BIGINT NOT NULL,
    audit_hash  TEXT   NOT NULL
);
INSERT INTO ledger_head (id, audit_seq, audit_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Events are inserted by the writing transaction (seq, prev_hash, hash NULL) and numbered and chained right
-- after its commit by the sequencer (audit::sequence_pending), which holds the only lock on the chain.
CREATE TABLE audit_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    seq              BIGINT UNIQUE,
    at               TIMESTAMP NOT NULL,
    actor_sub        TEXT NOT NULL,
    actor_username   TEXT,
    actor_department TEXT,
    actor_roles      TEXT NOT NULL,
    action           TEXT NOT NULL,
    entity_type      TEXT,
    entity_id        TEXT,
    before_data      TEXT,
    after_data       TEXT,
    request_id       TEXT,
    -- Part of the change feed (§4.11): an entity change the platform may read.
    in_feed          BOOLEAN NOT NULL,
    reason           TEXT,
    effective_date   DATE,
    prev_hash        TEXT,
    hash             TEXT
);
CREATE INDEX audit_events_pending ON audit_events (id) WHERE seq IS NULL;
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_sub, seq);

-- Append-only: the service never updates or deletes events; the database refuses it too.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events WHEN OLD.seq IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- The change feed is the audit trail's entity changes, numbered with it.
CREATE INDEX audit_events_feed ON audit_events (seq) WHERE in_feed;
CREATE INDEX audit_events_feed_type ON audit_events (entity_type, seq) WHERE in_feed;

CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);

CREATE TABLE departments (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    version     BIGINT NOT NULL
);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    department     TEXT NOT NULL REFERENCES departments (code),
    roles          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    active         BOOLEAN NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    version        BIGINT NOT NULL
);

CREATE TABLE service_accounts (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    client_id    TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    department   TEXT NOT NULL REFERENCES departments (code),
    roles        TEXT NOT NULL,
    active       BOOLEAN NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    version      BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash   TEXT PRIMARY KEY,
    subject      TEXT NOT NULL,
    family_id    TEXT NOT NULL,
    access_jti   TEXT NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_access_jti ON refresh_tokens (access_jti);

-- Revoked access tokens (kind 'jti') and subjects whose earlier tokens are void (kind 'sub').
CREATE TABLE revocations (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sub')),
    value       TEXT NOT NULL,
    not_before  TIMESTAMP,
    expires_at  TIMESTAMP NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX revocations_expires ON revocations (expires_at);

CREATE TABLE login_failures (
    id            TEXT PRIMARY KEY,
    username_key  TEXT NOT NULL,
    at            TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (username_key, at);

CREATE TABLE idempotency_keys (
    scope             TEXT NOT NULL,
    key               TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    status_code       INTEGER,
    response_headers  TEXT,
    response_body     BLOB,
    created_at        TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE water_users (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    credit_code           TEXT NOT NULL UNIQUE,
    legal_representative  TEXT,
    region_code           TEXT NOT NULL,
    address               TEXT,
    industry              TEXT,
    contact_phone         TEXT,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    version               BIGINT NOT NULL
);
CREATE INDEX water_users_name ON water_users (name);
CREATE INDEX water_users_region ON water_users (region_code, id);
