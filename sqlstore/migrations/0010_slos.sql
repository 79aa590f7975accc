-- SLOs, their burn alerts and each alert's history, and the judgement of
-- every delivery for the delivery SLOs.

CREATE TABLE slos (
    id         TEXT PRIMARY KEY,
    dataset    TEXT NOT NULL,      -- dataset slug, or __deliveries__ for the built-in ones
    spec       TEXT NOT NULL,      -- herald.SLO as JSON
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX slos_dataset ON slos (dataset);

CREATE TABLE burn_alerts (
    id         TEXT PRIMARY KEY,
    slo_id     TEXT NOT NULL REFERENCES slos (id) ON DELETE CASCADE,
    dataset    TEXT NOT NULL,
    spec       TEXT NOT NULL,      -- herald.BurnAlert as JSON (its state is the column)
    state      TEXT NOT NULL DEFAULT 'ok',
    since      INTEGER,            -- start of pending
    falses     INTEGER NOT NULL DEFAULT 0, -- consecutive false evaluations while firing
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX burn_alerts_slo ON burn_alerts (slo_id);

-- Which destinations each burn alert uses, so one in use is not deleted.
CREATE TABLE burn_alert_destinations (
    burn_alert_id  TEXT NOT NULL REFERENCES burn_alerts (id) ON DELETE CASCADE,
    destination_id TEXT NOT NULL REFERENCES destinations (id),
    PRIMARY KEY (burn_alert_id, destination_id)
);

-- Every state change of a burn alert, with what the engine saw.
CREATE TABLE burn_alert_events (
    id              TEXT PRIMARY KEY,
    slo_id          TEXT NOT NULL,
    burn_alert_id   TEXT NOT NULL,  -- or 'SLINoData'
    from_state      TEXT NOT NULL,
    to_state        TEXT NOT NULL,
    at              INTEGER NOT NULL,
    notification_id TEXT,
    record          TEXT NOT NULL   -- herald.BurnAlertEvent as JSON
);

CREATE INDEX burn_alert_events_slo ON burn_alert_events (slo_id, at);

-- A delivery is judged once, when it first reaches a final state or when
-- its channel's deadline passes without one.
ALTER TABLE deliveries ADD COLUMN judged_at INTEGER;
ALTER TABLE deliveries ADD COLUMN judgement TEXT NOT NULL DEFAULT '';  -- good, bad or excluded

CREATE INDEX deliveries_judged ON deliveries (judged_at);
CREATE INDEX deliveries_unjudged ON deliveries (channel, created_at) WHERE judged_at IS NULL;

-- Deliveries that ended before judgements existed are judged as of their
-- last update, so the deadline does not count them as overdue.
UPDATE deliveries SET judged_at = updated_at, judgement = CASE state
    WHEN 'delivered' THEN 'good' WHEN 'bounced' THEN 'excluded' ELSE 'bad' END
    WHERE state IN ('delivered', 'failed', 'bounced', 'dropped', 'unconfirmed');
