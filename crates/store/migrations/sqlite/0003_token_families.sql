-- visage SQLite schema, version 3: token families and per-client revocation.

-- A token issued by renewing another (/v2/auth/session), so that revoking a token revokes
-- every token renewed from it. expires_at: the latest expiry of this token and of every token
-- renewed from it, so that a row is kept (and pruned) only once no descendant can be used.
CREATE TABLE token_renewals (
    jti        TEXT    PRIMARY KEY,
    parent     TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX token_renewals_by_parent ON token_renewals (parent);
CREATE INDEX token_renewals_by_expiry ON token_renewals (expires_at);

-- Every token of the client issued (iat) at or before cutoff is revoked.
CREATE TABLE client_token_cutoffs (
    client TEXT    PRIMARY KEY,
    cutoff INTEGER NOT NULL
) WITHOUT ROWID;
