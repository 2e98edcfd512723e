-- Invoices (each also the receipt of its paid order), numbered per organisation without gaps:
-- the counter row is advanced in the same transaction as the invoice is written, so a failed
-- write leaves no hole. Seller, buyer and lines are stored as printed. Financial records: kept
-- 7 years, no foreign key that would delete them with an organisation.

CREATE TABLE billing_profiles (
    org_id      UUID PRIMARY KEY,
    party       TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE invoice_counters (
    org_id  UUID PRIMARY KEY,
    last    BIGINT NOT NULL
);

CREATE TABLE invoices (
    id              UUID PRIMARY KEY,
    org_id          UUID NOT NULL,
    number          BIGINT NOT NULL,
    display_number  TEXT NOT NULL,
    order_id        UUID NOT NULL UNIQUE,
    currency        TEXT NOT NULL,
    subtotal_minor  BIGINT NOT NULL,
    tax_minor       BIGINT NOT NULL,
    total_minor     BIGINT NOT NULL,
    tax_name        TEXT NOT NULL,
    tax_rate_bps    INTEGER NOT NULL,
    seller          TEXT NOT NULL,
    buyer           TEXT NOT NULL,
    lines           TEXT NOT NULL,
    provider        TEXT NOT NULL,
    issued_at       TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX invoices_number ON invoices (org_id, number);
CREATE INDEX invoices_org ON invoices (org_id, id);
