-- Purchases through a payment provider (Stripe, Razorpay) and the provider events received.
-- Card data never reaches pixeld: an order holds the provider's ids and the amount. Orders are
-- financial records (kept 7 years), so they have no foreign key that would delete them with an
-- organisation. Events are de-duplicated by the provider's event id.

CREATE TABLE payment_orders (
    id              UUID PRIMARY KEY,
    org_id          UUID NOT NULL,
    created_by      UUID,
    provider        TEXT NOT NULL,
    item_kind       TEXT NOT NULL,
    item_id         TEXT NOT NULL,
    credits         BIGINT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    provider_ref    TEXT,
    payment_ref     TEXT,
    customer_ref    TEXT,
    refunded_minor  BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    paid_at         TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX payment_orders_org ON payment_orders (org_id, id);
CREATE UNIQUE INDEX payment_orders_ref ON payment_orders (provider, provider_ref);
CREATE INDEX payment_orders_payment ON payment_orders (provider, payment_ref);

CREATE TABLE payment_events (
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX payment_events_received ON payment_events (received_at);
