//! The whole gallery in one file, written at a clean shutdown and read once at the next
//! start, so that a large gallery (and its graph, which takes minutes to build) is back in
//! seconds. The file records the store's generation and the embedding model of its faces:
//! if the store changed since, the server now runs another model, or the
//! file is damaged (CRC-32 over everything), it is ignored and the gallery rebuilt from the
//! store, which stays the source of truth.
//!
//! The file holds int8 codes of faces, which are biometric data, so it must not outlive the
//! persons in it: the loader overwrites it with zeros and removes it as soon as it is read.
//! While the server runs, no snapshot exists; a crash leaves none behind.
//!
//! This module alone defines the layout (magic, version, field order, CRC): the index
//! layers lend their state as plain data ([`ClientIndexParts`], [`HnswParts`]) and check
//! what they are given back.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use store::{ClientId, CollectionId};

use crate::client::{ClientIndex, ClientIndexParts, IndexParams, PersonSlot};
use crate::gallery::{read, Gallery};
use crate::hnsw::{HnswParams, HnswParts};

const MAGIC: &[u8; 8] = b"VISAGEIX";
/// 2: the model id after the generation.
const VERSION: u32 = 2;
/// The graph's entry row when it has none.
const NO_ENTRY: u32 = u32::MAX;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot is damaged or from another version")]
    Damaged,
}

/// Writes little-endian values and keeps a running CRC-32 of them.
struct Writer {
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
}

impl Writer {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.out.write_all(b)
    }
    pub fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    pub fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    pub fn bytes(&mut self, v: &[u8]) -> std::io::Result<()> {
        self.u64(v.len() as u64)?;
        self.put(v)
    }
    pub fn u32s(&mut self, v: &[u32]) -> std::io::Result<()> {
        self.u64(v.len() as u64)?;
        v.iter().try_for_each(|x| self.put(&x.to_le_bytes()))
    }
}

