-- dashd schema v3 (MySQL/MariaDB): samples as compressed chunks of one series
-- each. A series is (host, metric name, labels) with a compact integer id.
-- Chunk rows are appended in id order (the clustered index fills its pages);
-- a chunk is about a kilobyte, so it stays inside the row, not off-page.
-- The v1 tables (samples, rollup_1m) stay until `dashd migrate` moved them.
CREATE TABLE series (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host VARCHAR(128) NOT NULL,
    name VARCHAR(190) NOT NULL,
    labels VARCHAR(512) NOT NULL,
    unit VARCHAR(16) NOT NULL,
    kind VARCHAR(8) NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE KEY series_host_name_labels (host, name, labels(300))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- tier 0 raw samples, 1 = 1-minute buckets, 2 = 1-hour buckets
-- COMPRESSED (8 KB pages): the blobs are zlib already and gain nothing, but the
-- pages split by tier rows growing at each rollup would otherwise stay half
-- empty (a third of the table). Needs innodb_file_per_table (the default).
CREATE TABLE chunks (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    series_id INT UNSIGNED NOT NULL,
    tier TINYINT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    sample_count INT NOT NULL,
    data MEDIUMBLOB NOT NULL,
    KEY chunks_series_tier_start (series_id, tier, start_ms),
    KEY chunks_tier_end (tier, end_ms),
    KEY chunks_last_seq (last_seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8;

-- The write-ahead rows of the open (not yet sealed) chunks, per node: `owner`
-- is the node id (state_dir/node.id) of the dashd that wrote them, so nodes
-- sharing one database seal and recover only their own rows.
CREATE TABLE chunk_head (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    owner VARCHAR(64) NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    sample_count INT NOT NULL,
    data MEDIUMBLOB NOT NULL,
    KEY chunk_head_owner (owner)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
