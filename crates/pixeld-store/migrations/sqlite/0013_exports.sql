-- Data exports (the right of access and portability): a ZIP built by a background job, stored
-- as an object, downloadable by a signed link for 24 hours and deleted after 7 days.

CREATE TABLE account_exports (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    request_id   BLOB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    object_key   TEXT,
    bytes        INTEGER,
    error        TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX account_exports_user ON account_exports (user_id, id);
CREATE INDEX account_exports_created ON account_exports (created_at);
