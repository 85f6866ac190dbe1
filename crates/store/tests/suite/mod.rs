//! The back-end-independent test suite: every function takes a `&dyn Store` (or an
//! `Arc<dyn Store>`), so each back-end runs the same bodies through thin wrappers.
//! Functions that check erasure on disk also take `present`, which tells whether a byte
//! sequence can still be found anywhere in the back-end's files.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use store::{
    ClientId, ClientSwitch, CollectionId, CollectionUpdate, DetachOutcome, Error, FaceId, Gender,
    NewCollection, NewFace, NewPerson, PersonFilter, PersonId, PersonStatus, PersonUpdate, Store,
    TokenRenewal, DEFAULT_MODEL, EMBEDDING_DIM,
};

pub type Present<'a> = &'a (dyn Fn(&[u8]) -> bool + Sync);

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---------------------------------------------------------------- helpers

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("os random");
    b
}

pub fn client(tag: &str) -> ClientId {
    ClientId::parse(&format!("{tag}-{}", hex(&random_bytes(6)))).expect("client id")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A face with a random (finite) embedding and random thumbnail bytes.
pub fn face(thumb_len: usize) -> NewFace {
    wide_face(store::DEFAULT_MODEL, EMBEDDING_DIM, thumb_len)
}

/// A face of `model` with a random embedding of `dimension` values.
pub fn wide_face(model: &str, dimension: usize, thumb_len: usize) -> NewFace {
    let raw = random_bytes(dimension * 4);
    let embedding = raw
        .chunks_exact(4)
        .map(|c| {
            let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) >> 8;
            v as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        })
        .collect();
    NewFace {
        model: model.into(),
        embedding,
        thumbnail_jpeg: random_bytes(thumb_len),
        crop_png: random_bytes(thumb_len.max(64)),
    }
}

