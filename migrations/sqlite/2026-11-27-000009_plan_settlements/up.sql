-- Over-plan surcharges (超计划累进加价费) are fee assessments of a planned-water user for a year or a quarter: the
-- planned user they charge, and the calculation they were made on (JSON: plan, usage, base price, tiers applied
-- band by band), kept so that a later change of tiers, prices or plans does not rewrite a served notice.
ALTER TABLE fee_assessments ADD COLUMN planned_user_id TEXT REFERENCES planned_users (id);
ALTER TABLE fee_assessments ADD COLUMN surcharge TEXT;
-- One surcharge per planned user and period, however often a settlement runs (fees keep UNIQUE (kind, permit_id,
-- period); a surcharge has no permit). Led by the planned user: it also serves `?planned_user_id=`.
CREATE UNIQUE INDEX fee_assessments_surcharge ON fee_assessments (planned_user_id, kind, period)
    WHERE planned_user_id IS NOT NULL;
