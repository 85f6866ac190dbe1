-- visage SQLite schema, version 2: a counter every write transaction bumps, so that a search
-- index saved at shutdown can tell whether the store changed since (then it is rebuilt).
CREATE TABLE generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO generation (id, n) VALUES (1, 0);
