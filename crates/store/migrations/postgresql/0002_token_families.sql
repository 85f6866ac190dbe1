-- visage PostgreSQL schema, version 2: token families and per-client revocation (as
-- migrations/sqlite/0003_token_families.sql).

-- A token issued by renewing another (/v2/auth/session), so that revoking a token revokes
-- every token renewed from it. expires_at: the latest expiry of this token and of every token
-- renewed from it, so that a row is kept (and pruned) only once no descendant can be used.
CREATE TABLE token_renewals (
    jti        text        PRIMARY KEY,
    parent     text        NOT NULL,
    client     text        NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX token_renewals_by_parent ON token_renewals (parent);
CREATE INDEX token_renewals_by_expiry ON token_renewals (expires_at);

-- Every token of the client issued (iat) at or before cutoff is revoked.
CREATE TABLE client_token_cutoffs (
    client text        PRIMARY KEY,
    cutoff timestamptz NOT NULL
);
