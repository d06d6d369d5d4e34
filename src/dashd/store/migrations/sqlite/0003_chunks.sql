-- dashd schema v3 (SQLite): samples as compressed chunks of one series each.
-- A series is (host, metric name, labels) with a compact integer id. Chunk
-- rows are appended in id order (an INTEGER PRIMARY KEY table packs its
-- pages full); the lookups go through two small indexes. The v1 tables
-- (samples, rollup_1m) stay until `dashd migrate` has moved their rows.
CREATE TABLE series (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    unit TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX series_host_name_labels ON series (host, name, labels);

-- tier 0 raw samples, 1 = 1-minute buckets, 2 = 1-hour buckets
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    tier INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    sample_count INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX chunks_series_tier_start ON chunks (series_id, tier, start_ms);
CREATE INDEX chunks_tier_end ON chunks (tier, end_ms);
CREATE INDEX chunks_last_seq ON chunks (last_seq);

-- The write-ahead rows of the open (not yet sealed) chunks, per node: `owner`
-- is the node id (state_dir/node.id) of the dashd that wrote them, so nodes
-- sharing one database seal and recover only their own rows.
CREATE TABLE chunk_head (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    sample_count INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX chunk_head_owner ON chunk_head (owner);
