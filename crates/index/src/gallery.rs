//! Faces in memory: per client, embeddings in one contiguous array (row-major, 128 floats per
//! face) so that an exact search is a straight scan.

use std::collections::HashMap;
use std::sync::RwLock;

use store::{ClientId, CollectionId, PersonId, EMBEDDING_DIM};

use crate::quantized::dot_f32;

/// What to search for.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    /// A unit-length probe embedding of [`EMBEDDING_DIM`] values.
    pub probe: &'a [f32],
    /// Only persons in this collection.
    pub collection: Option<&'a CollectionId>,
    /// Only persons whose best face reaches this cosine.
    pub min_cosine: f32,
    /// At most this many persons.
    pub max_results: usize,
}

/// A person found, with the cosine of their best-matching face.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub person: PersonId,
    pub cosine: f32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchOutcome {
    /// Best first; one per person.
    pub hits: Vec<Hit>,
    /// Faces compared with the probe (the gallery size that bounds the false-match risk).
    pub faces_searched: usize,
}

/// Every indexed face of every client.
#[derive(Default)]
pub struct Gallery {
    clients: RwLock<HashMap<ClientId, ClientFaces>>,
}

#[derive(Default)]
struct ClientFaces {
    /// `rows * EMBEDDING_DIM` values.
    vectors: Vec<f32>,
    /// Per row: the slot of the person the face belongs to.
    owner: Vec<u32>,
    slots: Vec<Option<PersonSlot>>,
    free_slots: Vec<u32>,
    by_person: HashMap<PersonId, u32>,
}

struct PersonSlot {
    id: PersonId,
    collections: Vec<CollectionId>,
    /// Rows holding this person's faces.
    rows: Vec<u32>,
}

impl Gallery {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a person's faces and collections, replacing whatever was indexed for them. An
    /// empty `faces` removes the person. Embeddings of the wrong length are skipped.
    pub fn put_person(
        &self,
        client: &ClientId,
        person: &PersonId,
        collections: Vec<CollectionId>,
        faces: &[&[f32]],
    ) {
        let mut clients = self.write();
        let entry = clients.entry(client.clone()).or_default();
        entry.remove(person);
        let faces: Vec<&[f32]> = faces
            .iter()
            .copied()
            .filter(|f| f.len() == EMBEDDING_DIM)
            .collect();
        if !faces.is_empty() {
            entry.insert(person.clone(), collections, &faces);
        }
        if entry.owner.is_empty() {
            clients.remove(client);
        }
    }

    /// Removes a person; `false` when they were not indexed.
    pub fn remove_person(&self, client: &ClientId, person: &PersonId) -> bool {
        let mut clients = self.write();
        let Some(entry) = clients.get_mut(client) else {
            return false;
        };
        let removed = entry.remove(person);
        if entry.owner.is_empty() {
            clients.remove(client);
        }
        removed
    }

