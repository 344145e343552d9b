-- Penalty cases through every legal stage (docs/domain.md, "Administrative penalties"), and the bureau's
-- working-day calendar that publication deadlines are counted on.

-- One row per year: the public holidays and the weekend days that are working days (调休), as JSON arrays of
-- dates, and the notice they come from. A year without a row has no working-day arithmetic (an explicit error).
CREATE TABLE calendar_years (
    id          TEXT PRIMARY KEY,
    year        INTEGER NOT NULL UNIQUE CHECK (year BETWEEN 1900 AND 9999),
    source      TEXT,
    holidays    TEXT NOT NULL,
    workdays    TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    version     BIGINT NOT NULL
);

-- The State Council's published schedules, 2022-2026.
INSERT INTO calendar_years (id, year, source, holidays, workdays, created_at, updated_at, version) VALUES
    ('2022', 2022, '国务院办公厅关于2022年部分节假日安排的通知（国办发明电〔2021〕11号）',
     '["2022-01-01","2022-01-02","2022-01-03","2022-01-31","2022-02-01","2022-02-02","2022-02-03","2022-02-04","2022-02-05","2022-02-06","2022-04-03","2022-04-04","2022-04-05","2022-04-30","2022-05-01","2022-05-02","2022-05-03","2022-05-04","2022-06-03","2022-06-04","2022-06-05","2022-09-10","2022-09-11","2022-09-12","2022-10-01","2022-10-02","2022-10-03","2022-10-04","2022-10-05","2022-10-06","2022-10-07"]',
     '["2022-01-29","2022-01-30","2022-04-02","2022-04-24","2022-05-07","2022-10-08","2022-10-09"]',
     TIMESTAMP '2026-11-30 00:00:00', TIMESTAMP '2026-11-30 00:00:00', 1);
INSERT INTO calendar_years (id, year, source, holidays, workdays, created_at, updated_at, version) VALUES
    ('2023', 2023, '国务院办公厅关于2023年部分节假日安排的通知（国办发明电〔2022〕16号）',
     '["2023-01-01","2023-01-02","2023-01-21","2023-01-22","2023-01-23","2023-01-24","2023-01-25","2023-01-26","2023-01-27","2023-04-05","2023-04-29","2023-04-30","2023-05-01","2023-05-02","2023-05-03","2023-06-22","2023-06-23","2023-06-24","2023-09-29","2023-09-30","2023-10-01","2023-10-02","2023-10-03","2023-10-04","2023-10-05","2023-10-06"]',
     '["2023-01-28","2023-01-29","2023-04-23","2023-05-06","2023-06-25","2023-10-07","2023-10-08"]',
     TIMESTAMP '2026-11-30 00:00:00', TIMESTAMP '2026-11-30 00:00:00', 1);
INSERT INTO calendar_years (id, year, source, holidays, workdays, created_at, updated_at, version) VALUES
    ('2024', 2024, '国务院办公厅关于2024年部分节假日安排的通知（国办发明电〔2023〕7号）',
     '["2024-01-01","2024-02-10","2024-02-11","2024-02-12","2024-02-13","2024-02-14","2024-02-15","2024-02-16","2024-02-17","2024-04-04","2024-04-05","2024-04-06","2024-05-01","2024-05-02","2024-05-03","2024-05-04","2024-05-05","2024-06-10","2024-09-15","2024-09-16","2024-09-17","2024-10-01","2024-10-02","2024-10-03","2024-10-04","2024-10-05","2024-10-06","2024-10-07"]',
     '["2024-02-04","2024-02-18","2024-04-07","2024-04-28","2024-05-11","2024-09-14","2024-09-29","2024-10-12"]',
     TIMESTAMP '2026-11-30 00:00:00', TIMESTAMP '2026-11-30 00:00:00', 1);
