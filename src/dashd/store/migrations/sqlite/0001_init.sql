-- dashd schema v1 (SQLite). Samples are narrow rows: one per metric value,
-- grouped by the stream seq of the sample they came in.
CREATE TABLE samples (
    seq INTEGER NOT NULL,
    host TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX samples_host_metric_ts ON samples (host, metric, ts_ms);
CREATE INDEX samples_seq ON samples (seq);
CREATE INDEX samples_ts ON samples (ts_ms);

CREATE TABLE rollup_1m (
    host TEXT NOT NULL,
    metric TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    avg_value REAL NOT NULL,
    min_value REAL NOT NULL,
    max_value REAL NOT NULL,
    sample_count INTEGER NOT NULL,
    PRIMARY KEY (host, metric, bucket_ms)
);
CREATE INDEX rollup_1m_bucket ON rollup_1m (bucket_ms);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    level TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    source TEXT NOT NULL,
    state TEXT,
    acknowledged_by TEXT,
    acknowledged_at_ms INTEGER
);
CREATE INDEX notifications_seq ON notifications (seq);
CREATE INDEX notifications_ts ON notifications (ts_ms);

CREATE TABLE notification_acks (
    seq INTEGER PRIMARY KEY,
    notification_id TEXT NOT NULL,
    acknowledged_by TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
);

CREATE TABLE alert_rules (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER,
    peer TEXT
);
CREATE INDEX sessions_username ON sessions (username);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    peer TEXT
);
