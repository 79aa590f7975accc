-- A trigger's version moves at every save, so a decoded copy of its spec
-- can be kept until it changes (even when two saves share a timestamp).

ALTER TABLE triggers ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
