ALTER TABLE fee_assessments DROP COLUMN request_by;
ALTER TABLE fee_assessments DROP COLUMN late_fee_rate;
ALTER TABLE fee_assessments DROP COLUMN zone_class;
