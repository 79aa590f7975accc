-- herald state store, version 1. Times are Unix nanoseconds (UTC).

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('configuration', 'ingest')),
    name        TEXT NOT NULL,
    secret_hash BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    request_hash    TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    metadata        TEXT NOT NULL,   -- JSON object of strings
    recipients      TEXT NOT NULL,   -- JSON array of {type, target}
    trace_parent    TEXT NOT NULL,   -- W3C traceparent of the request that created it
    created_at      INTEGER NOT NULL
);

CREATE TABLE deliveries (
    id                  TEXT PRIMARY KEY,
    notification_id     TEXT NOT NULL REFERENCES notifications (id),
    channel             TEXT NOT NULL,
    recipient_type      TEXT NOT NULL,
    recipient_target    TEXT NOT NULL,
    state               TEXT NOT NULL,
    reason              TEXT NOT NULL DEFAULT '',
    partner             TEXT NOT NULL DEFAULT '',
    partner_message_id  TEXT NOT NULL DEFAULT '',
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_outcome        TEXT NOT NULL DEFAULT '',
    possible_duplicates INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER,
    lease_until         INTEGER,  -- while sending: the attempt's owner holds it until then
    round_attempts      INTEGER NOT NULL DEFAULT 0, -- attempts before the current round (an operator's retry starts one)
    round_started_at    INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX deliveries_notification ON deliveries (notification_id);
CREATE INDEX deliveries_state_created ON deliveries (state, created_at);
CREATE INDEX deliveries_created ON deliveries (created_at);

CREATE TABLE attempts (
    id                 TEXT PRIMARY KEY,
    delivery_id        TEXT NOT NULL REFERENCES deliveries (id),
    number             INTEGER NOT NULL,
    partner            TEXT NOT NULL,
    started_at         INTEGER NOT NULL,
    duration_ns        INTEGER NOT NULL,
    outcome            TEXT NOT NULL,
    reason             TEXT NOT NULL,
    status             INTEGER NOT NULL,
    partner_message_id TEXT NOT NULL,
    retry_after_ns     INTEGER NOT NULL,
    rate_limit         TEXT NOT NULL,  -- JSON object
    request_summary    TEXT NOT NULL,
    response_excerpt   TEXT NOT NULL,
    error              TEXT NOT NULL,
    partner_side       INTEGER NOT NULL,
    trace_id           TEXT NOT NULL,
    UNIQUE (delivery_id, number)
);

CREATE TABLE transitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    cause       TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX transitions_delivery ON transitions (delivery_id, id);
