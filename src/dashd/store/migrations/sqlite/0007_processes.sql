-- Process look-back (issue 19 item 3): compressed snapshots of the top-N
-- process table, one row per stored snapshot (dashd.store.processes).
-- A keyframe (key_id NULL) is compressed on its own; the snapshots after it
-- (a few minutes' worth) are compressed with the keyframe as zlib's preset
-- dictionary and name it in key_id. key_ms is the keyframe's time, so a
-- group is pruned whole. AUTOINCREMENT: an id is never reused, so key_id
-- never names another group's keyframe.
CREATE TABLE process_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    key_id INTEGER,
    key_ms INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX process_snapshots_host_ts ON process_snapshots (host, ts_ms);
CREATE INDEX process_snapshots_key_ms ON process_snapshots (key_ms);
