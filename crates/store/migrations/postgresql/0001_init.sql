-- visage PostgreSQL schema, version 1 (needs pgvector >= 0.5 for the HNSW index).
-- Same tables as migrations/sqlite/0001_init.sql: public ids are text, joins use bigint keys
-- whose order is creation order. Times are timestamptz written with millisecond precision.
-- The runner creates the vector extension and records the version in schema_version.

CREATE TABLE collections (
    pk          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text        NOT NULL UNIQUE,       -- 24 lowercase hex
    code        text        NOT NULL UNIQUE,       -- UUID v4
    client      text        NOT NULL,
    name        text        NOT NULL,
    description text,
    project     text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX collections_by_client ON collections (client, pk);

CREATE TABLE persons (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text        NOT NULL UNIQUE,     -- 24 lowercase hex
    client        text        NOT NULL,
    name          text        NOT NULL,
    name_key      text        NOT NULL,            -- Unicode lower case of name (from Rust)
    gender        text CHECK (gender IN ('M', 'F')),
    date_of_birth date,
    nationality   text,
    notes         text,
    status        text        NOT NULL CHECK (status IN ('active', 'inactive', 'pending')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX persons_by_client ON persons (client, pk);
CREATE INDEX persons_by_name ON persons (client, name_key, date_of_birth);

-- Membership; seq order = the order the collections were given.
CREATE TABLE memberships (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_pk     bigint NOT NULL REFERENCES persons (pk) ON DELETE CASCADE,
    collection_pk bigint NOT NULL REFERENCES collections (pk) ON DELETE CASCADE,
    UNIQUE (person_pk, collection_pk)
);
CREATE INDEX memberships_by_collection ON memberships (collection_pk, person_pk);

-- Embeddings apart from thumbnails, as in SQLite: a search never reads the images.
CREATE TABLE faces (
    pk        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- enrolment order
    id        text        NOT NULL UNIQUE,                      -- UUID v4
    person_pk bigint      NOT NULL REFERENCES persons (pk) ON DELETE CASCADE,
    embedding vector(128) NOT NULL
);
CREATE INDEX faces_by_person ON faces (person_pk);
-- Approximate 1:N search (PostgresStore::nearest_persons with exact = false).
CREATE INDEX faces_by_embedding ON faces USING hnsw (embedding vector_cosine_ops);

CREATE TABLE thumbnails (
    face_pk bigint PRIMARY KEY REFERENCES faces (pk) ON DELETE CASCADE,
    jpeg    bytea  NOT NULL
);
-- JPEG does not compress: store large ones out of line without trying.
ALTER TABLE thumbnails ALTER COLUMN jpeg SET STORAGE EXTERNAL;

-- Append-only. Never face data, names or images. client is '' for operator actions.
CREATE TABLE audit (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL,
    client    text        NOT NULL,
    action    text        NOT NULL,
    object_id text        NOT NULL
);
CREATE INDEX audit_by_client ON audit (client, seq);

CREATE TABLE revoked_tokens (
    jti        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
