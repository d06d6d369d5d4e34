-- dashd schema v2 (MySQL/MariaDB): refresh-token rotation and minted tokens.
-- A login session is a refresh-token family: refresh_jti is the one refresh
-- token of the family that may be used next; presenting any other (an
-- older, already rotated one) revokes the whole session.
ALTER TABLE sessions ADD COLUMN refresh_jti VARCHAR(64) NULL;
-- The token rotated away last, and when: two tabs refreshing at the same
-- moment present it within a few seconds; that is not theft.
ALTER TABLE sessions ADD COLUMN previous_jti VARCHAR(64) NULL;
ALTER TABLE sessions ADD COLUMN rotated_at_ms BIGINT NULL;

-- Tokens minted by `dashd token`, so they can be listed and revoked.
CREATE TABLE issued_tokens (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    subject VARCHAR(128) NOT NULL,
    role VARCHAR(16) NOT NULL,
    issued_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT NULL,
    KEY issued_tokens_expires (expires_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
