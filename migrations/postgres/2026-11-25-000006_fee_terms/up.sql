-- What an assessment keeps of the terms it was made on, so that later changes of the zone, the configuration or
-- the people do not rewrite it:
--   zone_class     the zone class its months were priced at (recalculations and differences use it, not the zone's
--                  class of today);
--   late_fee_rate  the daily late-fee rate (e.g. 0.002) stated on the notice, fixed when the notice is served;
--   request_by     who asked for the pending deferral or waiver (they may not decide it themselves).
ALTER TABLE fee_assessments ADD COLUMN zone_class TEXT CHECK (zone_class IN ('normal', 'restricted', 'prohibited'));
ALTER TABLE fee_assessments ADD COLUMN late_fee_rate TEXT;
ALTER TABLE fee_assessments ADD COLUMN request_by TEXT;
