//! 1:N search, 1:1 verify and compare, detection and liveness: thresholds in API scores,
//! answers as persons with scores.

use std::collections::HashMap;

use index::SearchOutcome;
use store::{ClientId, CollectionId, Person, PersonId, PersonStatus};
use vision::{Detection, Embedding, Face, Score, ScoreMap};

use crate::error::{Error, Result};
use crate::faces::{combine, Faces};
use crate::params::{LiveScore, SearchMode, DETECT_MAX_SEARCHED_FACES};
use crate::search::Query;
use crate::Service;

/// How a 1:N search is asked.
#[derive(Debug, Clone)]
pub struct SearchParams<'a> {
    pub min_score: Score,
    pub mode: SearchMode,
    /// A collection `_id` or `code` to search in; all the client's active persons when
    /// absent.
    pub collection: Option<&'a str>,
    pub max_results: usize,
}

/// A person found, with the score of its best face.
#[derive(Debug, Clone)]
pub struct Match {
    pub person: Person,
    pub score: Score,
}

/// Persons found, best first, and how many faces were compared to find them.
#[derive(Debug, Clone)]
pub struct Found {
    pub matches: Vec<Match>,
    pub faces_searched: usize,
}

/// A 1:1 verification: the person, the best score of the probe against its faces, and
/// whether that reaches the threshold.
#[derive(Debug, Clone)]
pub struct Verification {
    pub person: Person,
    pub score: Score,
    pub matched: bool,
}

/// The best probe/gallery score and whether it reaches the threshold.
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    pub score: Score,
    pub passed: bool,
}

/// `/detect` with an optional search of its faces.
#[derive(Debug, Clone)]
pub struct DetectParams<'a> {
    /// When given, the faces are searched in this collection (`_id` or `code`), at most
    /// [`DETECT_MAX_SEARCHED_FACES`] of them.
    pub collection: Option<&'a str>,
    pub mode: SearchMode,
    pub min_score: Score,
    /// At most this many faces, and this many matches per face.
    pub max_results: usize,
}

/// One detected face; `matches` when it was searched in a collection.
#[derive(Debug, Clone)]
pub struct DetectedFace {
    pub detection: Detection,
    pub matches: Option<Vec<Match>>,
}

/// The backend's query for one probe. The score map is monotone, so the score threshold is
/// a cosine threshold; the small margin keeps faces whose score rounds to exactly
/// `min_score`, which are then checked on the score itself.
fn query(
    probe: &Embedding,
    scope: Option<&CollectionId>,
    params: &SearchParams<'_>,
    faces: &Faces,
) -> Query {
    let scores = faces.scores();
    Query {
        model: faces.model().to_owned(),
        probe: probe.as_slice().to_vec(),
        collection: scope.cloned(),
        mode: params.mode,
        min_cosine: scores.cosine(params.min_score) - 1e-6,
        max_results: params.max_results,
    }
}

/// The score of the best probe/gallery pair.
fn best_pair(probe: &[Face], gallery: &[Face], scores: &ScoreMap) -> Score {
    let best = probe
        .iter()
        .flat_map(|p| gallery.iter().map(|g| p.embedding.cosine(&g.embedding)))
        .fold(f32::NEG_INFINITY, f32::max);
    scores.score(best)
}

impl Service {
    /// 1:N with 1-3 images of one person (their largest faces, averaged).
    pub async fn search(
        &self,
        client: &ClientId,
        images: &[&str],
        params: &SearchParams<'_>,
    ) -> Result<Found> {
        self.search_images(client, images, params, false).await
    }

    /// 1:N with tight face crops: an image in which no face is detected is embedded whole.
    pub async fn search_crops(
        &self,
        client: &ClientId,
        images: &[&str],
        params: &SearchParams<'_>,
    ) -> Result<Found> {
        self.search_images(client, images, params, true).await
    }

    async fn search_images(
        &self,
        client: &ClientId,
        images: &[&str],
        params: &SearchParams<'_>,
        crops: bool,
    ) -> Result<Found> {
        // The collection first, so an unknown one costs no face work.
        let scope = self.resolve_scope(client, params.collection).await?;
        let faces = self.client_faces(client).await?;
        let probe = if crops {
            faces.crop_probe(client, images).await?
        } else {
            faces.probe(client, images).await?
        };
        self.search_in(&faces, client, &probe, scope.as_ref(), params)
            .await
    }

