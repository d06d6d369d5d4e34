-- dashd schema v1 (MySQL/MariaDB, InnoDB, utf8mb4). Samples are narrow rows:
-- one per metric value, grouped by the stream seq of the sample they came in.
CREATE TABLE samples (
    seq BIGINT NOT NULL,
    host VARCHAR(128) NOT NULL,
    ts_ms BIGINT NOT NULL,
    metric VARCHAR(64) NOT NULL,
    value DOUBLE NOT NULL,
    KEY samples_host_metric_ts (host, metric, ts_ms),
    KEY samples_seq (seq),
    KEY samples_ts (ts_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE rollup_1m (
    host VARCHAR(128) NOT NULL,
    metric VARCHAR(64) NOT NULL,
    bucket_ms BIGINT NOT NULL,
    avg_value DOUBLE NOT NULL,
    min_value DOUBLE NOT NULL,
    max_value DOUBLE NOT NULL,
    sample_count INT NOT NULL,
    PRIMARY KEY (host, metric, bucket_ms),
    KEY rollup_1m_bucket (bucket_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE notifications (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    seq BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL,
    level VARCHAR(16) NOT NULL,
    title VARCHAR(200) NOT NULL,
    message TEXT NOT NULL,
    source VARCHAR(200) NOT NULL,
    state VARCHAR(16) NULL,
    acknowledged_by VARCHAR(128) NULL,
    acknowledged_at_ms BIGINT NULL,
    KEY notifications_seq (seq),
    KEY notifications_ts (ts_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE notification_acks (
    seq BIGINT NOT NULL PRIMARY KEY,
    notification_id VARCHAR(64) NOT NULL,
    acknowledged_by VARCHAR(128) NOT NULL,
    ts_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE alert_rules (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    spec TEXT NOT NULL,
    updated_by VARCHAR(128) NOT NULL,
    updated_at_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE meta (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE users (
    name VARCHAR(128) NOT NULL PRIMARY KEY,
    password_hash VARCHAR(512) NOT NULL,
    role VARCHAR(16) NOT NULL,
    disabled TINYINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE sessions (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    username VARCHAR(128) NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT NULL,
    peer VARCHAR(128) NULL,
    KEY sessions_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE audit_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    actor VARCHAR(128) NOT NULL,
    action VARCHAR(64) NOT NULL,
    detail TEXT NOT NULL,
    peer VARCHAR(128) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
