-- visage PostgreSQL schema, version 4: how many faces a search compares (`faces_searched`),
-- kept up to date inside every write transaction by triggers, so that a search reads one row
-- instead of counting the client's faces (~50 ms at 10^5 faces).
--
-- Searchable faces are the faces of active persons: per client in client_faces, per collection
-- in collections.faces (a person's faces count once in each of their collections).
--
-- Lock order: a trigger that changes counters first updates the client's row (always, even by
-- zero), then collection rows; so two writers of one client queue on the client row and never
-- deadlock on collection rows.

CREATE TABLE client_faces (
    client text   PRIMARY KEY,
    faces  bigint NOT NULL DEFAULT 0
);

ALTER TABLE collections ADD COLUMN faces bigint NOT NULL DEFAULT 0;

-- Adds `delta` searchable faces to the client and to every collection of the person.
CREATE FUNCTION visage_count_faces(p_client text, p_person bigint, delta bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO client_faces (client, faces) VALUES (p_client, delta)
    ON CONFLICT (client) DO UPDATE SET faces = client_faces.faces + delta;
    IF delta <> 0 THEN
        UPDATE collections c SET faces = c.faces + delta
        FROM memberships m WHERE m.person_pk = p_person AND c.pk = m.collection_pk;
    END IF;
END $$;

-- Faces added or removed, counted once per statement (a bulk insert of 10^5 faces updates the
-- client's row once, not 10^5 times). Faces removed with their person (ON DELETE CASCADE) find
-- no person row: the person's BEFORE DELETE trigger has already taken all their faces off.
CREATE FUNCTION visage_faces_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign bigint := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    INSERT INTO client_faces (client, faces)
    SELECT p.client, sign * count(*) FROM changed f JOIN persons p ON p.pk = f.person_pk
    WHERE p.status = 'active' GROUP BY p.client ORDER BY p.client
    ON CONFLICT (client) DO UPDATE SET faces = client_faces.faces + excluded.faces;
    UPDATE collections c SET faces = c.faces + delta.n FROM (
        SELECT m.collection_pk, sign * count(*) AS n
        FROM changed f JOIN persons p ON p.pk = f.person_pk
        JOIN memberships m ON m.person_pk = f.person_pk
        WHERE p.status = 'active' GROUP BY m.collection_pk
    ) delta WHERE c.pk = delta.collection_pk;
    RETURN NULL;
END $$;

CREATE TRIGGER faces_counted_insert AFTER INSERT ON faces REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION visage_faces_changed();
CREATE TRIGGER faces_counted_delete AFTER DELETE ON faces REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION visage_faces_changed();

-- A person becoming active or inactive, or erased.
CREATE FUNCTION visage_person_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status = 'active' THEN
            SELECT count(*) INTO n FROM faces WHERE person_pk = OLD.pk;
            PERFORM visage_count_faces(OLD.client, OLD.pk, -n);
        END IF;
        RETURN OLD;
    END IF;
    IF (OLD.status = 'active') <> (NEW.status = 'active') OR OLD.client <> NEW.client THEN
        SELECT count(*) INTO n FROM faces WHERE person_pk = NEW.pk;
        IF OLD.status = 'active' THEN
            PERFORM visage_count_faces(OLD.client, OLD.pk, -n);
        END IF;
        IF NEW.status = 'active' THEN
            PERFORM visage_count_faces(NEW.client, NEW.pk, n);
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER persons_counted_update AFTER UPDATE ON persons
    FOR EACH ROW EXECUTE FUNCTION visage_person_changed();
-- BEFORE: the person's faces and memberships are still there to count.
CREATE TRIGGER persons_counted_delete BEFORE DELETE ON persons
    FOR EACH ROW EXECUTE FUNCTION visage_person_changed();

-- Memberships added or removed (once per statement) move their persons' searchable faces in
-- or out of the collections. Removed with the person or the collection (cascades), they find
-- no person row or no collection row: nothing left to count.
CREATE FUNCTION visage_memberships_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign bigint := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    INSERT INTO client_faces (client, faces)
    SELECT DISTINCT p.client, 0 FROM changed m JOIN persons p ON p.pk = m.person_pk
    WHERE p.status = 'active' ORDER BY p.client
    ON CONFLICT (client) DO UPDATE SET faces = client_faces.faces;
    UPDATE collections c SET faces = c.faces + delta.n FROM (
        SELECT m.collection_pk, sign * count(*) AS n
        FROM changed m JOIN persons p ON p.pk = m.person_pk
        JOIN faces f ON f.person_pk = m.person_pk
        WHERE p.status = 'active' GROUP BY m.collection_pk
    ) delta WHERE c.pk = delta.collection_pk;
    RETURN NULL;
END $$;

CREATE TRIGGER memberships_counted_insert AFTER INSERT ON memberships
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION visage_memberships_changed();
CREATE TRIGGER memberships_counted_delete AFTER DELETE ON memberships
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION visage_memberships_changed();

-- The counts of the data already there.
INSERT INTO client_faces (client, faces)
SELECT p.client, count(*) FROM faces f JOIN persons p ON p.pk = f.person_pk
WHERE p.status = 'active' GROUP BY p.client;

UPDATE collections c SET faces = counted.n FROM (
    SELECT m.collection_pk, count(*) AS n
    FROM memberships m JOIN persons p ON p.pk = m.person_pk JOIN faces f ON f.person_pk = p.pk
    WHERE p.status = 'active' GROUP BY m.collection_pk
) counted WHERE c.pk = counted.collection_pk;
