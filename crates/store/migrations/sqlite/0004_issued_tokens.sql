-- visage SQLite schema, version 4: every token issued (never the token itself), so that an
-- operator can list them. Kept after expiry (a row is a few dozen bytes).
CREATE TABLE issued_tokens (
    jti        TEXT    PRIMARY KEY,
    client     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    parent     TEXT                                -- the jti it was renewed from
) WITHOUT ROWID;
CREATE INDEX issued_tokens_by_client ON issued_tokens (client, created_at);
