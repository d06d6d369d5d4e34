-- Process look-back (issue 19 item 3): compressed snapshots of the top-N
-- process table, one row per stored snapshot (dashd.store.processes).
-- A keyframe (key_id NULL) is compressed on its own; the snapshots after it
-- (a few minutes' worth) are compressed with the keyframe as zlib's preset
-- dictionary and name it in key_id. key_ms is the keyframe's time, so a
-- group is pruned whole. A snapshot is a few kilobytes: it stays in the row.
CREATE TABLE process_snapshots (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host VARCHAR(128) NOT NULL,
    ts_ms BIGINT NOT NULL,
    key_id BIGINT UNSIGNED NULL,
    key_ms BIGINT NOT NULL,
    data MEDIUMBLOB NOT NULL,
    KEY process_snapshots_host_ts (host, ts_ms),
    KEY process_snapshots_key_ms (key_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
