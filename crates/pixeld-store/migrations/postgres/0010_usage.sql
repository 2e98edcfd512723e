-- The API request (usage) log, its daily totals and a latency histogram per route.
-- Rows are written in batches; `ip` is cleared after the truncation window (`ip_network`, the
-- /24 or /48, stays) and rows are deleted after the request-log window. No foreign keys: the
-- log takes every request, and an organisation's rows go with the organisation explicitly.

CREATE TABLE usage_events (
    id          UUID PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    org_id      UUID,
    user_id     UUID,
    token_id    UUID,
    method      TEXT NOT NULL,
    route       TEXT NOT NULL,
    status      INTEGER NOT NULL,
    latency_us  BIGINT NOT NULL,
    bytes_in    BIGINT NOT NULL,
    bytes_out   BIGINT NOT NULL,
    credits     BIGINT NOT NULL,
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
    org_id      UUID NOT NULL,
    day         TEXT NOT NULL,
    route       TEXT NOT NULL,
    requests    BIGINT NOT NULL,
    errors      BIGINT NOT NULL,
    bytes_in    BIGINT NOT NULL,
    bytes_out   BIGINT NOT NULL,
    credits     BIGINT NOT NULL,
    latency_us  BIGINT NOT NULL,
    PRIMARY KEY (org_id, day, route)
);

-- Requests per day, route and latency bucket (floor(4 * log2(microseconds))), every org.
CREATE TABLE route_latency (
    day     TEXT NOT NULL,
    route   TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (day, route, bucket)
);
