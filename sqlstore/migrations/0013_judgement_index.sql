-- The UI lists the newest bad deliveries: by judgement, newest first.
CREATE INDEX deliveries_judgement_created ON deliveries (judgement, created_at);
-- The UI charts judgements per channel and partner over time; the SLO
-- engine sums them per minute. Both read only this index.
DROP INDEX deliveries_judged;
CREATE INDEX deliveries_judged ON deliveries (judged_at, channel, partner, judgement);
