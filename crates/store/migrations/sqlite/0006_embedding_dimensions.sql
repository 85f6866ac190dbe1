-- visage SQLite schema, version 6: embeddings of any length from 1 to 1,024 values (the
-- running model's), instead of SFace's 128 only. Every model's length is recorded the first
-- time one of its faces is stored, and a face whose embedding has another length than its
-- model's is refused, so that one model's faces always compare.
--
-- The CHECK on faces.embedding is part of the table, so the table is rebuilt (SQLite's
-- documented procedure: the migration runs with foreign keys off and checks them before
-- committing; secure_delete overwrites the old table's pages).
CREATE TABLE embedding_models (
    model     TEXT    PRIMARY KEY,
    dimension INTEGER NOT NULL CHECK (dimension BETWEEN 1 AND 1024)
) WITHOUT ROWID;
INSERT INTO embedding_models (model, dimension) VALUES ('sface-2021dec', 128);
INSERT OR IGNORE INTO embedding_models (model, dimension)
    SELECT DISTINCT model, length(embedding) / 4 FROM faces;

CREATE TABLE faces_v6 (
    pk        INTEGER PRIMARY KEY,                 -- enrolment order
    id        TEXT    NOT NULL UNIQUE,             -- UUID v4
    person_pk INTEGER NOT NULL REFERENCES persons (pk) ON DELETE CASCADE,
    -- 1-1,024 x f32, little-endian; the length of its model's (embedding_models)
    embedding BLOB    NOT NULL CHECK (length(embedding) BETWEEN 4 AND 4096
                                      AND length(embedding) % 4 = 0),
    model     TEXT    NOT NULL DEFAULT 'sface-2021dec'
);
INSERT INTO faces_v6 (pk, id, person_pk, embedding, model)
    SELECT pk, id, person_pk, embedding, model FROM faces;
DROP TABLE faces;
ALTER TABLE faces_v6 RENAME TO faces;
CREATE INDEX faces_by_person ON faces (person_pk);

-- A model's first face records its length; any other face of it must have that length.
CREATE TRIGGER faces_model_dimension_insert BEFORE INSERT ON faces
BEGIN
    INSERT OR IGNORE INTO embedding_models (model, dimension)
        VALUES (NEW.model, length(NEW.embedding) / 4);
    SELECT RAISE(ABORT, 'embedding length differs from its model''s')
        WHERE (SELECT dimension FROM embedding_models WHERE model = NEW.model)
              IS NOT length(NEW.embedding) / 4;
END;
CREATE TRIGGER faces_model_dimension_update BEFORE UPDATE OF embedding, model ON faces
BEGIN
    INSERT OR IGNORE INTO embedding_models (model, dimension)
        VALUES (NEW.model, length(NEW.embedding) / 4);
    SELECT RAISE(ABORT, 'embedding length differs from its model''s')
        WHERE (SELECT dimension FROM embedding_models WHERE model = NEW.model)
              IS NOT length(NEW.embedding) / 4;
END;
