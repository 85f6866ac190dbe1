//! Every client's faces in memory, each client behind its own lock, searched in two steps:
//! the index proposes candidate faces on int8 codes (exact scan or graph), then the caller
//! re-scores them on their f32 embeddings (read from the store, so that no second copy of
//! them is kept) with [`rank_persons`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use store::{ClientId, CollectionId, FaceId, PersonId, MAX_FACES_PER_PERSON};

use crate::client::{ClientIndex, EfSearch, ExactScan, IndexParams, Mode};

/// What to search for.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    /// A unit-length probe embedding of the gallery's dimension.
    pub probe: &'a [f32],
    /// Only persons in this collection.
    pub collection: Option<&'a CollectionId>,
    pub mode: Mode,
    /// Only persons whose best face reaches this cosine.
    pub min_cosine: f32,
    /// At most this many persons.
    pub max_results: usize,
}

/// A face worth re-scoring, with the int8 estimate of its cosine.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub face: FaceId,
    pub person: PersonId,
    pub estimate: f32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CandidateSet {
    /// Best estimate first.
    pub candidates: Vec<Candidate>,
    /// Faces in scope (the gallery size that bounds the false-match risk).
    pub faces_searched: usize,
    /// Whether the approximate graph answered (FAST on a large gallery).
    pub used_graph: bool,
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
    pub faces_searched: usize,
}

/// How far below the threshold an int8 estimate may be and still be re-scored: the
/// quantisation error of a cosine is below 0.01 (see `quantized`'s tests).
const ESTIMATE_MARGIN: f32 = 0.05;

/// Candidates re-scored for `max_results` persons: every face of the best persons plus a
/// wide margin for int8 rank swaps (with 64, `visage bench index` finds the top 10 identical
/// to a full f32 scan on every query at 10^5 and 10^6 faces).
pub fn candidate_count(max_results: usize) -> usize {
    64.max(MAX_FACES_PER_PERSON * max_results + 32)
}

type Shared = Arc<RwLock<ClientIndex>>;

#[derive(Default)]
pub struct Gallery {
    params: IndexParams,
    clients: RwLock<HashMap<ClientId, Shared>>,
}

impl Gallery {
    pub fn new(params: IndexParams) -> Self {
        Gallery {
            params,
            clients: RwLock::default(),
        }
    }

    /// Changes how wide FAST searches are (benchmarks sweep it).
    pub fn set_ef_search(&self, ef: EfSearch) {
        for (_, index) in self.all() {
            write(&index).set_ef_search(ef);
        }
    }

    /// Changes how the exact scan compares faces (benchmarks compare both; the default,
    /// [`ExactScan::TwoStage`], is what the server runs).
    pub fn set_exact_scan(&self, scan: ExactScan) {
        for (_, index) in self.all() {
            write(&index).set_exact_scan(scan);
        }
    }

    /// Sets a person's faces and collections, replacing whatever was indexed for them. An
    /// empty `faces` removes the person. Embeddings of the wrong length are skipped.
    pub fn put_person(
        &self,
        client: &ClientId,
        person: &PersonId,
        collections: &[CollectionId],
        faces: &[(FaceId, &[f32])],
    ) {
        let faces: Vec<(u128, &[f32])> = faces
            .iter()
            .filter(|(_, v)| v.len() == self.params.dimension)
            .map(|(id, v)| (id.to_u128(), *v))
            .collect();
        if faces.is_empty() {
            self.remove_person(client, person);
            return;
        }
        let index = self.client_or_new(client);
        write(&index).put(person.to_bytes(), collections, &faces);
    }

    /// Removes a person; `false` when they were not indexed.
    pub fn remove_person(&self, client: &ClientId, person: &PersonId) -> bool {
        self.client(client)
            .is_some_and(|index| write(&index).remove(&person.to_bytes()))
    }

    /// Indexed persons of the client in `collection`.
    pub fn members(&self, client: &ClientId, collection: &CollectionId) -> Vec<PersonId> {
        self.client(client).map_or_else(Vec::new, |index| {
            read(&index)
                .members(collection)
                .into_iter()
                .map(PersonId::from_bytes)
                .collect()
        })
    }

    /// Faces indexed for the client.
    pub fn face_count(&self, client: &ClientId) -> usize {
        self.client(client)
            .map_or(0, |index| read(&index).live_faces())
    }

