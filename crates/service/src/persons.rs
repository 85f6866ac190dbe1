//! Persons: enrolment (plain, and guarded by a duplicate search and liveness), listing,
//! updates, erasure and detachment from one collection.

use chrono::NaiveDate;
use store::{
    ClientId, Collection, CollectionId, DetachOutcome, Gender, NewFace, NewPerson, Person,
    PersonFilter, PersonId, PersonStatus, PersonUpdate,
};
use vision::Face;

use crate::error::{Error, Result};
use crate::faces::{combine, Faces};
use crate::matching::SearchParams;
use crate::params::LiveScore;
use crate::store_timing::timed_write;
use crate::Service;

/// A person to enrol: collections by `_id` or `code`, 1-3 images of the same face.
#[derive(Debug, Clone)]
pub struct PersonDraft<'a> {
    pub name: String,
    pub gender: Option<Gender>,
    pub date_of_birth: Option<NaiveDate>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub status: PersonStatus,
    pub collections: Vec<&'a str>,
    pub images: Vec<&'a str>,
}

/// A partial update: `None` leaves a field as it is; `images` replaces every face,
/// `collections` every membership.
#[derive(Debug, Clone, Default)]
pub struct PersonChanges<'a> {
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub date_of_birth: Option<NaiveDate>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub status: Option<PersonStatus>,
    pub collections: Option<Vec<&'a str>>,
    pub images: Option<Vec<&'a str>>,
}

/// Enrolment that first searches the collection for the same face (any match: the person
/// is a duplicate), then checks that the first image is of a live person.
#[derive(Debug, Clone)]
pub struct LiveEnrolment<'a> {
    pub person: PersonDraft<'a>,
    /// The duplicate search; its collection is required and is the one enrolled in.
    pub search: SearchParams<'a>,
    pub liveness_min_score: f64,
}

/// Which persons to list.
#[derive(Debug, Clone, Default)]
pub struct PersonQuery<'a> {
    /// A collection `_id` or `code`.
    pub collection: Option<&'a str>,
    pub status: Option<PersonStatus>,
    pub page: u32,
    pub limit: u32,
    /// Also return every collection of the client (to show them whole).
    pub with_collections: bool,
}

/// A page of persons, the total matching, and the client's collections when asked for.
pub struct PersonList {
    pub persons: Vec<Person>,
    pub total: u64,
    pub collections: Option<Vec<Collection>>,
}

/// What deleting a person from one collection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// The collection was the person's last one: the person was erased.
    pub erased: bool,
    /// The collections the person is still in.
    pub remaining: Vec<CollectionId>,
}

/// The faces as stored: each with the model that embedded it and its kept crop.
fn stored_faces(faces: Vec<Face>, model: &str) -> Vec<NewFace> {
    faces
        .into_iter()
        .map(|f| NewFace {
            model: model.to_owned(),
            embedding: f.embedding.as_slice().to_vec(),
            thumbnail_jpeg: f.thumbnail_jpeg,
            crop_png: f.crop_png,
        })
        .collect()
}

impl Service {
    /// Creates the person with the largest face of each image.
    pub async fn enrol(&self, client: &ClientId, draft: PersonDraft<'_>) -> Result<Person> {
        // Collections first, so an unknown one costs no face work.
        let collections = self.resolve_collections(client, &draft.collections).await?;
        let model = self.client_faces(client).await?;
        let faces = model.largest_faces(client, &draft.images).await?;
        self.create_person(&model, client, draft, collections, faces)
            .await
    }

    /// The store write and the search refresh of every enrolment.
    async fn create_person(
        &self,
        model: &Faces,
        client: &ClientId,
        draft: PersonDraft<'_>,
        collections: Vec<CollectionId>,
        faces: Vec<Face>,
    ) -> Result<Person> {
        let new = NewPerson {
            name: draft.name,
            gender: draft.gender,
            date_of_birth: draft.date_of_birth,
            nationality: draft.nationality,
            notes: draft.notes,
            status: draft.status,
            collections,
            faces: stored_faces(faces, model.model()),
        };
        let person = timed_write("create_person", self.store.create_person(client, new)).await?;
        self.search
            .persons_changed(client, std::slice::from_ref(&person.id))
            .await;
        Ok(person)
    }

    /// Enrols only someone new and live: a match in the collection fails with
    /// `DuplicatedFace`, a live score not above the threshold with `LivenessFailed`.
    pub async fn enrol_if_new_and_live(
        &self,
        client: &ClientId,
        enrolment: LiveEnrolment<'_>,
    ) -> Result<(Person, LiveScore)> {
        let LiveEnrolment {
            person,
            search,
            liveness_min_score,
        } = enrolment;
        let collection = self
            .resolve_scope(client, search.collection)
            .await?
            .ok_or(Error::CollectionNotFound)?;
        let model = self.client_faces(client).await?;
        let (faces, live) = model
            .largest_faces_first_live(client, &person.images)
            .await?;
        let live = LiveScore::new(live);
        let probe = combine(faces.iter().map(|f| &f.embedding))?;
        let found = self
            .search_in(&model, client, &probe, Some(&collection), &search)
            .await?;
        if !found.matches.is_empty() {
            return Err(Error::DuplicatedFace);
        }
        if !live.passes(liveness_min_score) {
            return Err(Error::LivenessFailed);
        }
        let created = self
            .create_person(&model, client, person, vec![collection], faces)
            .await?;
        Ok((created, live))
    }

