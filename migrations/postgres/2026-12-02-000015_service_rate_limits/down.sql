DROP TABLE request_budgets;
ALTER TABLE service_accounts DROP COLUMN rate_limit_per_minute;