/// Reads what [`Writer`] wrote; `None` on any overrun.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }
    fn len(&mut self, item_bytes: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        // Refuse lengths the remaining bytes cannot hold before allocating for them.
        (n.checked_mul(item_bytes)? <= self.rest.len()).then_some(n)
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
    pub fn u32s(&mut self) -> Option<Vec<u32>> {
        let n = self.len(4)?;
        Some(
            self.take(n * 4)?
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

/// Writes the gallery, stamped with the store's `generation` and the `model` that embedded
/// its faces, to `path` (through a temporary file, fsynced, then renamed: a crash never
/// leaves a half-written snapshot).
pub fn save(
    gallery: &Gallery,
    generation: u64,
    model: &str,
    path: &Path,
) -> Result<(), SnapshotError> {
    let tmp = path.with_extension("tmp");
    // Only the server's user may read it, like the database.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?
    };
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    w.put(MAGIC)?;
    w.u32(VERSION)?;
    w.u64(generation)?;
    w.bytes(model.as_bytes())?;
    let clients = gallery.all();
    w.u64(clients.len() as u64)?;
    for (client, index) in &clients {
        w.bytes(client.as_str().as_bytes())?;
        write_client(&mut w, &read(index))?;
    }
    let crc = w.crc.clone().finalize();
    w.out.write_all(&crc.to_le_bytes())?;
    let file = w.out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn write_client(w: &mut Writer, c: &ClientIndex) -> std::io::Result<()> {
    let c = c.parts();
    let codes: Vec<u8> = c.codes.iter().map(|&x| x as u8).collect();
    w.bytes(&codes)?;
    let scales: Vec<u32> = c.scales.iter().map(|s| s.to_bits()).collect();
    w.u32s(&scales)?;
    let faces: Vec<u8> = c.faces.iter().flat_map(|f| f.to_le_bytes()).collect();
    w.bytes(&faces)?;
    w.u32s(&c.owner)?;
    w.u32s(&c.next)?;
    w.u64(c.slots.len() as u64)?;
    for slot in c.slots.iter() {
        match slot {
            None => w.put(&[0])?,
            Some(p) => {
                w.put(&[1])?;
                w.put(&p.key)?;
                w.u32(p.first)?;
                w.u32s(&p.collections)?;
            }
        }
    }
    w.u64(c.collections.len() as u64)?;
    for coll in c.collections.iter() {
        w.bytes(coll.as_str().as_bytes())?;
    }
    write_graph(w, &c.graph)
}

fn write_graph(w: &mut Writer, g: &HnswParts<'_>) -> std::io::Result<()> {
    w.u32(g.params.m as u32)?;
    w.u32(g.params.ef_construction as u32)?;
    w.u32s(&g.base_links)?;
    w.u64(g.upper.len() as u64)?;
    for (row, layers) in &g.upper {
        w.u32(*row)?;
        w.u32(layers.len() as u32)?;
        for links in layers.iter() {
            w.u32s(links)?;
        }
    }
    let (entry, top) = g.entry.unwrap_or((NO_ENTRY, 0));
    w.u32(entry)?;
    w.u32(top as u32)?;
    let deleted: Vec<u8> = g.deleted.iter().map(|&d| u8::from(d)).collect();
    w.bytes(&deleted)?;
    w.u64(g.level_rng)
}

/// A snapshot as read: its generation, its model, the gallery.
pub type Saved = (u64, String, Gallery);

/// Reads a snapshot: `Ok(None)` when there is none, `Err(Damaged)` when it cannot be used.
/// The file is erased (zeros, then removed) whatever the outcome.
pub fn load_and_erase(path: &Path, params: IndexParams) -> Result<Option<Saved>, SnapshotError> {
    // A save interrupted by a crash leaves its temporary file: never used, always erased.
    erase(&path.with_extension("tmp"))?;
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    drop(file);
    erase(path)?;
    parse(&data, params).map(Some).ok_or(SnapshotError::Damaged)
}

/// Overwrites the file with zeros (fsynced), then removes it; nothing when there is none.
pub fn erase(path: &Path) -> std::io::Result<()> {
    let mut file = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    drop(file);
    std::fs::remove_file(path)
}

fn parse(data: &[u8], params: IndexParams) -> Option<Saved> {
    let (body, crc) = data.split_at(data.len().checked_sub(4)?);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let mut r = Reader { rest: body };
    if r.take(MAGIC.len())? != MAGIC || r.u32()? != VERSION {
        return None;
    }
    let generation = r.u64()?;
    let model = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    let gallery = Gallery::new(params);
    for _ in 0..r.u64()? {
        let client = ClientId::parse(std::str::from_utf8(r.bytes()?).ok()?).ok()?;
        gallery.insert_client(client, read_client(&mut r, params)?);
    }
    r.rest.is_empty().then_some((generation, model, gallery))
}

fn read_client(r: &mut Reader<'_>, params: IndexParams) -> Option<ClientIndex> {
    let codes: Vec<i8> = r.bytes()?.iter().map(|&b| b as i8).collect();
    let scales: Vec<f32> = r.u32s()?.into_iter().map(f32::from_bits).collect();
    let faces: Vec<u128> = r
        .bytes()?
        .chunks_exact(16)
        .map(|c| u128::from_le_bytes(c.try_into().unwrap_or([0; 16])))
        .collect();
    let owner = r.u32s()?;
    let next = r.u32s()?;
    let slot_count = r.len(1)?;
    let mut slots = Vec::with_capacity(slot_count);
    for _ in 0..slot_count {
        if r.take(1)?[0] == 0 {
            slots.push(None);
            continue;
        }
        slots.push(Some(PersonSlot {
            key: r.take(12)?.try_into().ok()?,
            first: r.u32()?,
            collections: r.u32s()?.into_boxed_slice(),
        }));
    }
    let mut collections = Vec::new();
    for _ in 0..r.len(4)? {
        collections.push(CollectionId::parse(std::str::from_utf8(r.bytes()?).ok()?).ok()?);
    }
    let parts = ClientIndexParts {
        codes: Cow::Owned(codes),
        scales: Cow::Owned(scales),
        faces: Cow::Owned(faces),
        owner: Cow::Owned(owner),
        next: Cow::Owned(next),
        slots: Cow::Owned(slots),
        collections: Cow::Owned(collections),
        graph: read_graph(r)?,
    };
    ClientIndex::from_parts(params, parts)
}

fn read_graph(r: &mut Reader<'_>) -> Option<HnswParts<'static>> {
    let params = HnswParams {
        m: r.u32()? as usize,
        ef_construction: r.u32()? as usize,
    };
    let base_links = r.u32s()?;
    let mut upper = Vec::new();
    for _ in 0..r.u64()? {
        let row = r.u32()?;
        let layers = (0..r.u32()?)
            .map(|_| r.u32s())
            .collect::<Option<Vec<_>>>()?;
        upper.push((row, Cow::Owned(layers)));
    }
    let (entry, top) = (r.u32()?, r.u32()? as usize);
    let deleted: Vec<bool> = r.bytes()?.iter().map(|&b| b != 0).collect();
    Some(HnswParts {
        params,
        base_links: Cow::Owned(base_links),
        upper,
        entry: (entry != NO_ENTRY).then_some((entry, top)),
        deleted: Cow::Owned(deleted),
        level_rng: r.u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{FaceId, PersonId, EMBEDDING_DIM};

    fn unit(seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let v: Vec<f32> = (0..EMBEDDING_DIM)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f32 / (1u64 << 53) as f32 - 0.5
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.into_iter().map(|a| a / n).collect()
    }

    #[test]
    fn a_gallery_read_back_saves_the_same_bytes() {
        let params = IndexParams {
            graph_min_faces: 50,
            ..IndexParams::default()
        };
        let gallery = Gallery::new(params);
        let client = ClientId::parse("acme").expect("client");
        let coll = CollectionId::new();
        let persons: Vec<PersonId> = (0..300).map(|_| PersonId::new()).collect();
        for (i, person) in persons.iter().enumerate() {
            let v: Vec<Vec<f32>> = (0..1 + i % 2).map(|j| unit((i * 2 + j) as u64)).collect();
            let faces: Vec<(FaceId, &[f32])> = v
                .iter()
                .map(|v| (FaceId::new_random(), v.as_slice()))
                .collect();
            let cols = if i % 3 == 0 {
                vec![coll.clone()]
            } else {
                vec![]
            };
            gallery.put_person(&client, person, &cols, &faces);
        }
        while gallery.build_graphs(1000) {}
        // Tombstones, free person slots, and rows not yet in the graph.
        for person in persons.iter().step_by(5) {
            gallery.remove_person(&client, person);
        }
        let late = unit(9999);
        gallery.put_person(
            &client,
            &PersonId::new(),
            &[],
            &[(FaceId::new_random(), &late)],
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let (first, second) = (dir.path().join("a"), dir.path().join("b"));
        save(&gallery, 42, "model-a", &first).expect("save");
        let bytes = std::fs::read(&first).expect("read");
        let (generation, model, back) = load_and_erase(&first, params)
            .expect("load")
            .expect("found");
        assert_eq!(generation, 42);
        assert_eq!(back.graph_backlog(), gallery.graph_backlog());
        assert_eq!(model, "model-a");
        save(&back, 42, "model-a", &second).expect("save");
        assert!(std::fs::read(&second).expect("read") == bytes);
        assert!(load_and_erase(&first, params).expect("load").is_none());
    }
}
