-- visage SQLite schema, version 1.
-- Public ids are TEXT; joins use integer keys. Times are Unix milliseconds (UTC).
-- The runner records the version in schema_version; this file does not.

CREATE TABLE collections (
    pk          INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,           -- 24 lowercase hex
    code        TEXT    NOT NULL UNIQUE,           -- UUID v4
    client      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    description TEXT,
    project     TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX collections_by_client ON collections (client, pk);

CREATE TABLE persons (
    pk            INTEGER PRIMARY KEY,             -- creation order
    id            TEXT    NOT NULL UNIQUE,         -- 24 lowercase hex
    client        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    name_key      TEXT    NOT NULL,                -- Unicode lower case of name, for matching
    gender        TEXT CHECK (gender IN ('M', 'F')),
    date_of_birth TEXT,                            -- YYYY-MM-DD
    nationality   TEXT,
    notes         TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('active', 'inactive', 'pending')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX persons_by_client ON persons (client, pk);
CREATE INDEX persons_by_name ON persons (client, name_key, date_of_birth);

-- Membership; rowid order = the order the collections were given.
CREATE TABLE memberships (
    person_pk     INTEGER NOT NULL REFERENCES persons (pk) ON DELETE CASCADE,
    collection_pk INTEGER NOT NULL REFERENCES collections (pk) ON DELETE CASCADE,
    UNIQUE (person_pk, collection_pk)
);
CREATE INDEX memberships_by_collection ON memberships (collection_pk, person_pk);

-- Embeddings live apart from thumbnails: a face row (~0.6 KiB) stays inside one b-tree page,
-- and loading the search index does not read the images.
CREATE TABLE faces (
    pk        INTEGER PRIMARY KEY,                 -- enrolment order
    id        TEXT    NOT NULL UNIQUE,             -- UUID v4
    person_pk INTEGER NOT NULL REFERENCES persons (pk) ON DELETE CASCADE,
    embedding BLOB    NOT NULL CHECK (length(embedding) = 512)  -- 128 x f32, little-endian
);
CREATE INDEX faces_by_person ON faces (person_pk);

CREATE TABLE thumbnails (
    face_pk INTEGER PRIMARY KEY REFERENCES faces (pk) ON DELETE CASCADE,
    jpeg    BLOB    NOT NULL
);

-- Append-only. Never face data, names or images. client is '' for operator actions.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    client    TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    object_id TEXT    NOT NULL
);
CREATE INDEX audit_by_client ON audit (client, seq);

CREATE TABLE revoked_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

-- One row the writer updates with synchronous=FULL when it must force the WAL to disk
-- without a checkpoint (a reader blocked the checkpoint). Holds no data.
CREATE TABLE durability_marker (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO durability_marker (id, n) VALUES (1, 0);
