//! Collections: create, list, retrieve, update (with membership sync), delete.

use store::{ClientId, Collection, CollectionId, CollectionUpdate, NewCollection};

use crate::store_timing::timed_write;

use crate::error::{Error, Result};
use crate::Service;

impl Service {
    pub async fn create_collection(
        &self,
        client: &ClientId,
        new: NewCollection,
    ) -> Result<Collection> {
        Ok(timed_write(
            "create_collection",
            self.store.create_collection(client, new),
        )
        .await?)
    }

    /// Every collection of the client, oldest first.
    pub async fn list_collections(&self, client: &ClientId) -> Result<Vec<Collection>> {
        Ok(self.store.list_collections(client).await?)
    }

    pub async fn collection(&self, client: &ClientId, id: &CollectionId) -> Result<Collection> {
        self.store
            .get_collection(client, id)
            .await?
            .ok_or(Error::CollectionNotFound)
    }

    /// The collection a client names by its `_id` or its `code`.
    pub async fn resolve_collection(
        &self,
        client: &ClientId,
        reference: &str,
    ) -> Result<CollectionId> {
        self.store
            .resolve_collection(client, reference.trim())
            .await?
            .map(|c| c.id)
            .ok_or(Error::CollectionNotFound)
    }

    /// Each reference resolved, duplicates dropped, in order.
    pub(crate) async fn resolve_collections(
        &self,
        client: &ClientId,
        references: &[&str],
    ) -> Result<Vec<CollectionId>> {
        let mut ids = Vec::with_capacity(references.len());
        for reference in references {
            let id = self.resolve_collection(client, reference).await?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// An optional reference resolved.
    pub(crate) async fn resolve_scope(
        &self,
        client: &ClientId,
        reference: Option<&str>,
    ) -> Result<Option<CollectionId>> {
        match reference {
            Some(r) => Ok(Some(self.resolve_collection(client, r).await?)),
            None => Ok(None),
        }
    }

    pub async fn update_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
        update: CollectionUpdate,
    ) -> Result<Collection> {
        let listed = update.people.clone();
        let updated = timed_write(
            "update_collection",
            self.store.update_collection(client, id, update),
        )
        .await?
        .ok_or(Error::CollectionNotFound)?;
        if let Some(listed) = listed {
            self.search.collection_changed(client, id, &listed).await;
        }
        Ok(updated)
    }

    /// Deletes the collection; its persons are detached, never deleted.
    pub async fn delete_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
    ) -> Result<Collection> {
        let deleted = timed_write(
            "delete_collection",
            self.store.delete_collection(client, id),
        )
        .await?
        .ok_or(Error::CollectionNotFound)?;
        self.search.collection_changed(client, id, &[]).await;
        Ok(deleted)
    }
}
