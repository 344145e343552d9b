-- Field inspections (巡查), who took part in them, and their findings, each of which is a rectification (整改).
CREATE TABLE inspections (
    id                    TEXT PRIMARY KEY,
    kind                  TEXT NOT NULL
        CHECK (kind IN ('water_permit', 'water_saving', 'river', 'soil_conservation', 'other')),
    target_water_user_id  TEXT NOT NULL REFERENCES water_users (id),
    permit_id             TEXT REFERENCES permits (id),
    inspected_at          TIMESTAMP NOT NULL,
    -- WGS-84 degrees, both or neither.
    lat                   DOUBLE PRECISION,
    lng                   DOUBLE PRECISION,
    notes                 TEXT,
    -- The creator's identity (an account id, or issuer#subject for an external issuer's token).
    created_by            TEXT NOT NULL,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    version               BIGINT NOT NULL,
    CHECK ((lat IS NULL) = (lng IS NULL))
);
CREATE INDEX inspections_target ON inspections (target_water_user_id, inspected_at);
CREATE INDEX inspections_inspected_at ON inspections (inspected_at);

-- The inspectors of an inspection (the creator always among them): who may see and update it when they are field
-- inspectors. Kept in step with the inspection by the service, in the inspection's own transaction.
CREATE TABLE inspection_inspectors (
    inspection_id  TEXT NOT NULL REFERENCES inspections (id),
    account_id     TEXT NOT NULL,
    position       INTEGER NOT NULL,
    PRIMARY KEY (inspection_id, account_id)
);
CREATE INDEX inspection_inspectors_account ON inspection_inspectors (account_id, inspection_id);

CREATE TABLE rectifications (
    id                 TEXT PRIMARY KEY,
    inspection_id      TEXT NOT NULL REFERENCES inspections (id),
    -- The finding's place in its inspection (1, 2, …).
    position           INTEGER NOT NULL,
    type               TEXT NOT NULL CHECK (type IN ('meter_not_working', 'meter_nonstandard', 'records_incomplete',
                           'unlicensed_abstraction', 'over_permit_abstraction', 'other')),
    description        TEXT NOT NULL,
    rectification_due  DATE NOT NULL,
    -- 'overdue' is not stored: an open one reads overdue after its due date.
    status             TEXT NOT NULL CHECK (status IN ('open', 'rectified')),
    completed_on       DATE,
    completion_note    TEXT,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    version            BIGINT NOT NULL,
    UNIQUE (inspection_id, position),
    CHECK ((status = 'rectified') = (completed_on IS NOT NULL))
);
-- Open ones by due date: the overdue list.
CREATE INDEX rectifications_due ON rectifications (status, rectification_due, id);

-- Enforcement cases (行政处罚案件): here the record a case starts as (a clue, from an escalated inspection or
-- entered directly); the later stages add their columns with the penalty-case work.
CREATE TABLE cases (
    id                    TEXT PRIMARY KEY,
    case_no               TEXT UNIQUE,
    stage                 TEXT NOT NULL CHECK (stage IN ('clue', 'filed', 'investigating', 'notified', 'hearing',
                              'legal_review', 'decided', 'no_penalty', 'transferred', 'served', 'executing', 'closed')),
    water_user_id         TEXT REFERENCES water_users (id),
    party_name            TEXT NOT NULL,
    party_id_number       TEXT,
    party_kind            TEXT NOT NULL CHECK (party_kind IN ('organisation', 'person')),
    violation_type        TEXT NOT NULL CHECK (violation_type IN ('unlicensed_abstraction', 'over_permit_abstraction',
                              'no_meter', 'meter_tampering', 'flood_obstruction', 'illegal_sand_mining',
                              'soil_conservation', 'other')),
    facts                 TEXT NOT NULL,
    legal_basis           TEXT,
    -- One case per inspection at most.
    source_inspection_id  TEXT UNIQUE REFERENCES inspections (id),
    -- JSON: the findings carried over from the inspection ([{type, description, rectification_due}]).
    findings              TEXT NOT NULL,
    clue_on               DATE NOT NULL,
    created_by            TEXT NOT NULL,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    version               BIGINT NOT NULL
);
CREATE INDEX cases_stage ON cases (stage, id);
