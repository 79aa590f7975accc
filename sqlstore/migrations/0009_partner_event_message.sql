-- The partner's message id of each event, so an event that arrived before
-- its delivery's accepted record is found when that record lands.

ALTER TABLE partner_events ADD COLUMN message_id TEXT NOT NULL DEFAULT '';

CREATE INDEX partner_events_waiting ON partner_events (applied, partner, message_id);
CREATE INDEX partner_events_delivery ON partner_events (delivery_id, applied);
