//! The whole gallery in one file, written at a clean shutdown and read once at the next
//! start, so that a large gallery (and its graph, which takes minutes to build) is back in
//! seconds. The file records the store's generation: if the store changed since, or the
//! file is damaged (CRC-32 over everything), it is ignored and the gallery rebuilt from the
//! store, which stays the source of truth.
//!
//! The file holds int8 codes of faces, which are biometric data, so it must not outlive the
//! persons in it: the loader overwrites it with zeros and removes it as soon as it is read.
//! While the server runs, no snapshot exists; a crash leaves none behind.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use store::{ClientId, CollectionId, EMBEDDING_DIM};

use crate::client::{ClientIndex, IndexParams, PersonSlot, NONE};
use crate::gallery::{read, Gallery};
use crate::hnsw::Hnsw;
use crate::quantized::CodeMatrix;

const MAGIC: &[u8; 8] = b"VISAGEIX";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot is damaged or from another version")]
    Damaged,
}

/// Writes little-endian values and keeps a running CRC-32 of them.
pub struct Writer {
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
pub struct Reader<'a> {
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

/// Writes the gallery, stamped with the store's `generation`, to `path` (through a
/// temporary file, fsynced, then renamed: a crash never leaves a half-written snapshot).
pub fn save(gallery: &Gallery, generation: u64, path: &Path) -> Result<(), SnapshotError> {
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
    let codes: Vec<u8> = c.codes.all_codes().iter().map(|&x| x as u8).collect();
    w.bytes(&codes)?;
    let scales: Vec<u32> = c.codes.all_scales().iter().map(|s| s.to_bits()).collect();
    w.u32s(&scales)?;
    let faces: Vec<u8> = c.faces.iter().flat_map(|f| f.to_le_bytes()).collect();
    w.bytes(&faces)?;
    w.u32s(&c.owner)?;
    w.u32s(&c.next)?;
    w.u64(c.slots.len() as u64)?;
    for slot in &c.slots {
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
    for coll in &c.collections {
        w.bytes(coll.as_str().as_bytes())?;
    }
    c.graph.write_to(w)
}

/// Reads a snapshot: `Ok(None)` when there is none, `Err(Damaged)` when it cannot be used.
/// The file is erased (zeros, then removed) whatever the outcome.
pub fn load_and_erase(
    path: &Path,
    params: IndexParams,
) -> Result<Option<(u64, Gallery)>, SnapshotError> {
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

/// Overwrites the file with zeros (fsynced), then removes it.
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

fn parse(data: &[u8], params: IndexParams) -> Option<(u64, Gallery)> {
    let (body, crc) = data.split_at(data.len().checked_sub(4)?);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let mut r = Reader { rest: body };
    if r.take(MAGIC.len())? != MAGIC || r.u32()? != VERSION {
        return None;
    }
    let generation = r.u64()?;
    let gallery = Gallery::new(params);
    for _ in 0..r.u64()? {
        let client = ClientId::parse(std::str::from_utf8(r.bytes()?).ok()?).ok()?;
        gallery.insert_client(client, read_client(&mut r, params)?);
    }
    r.rest.is_empty().then_some((generation, gallery))
}

fn read_client(r: &mut Reader<'_>, params: IndexParams) -> Option<ClientIndex> {
    let codes: Vec<i8> = r.bytes()?.iter().map(|&b| b as i8).collect();
    let scales: Vec<f32> = r.u32s()?.into_iter().map(f32::from_bits).collect();
    let codes = CodeMatrix::from_parts(codes, scales)?;
    let faces: Vec<u128> = r
        .bytes()?
        .chunks_exact(16)
        .map(|c| u128::from_le_bytes(c.try_into().unwrap_or([0; 16])))
        .collect();
    let owner = r.u32s()?;
    let next = r.u32s()?;
    let rows = codes.len();
    if faces.len() != rows || owner.len() != rows || next.len() != rows {
        return None;
    }
    let slot_count = r.len(1)?;
    let mut slots = Vec::with_capacity(slot_count);
    let mut free_slots = Vec::new();
    let mut by_person = HashMap::with_capacity(slot_count);
    for i in 0..slot_count {
        if r.take(1)?[0] == 0 {
            slots.push(None);
            free_slots.push(i as u32);
            continue;
        }
        let key: [u8; 12] = r.take(12)?.try_into().ok()?;
        let first = r.u32()?;
        let collections = r.u32s()?.into_boxed_slice();
        if first as usize >= rows {
            return None;
        }
        by_person.insert(key, i as u32);
        slots.push(Some(PersonSlot {
            key,
            first,
            collections,
        }));
    }
    free_slots.reverse();
    let mut collections = Vec::new();
    for _ in 0..r.len(4)? {
        collections.push(CollectionId::parse(std::str::from_utf8(r.bytes()?).ok()?).ok()?);
    }
    let graph = Hnsw::read_from(r)?;
    if graph.len() > rows || slots.len() != by_person.len() + free_slots.len() {
        return None;
    }
    // Every reference must land inside the arrays before the index is used.
    let owner_ok = owner
        .iter()
        .all(|&o| o == NONE || (o as usize) < slots.len());
    let next_ok = next.iter().all(|&n| n == NONE || (n as usize) < rows);
    let colls_ok = slots.iter().flatten().all(|p| {
        p.collections
            .iter()
            .all(|&c| (c as usize) < collections.len())
    });
    if !(owner_ok && next_ok && colls_ok) {
        return None;
    }
    let mut index = ClientIndex::new(params);
    let mut collection_faces = vec![0usize; collections.len()];
    let mut live = 0;
    for &o in &owner {
        if let Some(p) = slots.get(o as usize).and_then(Option::as_ref) {
            live += 1;
            for &c in p.collections.iter() {
                collection_faces[c as usize] += 1;
            }
        }
    }
    index.collection_number = collections
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i as u32))
        .collect();
    index.codes = codes;
    index.faces = faces;
    index.owner = owner;
    index.next = next;
    index.live = live;
    index.slots = slots;
    index.free_slots = free_slots;
    index.by_person = by_person;
    index.collections = collections;
    index.collection_faces = collection_faces;
    // A graph built with other parameters is rebuilt rather than mixed.
    index.graph = if graph.params() == params.hnsw {
        graph
    } else {
        Hnsw::new(params.hnsw)
    };
    debug_assert!(index.codes.all_codes().len() == rows * EMBEDDING_DIM);
    Some(index)
}