    pub async fn person(&self, client: &ClientId, id: &PersonId) -> Result<Person> {
        self.store
            .get_person(client, id)
            .await?
            .ok_or(Error::PersonNotFound)
    }

    pub async fn list_persons(
        &self,
        client: &ClientId,
        query: PersonQuery<'_>,
    ) -> Result<PersonList> {
        let filter = PersonFilter {
            collection: self.resolve_scope(client, query.collection).await?,
            status: query.status,
        };
        let (persons, total) = self
            .store
            .list_persons(client, filter, query.page, query.limit)
            .await?;
        let collections = if query.with_collections {
            Some(self.store.list_collections(client).await?)
        } else {
            None
        };
        Ok(PersonList {
            persons,
            total,
            collections,
        })
    }

    /// Persons whose name contains `name` (case-insensitive), optionally born on
    /// `date_of_birth`, with every collection of the client.
    pub async fn lookup_persons(
        &self,
        client: &ClientId,
        name: &str,
        date_of_birth: Option<NaiveDate>,
        page: u32,
        limit: u32,
    ) -> Result<PersonList> {
        let (persons, total) = self
            .store
            .lookup_persons(client, name, date_of_birth, page, limit)
            .await?;
        Ok(PersonList {
            persons,
            total,
            collections: Some(self.store.list_collections(client).await?),
        })
    }

    pub async fn update_person(
        &self,
        client: &ClientId,
        id: &PersonId,
        changes: PersonChanges<'_>,
    ) -> Result<Person> {
        let collections = match &changes.collections {
            Some(references) => Some(self.resolve_collections(client, references).await?),
            None => None,
        };
        // Existence first, so a missing person costs no face work.
        self.person(client, id).await?;
        let model = self.client_faces(client).await?;
        let faces = match &changes.images {
            Some(images) => Some(stored_faces(
                model.largest_faces(client, images).await?,
                model.model(),
            )),
            None => None,
        };
        let update = PersonUpdate {
            name: changes.name,
            gender: changes.gender,
            date_of_birth: changes.date_of_birth,
            nationality: changes.nationality,
            notes: changes.notes,
            status: changes.status,
            faces,
            collections,
        };
        let updated = timed_write(
            "update_person",
            self.store.update_person(client, id, update),
        )
        .await;
        let person = match committed_anyway(updated)? {
            Some(person) => person,
            // Committed with the old faces not yet flushed: read back what was written.
            None => self.store.get_person(client, id).await?,
        }
        .ok_or(Error::PersonNotFound)?;
        self.search
            .persons_changed(client, std::slice::from_ref(id))
            .await;
        Ok(person)
    }

    /// Erases the person: record, embeddings and thumbnails, and gone from search.
    pub async fn erase_person(&self, client: &ClientId, id: &PersonId) -> Result<()> {
        let erased = timed_write("erase_person", self.store.erase_person(client, id)).await;
        // Not flushed only ever follows a committed erasure.
        if !committed_anyway(erased)?.unwrap_or(true) {
            return Err(Error::PersonNotFound);
        }
        self.search.person_erased(client, id).await;
        Ok(())
    }

    /// Removes the person from one collection (by `_id` or `code`); from its last one, the
    /// person is erased.
    pub async fn detach_person(
        &self,
        client: &ClientId,
        id: &PersonId,
        collection: &str,
    ) -> Result<Detached> {
        let collection = self.resolve_collection(client, collection).await?;
        let detached = timed_write(
            "detach_person",
            self.store.detach_person(client, id, &collection),
        )
        .await;
        // Not flushed only ever follows an erasure (the person's last collection).
        match committed_anyway(detached)?.unwrap_or(DetachOutcome::Erased) {
            DetachOutcome::PersonNotFound | DetachOutcome::NotAMember => Err(Error::PersonNotFound),
            DetachOutcome::Detached { remaining } => {
                self.search
                    .persons_changed(client, std::slice::from_ref(id))
                    .await;
                Ok(Detached {
                    erased: false,
                    remaining,
                })
            }
            DetachOutcome::Erased => {
                self.search.person_erased(client, id).await;
                Ok(Detached {
                    erased: true,
                    remaining: Vec::new(),
                })
            }
        }
    }
}

/// A write that erased face data and committed, but whose bytes the store could not yet flush
/// from its write-ahead log because a long reader (a backup) holds an older snapshot: the
/// change is done for every read, and the store flushes the bytes once the reader ends, so
/// the caller is answered as for any committed write. `None` stands for that case (the
/// store's answer is lost with it); every other error stays an error.
fn committed_anyway<T>(result: store::Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(store::Error::ErasureNotFlushed(why)) => {
            tracing::warn!(%why, "erasure committed; its bytes leave the files when the reader ends");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
