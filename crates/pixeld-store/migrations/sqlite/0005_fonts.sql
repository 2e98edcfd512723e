-- Fonts uploaded by an organisation (TTF, OTF, WOFF, WOFF2); the file lives in object storage
-- under {org}/fonts/{id}. Renders of the organisation use them beside the bundled fonts.

CREATE TABLE fonts (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    families    TEXT NOT NULL,
    file_name   TEXT,
    format      TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    created_by  BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX fonts_org ON fonts (org_id, id);
CREATE UNIQUE INDEX fonts_org_sha ON fonts (org_id, sha256);
