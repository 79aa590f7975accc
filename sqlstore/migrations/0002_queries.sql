-- Saved query specifications and their results (the Query Data API).

CREATE TABLE queries (
    id         TEXT PRIMARY KEY,
    dataset    TEXT NOT NULL,      -- dataset slug, or __all__
    spec       TEXT NOT NULL,      -- the query as JSON, as the client sent it (plus id)
    created_at INTEGER NOT NULL
);

CREATE TABLE query_results (
    id         TEXT PRIMARY KEY,
    query_id   TEXT NOT NULL REFERENCES queries (id),
    dataset    TEXT NOT NULL,
    data       TEXT NOT NULL,      -- herald.QueryData as JSON
    created_at INTEGER NOT NULL
);

CREATE INDEX query_results_created_at ON query_results (created_at);
