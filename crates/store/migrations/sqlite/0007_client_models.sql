-- visage SQLite schema, version 7: each client's faces are all embedded by one model, the
-- one recorded here. A face of another model is refused (so a search never compares two
-- models' embeddings), and a client moves to another model in one transaction that
-- replaces all its embeddings and this row together (Store::switch_client_model).
CREATE TABLE client_models (
    client TEXT NOT NULL PRIMARY KEY,
    model  TEXT NOT NULL REFERENCES embedding_models (model)
) WITHOUT ROWID;
-- Stores written before this version hold one model per client (re-embedding moved the
-- whole store at once); min() picks it.
INSERT INTO client_models (client, model)
    SELECT p.client, min(f.model) FROM faces f JOIN persons p ON p.pk = f.person_pk
    GROUP BY p.client;
