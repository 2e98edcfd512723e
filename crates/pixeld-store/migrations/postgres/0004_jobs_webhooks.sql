-- A shared job queue (claimed with a lease; PostgreSQL uses FOR UPDATE SKIP LOCKED so several
-- nodes can work it), asynchronous renders, and webhooks: per-organisation signing secrets,
-- deliveries and every delivery attempt.

CREATE TABLE jobs (
    id            UUID PRIMARY KEY,
    kind          TEXT NOT NULL,
    org_id        UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    run_at        TIMESTAMPTZ NOT NULL,
    locked_until  TIMESTAMPTZ,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_finished ON jobs (updated_at);

CREATE TABLE render_jobs (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    token_id      UUID,
    template_id   UUID NOT NULL,
    version       INTEGER NOT NULL,
    request       TEXT NOT NULL,
    webhook_url   TEXT,
    metadata      TEXT,
    status        TEXT NOT NULL,
    format        TEXT NOT NULL,
    cache_key     TEXT,
    width         INTEGER,
    height        INTEGER,
    bytes         BIGINT,
    cached        BOOLEAN NOT NULL,
    error_type    TEXT,
    error_detail  TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX render_jobs_org ON render_jobs (org_id, id);
CREATE INDEX render_jobs_created ON render_jobs (created_at);

CREATE TABLE webhook_secrets (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX webhook_secrets_org ON webhook_secrets (org_id, id);

CREATE TABLE webhook_deliveries (
    id               UUID PRIMARY KEY,
    org_id           UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_org ON webhook_deliveries (org_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);

CREATE TABLE webhook_attempts (
    id                UUID PRIMARY KEY,
    delivery_id       UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    at                TIMESTAMPTZ NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_excerpt  TEXT,
    ms                BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
