//! The gallery against a real SQLite store: what search sees follows what is committed.

use std::sync::Arc;

use index::{IndexParams, LoadedFrom, Mode, SearchRequest, SyncedGallery};
use store::{
    ClientId, CollectionUpdate, NewCollection, NewFace, NewPerson, PersonId, PersonStatus,
    PersonUpdate, SqliteStore, Store, DEFAULT_MODEL, EMBEDDING_DIM,
};

fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; EMBEDDING_DIM];
    v[i] = 1.0;
    v
}

fn face(i: usize) -> NewFace {
    NewFace {
        model: store::DEFAULT_MODEL.into(),
        embedding: axis(i),
        thumbnail_jpeg: vec![0xFF, 0xD8, 0xFF, i as u8],
        crop_png: Vec::new(),
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

async fn found(g: &SyncedGallery, client: &ClientId, probe: usize) -> Vec<PersonId> {
    let probe = axis(probe);
    let request = SearchRequest {
        probe: &probe,
        collection: None,
        mode: Mode::Exact,
        min_cosine: 0.5,
        max_results: 10,
    };
    g.search(client, &request)
        .await
        .expect("search")
        .hits
        .into_iter()
        .map(|h| h.person)
        .collect()
}

/// A gallery holds only the faces its model embedded, however alike the vectors; a
/// snapshot saved under one model is not used by another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gallery_never_holds_faces_of_another_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open"));
    let client = ClientId::parse("acme").expect("client");
    // A client's faces are all of one model: model B's face belongs to another client.
    let other = ClientId::parse("globex").expect("client");
    let by_a = store
        .create_person(&client, person("By A", vec![face(1)]))
        .await
        .expect("a");
    let other_face = NewFace {
        model: "model-b".into(),
        ..face(1)
    };
    let by_b = store
        .create_person(&other, person("By B", vec![other_face]))
        .await
        .expect("b");
    let path = dir.path().join("index.snapshot");
    let params = IndexParams::default();
    let (a, _) = SyncedGallery::load(store.clone(), params, Some(&path), DEFAULT_MODEL)
        .await
        .expect("load a");
    assert_eq!(found(&a, &client, 1).await, vec![by_a.id.clone()]);
    assert_eq!(a.face_count(&client), 1);
    assert_eq!(a.face_count(&other), 0);
    // A refresh reads the person again: still only its own model's faces.
    a.refresh_persons(&other, std::slice::from_ref(&by_b.id))
        .await
        .expect("refresh");
    assert_eq!(found(&a, &other, 1).await, vec![]);
    assert!(a.save_snapshot(&path).await.expect("save"));
    drop(a);

    let (b, from) = SyncedGallery::load(store.clone(), params, Some(&path), "model-b")
        .await
        .expect("load b");
    assert_eq!(
        from,
        LoadedFrom::Store,
        "model A's snapshot is not model B's"
    );
    assert!(!path.exists(), "and it is erased all the same");
    assert_eq!(found(&b, &other, 1).await, vec![by_b.id]);
    assert_eq!(found(&b, &client, 1).await, vec![]);
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
    let (g, _) = SyncedGallery::load(store.clone(), IndexParams::default(), None, DEFAULT_MODEL)
        .await
        .expect("load");
    assert_eq!(g.total_faces(), 4);
    assert_eq!(found(&g, &client, 2).await, std::slice::from_ref(&ann.id));
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
    assert!(found(&g, &client, 2).await.is_empty());
    assert_eq!(found(&g, &client, 4).await, std::slice::from_ref(&ann.id));

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
    assert!(found(&g, &client, 3).await.is_empty());

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
        mode: Mode::Exact,
        min_cosine: 0.5,
        max_results: 10,
    };
    assert_eq!(
        g.search(&client, &in_team)
            .await
            .expect("search")
            .hits
            .len(),
        1
    );
    store
        .delete_collection(&client, &team.id)
        .await
        .expect("delete");
    g.refresh_collection(&client, &team.id, &[])
        .await
        .expect("refresh");
    assert!(g
        .search(&client, &in_team)
        .await
        .expect("search")
        .hits
        .is_empty());
    assert_eq!(found(&g, &client, 4).await, std::slice::from_ref(&ann.id));

    // Erasure: gone at once, and a late refresh of the erased person does not revive it.
    assert!(store.erase_person(&client, &ann.id).await.expect("erase"));
    g.forget_person(&client, &ann.id).await;
    assert!(found(&g, &client, 4).await.is_empty());
    g.refresh_person(&client, &ann.id).await.expect("refresh");
    assert!(found(&g, &client, 4).await.is_empty());

    // A restart sees exactly what is stored.
    let (reloaded, _) =
        SyncedGallery::load(store.clone(), IndexParams::default(), None, DEFAULT_MODEL)
            .await
            .expect("reload");
    assert_eq!(reloaded.face_count(&client), 0);
    assert_eq!(reloaded.face_count(&other), 1);
}

