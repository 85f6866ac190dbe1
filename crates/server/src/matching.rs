//! 1:N and 1:1 matching on top of the gallery and the store: thresholds in API scores,
//! answers as persons with scores.

use index::Mode;
use store::{ClientId, CollectionId, Person, PersonId, PersonStatus};
use vision::{Embedding, Score};

use crate::error::{ApiError, ApiResult};
use crate::search_index::Query;
use crate::AppState;

/// What a 1:N search is asked.
pub struct SearchQuery<'a> {
    pub probe: &'a Embedding,
    pub collection: Option<&'a CollectionId>,
    pub mode: Mode,
    pub min_score: Score,
    pub max_results: usize,
}

/// Persons found, best first, and how many faces were compared to find them.
pub struct Found {
    pub matches: Vec<(Person, Score)>,
    pub faces_searched: usize,
}

/// 1:N search over the client's active persons (in one collection, if given).
pub async fn search(st: &AppState, client: &ClientId, q: SearchQuery<'_>) -> ApiResult<Found> {
    // The score map is monotone, so the score threshold is a cosine threshold; the small
    // margin keeps faces whose score rounds to exactly `min_score`, which are then checked
    // on the score itself.
    let query = Query {
        probe: q.probe.as_slice().to_vec(),
        collection: q.collection.cloned(),
        mode: q.mode,
        min_cosine: q.min_score.to_cosine() - 1e-6,
        max_results: q.max_results,
    };
    let outcome = st.search.search(&st.cpu, client, query).await?;
    let mut matches = Vec::with_capacity(outcome.hits.len());
    for hit in outcome.hits {
        let score = Score::from_cosine(hit.cosine);
        if score < q.min_score {
            continue;
        }
        // A person erased between the scan and this read is simply not reported.
        if let Some(person) = st.store.get_person(client, &hit.person).await? {
            matches.push((person, score));
        }
    }
    Ok(Found {
        matches,
        faces_searched: outcome.faces_searched,
    })
}

/// The person a 1:1 verification may be made against: the client's, active, and in
/// `collection` when one is given; otherwise `PersonNotFound`.
pub async fn verifiable_person(
    st: &AppState,
    client: &ClientId,
    id: &PersonId,
    collection: Option<&CollectionId>,
) -> ApiResult<Person> {
    st.store
        .get_person(client, id)
        .await?
        .filter(|p| p.status == PersonStatus::Active)
        .filter(|p| collection.is_none_or(|c| p.collections.contains(c)))
        .ok_or(ApiError::PersonNotFound)
}

/// 1:1: the best score of the probe against the person's enrolled faces.
pub async fn best_score(
    st: &AppState,
    client: &ClientId,
    id: &PersonId,
    probe: &Embedding,
) -> ApiResult<Score> {
    let best = st
        .store
        .faces_of_person(client, id)
        .await?
        .iter()
        .filter_map(|f| Embedding::from_slice(&f.embedding))
        .map(|e| e.cosine(probe))
        .fold(f32::NEG_INFINITY, f32::max);
    if best == f32::NEG_INFINITY {
        // Erased since it was looked up (a person always has a face while it exists).
        return Err(ApiError::PersonNotFound);
    }
    Ok(Score::from_cosine(best))
}
