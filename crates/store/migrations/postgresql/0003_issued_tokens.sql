-- visage PostgreSQL schema, version 3: every token issued (as
-- migrations/sqlite/0004_issued_tokens.sql).
CREATE TABLE issued_tokens (
    jti        text        PRIMARY KEY,
    client     text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    parent     text
);
CREATE INDEX issued_tokens_by_client ON issued_tokens (client, created_at);
