-- Alert delivery (issue 14): channels managed from the API, silences, the
-- durable outbox with each attempt's outcome, and the alert timeline.
CREATE TABLE alert_channels (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    kind VARCHAR(32) NOT NULL,
    spec TEXT NOT NULL,
    updated_by VARCHAR(128) NOT NULL,
    updated_at_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE alert_silences (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at_ms BIGINT NOT NULL,
    ends_at_ms BIGINT NOT NULL,
    comment TEXT NOT NULL,
    created_by VARCHAR(128) NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expired_by VARCHAR(128) NULL,
    KEY alert_silences_ends (ends_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE alert_outbox (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    dedup_key VARCHAR(190) NOT NULL,
    channel VARCHAR(64) NOT NULL,
    group_key VARCHAR(512) NOT NULL,
    status VARCHAR(16) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    deadline_ms BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    lease_owner VARCHAR(190) NULL,
    lease_until_ms BIGINT NULL,
    last_error TEXT NULL,
    finished_at_ms BIGINT NULL,
    UNIQUE KEY alert_outbox_dedup (dedup_key),
    KEY alert_outbox_due (status, next_attempt_ms),
    KEY alert_outbox_created (created_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE alert_attempts (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    outbox_id BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL,
    node VARCHAR(190) NOT NULL,
    ok TINYINT NOT NULL,
    detail TEXT NOT NULL,
    duration_ms INT NOT NULL,
    KEY alert_attempts_outbox (outbox_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE alert_events (
    event_key VARCHAR(190) NOT NULL PRIMARY KEY,
    fingerprint VARCHAR(190) NOT NULL,
    ts_ms BIGINT NOT NULL,
    state VARCHAR(16) NOT NULL,
    level VARCHAR(16) NOT NULL,
    labels TEXT NOT NULL,
    summary TEXT NOT NULL,
    silenced_by VARCHAR(64) NULL,
    node VARCHAR(190) NOT NULL,
    KEY alert_events_ts (ts_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
