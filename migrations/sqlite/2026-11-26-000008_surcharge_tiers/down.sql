DROP INDEX planned_usage_current;
DROP TABLE surcharge_tiers;
