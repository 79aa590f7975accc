-- Canaries: synthetic notifications through one partner each, and the
-- partner a delivery is pinned to (no failover).

ALTER TABLE deliveries ADD COLUMN pinned_partner TEXT NOT NULL DEFAULT '';

CREATE TABLE canaries (
    id          TEXT PRIMARY KEY,
    partner     TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    result      TEXT NOT NULL,     -- pending, passed, failed
    detail      TEXT NOT NULL      -- the delivery's final state and reason
);

CREATE INDEX canaries_partner ON canaries (partner, started_at);
CREATE INDEX canaries_pending ON canaries (result);
