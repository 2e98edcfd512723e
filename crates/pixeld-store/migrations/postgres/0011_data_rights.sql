-- Data-subject rights: account deletion with a grace period, and a record of every request
-- (access, rectification, erasure, restriction, objection) with its due date and completion.
-- No foreign keys to users: the records outlive the account they were about (they hold no
-- personal data, only the account's random id).

CREATE TABLE account_deletions (
    user_id       UUID PRIMARY KEY,
    request_id    UUID NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    purge_after   TIMESTAMPTZ NOT NULL,
    cancelled_at  TIMESTAMPTZ,
    purged_at     TIMESTAMPTZ
);
CREATE INDEX account_deletions_due ON account_deletions (purge_after) WHERE cancelled_at IS NULL AND purged_at IS NULL;

CREATE TABLE data_requests (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('access', 'rectification', 'erasure', 'restriction', 'objection')),
    status        TEXT NOT NULL CHECK (status IN ('open', 'completed', 'cancelled')),
    detail        TEXT NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    due_at        TIMESTAMPTZ NOT NULL,
    completed_at  TIMESTAMPTZ
);
CREATE INDEX data_requests_open ON data_requests (due_at) WHERE status = 'open';
CREATE INDEX data_requests_user ON data_requests (user_id, id);
