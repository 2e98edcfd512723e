-- The credit ledger. `credit_entries` is append-only and is the truth: an organisation's balance
-- is the sum of its entries' amounts. `credit_balances` caches that sum; every change to it is
-- a conditional update in the same transaction as the entry, and the CHECK makes a negative
-- balance impossible even for a buggy statement. Grants become lots (what is left of each, and
-- when it expires) so expiring credits are spent first; a reservation remembers which lots it
-- drew from so a release or a partial settle returns credits where they came from.
--
-- No foreign keys to orgs: financial records outlive the organisation (kept 7 years).

CREATE TABLE credit_balances (
    org_id      BLOB PRIMARY KEY,
    balance     INTEGER NOT NULL CHECK (balance >= 0),
    -- The soonest expiry among the org's live lots (or later): a debit only looks for lots to
    -- expire once this has passed.
    next_expiry INTEGER,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE credit_entries (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL,
    kind            TEXT NOT NULL,
    amount          INTEGER NOT NULL,
    balance_after   INTEGER NOT NULL,
    business_key    TEXT NOT NULL,
    source          TEXT,
    reason          TEXT,
    actor_id        BLOB,
    token_id        BLOB,
    reservation_id  BLOB,
    lot_id          BLOB,
    expires_at      INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX credit_entries_key ON credit_entries (org_id, business_key);
CREATE INDEX credit_entries_org ON credit_entries (org_id, id);

CREATE TABLE credit_lots (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL,
    granted     INTEGER NOT NULL,
    remaining   INTEGER NOT NULL CHECK (remaining >= 0),
    expires_at  INTEGER,
    expired_at  INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX credit_lots_org ON credit_lots (org_id, expires_at);
CREATE INDEX credit_lots_due ON credit_lots (expires_at) WHERE expired_at IS NULL;

CREATE TABLE credit_reservations (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL,
    op           TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    cost         INTEGER,
    state        TEXT NOT NULL,
    token_id     BLOB,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX credit_reservations_held ON credit_reservations (state, expires_at);

CREATE TABLE credit_allocations (
    reservation_id  BLOB NOT NULL,
    seq             INTEGER NOT NULL,
    lot_id          BLOB NOT NULL,
    amount          INTEGER NOT NULL,
    PRIMARY KEY (reservation_id, seq)
);
