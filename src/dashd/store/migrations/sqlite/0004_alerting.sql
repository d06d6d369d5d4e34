-- Alert delivery (issue 14): channels managed from the API, silences, the
-- durable outbox with each attempt's outcome, and the alert timeline.
CREATE TABLE alert_channels (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE alert_silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at_ms INTEGER NOT NULL,
    ends_at_ms INTEGER NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expired_by TEXT
);
CREATE INDEX alert_silences_ends ON alert_silences (ends_at_ms);

CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until_ms INTEGER,
    last_error TEXT,
    finished_at_ms INTEGER
);
CREATE INDEX alert_outbox_due ON alert_outbox (status, next_attempt_ms);
CREATE INDEX alert_outbox_created ON alert_outbox (created_at_ms);

CREATE TABLE alert_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    node TEXT NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX alert_attempts_outbox ON alert_attempts (outbox_id);

CREATE TABLE alert_events (
    event_key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    level TEXT NOT NULL,
    labels TEXT NOT NULL,
    summary TEXT NOT NULL,
    silenced_by TEXT,
    node TEXT NOT NULL
);
CREATE INDEX alert_events_ts ON alert_events (ts_ms)
