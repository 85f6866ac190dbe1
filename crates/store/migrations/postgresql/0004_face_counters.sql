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

-- A face added or removed. A face removed with its person (ON DELETE CASCADE) finds no person
-- row: the person's BEFORE DELETE trigger has already taken all their faces off.
CREATE FUNCTION visage_faces_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    person record;
    face_person bigint;
BEGIN
    face_person := CASE WHEN TG_OP = 'INSERT' THEN NEW.person_pk ELSE OLD.person_pk END;
    SELECT client, status INTO person FROM persons WHERE pk = face_person;
    IF FOUND AND person.status = 'active' THEN
        PERFORM visage_count_faces(person.client, face_person,
                                   CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER faces_counted AFTER INSERT OR DELETE ON faces
    FOR EACH ROW EXECUTE FUNCTION visage_faces_changed();

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

-- A membership added or removed moves the person's searchable faces in or out of the
-- collection. Removed with the person or the collection (cascades), it finds no person row or
-- no collection row: nothing left to count.
CREATE FUNCTION visage_membership_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    person record;
    m_person bigint;
    m_collection bigint;
    n bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        m_person := NEW.person_pk;
        m_collection := NEW.collection_pk;
    ELSE
        m_person := OLD.person_pk;
        m_collection := OLD.collection_pk;
    END IF;
    SELECT client, status INTO person FROM persons WHERE pk = m_person;
    IF FOUND AND person.status = 'active' THEN
        SELECT count(*) INTO n FROM faces WHERE person_pk = m_person;
        IF n > 0 THEN
            INSERT INTO client_faces (client, faces) VALUES (person.client, 0)
            ON CONFLICT (client) DO UPDATE SET faces = client_faces.faces;
            UPDATE collections SET faces = faces + CASE WHEN TG_OP = 'INSERT' THEN n ELSE -n END
            WHERE pk = m_collection;
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER memberships_counted AFTER INSERT OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION visage_membership_changed();

-- The counts of the data already there.
INSERT INTO client_faces (client, faces)
SELECT p.client, count(*) FROM faces f JOIN persons p ON p.pk = f.person_pk
WHERE p.status = 'active' GROUP BY p.client;

UPDATE collections c SET faces = counted.n FROM (
    SELECT m.collection_pk, count(*) AS n
    FROM memberships m JOIN persons p ON p.pk = m.person_pk JOIN faces f ON f.person_pk = p.pk
    WHERE p.status = 'active' GROUP BY m.collection_pk
) counted WHERE c.pk = counted.collection_pk;