fn spread(i: usize) -> Vec<f32> {
    // Distinct directions: a unit vector mixing two axes.
    let mut v = vec![0.0; EMBEDDING_DIM];
    v[i % EMBEDDING_DIM] = 1.0;
    v[(i * 7 + 3) % EMBEDDING_DIM] += 0.5 + (i % 11) as f32 / 10.0;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

async fn results(g: &SyncedGallery, client: &ClientId, mode: Mode) -> Vec<Vec<(PersonId, f32)>> {
    let mut out = Vec::new();
    for i in (0..300).step_by(7) {
        let probe = spread(i);
        let request = SearchRequest {
            probe: &probe,
            collection: None,
            mode,
            min_cosine: -1.0,
            max_results: 5,
        };
        let hits = g.search(client, &request).await.expect("search").hits;
        out.push(hits.into_iter().map(|h| (h.person, h.cosine)).collect());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_from_the_snapshot_gives_identical_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open"));
    let client = ClientId::parse("acme").expect("client");
    let persons: Vec<NewPerson> = (0..300)
        .map(|i| {
            person(
                &format!("P{i}"),
                vec![NewFace {
                    model: store::DEFAULT_MODEL.into(),
                    embedding: spread(i),
                    thumbnail_jpeg: vec![0xFF, 0xD8, 0xFF],
                    crop_png: Vec::new(),
                }],
            )
        })
        .collect();
    store.seed_persons(&client, persons).await.expect("seed");
    // A small graph threshold, so FAST answers from the graph and the graph is saved too.
    let params = IndexParams {
        graph_min_faces: 100,
        ..IndexParams::default()
    };
    let path = dir.path().join("index.snapshot");
    let (g, from) = SyncedGallery::load(store.clone(), params, Some(&path), DEFAULT_MODEL)
        .await
        .expect("load");
    assert_eq!(from, LoadedFrom::Store);
    while g.gallery().build_graphs(1000) {}
    assert_eq!(g.gallery().graph_backlog(), 0);
    let exact = results(&g, &client, Mode::Exact).await;
    let fast = results(&g, &client, Mode::Fast).await;
    assert!(g.save_snapshot(&path).await.expect("save"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the snapshot is private: {mode:o}");
    }
    drop(g);

    let (again, from) = SyncedGallery::load(store.clone(), params, Some(&path), DEFAULT_MODEL)
        .await
        .expect("reload");
    assert_eq!(from, LoadedFrom::Snapshot);
    assert!(!path.exists(), "the snapshot is erased once read");
    assert_eq!(
        again.gallery().graph_backlog(),
        0,
        "the graph came back too"
    );
    assert_eq!(results(&again, &client, Mode::Exact).await, exact);
    assert_eq!(results(&again, &client, Mode::Fast).await, fast);

    // A write after the snapshot makes it stale: the store wins.
    assert!(again.save_snapshot(&path).await.expect("save"));
    let erased = &exact[0][0].0;
    assert!(store.erase_person(&client, erased).await.expect("erase"));
    let (fresh, from) = SyncedGallery::load(store.clone(), params, Some(&path), DEFAULT_MODEL)
        .await
        .expect("reload");
    assert_eq!(from, LoadedFrom::Store);
    assert!(!path.exists());
    assert_eq!(fresh.face_count(&client), 299);
    let after = results(&fresh, &client, Mode::Exact).await;
    assert!(after.iter().flatten().all(|(p, _)| p != erased));

    // A temporary file left by a save that crashed is erased at the next start.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, b"half a snapshot").expect("write");
    let _ = SyncedGallery::load(store.clone(), params, Some(&path), DEFAULT_MODEL)
        .await
        .expect("reload");
    assert!(!tmp.exists());

    // A damaged snapshot is not used.
    assert!(fresh.save_snapshot(&path).await.expect("save"));
    let mut bytes = std::fs::read(&path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    let (_, from) = SyncedGallery::load(store.clone(), params, Some(&path), DEFAULT_MODEL)
        .await
        .expect("reload");
    assert_eq!(from, LoadedFrom::Store);
    assert!(!path.exists());
}
