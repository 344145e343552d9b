-- Zones (取水总量控制分区) and water-abstraction permits (取水许可).
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
    annual_volume_m3      BIGINT NOT NULL CHECK (annual_volume_m3 >= 0),
    daily_max_volume_m3   BIGINT CHECK (daily_max_volume_m3 >= 0),
    return_location       TEXT,
    return_method         TEXT,
    meter_status          TEXT NOT NULL,
    valid_from            DATE,
    valid_to              DATE,
    status                TEXT NOT NULL,
    submitted_on          DATE,
    decided_on            DATE,
    status_changed_on     DATE,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    version               BIGINT NOT NULL
);
CREATE INDEX permits_holder ON permits (holder_id);
CREATE INDEX permits_zone_status ON permits (zone_id, status, valid_to);
CREATE INDEX permits_status_valid_to ON permits (status, valid_to, id);
