-- Partner events (proof of delivery): each kept once, by the partner's own
-- event id, with the delivery it was matched to and whether it was applied.

CREATE TABLE partner_events (
    partner     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    type        TEXT NOT NULL,
    delivery_id TEXT,              -- NULL while no delivery matches
    applied     INTEGER NOT NULL,  -- 1 once it moved (or was recorded on) its delivery
    received_at INTEGER NOT NULL,
    record      TEXT NOT NULL,     -- herald.PartnerEvent as JSON
    PRIMARY KEY (partner, event_id)
);

CREATE INDEX partner_events_pending ON partner_events (applied, received_at);
CREATE INDEX deliveries_partner_message ON deliveries (partner, partner_message_id);
