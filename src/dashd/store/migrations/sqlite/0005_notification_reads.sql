-- Per-user notification read state (issue 16): which notifications each user
-- has read, and a per-user "read through" mark set by "mark all read", so the
-- unread count survives a reload and follows the user across browsers.
CREATE TABLE notification_reads (
    username TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    read_at_ms INTEGER NOT NULL,
    PRIMARY KEY (username, notification_id)
);
CREATE INDEX notification_reads_notification ON notification_reads (notification_id);

CREATE TABLE notification_read_marks (
    username TEXT PRIMARY KEY,
    read_through_ms INTEGER NOT NULL
);
