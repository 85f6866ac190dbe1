//! The gallery against a real SQLite store: what search sees follows what is committed.

use std::sync::Arc;

use index::{SearchRequest, SyncedGallery};
use store::{
    ClientId, CollectionUpdate, NewCollection, NewFace, NewPerson, PersonId, PersonStatus,
    PersonUpdate, SqliteStore, Store, EMBEDDING_DIM,
};

fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; EMBEDDING_DIM];
    v[i] = 1.0;
    v
}

fn face(i: usize) -> NewFace {
    NewFace {
        embedding: axis(i),
        thumbnail_jpeg: vec![0xFF, 0xD8, 0xFF, i as u8],
    }
}

fn person(name: &str, faces: Vec<NewFace>) -> NewPerson {
    NewPerson {
        name: name.into(),
        status: PersonStatus::Active,
        faces,
        ..NewPerson::default()
    }
}

fn found(g: &SyncedGallery, client: &ClientId, probe: usize) -> Vec<PersonId> {
    let probe = axis(probe);
    let request = SearchRequest {
        probe: &probe,
        collection: None,
        min_cosine: 0.5,
        max_results: 10,
    };
    g.search(client, &request)
        .hits
        .into_iter()
        .map(|h| h.person)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gallery_follows_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open"));
    let client = ClientId::parse("acme").expect("client");
    let other = ClientId::parse("globex").expect("client");
    let ann = store
        .create_person(&client, person("Ann", vec![face(1), face(2)]))
        .await
        .expect("ann");
    let bob = store
        .create_person(&client, person("Bob", vec![face(3)]))
        .await
        .expect("bob");
    store
        .create_person(&other, person("Eve", vec![face(1)]))
        .await
        .expect("eve");

    // Loaded at start-up, per client.
    let g = SyncedGallery::load(store.clone()).await.expect("load");
    assert_eq!(g.total_faces(), 4);
    assert_eq!(found(&g, &client, 2), std::slice::from_ref(&ann.id));
    assert_eq!(g.face_count(&other), 1);

    // New faces replace the old ones once refreshed.
    store
        .update_person(
            &client,
            &ann.id,
            PersonUpdate {
                faces: Some(vec![face(4)]),
                ..PersonUpdate::default()
            },
        )
        .await
        .expect("update");
    g.refresh_person(&client, &ann.id).await.expect("refresh");
    assert!(found(&g, &client, 2).is_empty());
    assert_eq!(found(&g, &client, 4), std::slice::from_ref(&ann.id));

    // Inactive persons are not searchable.
    store
        .update_person(
            &client,
            &bob.id,
            PersonUpdate {
                status: Some(PersonStatus::Inactive),
                ..PersonUpdate::default()
            },
        )
        .await
        .expect("deactivate");
    g.refresh_person(&client, &bob.id).await.expect("refresh");
    assert!(found(&g, &client, 3).is_empty());

    // Collection membership follows a collection update, and a deleted collection.
    let team = store
        .create_collection(
            &client,
            NewCollection {
                name: "team".into(),
                ..Default::default()
            },
        )
        .await
        .expect("collection");
    store
        .update_collection(
            &client,
            &team.id,
            CollectionUpdate {
                people: Some(vec![ann.id.clone()]),
                ..Default::default()
            },
        )
        .await
        .expect("attach");
    g.refresh_collection(&client, &team.id, std::slice::from_ref(&ann.id))
        .await
        .expect("refresh");
    let probe = axis(4);
    let in_team = SearchRequest {
        probe: &probe,
        collection: Some(&team.id),
        min_cosine: 0.5,
        max_results: 10,
    };
    assert_eq!(g.search(&client, &in_team).hits.len(), 1);
    store
        .delete_collection(&client, &team.id)
        .await
        .expect("delete");
    g.refresh_collection(&client, &team.id, &[])
        .await
        .expect("refresh");
    assert!(g.search(&client, &in_team).hits.is_empty());
    assert_eq!(found(&g, &client, 4), std::slice::from_ref(&ann.id));

    // Erasure: gone at once, and a late refresh of the erased person does not revive it.
    assert!(store.erase_person(&client, &ann.id).await.expect("erase"));
    g.forget_person(&client, &ann.id).await;
    assert!(found(&g, &client, 4).is_empty());
    g.refresh_person(&client, &ann.id).await.expect("refresh");
    assert!(found(&g, &client, 4).is_empty());

    // A restart sees exactly what is stored.
    let reloaded = SyncedGallery::load(store.clone()).await.expect("reload");
    assert_eq!(reloaded.face_count(&client), 0);
    assert_eq!(reloaded.face_count(&other), 1);
}
