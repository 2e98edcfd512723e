-- Cookieless analytics: raw events carry a visitor hash made with a salt that changes every UTC
-- day and is deleted after 48 hours, so a visitor cannot be followed from one day to the next.
-- No IP address, user agent or user id is stored; raw events are pruned after 30 days.

CREATE TABLE analytics_salts (
    day         TEXT PRIMARY KEY,
    salt        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE analytics_events (
    id        UUID PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    day       TEXT NOT NULL,
    site      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('pageview', 'event')),
    name      TEXT NOT NULL,
    referrer  TEXT,
    country   TEXT,
    device    TEXT NOT NULL,
    visitor   TEXT NOT NULL
);
CREATE INDEX analytics_events_at ON analytics_events (at);
CREATE INDEX analytics_events_site_day ON analytics_events (site, day);
