-- Invoices (each also the receipt of its paid order), numbered per organisation without gaps:
-- the counter row is advanced in the same transaction as the invoice is written, so a failed
-- write leaves no hole. Seller, buyer and lines are stored as printed. Financial records: kept
-- 7 years, no foreign key that would delete them with an organisation.

CREATE TABLE billing_profiles (
    org_id      BLOB PRIMARY KEY,
    party       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE invoice_counters (
    org_id  BLOB PRIMARY KEY,
    last    INTEGER NOT NULL
);

CREATE TABLE invoices (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL,
    number          INTEGER NOT NULL,
    display_number  TEXT NOT NULL,
    order_id        BLOB NOT NULL UNIQUE,
    currency        TEXT NOT NULL,
    subtotal_minor  INTEGER NOT NULL,
    tax_minor       INTEGER NOT NULL,
    total_minor     INTEGER NOT NULL,
    tax_name        TEXT NOT NULL,
    tax_rate_bps    INTEGER NOT NULL,
    seller          TEXT NOT NULL,
    buyer           TEXT NOT NULL,
    lines           TEXT NOT NULL,
    provider        TEXT NOT NULL,
    issued_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX invoices_number ON invoices (org_id, number);
CREATE INDEX invoices_org ON invoices (org_id, id);
