-- dashd schema v2 (SQLite): refresh-token rotation and minted tokens.
-- A login session is a refresh-token family: refresh_jti is the one refresh
-- token of the family that may be used next; presenting any other (an
-- older, already rotated one) revokes the whole session.
ALTER TABLE sessions ADD COLUMN refresh_jti TEXT;
-- The token rotated away last, and when: two tabs refreshing at the same
-- moment present it within a few seconds; that is not theft.
ALTER TABLE sessions ADD COLUMN previous_jti TEXT;
ALTER TABLE sessions ADD COLUMN rotated_at_ms INTEGER;

-- Tokens minted by `dashd token`, so they can be listed and revoked.
CREATE TABLE issued_tokens (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE INDEX issued_tokens_expires ON issued_tokens (expires_at_ms);
