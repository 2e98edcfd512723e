-- Accounts, sessions, API tokens, organisations, idempotency keys.
-- Times are INTEGER microseconds since the Unix epoch (UTC), so comparisons are numeric.
-- UUIDs are 16-byte BLOBs (UUIDv7: byte order is time order).

CREATE TABLE orgs (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    personal    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id                   BLOB PRIMARY KEY,
    email                TEXT NOT NULL,
    name                 TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    email_verified_at    INTEGER,
    is_admin             INTEGER NOT NULL DEFAULT 0,
    disabled_at          INTEGER,
    totp_secret          TEXT,
    totp_pending_secret  TEXT,
    totp_last_step       INTEGER,
    personal_org_id      BLOB NOT NULL REFERENCES orgs (id),
    created_at           INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE memberships (
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer', 'client')),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE recovery_codes (
    user_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest   TEXT NOT NULL,
    used_at  INTEGER,
    PRIMARY KEY (user_id, digest)
);

CREATE TABLE one_time_tokens (
    digest      TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    data        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

CREATE TABLE sessions (
    id             BLOB PRIMARY KEY,
    secret_digest  TEXT NOT NULL UNIQUE,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    ip             TEXT,
    user_agent     TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    prefix         TEXT NOT NULL,
    secret_digest  TEXT NOT NULL UNIQUE,
    scopes         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER,
    last_used_at   INTEGER,
    last_used_ip   TEXT,
    revoked_at     INTEGER
);
CREATE INDEX api_tokens_org ON api_tokens (org_id, user_id);

CREATE TABLE invites (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    role           TEXT NOT NULL,
    secret_digest  TEXT NOT NULL UNIQUE,
    invited_by     BLOB NOT NULL REFERENCES users (id),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    accepted_at    INTEGER,
    revoked_at     INTEGER
);
CREATE INDEX invites_org ON invites (org_id);

CREATE TABLE idempotency_keys (
    caller          TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_digest  TEXT NOT NULL,
    status          INTEGER,
    content_type    TEXT,
    body            BLOB,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
