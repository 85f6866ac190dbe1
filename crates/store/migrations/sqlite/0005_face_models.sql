-- visage SQLite schema, version 5: the embedding model of every face (faces of different
-- models are never compared), and the aligned face kept losslessly (PNG) so that a gallery
-- can be re-embedded by another model without the original photos. Faces enrolled before
-- version 5 were embedded by SFace 2021dec and have no crop.
ALTER TABLE faces ADD COLUMN model TEXT NOT NULL DEFAULT 'sface-2021dec';

CREATE TABLE crops (
    face_pk INTEGER PRIMARY KEY REFERENCES faces (pk) ON DELETE CASCADE,
    png     BLOB    NOT NULL
);
