-- visage PostgreSQL schema, version 6: embeddings of any length from 1 to 1,024 values (the
-- running model's), instead of SFace's 128 only. faces.embedding becomes an untyped vector;
-- every model's length is recorded the first time one of its faces is stored, and a face
-- whose embedding has another length than its model's is refused, so that one model's faces
-- always compare. pgvector's HNSW index needs a fixed length, so each model gets a partial
-- index over its own faces, cast to its length (embedding_model_index, which the server
-- calls for its model at start); a query uses it when it orders by the same cast and
-- filters on the same model.
CREATE TABLE embedding_models (
    model     text    PRIMARY KEY,
    dimension integer NOT NULL CHECK (dimension BETWEEN 1 AND 1024)
);
INSERT INTO embedding_models (model, dimension) VALUES ('sface-2021dec', 128);
INSERT INTO embedding_models (model, dimension)
    SELECT DISTINCT model, 128 FROM faces ON CONFLICT (model) DO NOTHING;

DROP INDEX IF EXISTS faces_by_embedding;
ALTER TABLE faces ALTER COLUMN embedding TYPE vector;
-- Kept in the row, never compressed or moved to TOAST (1,024 values are 4 KiB, which a page
-- holds): a search reads it without detoasting, and erasing the row erases it.
ALTER TABLE faces ALTER COLUMN embedding SET STORAGE PLAIN;

-- The name of a model's HNSW index (model ids are up to 64 characters, names up to 63).
CREATE FUNCTION embedding_model_index_name(model text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'faces_hnsw_' || left(md5(model), 20) $$;

-- Creates the model's HNSW index when missing; its length is the recorded one.
CREATE FUNCTION embedding_model_index(wanted text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    kind text;
BEGIN
    SELECT dimension INTO n FROM embedding_models WHERE model = wanted;
    IF n IS NULL THEN
        RAISE EXCEPTION 'embedding model % is not recorded', wanted;
    END IF;
    -- From pgvector 0.7 on the index holds half-precision copies (halfvec): index tuples of
    -- half the size, so a search touches fewer pages (at 10^5 faces the same 200 queries
    -- ran in 4.7-5.6 ms each instead of 6.4-7.1 ms, same recall@1); scores are still the
    -- full-precision distance. An index of the other kind (pgvector upgraded since it was
    -- built) is rebuilt, so that the store can tell the kind from the version alone.
    IF (SELECT string_to_array(extversion, '.')::int[] >= '{0,7,0}'
        FROM pg_extension WHERE extname = 'vector') THEN
        kind := format('(embedding::halfvec(%s)) halfvec_cosine_ops', n);
    ELSE
        kind := format('(embedding::vector(%s)) vector_cosine_ops', n);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_indexes
               WHERE schemaname = current_schema()
                 AND indexname = embedding_model_index_name(wanted)
                 AND (indexdef LIKE '%halfvec%') <> (kind LIKE '%halfvec%')) THEN
        EXECUTE format('DROP INDEX %I', embedding_model_index_name(wanted));
    END IF;
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON faces USING hnsw (%s) WHERE model = %L',
        embedding_model_index_name(wanted), kind, wanted);
END $$;

CREATE FUNCTION faces_model_dimension() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO embedding_models (model, dimension)
        VALUES (NEW.model, vector_dims(NEW.embedding)) ON CONFLICT (model) DO NOTHING;
    SELECT dimension INTO n FROM embedding_models WHERE model = NEW.model;
    IF n <> vector_dims(NEW.embedding) THEN
        -- The store maps VS001 to an invalid-input error.
        RAISE EXCEPTION 'embedding length differs from its model''s'
            USING ERRCODE = 'VS001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER faces_model_dimension BEFORE INSERT OR UPDATE OF embedding, model ON faces
    FOR EACH ROW EXECUTE FUNCTION faces_model_dimension();

SELECT embedding_model_index('sface-2021dec');