    /// Faces indexed over all clients.
    pub fn total_faces(&self) -> usize {
        self.all().iter().map(|(_, i)| read(i).live_faces()).sum()
    }

    /// RAM held by the index structures (codes, ids, graph links, person slots).
    pub fn memory_bytes(&self) -> usize {
        self.all().iter().map(|(_, i)| read(i).memory_bytes()).sum()
    }

    /// Returns spare capacity after a bulk load.
    pub fn shrink_to_fit(&self) {
        for (_, index) in self.all() {
            write(&index).shrink_to_fit();
        }
    }

    /// Candidate faces for the request (re-score them with [`rank_persons`]).
    pub fn candidates(&self, client: &ClientId, request: &SearchRequest<'_>) -> CandidateSet {
        if request.probe.len() != self.params.dimension || request.max_results == 0 {
            return CandidateSet::default();
        }
        let Some(index) = self.client(client) else {
            return CandidateSet::default();
        };
        let index = read(&index);
        let found = index.candidates(
            request.probe,
            request.collection,
            request.mode,
            candidate_count(request.max_results),
            request.min_cosine - ESTIMATE_MARGIN,
        );
        let candidates = found
            .rows
            .iter()
            .filter_map(|&(estimate, row)| {
                Some(Candidate {
                    face: FaceId::from_u128(index.face_of(row)),
                    person: PersonId::from_bytes(index.person_of(row)?),
                    estimate,
                })
            })
            .collect();
        CandidateSet {
            candidates,
            faces_searched: found.faces_in_scope,
            used_graph: found.used_graph,
        }
    }

    /// Adds up to `max_rows` pending faces to each large client's graph, one client lock
    /// at a time. Returns whether any client still has faces to add.
    pub fn build_graphs(&self, max_rows: usize) -> bool {
        let mut more = false;
        for (_, index) in self.all() {
            if read(&index).graph_backlog() == 0 {
                continue;
            }
            let mut index = write(&index);
            index.extend_graph(max_rows);
            more |= index.graph_backlog() > 0;
        }
        more
    }

    /// Rows the graphs still have to take in.
    pub fn graph_backlog(&self) -> usize {
        self.all()
            .iter()
            .map(|(_, i)| read(i).graph_backlog())
            .sum()
    }

    pub(crate) fn all(&self) -> Vec<(ClientId, Shared)> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        clients
            .iter()
            .map(|(c, i)| (c.clone(), i.clone()))
            .collect()
    }

    pub(crate) fn insert_client(&self, client: ClientId, index: ClientIndex) {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        clients.insert(client, Arc::new(RwLock::new(index)));
    }

    fn client(&self, client: &ClientId) -> Option<Shared> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        clients.get(client).cloned()
    }

    fn client_or_new(&self, client: &ClientId) -> Shared {
        if let Some(index) = self.client(client) {
            return index;
        }
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(client.clone())
            .or_insert_with(|| Arc::new(RwLock::new(ClientIndex::new(self.params))))
            .clone()
    }
}

// A panic while holding a lock leaves at worst a half-applied put or remove of one person,
// which the next refresh of that person repairs; losing search altogether would be worse.
pub(crate) fn read(index: &Shared) -> RwLockReadGuard<'_, ClientIndex> {
    index.read().unwrap_or_else(|p| p.into_inner())
}

fn write(index: &Shared) -> RwLockWriteGuard<'_, ClientIndex> {
    index.write().unwrap_or_else(|p| p.into_inner())
}

