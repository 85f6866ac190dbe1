//! Property test: random interleavings of enrolments, replacements, removals, graph-building
//! steps and searches (exact and FAST, with and without a collection, two clients), checked
//! against a brute-force model after every step.
//! - A removed or replaced face is never returned, in either mode.
//! - Exact search equals a full f32 scan of the model.
//! - Results stay inside the client and the collection asked for.

use std::collections::HashMap;

use index::{rank_persons, Gallery, IndexParams, Mode, SearchRequest};
use store::{ClientId, CollectionId, FaceId, PersonId, EMBEDDING_DIM};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit_near(&mut self, centre: Option<&[f32]>) -> Vec<f32> {
        let v: Vec<f32> = (0..EMBEDDING_DIM)
            .map(|i| {
                let noise = (self.next() >> 11) as f32 / (1u64 << 53) as f32 - 0.5;
                centre.map_or(0.0, |c| c[i] * 4.0) + noise
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }
}

#[derive(Clone)]
struct Enrolled {
    client: usize,
    collections: Vec<CollectionId>,
    faces: Vec<(FaceId, Vec<f32>)>,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Returns how many searches the graph answered.
fn run(seed: u64) -> usize {
    let mut graph_searches = 0;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let params = IndexParams {
        graph_min_faces: 40,
        ef_search: index::EfSearch::Fixed(64),
        ..IndexParams::default()
    };
    let gallery = Gallery::new(params);
    let clients = [
        ClientId::parse("alpha").expect("client"),
        ClientId::parse("beta").expect("client"),
    ];
    let colls: Vec<CollectionId> = (0..3).map(|_| CollectionId::new()).collect();
    let mut live: HashMap<PersonId, Enrolled> = HashMap::new();
    let mut gone: HashMap<FaceId, PersonId> = HashMap::new();
    for step in 0..400 {
        let ctx = format!("seed {seed} step {step}");
        match rng.below(10) {
            0..=3 => {
                // Enrol a new person, or replace someone's faces.
                let id = if !live.is_empty() && rng.below(4) == 0 {
                    live.keys()
                        .nth(rng.below(live.len()))
                        .cloned()
                        .expect("key")
                } else {
                    PersonId::new()
                };
                let client = live.get(&id).map_or_else(|| rng.below(2), |e| e.client);
                let centre = rng.unit_near(None);
                let faces: Vec<(FaceId, Vec<f32>)> = (0..1 + rng.below(3))
                    .map(|_| (FaceId::new_random(), rng.unit_near(Some(&centre))))
                    .collect();
                let collections: Vec<CollectionId> = colls
                    .iter()
                    .filter(|_| rng.below(2) == 0)
                    .cloned()
                    .collect();
                let refs: Vec<(FaceId, &[f32])> = faces
                    .iter()
                    .map(|(f, v)| (f.clone(), v.as_slice()))
                    .collect();
                gallery.put_person(&clients[client], &id, &collections, &refs);
                if let Some(old) = live.insert(
                    id.clone(),
                    Enrolled {
                        client,
                        collections,
                        faces,
                    },
                ) {
                    gone.extend(old.faces.into_iter().map(|(f, _)| (f, id.clone())));
                }
            }
            4..=5 if !live.is_empty() => {
                let id = live
                    .keys()
                    .nth(rng.below(live.len()))
                    .cloned()
                    .expect("key");
                let old = live.remove(&id).expect("live");
                assert!(gallery.remove_person(&clients[old.client], &id), "{ctx}");
                gone.extend(old.faces.into_iter().map(|(f, _)| (f, id.clone())));
            }
            6 => {
                gallery.build_graphs(1 + rng.below(40));
            }
            _ => {
                // Probe near an enrolled or removed face, or anywhere.
                let probe = match rng.below(3) {
                    0 if !live.is_empty() => {
                        let e = live.values().nth(rng.below(live.len())).expect("live");
                        rng.unit_near(Some(&e.faces[0].1))
                    }
                    _ => rng.unit_near(None),
                };
                let client = rng.below(2);
                let collection = (rng.below(2) == 0).then(|| colls[rng.below(3)].clone());
                let mode = if rng.below(2) == 0 {
                    Mode::Exact
                } else {
                    Mode::Fast
                };
                let request = SearchRequest {
                    probe: &probe,
                    collection: collection.as_ref(),
                    mode,
                    min_cosine: -1.0,
                    max_results: 5,
                };
                let found = gallery.candidates(&clients[client], &request);
                graph_searches += usize::from(found.used_graph);
                // The store's view: only live faces have embeddings.
                let stored: HashMap<&FaceId, (&PersonId, &Enrolled, &[f32])> = live
                    .iter()
                    .flat_map(|(p, e)| e.faces.iter().map(move |(f, v)| (f, (p, e, v.as_slice()))))
                    .collect();
                for c in &found.candidates {
                    assert!(
                        !gone.contains_key(&c.face) || stored.contains_key(&c.face),
                        "{ctx}: removed face proposed"
                    );
                    let (owner, e, _) = stored
                        .get(&c.face)
                        .unwrap_or_else(|| panic!("{ctx}: unknown face"));
                    assert_eq!(*owner, &c.person, "{ctx}");
                    assert_eq!(e.client, client, "{ctx}: another client's face");
                    if let Some(coll) = &collection {
                        assert!(
                            e.collections.contains(coll),
                            "{ctx}: outside the collection"
                        );
                    }
                }
                let hits = rank_persons(
                    &found.candidates,
                    |f| stored.get(f).map(|(_, _, v)| dot(v, &probe)),
                    -1.0,
                    5,
                );
                let in_scope = live.values().filter(|e| {
                    e.client == client
                        && collection
                            .as_ref()
                            .is_none_or(|c| e.collections.contains(c))
                });
                let faces_in_scope: usize = in_scope.clone().map(|e| e.faces.len()).sum();
                assert_eq!(found.faces_searched, faces_in_scope, "{ctx}");
                if mode == Mode::Exact {
                    let mut truth: Vec<(f32, &PersonId)> = live
                        .iter()
                        .filter(|(_, e)| {
                            e.client == client
                                && collection
                                    .as_ref()
                                    .is_none_or(|c| e.collections.contains(c))
                        })
                        .map(|(p, e)| {
                            let best = e
                                .faces
                                .iter()
                                .map(|(_, v)| dot(v, &probe))
                                .fold(f32::MIN, f32::max);
                            (best, p)
                        })
                        .collect();
                    truth.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
                    truth.truncate(5);
                    let got: Vec<(f32, &PersonId)> =
                        hits.iter().map(|h| (h.cosine, &h.person)).collect();
                    assert_eq!(got, truth, "{ctx}: exact search differs from a full scan");
                }
            }
        }
        for c in &clients {
            let want: usize = live
                .values()
                .filter(|e| &clients[e.client] == c)
                .map(|e| e.faces.len())
                .sum();
            assert_eq!(gallery.face_count(c), want, "{ctx}");
        }
    }
    graph_searches
}

#[test]
fn random_interleavings_match_the_model() {
    let graph_searches: usize = (1..=40).map(run).sum();
    assert!(
        graph_searches > 100,
        "the graph answered {graph_searches} searches"
    );
}
