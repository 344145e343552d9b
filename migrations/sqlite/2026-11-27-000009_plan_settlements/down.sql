DROP INDEX fee_assessments_surcharge;
ALTER TABLE fee_assessments DROP COLUMN surcharge;
ALTER TABLE fee_assessments DROP COLUMN planned_user_id;
