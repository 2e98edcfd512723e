-- The API request (usage) log, its daily totals and a latency histogram per route.
-- Rows are written in batches; `ip` is cleared after the truncation window (`ip_network`, the
-- /24 or /48, stays) and rows are deleted after the request-log window. No foreign keys: the
-- log takes every request, and an organisation's rows go with the organisation explicitly.

CREATE TABLE usage_events (
    id          BLOB PRIMARY KEY,
    at          INTEGER NOT NULL,
    org_id      BLOB,
    user_id     BLOB,
    token_id    BLOB,
    method      TEXT NOT NULL,
    route       TEXT NOT NULL,
    status      INTEGER NOT NULL,
    latency_us  INTEGER NOT NULL,
    bytes_in    INTEGER NOT NULL,
    bytes_out   INTEGER NOT NULL,
    credits     INTEGER NOT NULL,
    ip          TEXT,
    ip_network  TEXT,
    country     TEXT,
    user_agent  TEXT
);
CREATE INDEX usage_events_org ON usage_events (org_id, id);
CREATE INDEX usage_events_at ON usage_events (at);
CREATE INDEX usage_events_user ON usage_events (user_id);
CREATE INDEX usage_events_ip_at ON usage_events (at) WHERE ip IS NOT NULL;

-- Per organisation, UTC day (YYYY-MM-DD) and "METHOD /route": kept while the organisation is.
CREATE TABLE usage_daily (
    org_id      BLOB NOT NULL,
    day         TEXT NOT NULL,
    route       TEXT NOT NULL,
    requests    INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    bytes_in    INTEGER NOT NULL,
    bytes_out   INTEGER NOT NULL,
    credits     INTEGER NOT NULL,
    latency_us  INTEGER NOT NULL,
    PRIMARY KEY (org_id, day, route)
);

-- Requests per day, route and latency bucket (floor(4 * log2(microseconds))), every org.
CREATE TABLE route_latency (
    day     TEXT NOT NULL,
    route   TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (day, route, bucket)
);
