-- Consents (an append-only history per purpose: the latest row is in force), processing
-- restriction and objections, the editable profile with an audit of changed fields (not their
-- values), and instance keys (e.g. the one signing unsubscribe links). All go with the user.

CREATE TABLE consents (
    id              BLOB PRIMARY KEY,
    user_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose         TEXT NOT NULL CHECK (purpose IN ('marketing_email', 'ai_training', 'age_confirmation')),
    granted         INTEGER NOT NULL,
    source          TEXT NOT NULL,
    policy_version  TEXT NOT NULL,
    recorded_at     INTEGER NOT NULL
);
CREATE INDEX consents_user ON consents (user_id, purpose, id);

CREATE TABLE processing_choices (
    user_id     BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    restricted  INTEGER NOT NULL,
    objections  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE user_profiles (
    user_id     BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    phone       TEXT,
    company     TEXT,
    address     TEXT NOT NULL,
    tax_id      TEXT,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE profile_changes (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fields      TEXT NOT NULL,
    changed_at  INTEGER NOT NULL
);
CREATE INDEX profile_changes_user ON profile_changes (user_id, id);

CREATE TABLE instance_keys (
    name        TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
