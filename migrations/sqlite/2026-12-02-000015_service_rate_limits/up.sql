-- Each service account's request-rate limit (requests per minute; NULL: the service's default), and the state of
-- every account's budget: the theoretical arrival time of its next request (GCRA), in microseconds since 1970.
ALTER TABLE service_accounts ADD COLUMN rate_limit_per_minute INTEGER
    CHECK (rate_limit_per_minute BETWEEN 1 AND 1000000);
CREATE TABLE request_budgets (
    account_id TEXT PRIMARY KEY NOT NULL,
    tat_us BIGINT NOT NULL
);