    /// Indexed persons of the client in `collection`.
    pub fn members(&self, client: &ClientId, collection: &CollectionId) -> Vec<PersonId> {
        let clients = self.read();
        let Some(entry) = clients.get(client) else {
            return Vec::new();
        };
        entry
            .slots
            .iter()
            .flatten()
            .filter(|s| s.collections.contains(collection))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Faces indexed for the client.
    pub fn face_count(&self, client: &ClientId) -> usize {
        self.read().get(client).map_or(0, |c| c.owner.len())
    }

    /// Faces indexed over all clients.
    pub fn total_faces(&self) -> usize {
        self.read().values().map(|c| c.owner.len()).sum()
    }

    /// Exact search: every face of the client (in the collection, if given) is compared.
    pub fn search(&self, client: &ClientId, request: &SearchRequest<'_>) -> SearchOutcome {
        if request.probe.len() != EMBEDDING_DIM || request.max_results == 0 {
            return SearchOutcome::default();
        }
        let clients = self.read();
        match clients.get(client) {
            Some(entry) => entry.search(request),
            None => SearchOutcome::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ClientId, ClientFaces>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than losing search altogether, so a poisoned lock is still used.
        self.clients.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ClientId, ClientFaces>> {
        self.clients.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientFaces {
    fn insert(&mut self, id: PersonId, collections: Vec<CollectionId>, faces: &[&[f32]]) {
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let mut rows = Vec::with_capacity(faces.len());
        for face in faces {
            rows.push(self.owner.len() as u32);
            self.owner.push(slot);
            self.vectors.extend_from_slice(face);
        }
        self.by_person.insert(id.clone(), slot);
        self.slots[slot as usize] = Some(PersonSlot {
            id,
            collections,
            rows,
        });
    }

    fn remove(&mut self, id: &PersonId) -> bool {
        let Some(slot) = self.by_person.remove(id) else {
            return false;
        };
        let Some(person) = self.slots[slot as usize].take() else {
            return false;
        };
        self.free_slots.push(slot);
        let mut rows = person.rows;
        // Highest first, so that a row moved into a hole is never one still to be removed.
        rows.sort_unstable_by(|a, b| b.cmp(a));
        for row in rows {
            self.swap_remove_row(row as usize);
        }
        true
    }

    /// Removes one row by moving the last row into its place.
    fn swap_remove_row(&mut self, row: usize) {
        let last = self.owner.len() - 1;
        if row != last {
            let moved_owner = self.owner[last];
            self.vectors.copy_within(
                last * EMBEDDING_DIM..(last + 1) * EMBEDDING_DIM,
                row * EMBEDDING_DIM,
            );
            self.owner[row] = moved_owner;
            if let Some(p) = self.slots[moved_owner as usize].as_mut() {
                for r in p.rows.iter_mut().filter(|r| **r as usize == last) {
                    *r = row as u32;
                }
            }
        }
        self.owner.pop();
        self.vectors.truncate(last * EMBEDDING_DIM);
    }

    fn search(&self, request: &SearchRequest<'_>) -> SearchOutcome {
        let in_scope: Vec<bool> = self
            .slots
            .iter()
            .map(|s| match (s, request.collection) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(p), Some(c)) => p.collections.contains(c),
            })
            .collect();
        let mut best = vec![f32::NEG_INFINITY; self.slots.len()];
        let mut searched = 0;
        for (face, &slot) in self.vectors.chunks_exact(EMBEDDING_DIM).zip(&self.owner) {
            let slot = slot as usize;
            if !in_scope[slot] {
                continue;
            }
            searched += 1;
            let c = dot_f32(face, request.probe);
            if c > best[slot] {
                best[slot] = c;
            }
        }
        let mut hits: Vec<Hit> = best
            .iter()
            .enumerate()
            .filter(|(_, &c)| c >= request.min_cosine)
            .filter_map(|(slot, &c)| {
                let p = self.slots[slot].as_ref()?;
                Some(Hit {
                    person: p.id.clone(),
                    cosine: c,
                })
            })
            .collect();
        hits.sort_by(|a, b| b.cosine.total_cmp(&a.cosine));
        hits.truncate(request.max_results);
        SearchOutcome {
            hits,
            faces_searched: searched,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(axis: usize, tilt: f32) -> Vec<f32> {
        let mut v = vec![0.0; EMBEDDING_DIM];
        v[axis] = 1.0;
        v[(axis + 1) % EMBEDDING_DIM] = tilt;
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn ids() -> (ClientId, PersonId, PersonId, PersonId, CollectionId) {
        (
            ClientId::parse("tenant").expect("client"),
            PersonId::new_random(),
            PersonId::new_random(),
            PersonId::new_random(),
            CollectionId::new_random(),
        )
    }

    fn request<'a>(probe: &'a [f32], collection: Option<&'a CollectionId>) -> SearchRequest<'a> {
        SearchRequest {
            probe,
            collection,
            min_cosine: -1.0,
            max_results: 10,
        }
    }

    #[test]
    fn search_groups_by_person_sorts_and_scopes() {
        let (client, a, b, c, coll) = ids();
        let g = Gallery::new();
        g.put_person(
            &client,
            &a,
            vec![coll.clone()],
            &[&unit(0, 0.0), &unit(5, 0.0)],
        );
        g.put_person(&client, &b, vec![], &[&unit(0, 0.5)]);
        g.put_person(&client, &c, vec![coll.clone()], &[&unit(9, 0.0)]);
        let probe = unit(0, 0.1);
        let all = g.search(&client, &request(&probe, None));
        assert_eq!(all.faces_searched, 4);
        let order: Vec<&PersonId> = all.hits.iter().map(|h| &h.person).collect();
        assert_eq!(order, [&a, &b, &c]);
        assert!(all.hits[0].cosine > 0.99);

        let scoped = g.search(&client, &request(&probe, Some(&coll)));
        assert_eq!(scoped.faces_searched, 3);
        assert_eq!(scoped.hits.len(), 2);
        assert_eq!(g.members(&client, &coll).len(), 2);

        let strict = SearchRequest {
            min_cosine: 0.9,
            max_results: 1,
            ..request(&probe, None)
        };
        assert_eq!(g.search(&client, &strict).hits.len(), 1);
        let other = ClientId::parse("someone-else").expect("client");
        assert_eq!(
            g.search(&other, &request(&probe, None)),
            SearchOutcome::default()
        );
    }

    #[test]
    fn removal_keeps_the_remaining_rows_consistent() {
        let (client, a, b, c, _) = ids();
        let g = Gallery::new();
        g.put_person(&client, &a, vec![], &[&unit(1, 0.0), &unit(2, 0.0)]);
        g.put_person(&client, &b, vec![], &[&unit(3, 0.0)]);
        g.put_person(&client, &c, vec![], &[&unit(4, 0.0), &unit(6, 0.0)]);
        assert!(g.remove_person(&client, &a));
        assert!(!g.remove_person(&client, &a));
        assert_eq!(g.face_count(&client), 3);
        for (axis, who) in [(3, &b), (4, &c), (6, &c)] {
            let hit = &g.search(&client, &request(&unit(axis, 0.0), None)).hits[0];
            assert_eq!(&hit.person, who);
            assert!(hit.cosine > 0.999, "axis {axis}: {}", hit.cosine);
        }
        // Replacing faces drops the old ones; an empty face list removes the person.
        g.put_person(&client, &c, vec![], &[&unit(7, 0.0)]);
        assert_eq!(g.face_count(&client), 2);
        g.put_person(&client, &b, vec![], &[]);
        g.put_person(&client, &c, vec![], &[]);
        assert_eq!(g.total_faces(), 0);
        // Slots are reused after removals.
        g.put_person(&client, &a, vec![], &[&unit(8, 0.0)]);
        let hits = g.search(&client, &request(&unit(8, 0.0), None)).hits;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].person, a);
    }

    #[test]
    fn malformed_vectors_are_ignored() {
        let (client, a, _, _, _) = ids();
        let g = Gallery::new();
        g.put_person(&client, &a, vec![], &[&[1.0, 0.0]]);
        assert_eq!(g.total_faces(), 0);
        assert!(g.search(&client, &request(&[1.0], None)).hits.is_empty());
    }
}