pub fn embedding_bytes(f: &NewFace) -> Vec<u8> {
    f.embedding.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// Anything that names a collection (a `Collection` or its id), for test brevity.
pub trait CollRef {
    fn cid(&self) -> CollectionId;
}

impl CollRef for CollectionId {
    fn cid(&self) -> CollectionId {
        self.clone()
    }
}

impl CollRef for store::Collection {
    fn cid(&self) -> CollectionId {
        self.id.clone()
    }
}

pub fn person(name: &str, collections: &[&dyn CollRef], faces: usize) -> NewPerson {
    NewPerson {
        name: name.to_owned(),
        gender: Some(Gender::F),
        date_of_birth: Some(date(1990, 1, 15)),
        nationality: Some("Colombian".to_owned()),
        notes: Some("note".to_owned()),
        status: PersonStatus::Active,
        collections: collections.iter().map(|c| c.cid()).collect(),
        faces: (0..faces).map(|_| face(600)).collect(),
    }
}

pub fn coll(name: &str) -> NewCollection {
    NewCollection {
        name: name.to_owned(),
        description: Some(format!("{name} description")),
        project: None,
    }
}

async fn ids_of(s: &dyn Store, c: &ClientId, filter: PersonFilter) -> Vec<PersonId> {
    let (people, total) = s.list_persons(c, filter, 1, 1000).await.expect("list");
    assert_eq!(people.len() as u64, total);
    people.into_iter().map(|p| p.id).collect()
}

/// The embedding blob and the 64-byte windows of each thumbnail of `faces`.
pub fn face_needles(faces: &[NewFace]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let emb = faces.iter().map(embedding_bytes).collect();
    let windows = faces
        .iter()
        .flat_map(|f| {
            // The thumbnail and the kept crop (PNG) alike.
            f.thumbnail_jpeg
                .chunks_exact(64)
                .chain(f.crop_png.chunks_exact(64))
                .map(|w| w.to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    (emb, windows)
}

// ---------------------------------------------------------------- collections

pub async fn collections_crud(s: &dyn Store) -> TestResult {
    let c = client("crud");
    assert!(s.list_collections(&c).await?.is_empty());
    let a = s.create_collection(&c, coll("Alpha")).await?;
    let b = s
        .create_collection(
            &c,
            NewCollection {
                name: "Beta".into(),
                description: None,
                project: Some("65a1b2c3d4e5f60718293a4b".into()),
            },
        )
        .await?;
    assert_eq!(a.client, c);
    assert_eq!(a.name, "Alpha");
    assert_eq!(a.description.as_deref(), Some("Alpha description"));
    assert_eq!(b.project.as_deref(), Some("65a1b2c3d4e5f60718293a4b"));
    assert_ne!(a.id, b.id);
    assert_ne!(a.code, b.code);
    assert_eq!(a.created_at, a.updated_at);

    let listed = s.list_collections(&c).await?;
    assert_eq!(listed, vec![a.clone(), b.clone()], "oldest first");
    assert_eq!(s.get_collection(&c, &a.id).await?, Some(a.clone()));

    let up = s
        .update_collection(
            &c,
            &a.id,
            CollectionUpdate {
                name: Some("Alpha 2".into()),
                description: Some("new".into()),
                ..Default::default()
            },
        )
        .await?
        .ok_or("updated collection")?;
    assert_eq!(up.name, "Alpha 2");
    assert_eq!(up.description.as_deref(), Some("new"));
    assert_eq!(up.code, a.code);
    assert_eq!(up.created_at, a.created_at);
    assert!(up.updated_at >= a.updated_at);
    assert_eq!(s.get_collection(&c, &a.id).await?, Some(up.clone()));

    // Only fields given change.
    let up2 = s
        .update_collection(&c, &a.id, CollectionUpdate::default())
        .await?
        .ok_or("updated")?;
    assert_eq!(up2.name, "Alpha 2");
    assert_eq!(up2.description.as_deref(), Some("new"));

    let gone = s.delete_collection(&c, &a.id).await?;
    assert_eq!(gone.map(|g| g.id), Some(a.id.clone()));
    assert_eq!(s.get_collection(&c, &a.id).await?, None);
    assert_eq!(s.delete_collection(&c, &a.id).await?, None);
    assert_eq!(
        s.update_collection(&c, &a.id, CollectionUpdate::default())
            .await?,
        None
    );
    assert_eq!(s.list_collections(&c).await?, vec![b]);

    // Validation: empty name.
    assert!(matches!(
        s.create_collection(&c, coll("  ")).await,
        Err(Error::Invalid { .. })
    ));
    Ok(())
}

pub async fn resolve_by_id_and_code(s: &dyn Store) -> TestResult {
    let c = client("resolve");
    let a = s.create_collection(&c, coll("A")).await?;
    let by_id = s.resolve_collection(&c, a.id.as_str()).await?;
    let by_code = s.resolve_collection(&c, a.code.as_str()).await?;
    let upper = s
        .resolve_collection(&c, &a.code.as_str().to_uppercase())
        .await?;
    assert_eq!(by_id.as_ref(), Some(&a));
    assert_eq!(by_code.as_ref(), Some(&a));
    assert_eq!(upper.as_ref(), Some(&a));
    assert_eq!(s.resolve_collection(&c, "nope").await?, None);
    assert_eq!(s.resolve_collection(&c, "").await?, None);
    assert_eq!(
        s.resolve_collection(&c, CollectionId::new().as_str())
            .await?,
        None
    );
    Ok(())
}

// ---------------------------------------------------------------- persons

pub async fn persons_crud(s: &dyn Store) -> TestResult {
    let c = client("persons");
    let a = s.create_collection(&c, coll("A")).await?;
    let b = s.create_collection(&c, coll("B")).await?;

    let new = person("María José", &[&b, &a], 2);
    let p = s.create_person(&c, new.clone()).await?;
    assert_eq!(p.client, c);
    assert_eq!(p.name, "María José");
    assert_eq!(p.gender, Some(Gender::F));
    assert_eq!(p.date_of_birth, Some(date(1990, 1, 15)));
    assert_eq!(p.nationality.as_deref(), Some("Colombian"));
    assert_eq!(p.status, PersonStatus::Active);
    assert_eq!(
        p.collections,
        vec![b.id.clone(), a.id.clone()],
        "given order"
    );
    assert_eq!(p.thumbnails.len(), 2);
    assert_eq!(p.thumbnails[0].jpeg, new.faces[0].thumbnail_jpeg);
    assert_eq!(p.thumbnails[1].jpeg, new.faces[1].thumbnail_jpeg);
    assert_eq!(s.get_person(&c, &p.id).await?, Some(p.clone()));

    let faces = s.faces_of_person(&c, &p.id).await?;
    assert_eq!(faces.len(), 2);
    assert_eq!(faces[0].embedding, new.faces[0].embedding);
    assert_eq!(faces[0].face_id, p.thumbnails[0].id);
    assert_eq!(faces[0].collections, p.collections);
    assert_eq!(faces[0].person_id, p.id);

    // More persons for list/lookup.
    let q = s
        .create_person(
            &c,
            NewPerson {
                status: PersonStatus::Inactive,
                date_of_birth: Some(date(1985, 5, 7)),
                ..person("Pedro Pérez", &[&a], 1)
            },
        )
        .await?;
    let r = s.create_person(&c, person("Ana MARÍA", &[], 1)).await?;

    assert_eq!(
        ids_of(s, &c, PersonFilter::default()).await,
        vec![p.id.clone(), q.id.clone(), r.id.clone()],
        "oldest first"
    );
    let (page2, total) = s.list_persons(&c, PersonFilter::default(), 2, 2).await?;
    assert_eq!(total, 3);
    assert_eq!(page2.iter().map(|x| &x.id).collect::<Vec<_>>(), vec![&r.id]);
    let (page0, _) = s.list_persons(&c, PersonFilter::default(), 0, 1).await?;
    assert_eq!(page0[0].id, p.id, "page 0 is page 1");
    let (far, total) = s.list_persons(&c, PersonFilter::default(), 9, 10).await?;
    assert!(far.is_empty());
    assert_eq!(total, 3);
    assert_eq!(
        ids_of(
            s,
            &c,
            PersonFilter {
                collection: Some(a.id.clone()),
                status: None
            }
        )
        .await,
        vec![p.id.clone(), q.id.clone()]
    );
    assert_eq!(
        ids_of(
            s,
            &c,
            PersonFilter {
                collection: Some(a.id.clone()),
                status: Some(PersonStatus::Active)
            }
        )
        .await,
        vec![p.id.clone()]
    );
    assert_eq!(
        ids_of(
            s,
            &c,
            PersonFilter {
                collection: None,
                status: Some(PersonStatus::Inactive)
            }
        )
        .await,
        vec![q.id.clone()]
    );
    assert!(ids_of(
        s,
        &c,
        PersonFilter {
            collection: Some(CollectionId::new()),
            status: None
        }
    )
    .await
    .is_empty());

    // Lookup: case-insensitive contains (Unicode), optional date of birth.
    let (found, total) = s.lookup_persons(&c, "maría", None, 1, 20).await?;
    assert_eq!(total, 2);
    assert_eq!(
        found.iter().map(|x| &x.id).collect::<Vec<_>>(),
        vec![&p.id, &r.id]
    );
    let (found, _) = s.lookup_persons(&c, "PÉR", None, 1, 20).await?;
    assert_eq!(found.iter().map(|x| &x.id).collect::<Vec<_>>(), vec![&q.id]);
    let (found, total) = s
        .lookup_persons(&c, "ped", Some(date(1985, 5, 7)), 1, 20)
        .await?;
    assert_eq!((found.len(), total), (1, 1));
    let (found, total) = s
        .lookup_persons(&c, "ped", Some(date(1985, 5, 8)), 1, 20)
        .await?;
    assert_eq!((found.len(), total), (0, 0));
    let (found, total) = s.lookup_persons(&c, "maría", None, 2, 1).await?;
    assert_eq!((found.len(), total), (1, 2));
    assert_eq!(found[0].id, r.id);

    // Update: partial fields.
    let up = s
        .update_person(
            &c,
            &p.id,
            PersonUpdate {
                name: Some("María J.".into()),
                notes: Some("changed".into()),
                status: Some(PersonStatus::Pending),
                ..Default::default()
            },
        )
        .await?
        .ok_or("updated person")?;
    assert_eq!(up.name, "María J.");
    assert_eq!(up.notes.as_deref(), Some("changed"));
    assert_eq!(up.status, PersonStatus::Pending);
    assert_eq!(up.nationality, p.nationality);
    assert_eq!(up.thumbnails, p.thumbnails, "faces kept");
    assert_eq!(up.collections, p.collections);
    assert_eq!(up.created_at, p.created_at);
    assert!(up.updated_at >= p.updated_at);
    assert_eq!(s.get_person(&c, &p.id).await?, Some(up.clone()));

    // Update: collections replaced; an unknown collection changes nothing.
    let res = s
        .update_person(
            &c,
            &p.id,
            PersonUpdate {
                name: Some("Should not stick".into()),
                collections: Some(vec![a.id.clone(), CollectionId::new()]),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(res, Err(Error::UnknownCollection(_))), "{res:?}");
    assert_eq!(s.get_person(&c, &p.id).await?, Some(up.clone()));
    let up = s
        .update_person(
            &c,
            &p.id,
            PersonUpdate {
                collections: Some(vec![a.id.clone()]),
                ..Default::default()
            },
        )
        .await?
        .ok_or("updated")?;
    assert_eq!(up.collections, vec![a.id.clone()]);

    // Unknown ids.
    let nobody = PersonId::new();
    assert_eq!(s.get_person(&c, &nobody).await?, None);
    assert_eq!(
        s.update_person(&c, &nobody, PersonUpdate::default())
            .await?,
        None
    );
    assert!(!s.erase_person(&c, &nobody).await?);
    assert!(s.faces_of_person(&c, &nobody).await?.is_empty());

    // Erase.
    assert!(s.erase_person(&c, &q.id).await?);
    assert_eq!(s.get_person(&c, &q.id).await?, None);
    assert!(!s.erase_person(&c, &q.id).await?);
    assert_eq!(
        ids_of(s, &c, PersonFilter::default()).await,
        vec![p.id.clone(), r.id.clone()]
    );
    Ok(())
}

pub async fn faces_for_index(s: &dyn Store) -> TestResult {
    let c1 = client("index1");
    let c2 = client("index2");
    let a = s.create_collection(&c1, coll("A")).await?;
    let n1 = person("Index One", &[&a], 2);
    let n2 = person("Index Two", &[], 1);
    let p1 = s.create_person(&c1, n1.clone()).await?;
    let p2 = s.create_person(&c2, n2.clone()).await?;
    let all = s.faces_for_index().await?;
    let mine: Vec<_> = all
        .iter()
        .filter(|f| f.person_id == p1.id || f.person_id == p2.id)
        .collect();
    assert_eq!(mine.len(), 3);
    let f1: Vec<_> = mine.iter().filter(|f| f.person_id == p1.id).collect();
    assert_eq!(f1.len(), 2);
    assert!(f1
        .iter()
        .all(|f| f.client == c1 && f.collections == vec![a.id.clone()]));
    assert_eq!(f1[0].embedding, n1.faces[0].embedding);
    assert_eq!(f1[1].embedding, n1.faces[1].embedding);
    let f2: Vec<_> = mine.iter().filter(|f| f.person_id == p2.id).collect();
    assert_eq!(f2.len(), 1);
    assert_eq!(f2[0].client, c2);
    assert!(f2[0].collections.is_empty());
    assert_eq!(f2[0].embedding, n2.faces[0].embedding);
    assert_eq!(f2[0].status, PersonStatus::Active);

    s.erase_person(&c1, &p1.id).await?;
    let all = s.faces_for_index().await?;
    assert!(all.iter().all(|f| f.person_id != p1.id));
    assert!(all.iter().any(|f| f.person_id == p2.id));
    Ok(())
}

/// Faces carry the model that embedded them, and all of a client's faces are of one model: a
/// face of another is refused. The crops of a client's faces another model embedded are
/// listed for re-embedding, page by page, and switching the client replaces all their
/// embeddings in one audited transaction, or nothing when one of them was not given.
pub async fn faces_carry_their_model(s: &dyn Store) -> TestResult {
    let c = client("models");
    let elsewhere = client("models-other");
    let old = person("Old Model", &[], 3);
    let other = NewPerson {
        faces: vec![NewFace {
            model: "other-1".into(),
            ..face(100)
        }],
        ..person("Other Model", &[], 0)
    };
    assert_eq!(s.client_model(&c).await?, None);
    let p_old = s.create_person(&c, old.clone()).await?;
    let p_other = s.create_person(&elsewhere, other.clone()).await?;
    assert_eq!(s.client_model(&c).await?.as_deref(), Some(DEFAULT_MODEL));
    assert_eq!(
        s.client_model(&elsewhere).await?.as_deref(),
        Some("other-1")
    );
    let models: Vec<(PersonId, String)> = s
        .faces_for_index()
        .await?
        .into_iter()
        .filter(|f| f.client == c || f.client == elsewhere)
        .map(|f| (f.person_id, f.model))
        .collect();
    assert_eq!(models.iter().filter(|(_, m)| m == DEFAULT_MODEL).count(), 3);
    assert_eq!(models.iter().filter(|(_, m)| m == "other-1").count(), 1);
    assert!(models
        .iter()
        .all(|(p, m)| (p == &p_old.id) == (m == DEFAULT_MODEL)));
    // A face of another model than the client's is refused, and nothing is written.
    match s.create_person(&c, other.clone()).await {
        Err(Error::ClientModel {
            client_model,
            wanted,
        }) if client_model == DEFAULT_MODEL && wanted == "other-1" => {}
        got => panic!("a face of another model joined the client: {got:?}"),
    }
    assert_eq!(
        ids_of(s, &c, PersonFilter::default()).await,
        vec![p_old.id.clone()]
    );
    let off = s.clients_off_model("other-1").await?;
    assert!(off.contains(&c) && !off.contains(&elsewhere));

    // Two pages of two: the old model's three crops, never another client's.
    let first = s.crops_to_reembed(&c, "other-1", 0, 2).await?;
    let last = first.last().ok_or("a first page")?.cursor;
    let second = s.crops_to_reembed(&c, "other-1", last, 2).await?;
    let crops: Vec<&Vec<u8>> = first.iter().chain(&second).map(|c| &c.png).collect();
    let want: Vec<&Vec<u8>> = old.faces.iter().map(|f| &f.crop_png).collect();
    assert_eq!(crops, want);
    let other_crops = s.crops_to_reembed(&elsewhere, DEFAULT_MODEL, 0, 10).await?;
    assert_eq!(other_crops.len(), 1);
    assert_eq!(other_crops[0].png, other.faces[0].crop_png);
    assert!(s
        .crops_to_reembed(&c, DEFAULT_MODEL, 0, 10)
        .await?
        .is_empty());

    let new: Vec<(FaceId, Vec<f32>)> = first
        .iter()
        .chain(&second)
        .map(|c| (c.face_id.clone(), face(0).embedding))
        .collect();
    // One face short: nothing moves.
    assert_eq!(
        s.switch_client_model(&c, "other-1", new[..2].to_vec())
            .await?,
        ClientSwitch::Missing {
            faces: 1,
            without_crop: 0
        }
    );
    assert_eq!(s.client_model(&c).await?.as_deref(), Some(DEFAULT_MODEL));
    let unmoved = s.faces_of_person(&c, &p_old.id).await?;
    assert!(unmoved.iter().all(|f| f.model == DEFAULT_MODEL));
    let generation = s.generation().await?;
    assert_eq!(
        s.switch_client_model(&c, "other-1", new.clone()).await?,
        ClientSwitch::Switched {
            faces: 3,
            persons: vec![p_old.id.clone()]
        }
    );
    assert_ne!(s.generation().await?, generation);
    assert_eq!(s.client_model(&c).await?.as_deref(), Some("other-1"));
    assert!(!s.clients_off_model("other-1").await?.contains(&c));
    assert!(s.crops_to_reembed(&c, "other-1", 0, 10).await?.is_empty());
    let faces = s.faces_of_person(&c, &p_old.id).await?;
    assert!(faces.iter().all(|f| f.model == "other-1"));
    let got: Vec<&Vec<f32>> = faces.iter().map(|f| &f.embedding).collect();
    let want: Vec<&Vec<f32>> = new.iter().map(|(_, e)| e).collect();
    assert_eq!(got, want);
    assert_eq!(s.audit_log(&c, 1).await?[0].action, "faces.reembed");
    // Only the model's embeddings are read back for re-scoring.
    let ids: Vec<FaceId> = faces.iter().map(|f| f.face_id.clone()).collect();
    assert_eq!(s.face_embeddings(&c, "other-1", &ids).await?.len(), 3);
    assert!(s.face_embeddings(&c, DEFAULT_MODEL, &ids).await?.is_empty());
    // The client is on the new model now: its faces are refused.
    assert!(matches!(
        s.create_person(&c, person("Old Again", &[], 1)).await,
        Err(Error::ClientModel { .. })
    ));
    s.create_person(&c, other.clone()).await?;
    // Bad model ids and wrong sizes are refused; erased faces are skipped.
    assert!(s
        .switch_client_model(&c, "Bad Model", vec![])
        .await
        .is_err());
    let short = vec![(other_crops[0].face_id.clone(), vec![0.5; 3])];
    assert!(s
        .switch_client_model(&elsewhere, DEFAULT_MODEL, short)
        .await
        .is_err());
    s.erase_person(&elsewhere, &p_other.id).await?;
    assert_eq!(
        s.switch_client_model(&elsewhere, DEFAULT_MODEL, vec![])
            .await?,
        ClientSwitch::Switched {
            faces: 0,
            persons: vec![]
        }
    );
    assert_eq!(
        s.client_model(&elsewhere).await?.as_deref(),
        Some(DEFAULT_MODEL)
    );
    Ok(())
}

/// A face without a kept crop cannot be embedded again: the client cannot be switched.
pub async fn faces_without_crops_keep_their_client_on_its_model(s: &dyn Store) -> TestResult {
    let c = client("models-no-crop");
    let mut bare = person("No Crop", &[], 2);
    bare.faces[1].crop_png = Vec::new();
    let p = s.create_person(&c, bare).await?;
    let crops = s.crops_to_reembed(&c, "other-2", 0, 10).await?;
    assert_eq!(crops.len(), 1);
    let given = vec![(crops[0].face_id.clone(), face(0).embedding)];
    assert_eq!(
        s.switch_client_model(&c, "other-2", given).await?,
        ClientSwitch::Missing {
            faces: 1,
            without_crop: 1
        }
    );
    let faces = s.faces_of_person(&c, &p.id).await?;
    assert!(faces.iter().all(|f| f.model == DEFAULT_MODEL));
    Ok(())
}

/// Any embedding length from 1 to 1,024 is stored, as long as all faces of a model have the
/// same: the first face (or `register_model`) records the model's length, a face of another
/// length is refused, and so is registering the model with another length.
pub async fn embeddings_of_any_dimension(s: &dyn Store) -> TestResult {
    let c = client("dims");
    s.register_model("wide-512", 512).await?;
    s.register_model("wide-512", 512).await?;
    match s.register_model("wide-512", 256).await {
        Err(Error::ModelDimension {
            model,
            recorded: 512,
            wanted: 256,
        }) if model == "wide-512" => {}
        other => panic!("registered with another length: {other:?}"),
    }
    assert!(matches!(
        s.register_model("wide-0", 0).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        s.register_model("wide-1025", 1025).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        s.register_model("Bad Model", 512).await,
        Err(Error::Invalid { .. })
    ));
    let wide = NewPerson {
        faces: (0..3).map(|_| wide_face("wide-512", 512, 100)).collect(),
        ..person("Wide Faces", &[], 0)
    };
    let p = s.create_person(&c, wide.clone()).await?;
    // A model never registered takes the length of its first face.
    let widest = NewPerson {
        faces: vec![wide_face("widest-1024", 1024, 100)],
        ..person("Widest Face", &[], 0)
    };
    let c_widest = client("dims-widest");
    let q = s.create_person(&c_widest, widest.clone()).await?;
    let one = NewPerson {
        faces: vec![wide_face("narrow-1", 1, 100)],
        ..person("Narrowest Face", &[], 0)
    };
    s.create_person(&client("dims-narrow"), one).await?;
    assert!(matches!(
        s.register_model("widest-1024", 512).await,
        Err(Error::ModelDimension { recorded: 1024, .. })
    ));
    s.register_model("widest-1024", 1024).await?;
    for (model, len) in [
        ("wide-512", 256),
        ("widest-1024", 512),
        (DEFAULT_MODEL, 512),
    ] {
        let bad = NewPerson {
            faces: vec![wide_face(model, len, 100)],
            ..person(&format!("Bad {model}"), &[], 0)
        };
        assert!(
            s.create_person(&client(&format!("dims-bad-{len}")), bad)
                .await
                .is_err(),
            "{len} values stored for {model}"
        );
    }
    let stored = s.faces_of_person(&c, &p.id).await?;
    let got: Vec<&Vec<f32>> = stored.iter().map(|f| &f.embedding).collect();
    let want: Vec<&Vec<f32>> = wide.faces.iter().map(|f| &f.embedding).collect();
    assert_eq!(got, want);
    let indexed: Vec<(PersonId, usize)> = s
        .faces_for_index()
        .await?
        .into_iter()
        .filter(|f| f.client == c || f.client == c_widest)
        .map(|f| (f.person_id, f.embedding.len()))
        .collect();
    assert_eq!(
        indexed
            .iter()
            .filter(|(id, n)| id == &p.id && *n == 512)
            .count(),
        3
    );
    assert_eq!(
        indexed
            .iter()
            .filter(|(id, n)| id == &q.id && *n == 1024)
            .count(),
        1
    );
    let ids: Vec<FaceId> = stored.iter().map(|f| f.face_id.clone()).collect();
    let embeddings = s.face_embeddings(&c, "wide-512", &ids).await?;
    assert_eq!(embeddings.len(), 3);
    assert!(embeddings.iter().all(|(_, e)| e.len() == 512));
    // Re-embedding into a model of another length moves the faces with their new length.
    let moved: Vec<(FaceId, Vec<f32>)> = ids
        .iter()
        .map(|id| (id.clone(), wide_face("wide-300", 300, 0).embedding))
        .collect();
    assert!(matches!(
        s.switch_client_model(&c, "wide-300", moved).await?,
        ClientSwitch::Switched { faces: 3, .. }
    ));
    let again = s.faces_of_person(&c, &p.id).await?;
    assert!(again
        .iter()
        .all(|f| f.model == "wide-300" && f.embedding.len() == 300));
    let wrong: Vec<(FaceId, Vec<f32>)> =
        ids.iter().map(|id| (id.clone(), vec![0.5; 300])).collect();
    assert!(
        s.switch_client_model(&c, "wide-512", wrong).await.is_err(),
        "300 values stored for a 512-value model"
    );
    assert_eq!(s.client_model(&c).await?.as_deref(), Some("wide-300"));
    Ok(())
}

/// Erasing a person whose faces a 512-value model embedded leaves none of the embeddings,
/// crops or thumbnails on disk.
pub async fn wide_embeddings_erase_leaves_no_bytes(
    s: &dyn Store,
    present: Present<'_>,
) -> TestResult {
    let c = client("wide-erase");
    s.register_model("wide-erase-512", 512).await?;
    let neighbour = NewPerson {
        faces: (0..2)
            .map(|_| wide_face("wide-erase-512", 512, 100))
            .collect(),
        ..person("Wide Neighbour", &[], 0)
    };
    s.create_person(&c, neighbour).await?;
    let new = NewPerson {
        faces: (0..3)
            .map(|_| wide_face("wide-erase-512", 512, 6000))
            .collect(),
        ..person("Wide Erasable", &[], 0)
    };
    let (embeddings, windows) = face_needles(&new.faces);
    assert!(embeddings.iter().all(|e| e.len() == 2048));
    let p = s.create_person(&c, new).await?;
    assert_gone_after(present, &embeddings, &windows, async {
        assert!(s.erase_person(&c, &p.id).await?);
        Ok(())
    })
    .await?;
    Ok(())
}

/// After re-embedding, the old embeddings are gone from disk; erasing the person then
/// removes the new embeddings, the crops and the thumbnails.
pub async fn reembedded_faces_erase_leaves_no_bytes(
    s: &dyn Store,
    present: Present<'_>,
) -> TestResult {
    let c = client("reembed-erase");
    let new = NewPerson {
        faces: (0..3).map(|_| face(6000)).collect(),
        ..person("Re-embedded", &[], 0)
    };
    let (old_embeddings, windows) = face_needles(&new.faces);
    let p = s.create_person(&c, new).await?;
    s.create_person(&c, person("Neighbour", &[], 2)).await?;
    let crops = s.crops_to_reembed(&c, "model-b", 0, 100).await?;
    let replaced: Vec<(FaceId, Vec<f32>)> = crops
        .iter()
        .map(|c| (c.face_id.clone(), face(0).embedding))
        .collect();
    let mine: Vec<FaceId> = s
        .faces_of_person(&c, &p.id)
        .await?
        .into_iter()
        .map(|f| f.face_id)
        .collect();
    let new_embeddings: Vec<Vec<u8>> = replaced
        .iter()
        .filter(|(id, _)| mine.contains(id))
        .map(|(_, e)| e.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    assert_eq!(new_embeddings.len(), 3);
    assert_gone_after(present, &old_embeddings, &[], async {
        let switched = s
            .switch_client_model(&c, "model-b", replaced.clone())
            .await?;
        assert!(matches!(switched, ClientSwitch::Switched { faces: 5, .. }));
        Ok(())
    })
    .await?;
    assert_gone_after(present, &new_embeddings, &windows, async {
        assert!(s.erase_person(&c, &p.id).await?);
        Ok(())
    })
    .await?;
    Ok(())
}

pub async fn face_embeddings_and_generation(s: &dyn Store) -> TestResult {
    let c1 = client("rescore1");
    let c2 = client("rescore2");
    let g0 = s.generation().await?;
    let n1 = person("Rescore One", &[], 2);
    let p1 = s.create_person(&c1, n1.clone()).await?;
    let p2 = s.create_person(&c2, person("Rescore Two", &[], 1)).await?;
    let g1 = s.generation().await?;
    assert!(g1 > g0, "a write moves the generation on: {g0} -> {g1}");
    s.warm_up().await?;
    assert_eq!(s.generation().await?, g1, "a read does not");
    let f1: Vec<_> = s.faces_of_person(&c1, &p1.id).await?;
    let f2: Vec<_> = s.faces_of_person(&c2, &p2.id).await?;
    let mut asked: Vec<_> = f1.iter().map(|f| f.face_id.clone()).collect();
    asked.push(f2[0].face_id.clone());
    asked.push(store::FaceId::new_random());
    let mut got = s.face_embeddings(&c1, DEFAULT_MODEL, &asked).await?;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<_> = f1
        .iter()
        .map(|f| (f.face_id.clone(), f.embedding.clone()))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got, want,
        "only the client's own faces, with their embeddings"
    );
    assert!(want.iter().any(|(_, e)| *e == n1.faces[0].embedding));
    // Inactive and erased persons' faces are not returned.
    s.update_person(
        &c1,
        &p1.id,
        PersonUpdate {
            status: Some(PersonStatus::Inactive),
            ..PersonUpdate::default()
        },
    )
    .await?;
    assert!(s
        .face_embeddings(&c1, DEFAULT_MODEL, &asked)
        .await?
        .is_empty());
    s.erase_person(&c2, &p2.id).await?;
    assert!(s
        .face_embeddings(&c2, DEFAULT_MODEL, &asked)
        .await?
        .is_empty());
    assert!(s.generation().await? > g1);
    Ok(())
}

// ---------------------------------------------------------------- tenancy

pub async fn tenancy(s: &dyn Store) -> TestResult {
    let mine = client("tenant-a");
    let other = client("tenant-b");
    let ca = s.create_collection(&mine, coll("Mine")).await?;
    let cb = s.create_collection(&other, coll("Theirs")).await?;
    let pa = s
        .create_person(&mine, person("Tenant Person", &[&ca], 1))
        .await?;
    let pb = s
        .create_person(&other, person("Tenant Person", &[&cb], 1))
        .await?;

    // Lists never include the other client's objects.
    assert_eq!(
        s.list_collections(&mine)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![ca.id.clone()]
    );
    assert_eq!(
        ids_of(s, &mine, PersonFilter::default()).await,
        vec![pa.id.clone()]
    );
    let (found, total) = s.lookup_persons(&mine, "tenant", None, 1, 20).await?;
    assert_eq!((found.len(), total), (1, 1));
    assert_eq!(found[0].id, pa.id);
    assert!(ids_of(
        s,
        &mine,
        PersonFilter {
            collection: Some(cb.id.clone()),
            status: None
        }
    )
    .await
    .is_empty());

    // Another client's ids behave like unknown ids, everywhere.
    assert_eq!(s.get_collection(&mine, &cb.id).await?, None);
    assert_eq!(s.resolve_collection(&mine, cb.id.as_str()).await?, None);
    assert_eq!(s.resolve_collection(&mine, cb.code.as_str()).await?, None);
    assert_eq!(
        s.update_collection(
            &mine,
            &cb.id,
            CollectionUpdate {
                name: Some("hijack".into()),
                people: Some(vec![pa.id.clone()]),
                ..Default::default()
            }
        )
        .await?,
        None
    );
    assert_eq!(s.delete_collection(&mine, &cb.id).await?, None);
    assert_eq!(s.get_person(&mine, &pb.id).await?, None);
    assert_eq!(
        s.update_person(
            &mine,
            &pb.id,
            PersonUpdate {
                name: Some("hijack".into()),
                ..Default::default()
            }
        )
        .await?,
        None
    );
    assert!(!s.erase_person(&mine, &pb.id).await?);
    assert_eq!(
        s.detach_person(&mine, &pb.id, &cb.id).await?,
        DetachOutcome::PersonNotFound
    );
    assert_eq!(
        s.detach_person(&mine, &pa.id, &cb.id).await?,
        DetachOutcome::NotAMember
    );
    assert!(s.faces_of_person(&mine, &pb.id).await?.is_empty());

    // Using the other client's collection in my person is an unknown collection.
    let r = s.create_person(&mine, person("Cross", &[&cb], 1)).await;
    assert!(matches!(r, Err(Error::UnknownCollection(_))), "{r:?}");
    let r = s
        .update_person(
            &mine,
            &pa.id,
            PersonUpdate {
                collections: Some(vec![cb.id.clone()]),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(r, Err(Error::UnknownCollection(_))), "{r:?}");
    // Syncing my collection with the other client's person ignores that id.
    let synced = s
        .update_collection(
            &mine,
            &ca.id,
            CollectionUpdate {
                people: Some(vec![pa.id.clone(), pb.id.clone()]),
                ..Default::default()
            },
        )
        .await?;
    assert!(synced.is_some());
    assert_eq!(
        s.get_person(&other, &pb.id).await?.map(|p| p.collections),
        Some(vec![cb.id.clone()])
    );

    // Same name + date of birth in both clients: no person_already_set across clients.
    let dup = s
        .create_person(&other, person("Tenant Person", &[&cb], 1))
        .await;
    assert!(matches!(dup, Err(Error::PersonAlreadySet(_))));
    assert!(s
        .create_person(&mine, person("Tenant Person", &[&ca], 1))
        .await
        .is_err());

    // Everything of the other client is intact.
    assert_eq!(
        s.get_collection(&other, &cb.id).await?.map(|c| c.name),
        Some("Theirs".into())
    );
    let theirs = s.get_person(&other, &pb.id).await?.ok_or("other person")?;
    assert_eq!(theirs.name, "Tenant Person");
    assert_eq!(s.faces_of_person(&other, &pb.id).await?.len(), 1);
    // Audit rows are per client.
    assert!(s
        .audit_log(&mine, 100)
        .await?
        .iter()
        .all(|e| e.client.as_ref() == Some(&mine)));
    Ok(())
}

// ---------------------------------------------------------------- create semantics

pub async fn person_already_set(s: &dyn Store) -> TestResult {
    let c = client("dup");
    let a = s.create_collection(&c, coll("A")).await?;
    let b = s.create_collection(&c, coll("B")).await?;
    let first = s.create_person(&c, person("Juan Díaz", &[&a], 1)).await?;
    let audit_before = s.audit_log(&c, 1000).await?.len();

    // Same name (other case) and date of birth, in a requested collection that has him.
    let r = s.create_person(&c, person("JUAN DÍAZ", &[&b, &a], 1)).await;
    match r {
        Err(Error::PersonAlreadySet(existing)) => assert_eq!(*existing, first),
        other => return Err(format!("expected PersonAlreadySet, got {other:?}").into()),
    }
    assert_eq!(
        ids_of(s, &c, PersonFilter::default()).await,
        vec![first.id.clone()]
    );
    assert_eq!(
        s.audit_log(&c, 1000).await?.len(),
        audit_before,
        "nothing written"
    );

    // Not a duplicate: other collection, other date of birth, no shared collection.
    s.create_person(&c, person("Juan Díaz", &[&b], 1)).await?;
    s.create_person(
        &c,
        NewPerson {
            date_of_birth: Some(date(1991, 1, 15)),
            ..person("Juan Díaz", &[&a], 1)
        },
    )
    .await?;
    s.create_person(&c, person("Juan Díaz", &[], 1)).await?;
    // Both without a date of birth count as the same date.
    s.create_person(
        &c,
        NewPerson {
            date_of_birth: None,
            ..person("Sin Fecha", &[&a], 1)
        },
    )
    .await?;
    let r = s
        .create_person(
            &c,
            NewPerson {
                date_of_birth: None,
                ..person("sin fecha", &[&a], 1)
            },
        )
        .await;
    assert!(matches!(r, Err(Error::PersonAlreadySet(_))), "{r:?}");
    Ok(())
}

/// The duplicate rule of create holds for the result of an update: renaming, changing the
/// date of birth or joining a collection into a match is refused and changes nothing.
pub async fn update_keeps_duplicate_rule(s: &dyn Store) -> TestResult {
    let c = client("dup-put");
    let a = s.create_collection(&c, coll("A")).await?;
    let b = s.create_collection(&c, coll("B")).await?;
    let ana = s.create_person(&c, person("Ana Ruiz", &[&a], 1)).await?;
    let bea = s
        .create_person(&c, person("Bea Ruiz", &[&a, &b], 1))
        .await?;
    let ana_b = s.create_person(&c, person("Ana Ruiz", &[&b], 1)).await?;
    let younger = s
        .create_person(
            &c,
            NewPerson {
                date_of_birth: Some(date(2001, 2, 3)),
                ..person("Ana Ruiz", &[&a], 1)
            },
        )
        .await?;
    let audit_before = s.audit_log(&c, 1000).await?;
    let refused = |r: Result<Option<store::Person>, Error>, want: &store::Person| match r {
        Err(Error::PersonAlreadySet(existing)) => {
            assert_eq!(existing.id, want.id);
            Ok(())
        }
        other => Err(format!("expected PersonAlreadySet, got {other:?}")),
    };
    let update = |name: Option<&str>, collections: Option<Vec<CollectionId>>| PersonUpdate {
        name: name.map(str::to_owned),
        notes: Some("changed".into()),
        faces: Some(vec![face(600)]),
        collections,
        ..Default::default()
    };

    // Renamed (in another case) into Ana of A, with the faces replaced on the way.
    let r = s
        .update_person(&c, &bea.id, update(Some("ANA RUIZ"), None))
        .await;
    refused(r, &ana)?;
    // Joining a collection where the same person is.
    let r = s
        .update_person(
            &c,
            &ana_b.id,
            update(None, Some(vec![b.id.clone(), a.id.clone()])),
        )
        .await;
    refused(r, &ana)?;
    // Born on the same day as Ana of A.
    let r = s
        .update_person(
            &c,
            &younger.id,
            PersonUpdate {
                date_of_birth: Some(date(1990, 1, 15)),
                ..update(None, None)
            },
        )
        .await;
    refused(r, &ana)?;
    // Renamed and moved at once: the resulting collections count.
    let r = s
        .update_person(
            &c,
            &bea.id,
            update(Some("ana ruiz"), Some(vec![b.id.clone()])),
        )
        .await;
    refused(r, &ana_b)?;
    for p in [&ana, &bea, &ana_b, &younger] {
        assert_eq!(
            s.get_person(&c, &p.id).await?.as_ref(),
            Some(p),
            "unchanged"
        );
    }
    assert_eq!(
        s.audit_log(&c, 1000).await?,
        audit_before,
        "nothing written"
    );

    // Allowed: a person matching only itself, a rename out of the way, a collection where
    // no one matches, the same identity in other words.
    s.update_person(
        &c,
        &ana.id,
        update(Some(" ana ruiz "), Some(vec![a.id.clone()])),
    )
    .await?;
    s.update_person(&c, &bea.id, update(Some("Bea Ruiz Díaz"), None))
        .await?;
    let moved = s
        .update_person(
            &c,
            &younger.id,
            update(None, Some(vec![a.id.clone(), b.id.clone()])),
        )
        .await?
        .ok_or("younger exists")?;
    assert_eq!(moved.collections, vec![a.id.clone(), b.id.clone()]);

    // A match that was there before the update (a collection update has no duplicate check)
    // does not block updating other fields.
    s.update_collection(
        &c,
        &a.id,
        CollectionUpdate {
            people: Some(vec![ana.id.clone(), ana_b.id.clone()]),
            ..Default::default()
        },
    )
    .await?;
    let kept = s.update_person(&c, &ana_b.id, update(None, None)).await?;
    assert_eq!(kept.map(|p| p.notes), Some(Some("changed".to_owned())));
    // Another client's same person is no match.
    let c2 = client("dup-put-other");
    let a2 = s.create_collection(&c2, coll("A")).await?;
    let p2 = s.create_person(&c2, person("Other", &[&a2], 0)).await?;
    s.update_person(&c2, &p2.id, update(Some("Ana Ruiz"), None))
        .await?;
    Ok(())
}

pub async fn create_is_all_or_nothing(s: &dyn Store) -> TestResult {
    let c = client("atomic");
    let a = s.create_collection(&c, coll("A")).await?;
    let audit_before = s.audit_log(&c, 1000).await?;
    let faces_before = s.faces_for_index().await?.len();

    // Unknown collection after a valid one.
    let r = s
        .create_person(&c, person("Atomic", &[&a, &CollectionId::new()], 2))
        .await;
    assert!(matches!(r, Err(Error::UnknownCollection(_))), "{r:?}");
    // A bad face after a good one.
    let mut bad = person("Atomic", &[&a], 2);
    bad.faces[1].embedding.pop();
    assert!(matches!(
        s.create_person(&c, bad).await,
        Err(Error::Invalid { .. })
    ));
    let mut bad = person("Atomic", &[&a], 1);
    bad.faces[0].embedding[3] = f32::NAN;
    assert!(matches!(
        s.create_person(&c, bad).await,
        Err(Error::Invalid { .. })
    ));
    let mut bad = person("Atomic", &[&a], 1);
    bad.faces[0].thumbnail_jpeg.clear();
    assert!(s.create_person(&c, bad).await.is_err());
    assert!(s
        .create_person(&c, person("Atomic", &[&a], 4))
        .await
        .is_err());
    assert!(s.create_person(&c, person(" ", &[&a], 1)).await.is_err());
    // A bulk seed with one bad collection writes none of its persons.
    let r = s
        .seed_persons(
            &c,
            vec![
                person("Seed A", &[&a], 1),
                person("Seed B", &[&CollectionId::new()], 1),
            ],
        )
        .await;
    assert!(matches!(r, Err(Error::UnknownCollection(_))), "{r:?}");

    assert!(ids_of(s, &c, PersonFilter::default()).await.is_empty());
    assert_eq!(s.audit_log(&c, 1000).await?, audit_before);
    assert_eq!(s.faces_for_index().await?.len(), faces_before);

    // A good one still works afterwards.
    s.create_person(&c, person("Atomic", &[&a], 3)).await?;
    assert_eq!(ids_of(s, &c, PersonFilter::default()).await.len(), 1);
    Ok(())
}

pub async fn seed_persons(s: &dyn Store) -> TestResult {
    let c = client("seed");
    let a = s.create_collection(&c, coll("A")).await?;
    let batch: Vec<_> = (0..50)
        .map(|i| person(&format!("Seed {i}"), &[&a], 1))
        .collect();
    let seeded_crops: Vec<Vec<u8>> = batch.iter().map(|p| p.faces[0].crop_png.clone()).collect();
    let ids = s.seed_persons(&c, batch).await?;
    assert_eq!(ids.len(), 50);
    // Seeded faces carry their model and keep their crop, as enrolled ones do.
    let models: Vec<String> = s
        .faces_for_index()
        .await?
        .into_iter()
        .filter(|f| f.client == c)
        .map(|f| f.model)
        .collect();
    assert_eq!(models.len(), 50);
    assert!(models.iter().all(|m| m == DEFAULT_MODEL));
    let kept = s.crops_to_reembed(&c, "another-model", 0, 100_000).await?;
    let found = seeded_crops
        .iter()
        .filter(|want| kept.iter().any(|k| &k.png == *want))
        .count();
    assert_eq!(found, 50, "seeded crops kept");
    assert_eq!(ids_of(s, &c, PersonFilter::default()).await, ids);
    let (_, total) = s
        .list_persons(
            &c,
            PersonFilter {
                collection: Some(a.id.clone()),
                status: None,
            },
            1,
            10,
        )
        .await?;
    assert_eq!(total, 50);
    Ok(())
}

// ---------------------------------------------------------------- erasure

/// Checks that each needle is found before `act` runs and none after it.
async fn assert_gone_after<T>(
    present: Present<'_>,
    must_vanish: &[Vec<u8>],
    thumb_windows: &[Vec<u8>],
    act: impl std::future::Future<Output = Result<T, Box<dyn std::error::Error>>>,
) -> Result<T, Box<dyn std::error::Error>> {
    for e in must_vanish {
        assert!(present(e), "the test cannot see the data it looks for");
    }
    let seen = thumb_windows.iter().filter(|w| present(w)).count();
    assert!(
        seen * 2 >= thumb_windows.len(),
        "only {seen} of {} thumbnail windows found before erasure",
        thumb_windows.len()
    );
    let out = act.await?;
    for (i, e) in must_vanish.iter().enumerate() {
        assert!(!present(e), "needle {i} still on disk after erasure");
    }
    let left = thumb_windows.iter().filter(|w| present(w)).count();
    assert_eq!(left, 0, "thumbnail windows still on disk after erasure");
    Ok(out)
}

pub async fn erasure_leaves_no_bytes(s: &dyn Store, present: Present<'_>) -> TestResult {
    let c = client("erase");
    let a = s.create_collection(&c, coll("A")).await?;
    // Neighbours before and after, so the erased rows share pages with live ones.
    s.create_person(&c, person("Neighbour Before", &[&a], 2))
        .await?;
    let name = format!("Erasable {}", hex(&random_bytes(8)));
    let new = NewPerson {
        faces: (0..3).map(|_| face(6000)).collect(),
        ..person(&name, &[&a], 0)
    };
    let (mut needles, windows) = face_needles(&new.faces);
    needles.push(name.clone().into_bytes());
    needles.push(name.to_lowercase().into_bytes());
    let p = s.create_person(&c, new).await?;
    s.create_person(&c, person("Neighbour After", &[&a], 2))
        .await?;

    assert_gone_after(present, &needles, &windows, async {
        assert!(s.erase_person(&c, &p.id).await?);
        Ok(())
    })
    .await?;
    assert_eq!(s.get_person(&c, &p.id).await?, None);
    Ok(())
}

pub async fn update_replacing_faces_erases_old(s: &dyn Store, present: Present<'_>) -> TestResult {
    let c = client("replace");
    let old = person("Replace Me", &[], 2);
    let (needles, windows) = face_needles(&old.faces);
    let p = s.create_person(&c, old).await?;
    let new_faces: Vec<NewFace> = (0..3).map(|_| face(800)).collect();
    let (new_needles, _) = face_needles(&new_faces);

    let up = assert_gone_after(present, &needles, &windows, async {
        let up = s
            .update_person(
                &c,
                &p.id,
                PersonUpdate {
                    faces: Some(new_faces.clone()),
                    ..Default::default()
                },
            )
            .await?;
        Ok(up)
    })
    .await?
    .ok_or("updated person")?;
    assert_eq!(up.thumbnails.len(), 3);
    assert_eq!(up.thumbnails[2].jpeg, new_faces[2].thumbnail_jpeg);
    assert!(up
        .thumbnails
        .iter()
        .all(|t| !p.thumbnails.iter().any(|o| o.id == t.id)));
    let faces = s.faces_of_person(&c, &p.id).await?;
    assert_eq!(faces.len(), 3);
    assert_eq!(faces[0].embedding, new_faces[0].embedding);
    for n in &new_needles {
        assert!(present(n), "new faces are stored");
    }
    Ok(())
}

pub async fn detach_as_last_erases_bytes(s: &dyn Store, present: Present<'_>) -> TestResult {
    let c = client("detach-erase");
    let a = s.create_collection(&c, coll("A")).await?;
    let new = person("Detach Last", &[&a], 2);
    let (needles, windows) = face_needles(&new.faces);
    let p = s.create_person(&c, new).await?;
    assert_gone_after(present, &needles, &windows, async {
        assert_eq!(
            s.detach_person(&c, &p.id, &a.id).await?,
            DetachOutcome::Erased
        );
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------- membership

pub async fn detach_semantics(s: &dyn Store) -> TestResult {
    let c = client("detach");
    let a = s.create_collection(&c, coll("A")).await?;
    let b = s.create_collection(&c, coll("B")).await?;
    let z = s.create_collection(&c, coll("Z")).await?;
    let p = s
        .create_person(&c, person("Two Homes", &[&a, &b], 1))
        .await?;
    let loner = s.create_person(&c, person("No Home", &[], 1)).await?;

    assert_eq!(
        s.detach_person(&c, &PersonId::new(), &a.id).await?,
        DetachOutcome::PersonNotFound
    );
    assert_eq!(
        s.detach_person(&c, &p.id, &z.id).await?,
        DetachOutcome::NotAMember
    );
    assert_eq!(
        s.detach_person(&c, &p.id, &CollectionId::new()).await?,
        DetachOutcome::NotAMember
    );
    assert_eq!(
        s.detach_person(&c, &loner.id, &a.id).await?,
        DetachOutcome::NotAMember
    );
    assert_eq!(
        s.detach_person(&c, &p.id, &a.id).await?,
        DetachOutcome::Detached {
            remaining: vec![b.id.clone()]
        }
    );
    let still = s.get_person(&c, &p.id).await?.ok_or("person stays")?;
    assert_eq!(still.collections, vec![b.id.clone()]);
    assert_eq!(still.thumbnails, p.thumbnails);
    assert_eq!(
        s.detach_person(&c, &p.id, &a.id).await?,
        DetachOutcome::NotAMember
    );
    assert_eq!(
        s.detach_person(&c, &p.id, &b.id).await?,
        DetachOutcome::Erased
    );
    assert_eq!(s.get_person(&c, &p.id).await?, None);
    assert!(s.faces_of_person(&c, &p.id).await?.is_empty());
    assert_eq!(
        s.detach_person(&c, &p.id, &b.id).await?,
        DetachOutcome::PersonNotFound
    );
    // The collections themselves stay.
    assert_eq!(s.list_collections(&c).await?.len(), 3);
    Ok(())
}

pub async fn collection_people_sync(s: &dyn Store) -> TestResult {
    let c = client("sync");
    let a = s.create_collection(&c, coll("A")).await?;
    let b = s.create_collection(&c, coll("B")).await?;
    let p1 = s.create_person(&c, person("P One", &[&a], 1)).await?;
    let p2 = s.create_person(&c, person("P Two", &[&a, &b], 1)).await?;
    let p3 = s.create_person(&c, person("P Three", &[], 1)).await?;
    let in_a = PersonFilter {
        collection: Some(a.id.clone()),
        status: None,
    };

    // Keep p2, drop p1, add p3; an unknown id is ignored; duplicates collapse.
    let up = s
        .update_collection(
            &c,
            &a.id,
            CollectionUpdate {
                name: Some("A".into()),
                people: Some(vec![
                    p3.id.clone(),
                    p2.id.clone(),
                    PersonId::new(),
                    p3.id.clone(),
                ]),
                ..Default::default()
            },
        )
        .await?;
    assert!(up.is_some());
    let mut members = ids_of(s, &c, in_a.clone()).await;
    members.sort();
    let mut want = vec![p2.id.clone(), p3.id.clone()];
    want.sort();
    assert_eq!(members, want);
    // p1 lost its only collection by a collection update: detached, not erased.
    let p1_now = s.get_person(&c, &p1.id).await?.ok_or("p1 stays")?;
    assert!(p1_now.collections.is_empty());
    assert_eq!(p1_now.thumbnails, p1.thumbnails);
    assert_eq!(
        s.get_person(&c, &p2.id).await?.map(|p| p.collections),
        Some(vec![a.id.clone(), b.id.clone()])
    );
    assert_eq!(
        s.get_person(&c, &p3.id).await?.map(|p| p.collections),
        Some(vec![a.id.clone()])
    );

    // people: None leaves membership alone; Some(empty) empties the collection.
    s.update_collection(
        &c,
        &a.id,
        CollectionUpdate {
            name: Some("A renamed".into()),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids_of(s, &c, in_a.clone()).await.len(), 2);
    s.update_collection(
        &c,
        &a.id,
        CollectionUpdate {
            people: Some(vec![]),
            ..Default::default()
        },
    )
    .await?;
    assert!(ids_of(s, &c, in_a).await.is_empty());
    assert_eq!(
        s.get_person(&c, &p2.id).await?.map(|p| p.collections),
        Some(vec![b.id.clone()])
    );
    let log = s.audit_log(&c, 100).await?;
    assert!(log
        .iter()
        .any(|e| e.action == "person.attach" && e.object_id == p3.id.as_str()));
    assert!(log
        .iter()
        .any(|e| e.action == "person.detach" && e.object_id == p1.id.as_str()));
    Ok(())
}

pub async fn delete_collection_detaches(s: &dyn Store) -> TestResult {
    let c = client("delcoll");
    let a = s.create_collection(&c, coll("A")).await?;
    let b = s.create_collection(&c, coll("B")).await?;
    let only_a = s.create_person(&c, person("Only A", &[&a], 1)).await?;
    let both = s.create_person(&c, person("Both", &[&a, &b], 1)).await?;

    let gone = s.delete_collection(&c, &a.id).await?.ok_or("deleted")?;
    assert_eq!(gone.id, a.id);
    assert_eq!(gone.name, "A");
    let p = s.get_person(&c, &only_a.id).await?.ok_or("person stays")?;
    assert!(p.collections.is_empty());
    assert_eq!(p.thumbnails, only_a.thumbnails);
    assert_eq!(
        s.get_person(&c, &both.id).await?.map(|p| p.collections),
        Some(vec![b.id.clone()])
    );
    assert!(ids_of(
        s,
        &c,
        PersonFilter {
            collection: Some(a.id.clone()),
            status: None
        }
    )
    .await
    .is_empty());
    let idx = s.faces_for_index().await?;
    let f = idx
        .iter()
        .find(|f| f.person_id == both.id)
        .ok_or("face indexed")?;
    assert_eq!(f.collections, vec![b.id.clone()]);
    Ok(())
}

// ---------------------------------------------------------------- audit, tokens

pub async fn audit_rows(s: &dyn Store) -> TestResult {
    let c = client("audit");
    let a = s.create_collection(&c, coll("Audited")).await?;
    let b = s.create_collection(&c, coll("Other")).await?;
    let secret_name = format!("Secret {}", hex(&random_bytes(4)));
    let p = s
        .create_person(&c, person(&secret_name, &[&a, &b], 1))
        .await?;
    s.update_person(
        &c,
        &p.id,
        PersonUpdate {
            notes: Some("x".into()),
            faces: Some(vec![face(300)]),
            ..Default::default()
        },
    )
    .await?;
    s.detach_person(&c, &p.id, &a.id).await?;
    s.update_collection(&c, &a.id, CollectionUpdate::default())
        .await?;
    s.erase_person(&c, &p.id).await?;
    s.delete_collection(&c, &a.id).await?;
    // Reads and no-ops write nothing.
    s.get_person(&c, &p.id).await?;
    assert!(!s.erase_person(&c, &p.id).await?);

    let log = s.audit_log(&c, 100).await?;
    let got: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.object_id.as_str()))
        .collect();
    let (aid, bid, pid) = (a.id.as_str(), b.id.as_str(), p.id.as_str());
    assert_eq!(
        got,
        vec![
            ("collection.create", aid),
            ("collection.create", bid),
            ("person.create", pid),
            ("person.faces.replace", pid),
            ("person.update", pid),
            ("person.detach", pid),
            ("collection.update", aid),
            ("person.erase", pid),
            ("collection.delete", aid),
        ]
    );
    let mut prev = i64::MAX;
    for e in &log {
        assert!(e.seq < prev, "newest first");
        prev = e.seq;
        assert_eq!(e.client.as_ref(), Some(&c));
        assert!(e.at <= Utc::now());
        assert!(!e.object_id.contains(&secret_name));
        assert!(!e.action.contains(&secret_name));
        assert_eq!(e.object_id.len(), 24, "ids only: {}", e.object_id);
    }
    assert_eq!(s.audit_log(&c, 2).await?.len(), 2);
    Ok(())
}

pub fn jti(tag: &str) -> String {
    format!("{tag}-{}", hex(&random_bytes(8)))
}

/// Whether the token `jti` of `c`, issued an hour ago, is revoked.
async fn revoked(s: &dyn Store, jti: &str, c: &ClientId) -> Result<bool, Error> {
    s.is_token_revoked(jti, c, Utc::now() - Duration::hours(1))
        .await
}

/// Erasing a client removes its persons' bytes, its persons and its collections, audited,
/// and leaves every other client alone.
pub async fn erase_client_leaves_no_bytes(s: &dyn Store, present: Present<'_>) -> TestResult {
    let (c, other) = (client("leaving"), client("staying"));
    let a = s.create_collection(&c, coll("A")).await?;
    let new = NewPerson {
        faces: (0..2).map(|_| face(6000)).collect(),
        ..person("Leaving One", &[&a], 0)
    };
    let (needles, windows) = face_needles(&new.faces);
    s.create_person(&c, new).await?;
    s.create_person(&c, person("Leaving Two", &[], 1)).await?;
    let b = s.create_collection(&other, coll("B")).await?;
    let kept = s.create_person(&other, person("Staying", &[&b], 1)).await?;

    assert_gone_after(present, &needles, &windows, async {
        let erased = s.erase_client(&c).await?;
        assert_eq!((erased.persons, erased.collections), (2, 1));
        Ok(())
    })
    .await?;
    assert_eq!(ids_of(s, &c, PersonFilter::default()).await, vec![]);
    assert!(s.list_collections(&c).await?.is_empty());
    let actions: Vec<String> = s
        .audit_log(&c, 10)
        .await?
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        &actions[..4],
        [
            "client.erase",
            "collection.delete",
            "person.erase",
            "person.erase"
        ]
    );
    assert_eq!(s.get_person(&other, &kept.id).await?, Some(kept));
    assert_eq!(s.list_collections(&other).await?, vec![b]);
    // Nothing left to erase: no error, nothing counted.
    let again = s.erase_client(&c).await?;
    assert_eq!((again.persons, again.collections), (0, 0));
    Ok(())
}

pub async fn tokens(s: &dyn Store) -> TestResult {
    let c = client("tokens");
    let jti = jti("jti");
    assert!(!revoked(s, &jti, &c).await?);
    s.revoke_token(&jti, Utc::now() + Duration::days(30))
        .await?;
    assert!(revoked(s, &jti, &c).await?);
    // Idempotent.
    s.revoke_token(&jti, Utc::now() + Duration::days(30))
        .await?;
    assert!(revoked(s, &jti, &c).await?);
    assert!(!revoked(s, "some-other-jti", &c).await?);
    assert!(s.revoke_token("", Utc::now()).await.is_err());
    // Expired revocations are pruned (the token is refused for being expired anyway).
    let old = self::jti("old");
    s.revoke_token(&old, Utc::now() - Duration::days(1)).await?;
    s.revoke_token(&self::jti("new"), Utc::now() + Duration::days(1))
        .await?;
    assert!(!revoked(s, &old, &c).await?);
    assert!(revoked(s, &jti, &c).await?);
    Ok(())
}

fn renewal(c: &ClientId, jti: &str, parent: &str, lives: Duration) -> TokenRenewal {
    TokenRenewal {
        jti: jti.to_owned(),
        parent: parent.to_owned(),
        client: c.clone(),
        expires_at: Utc::now() + lives,
    }
}

/// Revoking a token revokes every token renewed from it, at any depth, and nothing else; the
/// revocation lasts as long as its longest-lived descendant.
pub async fn token_families(s: &dyn Store) -> TestResult {
    let c = client("family");
    let month = Duration::days(30);
    // root -> a -> b, root -> sibling; other -> unrelated.
    let (root, a, b, sibling) = (jti("root"), jti("a"), jti("b"), jti("sibling"));
    let (other, unrelated) = (jti("other"), jti("unrelated"));
    for (child, parent) in [
        (&a, &root),
        (&b, &a),
        (&sibling, &root),
        (&unrelated, &other),
    ] {
        s.record_token_renewal(&renewal(&c, child, parent, month))
            .await?;
    }
    for t in [&root, &a, &b, &sibling, &unrelated] {
        assert!(!revoked(s, t, &c).await?, "{t}");
    }

    s.revoke_token(&a, Utc::now() + Duration::days(1)).await?;
    assert!(revoked(s, &a, &c).await?);
    assert!(revoked(s, &b, &c).await?, "a grandchild of a revoked token");
    assert!(!revoked(s, &root, &c).await?, "the parent stays valid");
    assert!(!revoked(s, &sibling, &c).await?);
    assert!(!revoked(s, &unrelated, &c).await?);
    // The family is followed through the client's own renewals only.
    assert!(!revoked(s, &b, &client("stranger")).await?);

    s.revoke_token(&root, Utc::now() + Duration::days(1))
        .await?;
    assert!(revoked(s, &sibling, &c).await?);
    assert!(!revoked(s, &unrelated, &c).await?);

    // A revocation given an expiry already past still holds while a descendant lives: the
    // next write prunes expired rows, not this one.
    let (short, long) = (jti("short"), jti("long"));
    s.record_token_renewal(&renewal(&c, &long, &short, month))
        .await?;
    s.revoke_token(&short, Utc::now() - Duration::hours(1))
        .await?;
    s.revoke_token(&jti("prune"), Utc::now() + Duration::days(1))
        .await?;
    assert!(revoked(s, &long, &c).await?);

    // A renewal keeps the chain above it as long as it lives: once the middle token has
    // expired (and its row would have been pruned), revoking the root still reaches the
    // grandchild.
    let (g0, g1, g2) = (jti("g0"), jti("g1"), jti("g2"));
    s.record_token_renewal(&renewal(&c, &g1, &g0, Duration::seconds(1)))
        .await?;
    s.record_token_renewal(&renewal(&c, &g2, &g1, month))
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    s.revoke_token(&jti("prune"), Utc::now() + Duration::days(1))
        .await?;
    assert!(!revoked(s, &g2, &c).await?);
    s.revoke_token(&g0, Utc::now() + Duration::seconds(1))
        .await?;
    assert!(revoked(s, &g2, &c).await?);

    // Expired renewals are pruned: a renewal that lived 1 ms no longer links its child.
    let (p, child) = (jti("p"), jti("child"));
    s.record_token_renewal(&renewal(&c, &child, &p, Duration::milliseconds(1)))
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.revoke_token(&p, Utc::now() + Duration::days(1)).await?;
    assert!(!revoked(s, &child, &c).await?);

    // Invalid renewals are refused.
    for (j, parent) in [("", "x"), ("x", ""), ("x", "x"), ("x\0", "y")] {
        let r = s.record_token_renewal(&renewal(&c, j, parent, month)).await;
        assert!(
            matches!(r, Err(Error::Invalid { .. })),
            "{j:?} {parent:?}: {r:?}"
        );
    }

    // Audited as the client's, with the new token's id.
    let log = s.audit_log(&c, 100).await?;
    let renewed: Vec<&str> = log
        .iter()
        .filter(|e| e.action == "token.renew")
        .map(|e| e.object_id.as_str())
        .collect();
    assert_eq!(renewed.len(), 8);
    assert!(renewed.contains(&b.as_str()) && renewed.contains(&g2.as_str()));
    Ok(())
}

/// Revoking every token of a client: those issued at or before the cutoff, of that client
/// only; the cutoff never moves back.
pub async fn client_token_cutoff(s: &dyn Store) -> TestResult {
    let (c, other) = (client("cutoff"), client("cutoff-other"));
    let cutoff = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
        .ok_or("now is representable")?;
    let at = |ms: i64| cutoff + Duration::milliseconds(ms);
    let (t, renewed) = (jti("t"), jti("renewed"));
    s.record_token_renewal(&renewal(&c, &renewed, &t, Duration::days(1)))
        .await?;
    assert!(!s.is_token_revoked(&t, &c, at(-1000)).await?);

    s.revoke_client_tokens(&c, cutoff).await?;
    assert!(s.is_token_revoked(&t, &c, at(-1000)).await?);
    assert!(s.is_token_revoked(&t, &c, at(0)).await?, "at the cutoff");
    assert!(!s.is_token_revoked(&renewed, &c, at(1000)).await?);
    assert!(!s.is_token_revoked(&t, &other, at(-1000)).await?);
    // A jti nothing could store is still refused by the cutoff.
    assert!(s.is_token_revoked("x\0", &c, at(-1000)).await?);

    // An earlier cutoff does not bring tokens back; a later one extends.
    s.revoke_client_tokens(&c, at(-60_000)).await?;
    assert!(s.is_token_revoked(&t, &c, at(-1000)).await?);
    s.revoke_client_tokens(&c, at(5000)).await?;
    assert!(s.is_token_revoked(&renewed, &c, at(1000)).await?);
    assert!(!s.is_token_revoked(&renewed, &c, at(6000)).await?);

    let log = s.audit_log(&c, 100).await?;
    let revokes = log
        .iter()
        .filter(|e| e.action == "token.revoke_client")
        .inspect(|e| assert_eq!(e.object_id, c.as_str()))
        .count();
    assert_eq!(revokes, 3);
    assert!(s.audit_log(&other, 100).await?.is_empty());
    Ok(())
}

/// NUL characters (which PostgreSQL text cannot hold) are refused or match nothing, alike in
/// every back-end.
pub async fn nul_characters(s: &dyn Store) -> TestResult {
    let c = client("nul");
    let r = s
        .create_collection(
            &c,
            NewCollection {
                description: Some("a\0b".into()),
                ..coll("Nul")
            },
        )
        .await;
    assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    let r = s
        .create_person(
            &c,
            NewPerson {
                notes: Some("x\0".into()),
                ..person("Nul Notes", &[], 1)
            },
        )
        .await;
    assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    assert!(s
        .create_person(&c, person("Nul\0Name", &[], 1))
        .await
        .is_err());
    let p = s.create_person(&c, person("Nul Person", &[], 1)).await?;
    let r = s
        .update_person(
            &c,
            &p.id,
            PersonUpdate {
                nationality: Some("\0".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    assert_eq!(s.lookup_persons(&c, "nul\0", None, 1, 10).await?.1, 0);
    assert_eq!(s.lookup_persons(&c, "nul", None, 1, 10).await?.1, 1);
    assert_eq!(s.resolve_collection(&c, "\0").await?, None);
    assert!(matches!(
        s.revoke_token("jti\0", Utc::now() + Duration::days(1))
            .await,
        Err(Error::Invalid { .. })
    ));
    assert!(!revoked(s, "jti\0", &c).await?);
    Ok(())
}

// ---------------------------------------------------------------- concurrency

pub async fn concurrent_erasures(s: Arc<dyn Store>) -> TestResult {
    let c = client("concurrent");
    let a = s.create_collection(&c, coll("A")).await?;
    let batch: Vec<_> = (0..256)
        .map(|i| person(&format!("Many {i}"), &[&a], 1))
        .collect();
    let ids = s.seed_persons(&c, batch).await?;
    let keep = s.create_person(&c, person("Keeper", &[&a], 1)).await?;

    let mut tasks = Vec::new();
    for chunk in ids.chunks(8) {
        let s = Arc::clone(&s);
        let c = c.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            for id in &chunk {
                if s.erase_person(&c, id).await? {
                    ok += 1;
                }
            }
            Ok::<_, Error>(ok)
        }));
    }
    assert_eq!(tasks.len(), 32);
    let mut erased = 0;
    for t in tasks {
        erased += t.await??;
    }
    assert_eq!(erased, ids.len());
    assert_eq!(
        ids_of(&*s, &c, PersonFilter::default()).await,
        vec![keep.id.clone()]
    );
    let left: Vec<_> = s
        .faces_for_index()
        .await?
        .into_iter()
        .filter(|f| f.client == c)
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].person_id, keep.id);
    let erasures = s
        .audit_log(&c, 10_000)
        .await?
        .into_iter()
        .filter(|e| e.action == "person.erase")
        .count();
    assert_eq!(erasures, ids.len());
    Ok(())
}

/// Mixed concurrent writes of different kinds grouped into the same batches: each caller
/// gets its own outcome, a failing job does not spoil its neighbours.
pub async fn concurrent_mixed_writes(s: Arc<dyn Store>) -> TestResult {
    let c = client("mixed");
    let a = s.create_collection(&c, coll("A")).await?;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = Arc::clone(&s);
        let c = c.clone();
        let a = a.id.clone();
        tasks.push(tokio::spawn(async move {
            // Every 4th create names an unknown collection and must fail alone.
            let cols = if i % 4 == 0 {
                vec![a.clone(), CollectionId::new()]
            } else {
                vec![a.clone()]
            };
            let r = s
                .create_person(
                    &c,
                    NewPerson {
                        collections: cols,
                        ..person(&format!("Mixed {i}"), &[], 1)
                    },
                )
                .await;
            (i, r.map(|p| p.id))
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        let (i, r) = t.await?;
        if i % 4 == 0 {
            assert!(matches!(r, Err(Error::UnknownCollection(_))), "{i}: {r:?}");
        } else {
            created.push(r?);
        }
    }
    assert_eq!(created.len(), 30);
    let mut listed = ids_of(&*s, &c, PersonFilter::default()).await;
    listed.sort();
    created.sort();
    assert_eq!(listed, created);
    Ok(())
}

/// Concurrent creations of the same person in the same collection: exactly one is created,
/// every other caller gets `PersonAlreadySet` with that person.
pub async fn concurrent_duplicate_creates(s: Arc<dyn Store>) -> TestResult {
    let c = client("dup-race");
    let a = s.create_collection(&c, coll("A")).await?;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (s, c, a) = (Arc::clone(&s), c.clone(), a.id.clone());
        // Same name in other cases: the check is case-insensitive.
        let name = if i % 2 == 0 {
            "Raced Name"
        } else {
            "RACED name"
        };
        let new = person(name, &[&a], 1);
        tasks.push(tokio::spawn(async move { s.create_person(&c, new).await }));
    }
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for t in tasks {
        match t.await? {
            Ok(p) => created.push(p),
            Err(Error::PersonAlreadySet(existing)) => refused.push(existing.id),
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(created.len(), 1, "exactly one creation wins");
    assert!(refused.iter().all(|id| *id == created[0].id));
    assert_eq!(
        ids_of(&*s, &c, PersonFilter::default()).await,
        vec![created[0].id.clone()]
    );
    Ok(())
}

/// Concurrent detaches of one person from each of its collections: whichever runs last finds
/// no collection left and erases the person; the others detach.
pub async fn concurrent_detaches(s: Arc<dyn Store>) -> TestResult {
    let c = client("detach-race");
    let cols = [
        s.create_collection(&c, coll("A")).await?,
        s.create_collection(&c, coll("B")).await?,
        s.create_collection(&c, coll("C")).await?,
    ];
    for round in 0..10 {
        let p = s
            .create_person(
                &c,
                person(
                    &format!("Detached {round}"),
                    &[&cols[0], &cols[1], &cols[2]],
                    1,
                ),
            )
            .await?;
        let mut tasks = Vec::new();
        for col in &cols {
            let (s, c, id, col) = (Arc::clone(&s), c.clone(), p.id.clone(), col.id.clone());
            tasks.push(tokio::spawn(
                async move { s.detach_person(&c, &id, &col).await },
            ));
        }
        let mut erased = 0;
        let mut detached = 0;
        for t in tasks {
            match t.await?? {
                DetachOutcome::Erased => erased += 1,
                DetachOutcome::Detached { .. } => detached += 1,
                other => return Err(format!("round {round}: unexpected {other:?}").into()),
            }
        }
        assert_eq!((erased, detached), (1, 2), "round {round}");
        assert_eq!(s.get_person(&c, &p.id).await?, None);
    }
    Ok(())
}
