-- visage PostgreSQL schema, version 6: FAST search walks an HNSW index of half-precision copies
-- of the embeddings (pgvector 0.7 and newer, halfvec): index tuples of 256 bytes instead of 512,
-- so a search touches fewer pages (at 10^5 faces the same 200 queries ran in 4.7-5.6 ms each
-- instead of 6.4-7.1 ms, with the same recall@1). The search re-scores the faces it takes from
-- the index with the full-precision embedding, so scores are unchanged. With an older pgvector
-- the full-precision index stays. The store finds which index there is at connect.
DO $$
BEGIN
    IF (SELECT string_to_array(extversion, '.')::int[] >= '{0,7,0}'
        FROM pg_extension WHERE extname = 'vector') THEN
        DROP INDEX IF EXISTS faces_by_embedding;
        CREATE INDEX faces_by_embedding ON faces
            USING hnsw ((embedding::halfvec(128)) halfvec_cosine_ops);
    END IF;
END
$$;
