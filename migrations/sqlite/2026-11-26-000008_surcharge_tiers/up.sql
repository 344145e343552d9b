-- The over-plan surcharge tiers and the base water prices by category of planned user (admin keeps them): one row,
-- 'current', changed in place under If-Match; the audit trail keeps every earlier state.
CREATE TABLE surcharge_tiers (
    id                TEXT PRIMARY KEY CHECK (id = 'current'),
    -- JSON: [{"over_pct_from": 0, "over_pct_to": 20, "multiplier": "1"}, …], the last open-ended.
    tiers             TEXT NOT NULL,
    -- JSON: {"non_residential": "3.4500", …}: the price for planned users that state none.
    category_prices   TEXT NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    version           BIGINT NOT NULL
);
-- The default tiers (≤ 20 % over ×1, 20–40 % ×2, over 40 % ×3) and no category prices yet.
INSERT INTO surcharge_tiers (id, tiers, category_prices, created_at, updated_at, version) VALUES (
    'current',
    '[{"over_pct_from":0,"over_pct_to":20,"multiplier":"1"},{"over_pct_from":20,"over_pct_to":40,"multiplier":"2"},{"over_pct_from":40,"over_pct_to":null,"multiplier":"3"}]',
    '{}',
    '2026-01-01 00:00:00',
    '2026-01-01 00:00:00',
    1
);

-- At most one current usage record per planned user and month (corrections supersede the current one first).
CREATE UNIQUE INDEX planned_usage_current ON planned_usage (planned_user_id, period) WHERE NOT superseded;
