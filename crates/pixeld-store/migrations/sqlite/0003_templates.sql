-- PixelDrive: templates with immutable versions, org signing keys for signed render URLs, and
-- the render cache index (the bytes live in object storage).

CREATE TABLE templates (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    latest_version  INTEGER NOT NULL,
    created_by      BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX templates_org ON templates (org_id, id);

CREATE TABLE template_versions (
    template_id  BLOB NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_by   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE signing_keys (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX signing_keys_org ON signing_keys (org_id, id);

CREATE TABLE render_cache (
    cache_key    TEXT PRIMARY KEY,
    org_id       BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    template_id  BLOB NOT NULL,
    format       TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    object_key   TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX render_cache_created ON render_cache (created_at);
CREATE INDEX render_cache_template ON render_cache (template_id);