    /// 1:N with an embedding the client's model made (benchmarks; the same search as every
    /// other).
    pub async fn search_embedding(
        &self,
        client: &ClientId,
        probe: &Embedding,
        params: &SearchParams<'_>,
    ) -> Result<Found> {
        let scope = self.resolve_scope(client, params.collection).await?;
        let faces = self.client_faces(client).await?;
        self.search_in(&faces, client, probe, scope.as_ref(), params)
            .await
    }

    /// Liveness on the first image, then 1:N with the faces of all of them (1-3 images of
    /// one person, averaged); `LivenessFailed` when the live score is not above
    /// `liveness_min_score`.
    pub async fn search_live(
        &self,
        client: &ClientId,
        images: &[&str],
        liveness_min_score: f64,
        params: &SearchParams<'_>,
    ) -> Result<(Found, LiveScore)> {
        let scope = self.resolve_scope(client, params.collection).await?;
        let model = self.client_faces(client).await?;
        let (faces, live) = model.largest_faces_first_live(client, images).await?;
        let live = LiveScore::new(live);
        if !live.passes(liveness_min_score) {
            return Err(Error::LivenessFailed);
        }
        let probe = combine(faces.iter().map(|f| &f.embedding))?;
        let found = self
            .search_in(&model, client, &probe, scope.as_ref(), params)
            .await?;
        Ok((found, live))
    }

    /// The one 1:N search: over the client's active persons (in `scope`, if given), with a
    /// probe that `faces`' model made.
    pub(crate) async fn search_in(
        &self,
        faces: &Faces,
        client: &ClientId,
        probe: &Embedding,
        scope: Option<&CollectionId>,
        params: &SearchParams<'_>,
    ) -> Result<Found> {
        let outcome = self
            .search
            .search(client, query(probe, scope, params, faces))
            .await?;
        self.found(faces, client, outcome, params, &mut HashMap::new())
            .await
    }

