-- A shared job queue (claimed with a lease; PostgreSQL uses FOR UPDATE SKIP LOCKED so several
-- nodes can work it), asynchronous renders, and webhooks: per-organisation signing secrets,
-- deliveries and every delivery attempt.

CREATE TABLE jobs (
    id            BLOB PRIMARY KEY,
    kind          TEXT NOT NULL,
    org_id        BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    run_at        INTEGER NOT NULL,
    locked_until  INTEGER,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_finished ON jobs (updated_at);

CREATE TABLE render_jobs (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    token_id      BLOB,
    template_id   BLOB NOT NULL,
    version       INTEGER NOT NULL,
    request       TEXT NOT NULL,
    webhook_url   TEXT,
    metadata      TEXT,
    status        TEXT NOT NULL,
    format        TEXT NOT NULL,
    cache_key     TEXT,
    width         INTEGER,
    height        INTEGER,
    bytes         INTEGER,
    cached        INTEGER NOT NULL,
    error_type    TEXT,
    error_detail  TEXT,
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER
);
CREATE INDEX render_jobs_org ON render_jobs (org_id, id);
CREATE INDEX render_jobs_created ON render_jobs (created_at);

CREATE TABLE webhook_secrets (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX webhook_secrets_org ON webhook_secrets (org_id, id);

CREATE TABLE webhook_deliveries (
    id               BLOB PRIMARY KEY,
    org_id           BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);
CREATE INDEX webhook_deliveries_org ON webhook_deliveries (org_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);

CREATE TABLE webhook_attempts (
    id                BLOB PRIMARY KEY,
    delivery_id       BLOB NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    at                INTEGER NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_excerpt  TEXT,
    ms                INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
