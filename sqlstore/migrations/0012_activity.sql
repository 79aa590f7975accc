-- The UI's activity list pages deliveries newest first on (created_at, id)
-- under any one filter, so each filter it can lead with has an index
-- ending in those keys: walking one is reading a page, never sorting.
-- The two indexes on created_at alone give way to ones that also order
-- by id (they serve every query the old ones did).

DROP INDEX deliveries_created;
CREATE INDEX deliveries_created_id ON deliveries (created_at, id);
DROP INDEX deliveries_state_created;
CREATE INDEX deliveries_state_created_id ON deliveries (state, created_at, id);
CREATE INDEX deliveries_partner_created ON deliveries (partner, created_at, id);
CREATE INDEX deliveries_channel_created ON deliveries (channel, created_at, id);
-- Recipients are searched ignoring (ASCII) case.
CREATE INDEX deliveries_recipient_created ON deliveries (recipient_target COLLATE NOCASE, created_at, id);

-- A trigger's notifications carry its id in their metadata; its deliveries
-- share their notification's created_at.
CREATE INDEX notifications_trigger ON notifications (json_extract(metadata, '$.herald_trigger_id'), created_at)
    WHERE json_extract(metadata, '$.herald_trigger_id') IS NOT NULL;
