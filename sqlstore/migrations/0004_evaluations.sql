-- Trigger evaluations, each trigger's evaluation state, and the alert a
-- trigger's notification carries.

ALTER TABLE notifications ADD COLUMN alert TEXT NOT NULL DEFAULT '';     -- herald.Alert as JSON, '' for none
ALTER TABLE deliveries ADD COLUMN options TEXT NOT NULL DEFAULT '';      -- herald.RecipientOptions as JSON, '' for none

ALTER TABLE triggers ADD COLUMN state TEXT NOT NULL DEFAULT '{}';        -- herald.TriggerState as JSON
ALTER TABLE triggers ADD COLUMN last_evaluated_at INTEGER;

CREATE TABLE evaluations (
    id              TEXT PRIMARY KEY,
    trigger_id      TEXT NOT NULL,
    at              INTEGER NOT NULL,
    status          TEXT NOT NULL,
    notify          TEXT NOT NULL,
    notification_id TEXT,
    record          TEXT NOT NULL     -- herald.Evaluation as JSON
);

CREATE INDEX evaluations_trigger ON evaluations (trigger_id, at);
