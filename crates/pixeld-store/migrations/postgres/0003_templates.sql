-- PixelDrive: templates with immutable versions, org signing keys for signed render URLs, and
-- the render cache index (the bytes live in object storage).

CREATE TABLE templates (
    id              UUID PRIMARY KEY,
    org_id          UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    latest_version  INTEGER NOT NULL,
    created_by      UUID NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX templates_org ON templates (org_id, id);

CREATE TABLE template_versions (
    template_id  UUID NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_by   UUID NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE signing_keys (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX signing_keys_org ON signing_keys (org_id, id);

CREATE TABLE render_cache (
    cache_key    TEXT PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    template_id  UUID NOT NULL,
    format       TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    object_key   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX render_cache_created ON render_cache (created_at);
CREATE INDEX render_cache_template ON render_cache (template_id);