    /// [`Self::search_in`] for several probes at once: one pass of the backend, and each
    /// person found read once.
    async fn search_many_in(
        &self,
        faces: &Faces,
        client: &ClientId,
        probes: &[Embedding],
        scope: Option<&CollectionId>,
        params: &SearchParams<'_>,
    ) -> Result<Vec<Found>> {
        if probes.is_empty() {
            return Ok(Vec::new());
        }
        let queries = probes
            .iter()
            .map(|p| query(p, scope, params, faces))
            .collect();
        let outcomes = self.search.search_many(client, queries).await?;
        let mut persons = HashMap::new();
        let mut found = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            found.push(
                self.found(faces, client, outcome, params, &mut persons)
                    .await?,
            );
        }
        Ok(found)
    }

    /// The backend's hits as persons with scores; `persons` keeps those already read. The
    /// persons not read yet are read in one store call (one transaction on PostgreSQL).
    async fn found(
        &self,
        faces: &Faces,
        client: &ClientId,
        outcome: SearchOutcome,
        params: &SearchParams<'_>,
        persons: &mut HashMap<PersonId, Option<Person>>,
    ) -> Result<Found> {
        let kept: Vec<(PersonId, Score)> = outcome
            .hits
            .into_iter()
            .map(|hit| (hit.person, faces.scores().score(hit.cosine)))
            .filter(|(_, score)| *score >= params.min_score)
            .collect();
        let unread: Vec<PersonId> = kept
            .iter()
            .map(|(id, _)| id)
            .filter(|id| !persons.contains_key(*id))
            .cloned()
            .collect();
        if !unread.is_empty() {
            for person in self.store.get_persons(client, &unread).await? {
                persons.insert(person.id.clone(), Some(person));
            }
            // A person erased between the scan and this read is simply not reported.
            for id in unread {
                persons.entry(id).or_insert(None);
            }
        }
        let matches = kept
            .into_iter()
            .filter_map(|(id, score)| {
                let person = persons.get(&id)?.clone()?;
                Some(Match { person, score })
            })
            .collect();
        Ok(Found {
            matches,
            faces_searched: outcome.faces_searched,
        })
    }

    /// 1:1 against an enrolled person: the client's, active, and in `collection` when one
    /// is given; otherwise `PersonNotFound`.
    pub async fn verify(
        &self,
        client: &ClientId,
        id: &PersonId,
        images: &[&str],
        collection: Option<&str>,
        min_score: Score,
    ) -> Result<Verification> {
        let scope = self.resolve_scope(client, collection).await?;
        // The person first, so an unknown id costs no face work.
        let person = self
            .store
            .get_person(client, id)
            .await?
            .filter(|p| p.status == PersonStatus::Active)
            .filter(|p| scope.as_ref().is_none_or(|c| p.collections.contains(c)))
            .ok_or(Error::PersonNotFound)?;
        let faces = self.client_faces(client).await?;
        let probe = faces.probe(client, images).await?;
        let best = self
            .store
            .faces_of_person(client, id)
            .await?
            .iter()
            // Only faces this model embedded compare with its probe.
            .filter(|f| f.model == faces.model())
            .filter_map(|f| Embedding::from_slice(&f.embedding))
            .map(|e| e.cosine(&probe))
            .fold(f32::NEG_INFINITY, f32::max);
        if best == f32::NEG_INFINITY {
            // Erased since it was looked up (a person always has a face while it exists).
            return Err(Error::PersonNotFound);
        }
        let score = faces.scores().score(best);
        Ok(Verification {
            person,
            score,
            matched: score >= min_score,
        })
    }

    /// 1:1 between two sets of images (each image's largest face), nothing stored.
    pub async fn compare(
        &self,
        client: &ClientId,
        probe: &[&str],
        gallery: &[&str],
        threshold: Score,
    ) -> Result<Comparison> {
        let images: Vec<&str> = probe.iter().chain(gallery).copied().collect();
        let running = self.models.running();
        let faces = running.largest_faces(client, &images).await?;
        let (probe_faces, gallery_faces) = faces.split_at(probe.len());
        let score = best_pair(probe_faces, gallery_faces, running.scores());
        Ok(Comparison {
            score,
            passed: score >= threshold,
        })
    }

    /// [`Self::compare`] of one live capture against a gallery, and the capture's live
    /// score, in one pass.
    pub async fn compare_live(
        &self,
        client: &ClientId,
        probe: &str,
        gallery: &[&str],
        threshold: Score,
    ) -> Result<(Comparison, LiveScore)> {
        let images: Vec<&str> = std::iter::once(probe)
            .chain(gallery.iter().copied())
            .collect();
        let running = self.models.running();
        let (faces, live) = running.largest_faces_first_live(client, &images).await?;
        let (probe_face, gallery_faces) = faces.split_at(1);
        let score = best_pair(probe_face, gallery_faces, running.scores());
        let comparison = Comparison {
            score,
            passed: score >= threshold,
        };
        Ok((comparison, LiveScore::new(live)))
    }

    /// Every face of one image, best detection first; with a collection, the first
    /// [`DETECT_MAX_SEARCHED_FACES`] are also searched in it, in one batch.
    pub async fn detect(
        &self,
        client: &ClientId,
        image: &str,
        params: &DetectParams<'_>,
    ) -> Result<Vec<DetectedFace>> {
        let scope = self.resolve_scope(client, params.collection).await?;
        // Only the faces that will be searched are embedded: a crowd (or a crafted grid of
        // small faces) holds hundreds, each costing an embedding of 20-50 ms.
        let embedded = match scope {
            Some(_) => params.max_results.min(DETECT_MAX_SEARCHED_FACES),
            None => 0,
        };
        // Faces to search are embedded by the client's model.
        let faces = match scope {
            Some(_) => Some(self.client_faces(client).await?),
            None => None,
        };
        let detected = faces
            .as_deref()
            .unwrap_or(self.models.running())
            .all_faces(client, image, params.max_results, embedded)
            .await?;
        let (Some(scope), Some(faces)) = (scope, faces) else {
            return Ok(detected
                .into_iter()
                .map(|(detection, _)| DetectedFace {
                    detection,
                    matches: None,
                })
                .collect());
        };
        let embeddings: Vec<Embedding> = detected.iter().filter_map(|(_, e)| e.clone()).collect();
        let search = SearchParams {
            min_score: params.min_score,
            mode: params.mode,
            collection: params.collection,
            max_results: params.max_results,
        };
        let found = self
            .search_many_in(&faces, client, &embeddings, Some(&scope), &search)
            .await?;
        // The embedded faces are the first ones, in order, as are the searches.
        let mut matches = found.into_iter().map(|f| f.matches);
        Ok(detected
            .into_iter()
            .map(|(detection, embedding)| DetectedFace {
                detection,
                matches: embedding.and_then(|_| matches.next()),
            })
            .collect())
    }

    /// The live score of an image's largest face. `collection`, when given, must be the
    /// client's (the attempt is associated with it).
    pub async fn liveness(
        &self,
        client: &ClientId,
        image: &str,
        collection: Option<&str>,
    ) -> Result<LiveScore> {
        self.resolve_scope(client, collection).await?;
        Ok(LiveScore::new(
            self.models.running().liveness(client, image).await?,
        ))
    }
}
