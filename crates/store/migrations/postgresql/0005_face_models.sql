-- visage PostgreSQL schema, version 5: the embedding model of every face (faces of different
-- models are never compared), and the aligned face kept losslessly (PNG) so that a gallery
-- can be re-embedded by another model without the original photos. Faces enrolled before
-- version 5 were embedded by SFace 2021dec and have no crop.
ALTER TABLE faces ADD COLUMN model text NOT NULL DEFAULT 'sface-2021dec';
-- Finds faces of models other than the searching one (two range scans, empty while one
-- model serves), which `faces_searched` takes off the face counters.
CREATE INDEX faces_model ON faces (model);

CREATE TABLE crops (
    face_pk bigint PRIMARY KEY REFERENCES faces (pk) ON DELETE CASCADE,
    png     bytea  NOT NULL
);
-- PNG does not compress further either.
ALTER TABLE crops ALTER COLUMN png SET STORAGE EXTERNAL;
