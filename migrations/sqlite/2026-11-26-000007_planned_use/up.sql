-- Planned water use (计划用水): planned-water users, their annual plans and their monthly usage.
CREATE TABLE planned_users (
    id              TEXT PRIMARY KEY,
    -- One planned user per water user (the credit code is the key of a bulk import).
    water_user_id   TEXT NOT NULL UNIQUE REFERENCES water_users (id),
    category        TEXT NOT NULL CHECK (category IN ('non_residential', 'self_supplied', 'temporary_construction')),
    supply          TEXT NOT NULL CHECK (supply IN ('public_network', 'own_source')),
    -- Yuan per m³, an exact decimal string ("3.4500"); null: the price configured for the category.
    base_price      TEXT,
    active          BOOLEAN NOT NULL,
    note            TEXT,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    version         BIGINT NOT NULL
);
CREATE INDEX planned_users_category ON planned_users (category, id);

-- One plan per planned user and year; an adjustment changes it in place (status 'adjusted', version + 1) and the
-- audit trail keeps every earlier state (GET /plans/{id}/history).
CREATE TABLE plans (
    id               TEXT PRIMARY KEY,
    planned_user_id  TEXT NOT NULL REFERENCES planned_users (id),
    year             INTEGER NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    annual_m3        BIGINT NOT NULL CHECK (annual_m3 >= 0),
    -- JSON array of the 12 monthly quantities (m³), summing to annual_m3.
    monthly_m3       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('issued', 'adjusted')),
    issued_on        DATE NOT NULL,
    adjusted_on      DATE,
    reason           TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    version          BIGINT NOT NULL,
    UNIQUE (planned_user_id, year)
);
CREATE INDEX plans_year ON plans (year, planned_user_id);

-- Monthly usage; a second report for a month is a correction: a new revision, the earlier one kept, superseded.
CREATE TABLE planned_usage (
    id               TEXT PRIMARY KEY,
    planned_user_id  TEXT NOT NULL REFERENCES planned_users (id),
    period           TEXT NOT NULL,
    revision         INTEGER NOT NULL,
    superseded       BOOLEAN NOT NULL,
    volume_m3        BIGINT NOT NULL CHECK (volume_m3 >= 0),
    source           TEXT NOT NULL CHECK (source IN ('staff', 'platform')),
    reported_by      TEXT NOT NULL,
    note             TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    version          BIGINT NOT NULL,
    UNIQUE (planned_user_id, period, revision)
);
CREATE INDEX planned_usage_period ON planned_usage (period, superseded);
