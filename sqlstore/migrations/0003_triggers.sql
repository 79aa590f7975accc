-- Recipients (destinations) and triggers, with each trigger's evaluation
-- state.

CREATE TABLE destinations (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    details    TEXT NOT NULL,      -- herald.DestinationDetails as JSON
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE triggers (
    id         TEXT PRIMARY KEY,
    dataset    TEXT NOT NULL,      -- dataset slug, or __all__
    spec       TEXT NOT NULL,      -- herald.Trigger as JSON (without triggered)
    triggered  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX triggers_dataset ON triggers (dataset);

-- Which destinations each trigger uses, so one in use is not deleted.
CREATE TABLE trigger_destinations (
    trigger_id     TEXT NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
    destination_id TEXT NOT NULL REFERENCES destinations (id),
    PRIMARY KEY (trigger_id, destination_id)
);
