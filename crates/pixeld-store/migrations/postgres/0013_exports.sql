-- Data exports (the right of access and portability): a ZIP built by a background job, stored
-- as an object, downloadable by a signed link for 24 hours and deleted after 7 days.

CREATE TABLE account_exports (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    request_id   UUID NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    object_key   TEXT,
    bytes        BIGINT,
    error        TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ
);
CREATE INDEX account_exports_user ON account_exports (user_id, id);
CREATE INDEX account_exports_created ON account_exports (created_at);