INSERT INTO calendar_years (id, year, source, holidays, workdays, created_at, updated_at, version) VALUES
    ('2025', 2025, '国务院办公厅关于2025年部分节假日安排的通知（国办发明电〔2024〕12号）',
     '["2025-01-01","2025-01-28","2025-01-29","2025-01-30","2025-01-31","2025-02-01","2025-02-02","2025-02-03","2025-02-04","2025-04-04","2025-04-05","2025-04-06","2025-05-01","2025-05-02","2025-05-03","2025-05-04","2025-05-05","2025-05-31","2025-06-01","2025-06-02","2025-10-01","2025-10-02","2025-10-03","2025-10-04","2025-10-05","2025-10-06","2025-10-07","2025-10-08"]',
     '["2025-01-26","2025-02-08","2025-04-27","2025-09-28","2025-10-11"]',
     TIMESTAMP '2026-11-30 00:00:00', TIMESTAMP '2026-11-30 00:00:00', 1);
INSERT INTO calendar_years (id, year, source, holidays, workdays, created_at, updated_at, version) VALUES
    ('2026', 2026, '国务院办公厅关于2026年部分节假日安排的通知（国办发明电〔2025〕7号）',
     '["2026-01-01","2026-01-02","2026-01-03","2026-02-15","2026-02-16","2026-02-17","2026-02-18","2026-02-19","2026-02-20","2026-02-21","2026-02-22","2026-02-23","2026-04-04","2026-04-05","2026-04-06","2026-05-01","2026-05-02","2026-05-03","2026-05-04","2026-05-05","2026-06-19","2026-06-20","2026-06-21","2026-09-25","2026-09-26","2026-09-27","2026-10-01","2026-10-02","2026-10-03","2026-10-04","2026-10-05","2026-10-06","2026-10-07"]',
     '["2026-01-04","2026-02-14","2026-02-28","2026-05-09","2026-09-20","2026-10-10"]',
     TIMESTAMP '2026-11-30 00:00:00', TIMESTAMP '2026-11-30 00:00:00', 1);

-- The stages' dates and figures that lists filter and sort on; the rest of each step (who decided, the legal
-- review, hearing, penalty content, publication address, payments made) is the JSON column `process`.
ALTER TABLE cases ADD COLUMN filed_on DATE;
ALTER TABLE cases ADD COLUMN decision_due DATE;
ALTER TABLE cases ADD COLUMN notified_on DATE;
ALTER TABLE cases ADD COLUMN proposed_fine_fen BIGINT;
ALTER TABLE cases ADD COLUMN statement_waived BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cases ADD COLUMN outcome TEXT CHECK (outcome IN ('penalty', 'no_penalty', 'transfer'));
ALTER TABLE cases ADD COLUMN fine_fen BIGINT;
ALTER TABLE cases ADD COLUMN decision_no TEXT;
ALTER TABLE cases ADD COLUMN decision_date DATE;
ALTER TABLE cases ADD COLUMN publication_due DATE;
ALTER TABLE cases ADD COLUMN published_on DATE;
ALTER TABLE cases ADD COLUMN served_on DATE;
ALTER TABLE cases ADD COLUMN closed_on DATE;
ALTER TABLE cases ADD COLUMN last_step_on DATE;
ALTER TABLE cases ADD COLUMN process TEXT NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX cases_decision_no ON cases (decision_no);
CREATE INDEX cases_filed_on ON cases (filed_on, id);
CREATE INDEX cases_party ON cases (water_user_id, id);
CREATE INDEX cases_violation ON cases (violation_type, id);
-- The overdue lists walk their deadline order over the open records only.
CREATE INDEX cases_publication_overdue ON cases (publication_due, id) WHERE published_on IS NULL;
CREATE INDEX cases_decision_overdue ON cases (decision_due, id) WHERE decision_date IS NULL;

-- 承办人: the officers of a case (at least two investigate, XCF §42).
CREATE TABLE case_officers (
    case_id     TEXT NOT NULL REFERENCES cases (id),
    account_id  TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (case_id, account_id)
);
CREATE INDEX case_officers_account ON case_officers (account_id, case_id);

-- Payments of a fine (and of its late fee, settled first), each under its own receipt number.
CREATE TABLE case_payments (
    id              TEXT PRIMARY KEY,
    case_id         TEXT NOT NULL REFERENCES cases (id),
    amount_fen      BIGINT NOT NULL CHECK (amount_fen > 0),
    fine_part_fen   BIGINT NOT NULL,
    late_fee_fen    BIGINT NOT NULL,
    paid_on         DATE NOT NULL,
    receipt_no      TEXT NOT NULL UNIQUE,
    recorded_by     TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX case_payments_case ON case_payments (case_id, paid_on, id);
