-- Web UI sessions: a browser signs in with an API key once and then holds
-- a random session token; only its hash is stored.

CREATE TABLE ui_sessions (
    token_hash BLOB PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES api_keys (id),
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
