-- Water-resource fees (水资源费): the rate table, assessments per permit and period, and payments.

-- Unit rates by source type × purpose × optional zone class, each in force over a date range. Rows of one key
-- never overlap (checked by the service under a lock on the key). The rate is an exact decimal string, 4 places.
CREATE TABLE fee_rates (
    id               TEXT PRIMARY KEY,
    source_type      TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    zone_class       TEXT CHECK (zone_class IN ('normal', 'restricted', 'prohibited')),
    rate             TEXT NOT NULL,
    effective_from   DATE NOT NULL,
    effective_to     DATE CHECK (effective_to IS NULL OR effective_to >= effective_from),
    note             TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    version          BIGINT NOT NULL
);
CREATE INDEX fee_rates_key ON fee_rates (source_type, purpose, zone_class, effective_from);

-- One assessment per kind, permit and period (re-running a period never duplicates). `lines` is the JSON list
-- of months that explains the amount; `paid_fen` / `late_fee_paid_fen` are the sums of the payments.
CREATE TABLE fee_assessments (
    id                  TEXT PRIMARY KEY,
    kind                TEXT NOT NULL CHECK (kind IN ('water_resource_fee', 'over_plan_surcharge', 'tax_referral')),
    payer_id            TEXT NOT NULL REFERENCES water_users (id),
    permit_id           TEXT REFERENCES permits (id),
    period              TEXT NOT NULL,
    months              TEXT NOT NULL,
    volume_m3           BIGINT NOT NULL CHECK (volume_m3 >= 0),
    amount_fen          BIGINT NOT NULL CHECK (amount_fen >= 0),
    lines               TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('assessed', 'notified', 'partially_paid', 'paid', 'deferred', 'waived', 'referred')),
    notice_no           TEXT UNIQUE,
    notified_on         DATE,
    due_date            DATE,
    request_kind        TEXT CHECK (request_kind IN ('deferral', 'waiver')),
    request_until       DATE,
    request_reason      TEXT,
    request_on          DATE,
    deferred_until      DATE,
    waived_on           DATE,
    paid_fen            BIGINT NOT NULL CHECK (paid_fen >= 0 AND paid_fen <= amount_fen),
    late_fee_paid_fen   BIGINT NOT NULL CHECK (late_fee_paid_fen >= 0),
    last_paid_on        DATE,
    last_step_on        DATE,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    version             BIGINT NOT NULL,
    UNIQUE (kind, permit_id, period)
);
CREATE INDEX fee_assessments_period ON fee_assessments (period, id);
CREATE INDEX fee_assessments_payer ON fee_assessments (payer_id, id);
CREATE INDEX fee_assessments_status ON fee_assessments (status, id);

CREATE TABLE payments (
    id                      TEXT PRIMARY KEY,
    assessment_id           TEXT NOT NULL REFERENCES fee_assessments (id),
    amount_fen              BIGINT NOT NULL CHECK (amount_fen > 0),
    principal_fen           BIGINT NOT NULL CHECK (principal_fen >= 0),
    late_fee_fen            BIGINT NOT NULL CHECK (late_fee_fen >= 0),
    outstanding_after_fen   BIGINT NOT NULL CHECK (outstanding_after_fen >= 0),
    paid_on                 DATE NOT NULL,
    method                  TEXT NOT NULL CHECK (method IN ('cash', 'bank_transfer', 'pos', 'online', 'other')),
    receipt_no              TEXT NOT NULL UNIQUE,
    note                    TEXT,
    recorded_by             TEXT NOT NULL,
    created_at              TIMESTAMP NOT NULL,
    updated_at              TIMESTAMP NOT NULL,
    version                 BIGINT NOT NULL,
    CHECK (principal_fen + late_fee_fen = amount_fen)
);
CREATE INDEX payments_assessment ON payments (assessment_id, paid_on, id);
CREATE INDEX payments_paid_on ON payments (paid_on, id);
