-- Purchases through a payment provider (Stripe, Razorpay) and the provider events received.
-- Card data never reaches pixeld: an order holds the provider's ids and the amount. Orders are
-- financial records (kept 7 years), so they have no foreign key that would delete them with an
-- organisation. Events are de-duplicated by the provider's event id.

CREATE TABLE payment_orders (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL,
    created_by      BLOB,
    provider        TEXT NOT NULL,
    item_kind       TEXT NOT NULL,
    item_id         TEXT NOT NULL,
    credits         INTEGER NOT NULL,
    amount_minor    INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    provider_ref    TEXT,
    payment_ref     TEXT,
    customer_ref    TEXT,
    refunded_minor  INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    paid_at         INTEGER,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX payment_orders_org ON payment_orders (org_id, id);
CREATE UNIQUE INDEX payment_orders_ref ON payment_orders (provider, provider_ref);
CREATE INDEX payment_orders_payment ON payment_orders (provider, payment_ref);

CREATE TABLE payment_events (
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX payment_events_received ON payment_events (received_at);
