-- Per-user notification read state (issue 16): which notifications each user
-- has read, and a per-user "read through" mark set by "mark all read", so the
-- unread count survives a reload and follows the user across browsers.
CREATE TABLE notification_reads (
    username VARCHAR(128) NOT NULL,
    notification_id VARCHAR(64) NOT NULL,
    read_at_ms BIGINT NOT NULL,
    PRIMARY KEY (username, notification_id),
    KEY notification_reads_notification (notification_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE notification_read_marks (
    username VARCHAR(128) NOT NULL PRIMARY KEY,
    read_through_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
