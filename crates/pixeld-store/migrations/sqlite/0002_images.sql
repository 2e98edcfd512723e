-- Picture Optimizer: uploads (deleted within 24 h), their derived outputs and processing logs.

CREATE TABLE images (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    uploaded_by   BLOB NOT NULL,
    token_id      BLOB,
    filename      TEXT,
    source_url    TEXT,
    format        TEXT NOT NULL,
    mime          TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    analysis      TEXT NOT NULL,
    object_key    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX images_org ON images (org_id, id);
CREATE INDEX images_expires ON images (expires_at);

CREATE TABLE image_variants (
    image_id     BLOB NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    cache_key    TEXT NOT NULL,
    format       TEXT NOT NULL,
    mime         TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    object_key   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (image_id, cache_key)
);

CREATE TABLE processing_logs (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL,
    token_id    BLOB,
    image_id    BLOB,
    op          TEXT NOT NULL,
    bytes_in    INTEGER NOT NULL,
    bytes_out   INTEGER NOT NULL,
    ms          INTEGER NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX processing_logs_org ON processing_logs (org_id, id);
CREATE INDEX processing_logs_created ON processing_logs (created_at);
