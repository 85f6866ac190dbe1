-- visage PostgreSQL schema, version 8: a face's embedding length is checked against its
-- model's once per statement instead of once per row. Version 6's row trigger ran two
-- queries for every face a bulk import wrote; this statement trigger records the models that
-- are new and checks every row of the statement with one join over its transition table.
-- The error (VS001) and what it refuses are unchanged; a statement refused writes nothing.
DROP TRIGGER faces_model_dimension ON faces;
DROP FUNCTION faces_model_dimension();

CREATE FUNCTION faces_model_dimensions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A model's first faces record its length (the first row's, when a statement brings
    -- a new model in two lengths; the check below then refuses the others).
    INSERT INTO embedding_models (model, dimension)
        SELECT DISTINCT ON (model) model, vector_dims(embedding) FROM changed ORDER BY model
        ON CONFLICT (model) DO NOTHING;
    IF EXISTS (SELECT 1 FROM changed c JOIN embedding_models m ON m.model = c.model
               WHERE vector_dims(c.embedding) <> m.dimension) THEN
        -- The store maps VS001 to an invalid-input error.
        RAISE EXCEPTION 'embedding length differs from its model''s'
            USING ERRCODE = 'VS001';
    END IF;
    RETURN NULL;
END $$;
-- Statement triggers with transition tables take no column list, so every update of faces
-- is checked (updates are rare: re-embedding rewrites the embeddings).
CREATE TRIGGER faces_model_dimensions_insert AFTER INSERT ON faces
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION faces_model_dimensions();
CREATE TRIGGER faces_model_dimensions_update AFTER UPDATE ON faces
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION faces_model_dimensions();
