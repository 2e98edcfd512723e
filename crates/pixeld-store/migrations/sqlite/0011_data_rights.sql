-- Data-subject rights: account deletion with a grace period, and a record of every request
-- (access, rectification, erasure, restriction, objection) with its due date and completion.
-- No foreign keys to users: the records outlive the account they were about (they hold no
-- personal data, only the account's random id).

CREATE TABLE account_deletions (
    user_id       BLOB PRIMARY KEY,
    request_id    BLOB NOT NULL,
    requested_at  INTEGER NOT NULL,
    purge_after   INTEGER NOT NULL,
    cancelled_at  INTEGER,
    purged_at     INTEGER
);
CREATE INDEX account_deletions_due ON account_deletions (purge_after) WHERE cancelled_at IS NULL AND purged_at IS NULL;

CREATE TABLE data_requests (
    id            BLOB PRIMARY KEY,
    user_id       BLOB NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('access', 'rectification', 'erasure', 'restriction', 'objection')),
    status        TEXT NOT NULL CHECK (status IN ('open', 'completed', 'cancelled')),
    detail        TEXT NOT NULL,
    requested_at  INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    completed_at  INTEGER
);
CREATE INDEX data_requests_open ON data_requests (due_at) WHERE status = 'open';
CREATE INDEX data_requests_user ON data_requests (user_id, id);
