-- Paid plans bought as provider subscriptions (Stripe). Each paid period arrives as a provider
-- invoice, recorded as an order of its own (kind `plan`) whose credits expire with the period.

CREATE TABLE subscriptions (
    id                    BLOB PRIMARY KEY,
    org_id                BLOB NOT NULL,
    provider              TEXT NOT NULL,
    plan_id               TEXT NOT NULL,
    status                TEXT NOT NULL,
    provider_ref          TEXT NOT NULL,
    customer_ref          TEXT,
    current_period_end    INTEGER,
    last_event_at         INTEGER NOT NULL,
    cancel_at_period_end  INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE UNIQUE INDEX subscriptions_ref ON subscriptions (provider, provider_ref);
CREATE INDEX subscriptions_org ON subscriptions (org_id, status);
