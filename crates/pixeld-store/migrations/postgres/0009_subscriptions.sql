-- Paid plans bought as provider subscriptions (Stripe). Each paid period arrives as a provider
-- invoice, recorded as an order of its own (kind `plan`) whose credits expire with the period.

CREATE TABLE subscriptions (
    id                    UUID PRIMARY KEY,
    org_id                UUID NOT NULL,
    provider              TEXT NOT NULL,
    plan_id               TEXT NOT NULL,
    status                TEXT NOT NULL,
    provider_ref          TEXT NOT NULL,
    customer_ref          TEXT,
    current_period_end    TIMESTAMPTZ,
    last_event_at         BIGINT NOT NULL,
    cancel_at_period_end  BOOLEAN NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX subscriptions_ref ON subscriptions (provider, provider_ref);
CREATE INDEX subscriptions_org ON subscriptions (org_id, status);