/// The persons of the candidates, ranked on exact cosines: `exact(face)` is the f32 cosine of
/// a candidate face, `None` for a face that no longer exists (erased since the scan), which
/// is then left out.
pub fn rank_persons(
    candidates: &[Candidate],
    exact: impl Fn(&FaceId) -> Option<f32>,
    min_cosine: f32,
    max_results: usize,
) -> Vec<Hit> {
    let mut best: HashMap<&PersonId, f32> = HashMap::new();
    for c in candidates {
        let Some(cosine) = exact(&c.face) else {
            continue;
        };
        let entry = best.entry(&c.person).or_insert(f32::NEG_INFINITY);
        *entry = entry.max(cosine);
    }
    let mut hits: Vec<Hit> = best
        .into_iter()
        .filter(|(_, c)| *c >= min_cosine)
        .map(|(p, cosine)| Hit {
            person: p.clone(),
            cosine,
        })
        .collect();
    hits.sort_by(|a, b| {
        b.cosine
            .total_cmp(&a.cosine)
            .then_with(|| a.person.cmp(&b.person))
    });
    hits.truncate(max_results);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantized::dot_f32;
    use store::EMBEDDING_DIM;

    fn unit(axis: usize, tilt: f32) -> Vec<f32> {
        let mut v = vec![0.0; EMBEDDING_DIM];
        v[axis] = 1.0;
        v[(axis + 1) % EMBEDDING_DIM] = tilt;
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// The gallery plus the f32 vectors the store would hold.
    #[derive(Default)]
    struct World {
        gallery: Gallery,
        vectors: HashMap<FaceId, Vec<f32>>,
    }

    impl World {
        fn put(&mut self, client: &ClientId, p: &PersonId, cols: &[CollectionId], v: &[Vec<f32>]) {
            let faces: Vec<(FaceId, &[f32])> = v
                .iter()
                .map(|v| (FaceId::new_random(), v.as_slice()))
                .collect();
            for (id, v) in &faces {
                self.vectors.insert(id.clone(), v.to_vec());
            }
            self.gallery.put_person(client, p, cols, &faces);
        }

        fn search(&self, client: &ClientId, request: &SearchRequest<'_>) -> SearchOutcome {
            let found = self.gallery.candidates(client, request);
            let hits = rank_persons(
                &found.candidates,
                |f| self.vectors.get(f).map(|v| dot_f32(v, request.probe)),
                request.min_cosine,
                request.max_results,
            );
            SearchOutcome {
                hits,
                faces_searched: found.faces_searched,
            }
        }
    }

    fn ids() -> (ClientId, PersonId, PersonId, PersonId, CollectionId) {
        (
            ClientId::parse("tenant").expect("client"),
            PersonId::new(),
            PersonId::new(),
            PersonId::new(),
            CollectionId::new(),
        )
    }

    fn request<'a>(probe: &'a [f32], collection: Option<&'a CollectionId>) -> SearchRequest<'a> {
        SearchRequest {
            probe,
            collection,
            mode: Mode::Exact,
            min_cosine: -1.0,
            max_results: 10,
        }
    }

    #[test]
    fn search_groups_by_person_sorts_and_scopes() {
        let (client, a, b, c, coll) = ids();
        let mut w = World::default();
        w.put(
            &client,
            &a,
            std::slice::from_ref(&coll),
            &[unit(0, 0.0), unit(5, 0.0)],
        );
        w.put(&client, &b, &[], &[unit(0, 0.5)]);
        w.put(&client, &c, std::slice::from_ref(&coll), &[unit(9, 0.0)]);
        let probe = unit(0, 0.1);
        let all = w.search(&client, &request(&probe, None));
        assert_eq!(all.faces_searched, 4);
        let order: Vec<&PersonId> = all.hits.iter().map(|h| &h.person).collect();
        assert_eq!(order, [&a, &b, &c]);
        assert!(all.hits[0].cosine > 0.99);

        let scoped = w.search(&client, &request(&probe, Some(&coll)));
        assert_eq!(scoped.faces_searched, 3);
        assert_eq!(scoped.hits.len(), 2);
        assert_eq!(w.gallery.members(&client, &coll).len(), 2);

        let strict = SearchRequest {
            min_cosine: 0.9,
            max_results: 1,
            ..request(&probe, None)
        };
        assert_eq!(w.search(&client, &strict).hits.len(), 1);
        let other = ClientId::parse("someone-else").expect("client");
        assert_eq!(
            w.search(&other, &request(&probe, None)),
            SearchOutcome::default()
        );
        let unknown = CollectionId::new();
        assert!(w
            .search(&client, &request(&probe, Some(&unknown)))
            .hits
            .is_empty());
    }

    #[test]
    fn removal_and_replacement() {
        let (client, a, b, c, _) = ids();
        let mut w = World::default();
        w.put(&client, &a, &[], &[unit(1, 0.0), unit(2, 0.0)]);
        w.put(&client, &b, &[], &[unit(3, 0.0)]);
        w.put(&client, &c, &[], &[unit(4, 0.0), unit(6, 0.0)]);
        assert!(w.gallery.remove_person(&client, &a));
        assert!(!w.gallery.remove_person(&client, &a));
        assert_eq!(w.gallery.face_count(&client), 3);
        for (axis, who) in [(3, &b), (4, &c), (6, &c)] {
            let hit = &w.search(&client, &request(&unit(axis, 0.0), None)).hits[0];
            assert_eq!(&hit.person, who);
            assert!(hit.cosine > 0.999, "axis {axis}: {}", hit.cosine);
        }
        assert!(w
            .search(&client, &request(&unit(1, 0.0), None))
            .hits
            .iter()
            .all(|h| h.person != a));
        // Replacing faces drops the old ones; an empty face list removes the person.
        w.put(&client, &c, &[], &[unit(7, 0.0)]);
        assert_eq!(w.gallery.face_count(&client), 2);
        w.put(&client, &b, &[], &[]);
        w.put(&client, &c, &[], &[]);
        assert_eq!(w.gallery.total_faces(), 0);
        w.put(&client, &a, &[], &[unit(8, 0.0)]);
        let hits = w.search(&client, &request(&unit(8, 0.0), None)).hits;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].person, a);
    }

    #[test]
    fn malformed_vectors_are_ignored() {
        let (client, a, _, _, _) = ids();
        let w = World::default();
        w.gallery
            .put_person(&client, &a, &[], &[(FaceId::new_random(), &[1.0, 0.0])]);
        assert_eq!(w.gallery.total_faces(), 0);
        assert!(w.search(&client, &request(&[1.0], None)).hits.is_empty());
    }

    /// A unit vector of `dim` values near axis `axis` (deterministic, every value non-zero).
    fn wide_unit(dim: usize, axis: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.max(1);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f32 / (1u64 << 53) as f32 * 0.02 - 0.01
            })
            .collect();
        v[axis] += 1.0;
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn a_gallery_of_any_dimension_up_to_the_maximum_searches_exactly_and_on_its_graph() {
        for dim in [3, 512, 1000, crate::MAX_DIMENSION] {
            let params = IndexParams {
                dimension: dim,
                graph_min_faces: 50,
                ..IndexParams::default()
            };
            let mut w = World {
                gallery: Gallery::new(params),
                vectors: HashMap::new(),
            };
            let client = ClientId::parse("tenant").expect("client");
            let persons: Vec<PersonId> = (0..120).map(|_| PersonId::new()).collect();
            for (i, p) in persons.iter().enumerate() {
                let faces = [
                    wide_unit(dim, i % dim, i as u64 + 1),
                    wide_unit(dim, i % dim, i as u64 + 1000),
                ];
                w.put(&client, p, &[], &faces);
            }
            // A face of the wrong length is never indexed, a probe of it finds nothing.
            let stray = PersonId::new();
            w.put(&client, &stray, &[], &[unit(0, 0.0)]);
            assert_eq!(w.gallery.face_count(&client), 240, "dim {dim}");
            if dim != EMBEDDING_DIM {
                assert!(w
                    .search(&client, &request(&unit(0, 0.0), None))
                    .hits
                    .is_empty());
            }
            while w.gallery.build_graphs(64) {}
            for mode in [Mode::Exact, Mode::Fast] {
                let i = 117;
                let probe = wide_unit(dim, i % dim, i as u64 + 5000);
                let r = SearchRequest {
                    mode,
                    ..request(&probe, None)
                };
                let found = w.search(&client, &r);
                assert_eq!(found.faces_searched, 240);
                let best = &found.hits[0];
                assert!(best.cosine > 0.9, "dim {dim} {mode:?}: {}", best.cosine);
                if dim > 120 {
                    assert_eq!(best.person, persons[i], "dim {dim} {mode:?}");
                }
            }
        }
    }

    #[test]
    fn erased_faces_are_dropped_at_rescoring() {
        let (client, a, b, _, _) = ids();
        let mut w = World::default();
        w.put(&client, &a, &[], &[unit(1, 0.0)]);
        w.put(&client, &b, &[], &[unit(1, 0.2)]);
        let found = w.gallery.candidates(&client, &request(&unit(1, 0.0), None));
        // The store no longer has `a`'s face (erased after the scan).
        let hits = rank_persons(
            &found.candidates,
            |f| {
                (found.candidates[0].face != *f)
                    .then(|| w.vectors.get(f).map(|v| dot_f32(v, &unit(1, 0.0))))
                    .flatten()
            },
            -1.0,
            10,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].person, b);
    }
}
