-- Picture Optimizer: uploads (deleted within 24 h), their derived outputs and processing logs.

CREATE TABLE images (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    uploaded_by   UUID NOT NULL,
    token_id      UUID,
    filename      TEXT,
    source_url    TEXT,
    format        TEXT NOT NULL,
    mime          TEXT NOT NULL,
    bytes         BIGINT NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    analysis      TEXT NOT NULL,
    object_key    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX images_org ON images (org_id, id);
CREATE INDEX images_expires ON images (expires_at);

CREATE TABLE image_variants (
    image_id     UUID NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    cache_key    TEXT NOT NULL,
    format       TEXT NOT NULL,
    mime         TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    object_key   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (image_id, cache_key)
);

CREATE TABLE processing_logs (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL,
    token_id    UUID,
    image_id    UUID,
    op          TEXT NOT NULL,
    bytes_in    BIGINT NOT NULL,
    bytes_out   BIGINT NOT NULL,
    ms          BIGINT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX processing_logs_org ON processing_logs (org_id, id);
CREATE INDEX processing_logs_created ON processing_logs (created_at);
