//! Audit actions written by the store.

pub const COLLECTION_CREATE: &str = "collection.create";
pub const COLLECTION_UPDATE: &str = "collection.update";
pub const COLLECTION_DELETE: &str = "collection.delete";
/// A person added to a collection by a collection update (`object_id` = person).
pub const PERSON_ATTACH: &str = "person.attach";
/// A person removed from a collection, by `detach_person` or a collection update
/// (`object_id` = person).
pub const PERSON_DETACH: &str = "person.detach";
pub const PERSON_CREATE: &str = "person.create";
pub const PERSON_UPDATE: &str = "person.update";
/// Faces replaced by an update: the old embeddings and thumbnails were erased.
pub const PERSON_FACES_REPLACE: &str = "person.faces.replace";
pub const PERSON_ERASE: &str = "person.erase";
/// A client's faces re-embedded from their kept crops (`object_id` = the new model's id).
pub const FACES_REEMBED: &str = "faces.reembed";
/// A token revoked by its `jti` (client `''`, `object_id` = the jti).
pub const TOKEN_REVOKE: &str = "token.revoke";
/// A token renewed (`object_id` = the new token's jti, never the token).
pub const TOKEN_RENEW: &str = "token.renew";
/// Every token of a client issued until now revoked (`object_id` = the client).
pub const TOKEN_REVOKE_CLIENT: &str = "token.revoke_client";
/// A token issued by `visage token create` (`object_id` = its jti, never the token).
pub const TOKEN_CREATE: &str = "token.create";
/// Every person and collection of a client erased (`object_id` = the client); one
/// `person.erase` and `collection.delete` row each comes before it.
pub const CLIENT_ERASE: &str = "client.erase";
