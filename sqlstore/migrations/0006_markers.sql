-- Markers, per dataset slug (or __all__).

CREATE TABLE markers (
    id         TEXT PRIMARY KEY,
    dataset    TEXT NOT NULL,
    record     TEXT NOT NULL,     -- herald.Marker as JSON
    start_time INTEGER NOT NULL
);

CREATE INDEX markers_dataset ON markers (dataset, start_time);
