-- Zones (取水总量控制分区), water-abstraction permits (取水许可) and their monthly withdrawals.
CREATE TABLE water_zones (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL UNIQUE,
    source_type             TEXT NOT NULL,
    zone_class              TEXT NOT NULL CHECK (zone_class IN ('normal', 'restricted', 'prohibited')),
    allowable_m3_per_year   BIGINT NOT NULL CHECK (allowable_m3_per_year >= 0),
    created_at              TIMESTAMP NOT NULL,
    updated_at              TIMESTAMP NOT NULL,
    version                 BIGINT NOT NULL
);

CREATE TABLE permits (
    id                    TEXT PRIMARY KEY,
    permit_no             TEXT UNIQUE,
    holder_id             TEXT NOT NULL REFERENCES water_users (id),
    zone_id               TEXT REFERENCES water_zones (id),
    source_type           TEXT NOT NULL,
    intake_method         TEXT,
    purpose               TEXT NOT NULL,
    intake_lat            REAL,
    intake_lng            REAL,
    intake_address        TEXT,
    annual_volume_m3      BIGINT NOT NULL CHECK (annual_volume_m3 > 0),
    daily_max_volume_m3   BIGINT CHECK (daily_max_volume_m3 > 0),
    return_location       TEXT,
    return_method         TEXT,
    meter_status          TEXT NOT NULL,
    valid_from            DATE,
    valid_to              DATE,
    status                TEXT NOT NULL,
    submitted_on          DATE,
    approved_on           DATE,
    rejected_on           DATE,
    suspended_on          DATE,
    revoked_on            DATE,
    cancelled_on          DATE,
    renewed_on            DATE,
    last_step_on          DATE,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    version               BIGINT NOT NULL
);
CREATE INDEX permits_holder ON permits (holder_id, id);
CREATE INDEX permits_zone_status ON permits (zone_id, status, valid_to, id);
CREATE INDEX permits_status_valid_to ON permits (status, valid_to, id);

-- One current record per permit and month; corrections add a revision and mark the previous one superseded.
CREATE TABLE withdrawals (
    id            TEXT PRIMARY KEY,
    permit_id     TEXT NOT NULL REFERENCES permits (id),
    period        TEXT NOT NULL,
    revision      INTEGER NOT NULL,
    superseded    BOOLEAN NOT NULL,
    volume_m3     BIGINT NOT NULL CHECK (volume_m3 >= 0),
    method        TEXT NOT NULL CHECK (method IN ('online_meter', 'manual_reading', 'max_capacity')),
    reported_by   TEXT NOT NULL,
    note          TEXT,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       BIGINT NOT NULL,
    UNIQUE (permit_id, period, revision)
);
CREATE INDEX withdrawals_period ON withdrawals (period, superseded);
