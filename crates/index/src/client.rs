//! One client's faces: int8 codes for every row, who owns each row, and (for large
//! galleries) an HNSW graph over a prefix of the rows. Rows are append-only: a removed face
//! leaves a tombstone (never returned) until enough of them pile up to compact.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use rayon::prelude::*;
use store::CollectionId;

use crate::hnsw::{similarity, Hnsw, HnswParams, HnswParts};
use crate::quantized::{CodeMatrix, Codes, TopK};
use crate::sketch::{SketchMatrix, SketchProbe};

/// Exact scans at least this long are split over all cores.
const PARALLEL_SCAN_MIN_ROWS: usize = 65_536;

/// Rows whose sketches the two-stage scan reads in one go.
const SKETCH_BATCH: usize = 256;

/// Survivors of the sketch scan whose codes are requested ahead of their comparison.
const PREFETCH_AHEAD: usize = 8;

/// `owner` of a removed row; `next` at the end of a person's rows.
const NONE: u32 = u32::MAX;

/// How wide a FAST graph walk is (HNSW's `ef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EfSearch {
    /// [`EfSearch::BASE`], widened on a large graph to [`EfSearch::PER_MILLION`] per 10^6 rows
    /// (at most [`EfSearch::MAX_AUTO`]): a walk must be wider on a larger graph to find the
    /// same share of best matches. On the synthetic gallery (docs/search-index.md) 256 found
    /// the exact best match of every query above threshold at 10^5 and 3x10^5 faces, but of
    /// 0.94 of them at 10^6, where 640 found 0.998.
    Auto,
    /// This width whatever the graph's size (the operator's `--ef-search`).
    Fixed(usize),
}

impl EfSearch {
    pub const BASE: usize = 256;
    pub const PER_MILLION: usize = 640;
    pub const MAX_AUTO: usize = 1000;

    /// The width of a walk on a graph of `rows` rows.
    pub fn for_rows(self, rows: usize) -> usize {
        match self {
            EfSearch::Fixed(ef) => ef.max(1),
            EfSearch::Auto => {
                let scaled = (rows as u128 * Self::PER_MILLION as u128 / 1_000_000) as usize;
                scaled.clamp(Self::BASE, Self::MAX_AUTO)
            }
        }
    }
}

/// How a client's gallery is searched and when its graph is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexParams {
    pub hnsw: HnswParams,
    /// FAST search uses the graph once this many live faces are in scope; below it, FAST is
    /// the exact scan too (a graph buys nothing on a small gallery).
    pub graph_min_faces: usize,
    /// Candidates the graph collects per search (HNSW's `ef`), at least the candidates asked.
    pub ef_search: EfSearch,
    /// Values per embedding (the running model's; 1..=[`crate::MAX_DIMENSION`]). Faces of
    /// another length are never indexed and probes of another length find nothing.
    pub dimension: usize,
}

impl Default for IndexParams {
    fn default() -> Self {
        IndexParams {
            hnsw: HnswParams::default(),
            graph_min_faces: 20_000,
            ef_search: EfSearch::Auto,
            dimension: store::EMBEDDING_DIM,
        }
    }
}

/// How the exact scan compares the faces in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExactScan {
    /// The int8 codes of every face (128 bytes a face at 128-d).
    Int8,
    /// The 2-bit sketch of every face first (32 bytes at 128-d), the int8 codes of only
    /// the faces whose sketch estimate could still reach the best (see `sketch`).
    #[default]
    TwoStage,
}

/// Which engine answers a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every face in scope is compared (int8 scan; the caller re-scores exactly).
    Exact,
    /// The graph, where it is built and the scope is large; exact otherwise.
    Fast,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PersonSlot {
    pub key: [u8; 12],
    /// First row of this person's faces; the rest follow through `next`.
    pub first: u32,
    /// Interned collection numbers.
    pub collections: Box<[u32]>,
}

pub struct ClientIndex {
    params: IndexParams,
    codes: CodeMatrix,
    /// The first stage of the exact scan, one sketch per row of `codes`.
    sketches: SketchMatrix,
    scan: ExactScan,
    faces: Vec<u128>,
    owner: Vec<u32>,
    next: Vec<u32>,
    live: usize,
    slots: Vec<Option<PersonSlot>>,
    free_slots: Vec<u32>,
    by_person: HashMap<[u8; 12], u32>,
    collections: Vec<CollectionId>,
    collection_number: HashMap<CollectionId, u32>,
    /// Live faces per interned collection.
    collection_faces: Vec<usize>,
    graph: Hnsw,
}

/// What defines a client's index, as plain data: what [`ClientIndex::parts`] lends and
/// [`ClientIndex::from_parts`] checks and takes back (the rest is derived from it).
pub struct ClientIndexParts<'a> {
    /// `IndexParams::dimension` int8 codes per row.
    pub codes: Cow<'a, [i8]>,
    /// One code scale per row.
    pub scales: Cow<'a, [f32]>,
    /// The face id of each row.
    pub faces: Cow<'a, [u128]>,
    /// The person slot owning each row, `u32::MAX` for a removed row.
    pub owner: Cow<'a, [u32]>,
    /// The person's next row after each row, `u32::MAX` after their last.
    pub next: Cow<'a, [u32]>,
    /// Person slots, `None` for a free one.
    pub slots: Cow<'a, [Option<PersonSlot>]>,
    /// The interned collections, by number.
    pub collections: Cow<'a, [CollectionId]>,
    pub graph: HnswParts<'a>,
}

/// Candidates for re-scoring: `(int8 cosine estimate, row)`, best first.
pub struct Candidates {
    pub rows: Vec<(f32, u32)>,
    /// Live faces in scope (what a full scan compares).
    pub faces_in_scope: usize,
    pub used_graph: bool,
}

impl ClientIndex {
    pub fn new(params: IndexParams) -> Self {
        ClientIndex {
            params,
            codes: CodeMatrix::new(params.dimension),
            sketches: SketchMatrix::new(params.dimension),
            scan: ExactScan::default(),
            faces: Vec::new(),
            owner: Vec::new(),
            next: Vec::new(),
            live: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_person: HashMap::new(),
            collections: Vec::new(),
            collection_number: HashMap::new(),
            collection_faces: Vec::new(),
            graph: Hnsw::new(params.hnsw),
        }
    }

    /// The index as plain data, borrowed (what the snapshot writes).
    pub fn parts(&self) -> ClientIndexParts<'_> {
        ClientIndexParts {
            codes: Cow::Borrowed(self.codes.all_codes()),
            scales: Cow::Borrowed(self.codes.all_scales()),
            faces: Cow::Borrowed(&self.faces),
            owner: Cow::Borrowed(&self.owner),
            next: Cow::Borrowed(&self.next),
            slots: Cow::Borrowed(&self.slots),
            collections: Cow::Borrowed(&self.collections),
            graph: self.graph.parts(),
        }
    }

    /// An index from [`ClientIndex::parts`] (as read back from a snapshot); `None` unless
    /// every row, slot and collection reference lands inside the arrays. A graph built with
    /// other parameters than `params.hnsw` is dropped, to be rebuilt rather than mixed.
    pub fn from_parts(params: IndexParams, parts: ClientIndexParts<'_>) -> Option<ClientIndex> {
        let codes = CodeMatrix::from_parts(
            params.dimension,
            parts.codes.into_owned(),
            parts.scales.into_owned(),
        )?;
        let rows = codes.len();
        let (faces, owner, next) = (parts.faces, parts.owner, parts.next);
        if faces.len() != rows || owner.len() != rows || next.len() != rows {
            return None;
        }
        let slots = parts.slots.into_owned();
        let mut free_slots = Vec::new();
        let mut by_person = HashMap::with_capacity(slots.len());
        for (i, slot) in slots.iter().enumerate() {
            match slot {
                None => free_slots.push(i as u32),
                Some(p) if p.first as usize >= rows => return None,
                Some(p) => {
                    by_person.insert(p.key, i as u32);
                }
            }
        }
        // `put` pops from the end: the lowest free slot is reused first.
        free_slots.reverse();
        let collections = parts.collections.into_owned();
        let graph = Hnsw::from_parts(parts.graph)?;
        if graph.len() > rows || slots.len() != by_person.len() + free_slots.len() {
            return None;
        }
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
        let mut collection_faces = vec![0usize; collections.len()];
        let mut live = 0;
        for &o in owner.iter() {
            if let Some(p) = slots.get(o as usize).and_then(Option::as_ref) {
                live += 1;
                for &c in p.collections.iter() {
                    collection_faces[c as usize] += 1;
                }
            }
        }
        let collection_number = collections
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u32))
            .collect();
        let graph = if graph.params() == params.hnsw {
            graph
        } else {
            Hnsw::new(params.hnsw)
        };
        Some(ClientIndex {
            params,
            sketches: SketchMatrix::of(&codes, params.dimension),
            scan: ExactScan::default(),
            codes,
            faces: faces.into_owned(),
            owner: owner.into_owned(),
            next: next.into_owned(),
            live,
            slots,
            free_slots,
            by_person,
            collections,
            collection_number,
            collection_faces,
            graph,
        })
    }

    /// Changes how wide FAST searches are.
    pub fn set_ef_search(&mut self, ef: EfSearch) {
        self.params.ef_search = ef;
    }

    /// Changes how the exact scan compares faces (benchmarks compare both).
    pub fn set_exact_scan(&mut self, scan: ExactScan) {
        self.scan = scan;
    }

    pub fn live_faces(&self) -> usize {
        self.live
    }

    pub fn rows(&self) -> usize {
        self.owner.len()
    }

    pub fn face_of(&self, row: u32) -> u128 {
        self.faces[row as usize]
    }

    pub fn person_of(&self, row: u32) -> Option<[u8; 12]> {
        let slot = *self.owner.get(row as usize)?;
        Some(self.slots.get(slot as usize)?.as_ref()?.key)
    }

    /// Adds a person's faces (`(face id, unit embedding)`), replacing what they had.
    pub fn put(&mut self, key: [u8; 12], collections: &[CollectionId], faces: &[(u128, &[f32])]) {
        self.remove(&key);
        if faces.is_empty() {
            return;
        }
        let numbers: Box<[u32]> = collections.iter().map(|c| self.intern(c)).collect();
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let mut first = NONE;
        for (face, v) in faces.iter().rev() {
            let row = self.codes.push(v);
            self.sketches
                .push(self.codes.row(row), self.codes.scale_of(row));
            self.faces.push(*face);
            self.owner.push(slot);
            self.next.push(first);
            first = (self.owner.len() - 1) as u32;
        }
        for &c in numbers.iter() {
            self.collection_faces[c as usize] += faces.len();
        }
        self.live += faces.len();
        self.by_person.insert(key, slot);
        self.slots[slot as usize] = Some(PersonSlot {
            key,
            first,
            collections: numbers,
        });
    }

    /// Tombstones a person's faces; `false` when they were not indexed.
    pub fn remove(&mut self, key: &[u8; 12]) -> bool {
        let Some(slot) = self.by_person.remove(key) else {
            return false;
        };
        let Some(person) = self.slots[slot as usize].take() else {
            return false;
        };
        self.free_slots.push(slot);
        let mut row = person.first;
        let mut count = 0;
        while row != NONE {
            self.owner[row as usize] = NONE;
            if (row as usize) < self.graph.len() {
                self.graph.delete(row);
            }
            count += 1;
            row = self.next[row as usize];
        }
        for &c in person.collections.iter() {
            self.collection_faces[c as usize] -= count;
        }
        self.live -= count;
        let dead = self.rows() - self.live;
        if dead > 1024 && dead > self.rows() / 4 {
            self.compact();
        }
        true
    }

    /// Persons indexed in `collection`.
    pub fn members(&self, collection: &CollectionId) -> Vec<[u8; 12]> {
        let Some(&c) = self.collection_number.get(collection) else {
            return Vec::new();
        };
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.collections.contains(&c))
            .map(|s| s.key)
            .collect()
    }

    /// Rows not yet in the graph, when the gallery is large enough to want one.
    pub fn graph_backlog(&self) -> usize {
        if self.live < self.params.graph_min_faces {
            0
        } else {
            self.rows() - self.graph.len()
        }
    }

    /// Adds up to `max_rows` pending rows to the graph on the current rayon pool's threads
    /// (removed rows go in as tombstones so that graph rows stay equal to gallery rows).
    pub fn extend_graph(&mut self, max_rows: usize) {
        let (start, end) = (
            self.graph.len(),
            self.rows().min(self.graph.len() + max_rows),
        );
        self.graph.insert_rows(&self.codes, end - start);
        for row in start..end {
            if self.owner[row] == NONE {
                self.graph.delete(row as u32);
            }
        }
    }

    /// Up to `limit` candidate rows for `probe`, in `collection` when given, with an int8
    /// estimate of at least `min_estimate`.
    pub fn candidates(
        &self,
        probe: &[f32],
        collection: Option<&CollectionId>,
        mode: Mode,
        limit: usize,
        min_estimate: f32,
    ) -> Candidates {
        let scope = match collection {
            None => None,
            Some(c) => match self.collection_number.get(c) {
                Some(&n) => Some(n),
                None => {
                    return Candidates {
                        rows: Vec::new(),
                        faces_in_scope: 0,
                        used_graph: false,
                    }
                }
            },
        };
        let faces_in_scope = scope.map_or(self.live, |c| self.collection_faces[c as usize]);
        let keep = |row: u32| {
            let slot = self.owner[row as usize];
            if slot == NONE {
                return false;
            }
            match scope {
                None => true,
                Some(c) => self.slots[slot as usize]
                    .as_ref()
                    .is_some_and(|p| p.collections.contains(&c)),
            }
        };
        let q = Codes::quantise(probe);
        // A filtered graph walk degrades when the filter keeps few nodes: only use the
        // graph when the scope is large and a sizeable share of the client's faces.
        let use_graph = mode == Mode::Fast
            && faces_in_scope >= self.params.graph_min_faces
            && faces_in_scope * 4 >= self.live
            && !self.graph.is_empty();
        let mut top = TopK::new(limit);
        let scan_from = if use_graph {
            let ef = self.params.ef_search.for_rows(self.graph.len()).max(limit);
            self.graph
                .search_each(&self.codes, &q.codes, q.scale, ef, keep, |s, row| {
                    top.push(s, row)
                });
            self.graph.len()
        } else {
            0
        };
        let tail = scan_from..self.rows();
        // The sketches' probe (a rotation of the query) only for rows to scan in two stages:
        // a FAST search whose graph covers every row needs none.
        let probe = (self.scan == ExactScan::TwoStage && !tail.is_empty())
            .then(|| self.sketches.probe(&q.codes, q.scale));
        let scan = |rows: Range<usize>| match &probe {
            Some(probe) => self.scan_two_stage(rows, &q, probe, limit, min_estimate, &keep),
            None => self.scan_int8(rows, &q, limit, &keep),
        };
        if tail.len() >= PARALLEL_SCAN_MIN_ROWS {
            // One query's scan on every core: a 10^6-face ACCURATE search in ~1/cores of
            // the time (the total work is the same, so throughput under load is too).
            let parts = rayon::current_num_threads() * 4;
            let step = tail.len().div_ceil(parts);
            let found = (0..parts)
                .into_par_iter()
                .map(|i| {
                    let start = tail.start + i * step;
                    scan(start.min(tail.end)..(start + step).min(tail.end))
                })
                .reduce(|| TopK::new(limit), TopK::merge);
            top = top.merge(found);
        } else {
            top = top.merge(scan(tail));
        }
        let mut rows = top.into_sorted();
        rows.retain(|(s, _)| *s >= min_estimate);
        Candidates {
            rows,
            faces_in_scope,
            used_graph: use_graph,
        }
    }

    /// The `limit` best int8 similarities among `rows` that `keep` accepts.
    fn scan_int8(
        &self,
        rows: Range<usize>,
        q: &Codes,
        limit: usize,
        keep: &impl Fn(u32) -> bool,
    ) -> TopK {
        let mut top = TopK::new(limit);
        for row in rows.map(|r| r as u32).filter(|&r| keep(r)) {
            top.push(similarity(&self.codes, &q.codes, q.scale, row), row);
        }
        top
    }

    /// What [`ClientIndex::scan_int8`] finds, reading a quarter of the bytes: every face's
    /// sketch gives an upper bound of its int8 similarity (estimate plus margin); the faces
    /// with the best lower bounds are compared on their codes at once, and the k-th int8
    /// similarity found so far (never above the true k-th) is the bar: a face whose upper
    /// bound is below it cannot be in the top k. The other survivors are compared after the
    /// scan, those still at or above the k-th found by then. So a face of the int8 top k is
    /// missed only if its estimate is more than its margin too low (EPSILON standard
    /// deviations, see `sketch`). Faces whose upper bound is below `min_estimate` cannot be
    /// candidates either.
    fn scan_two_stage(
        &self,
        rows: Range<usize>,
        q: &Codes,
        probe: &SketchProbe,
        limit: usize,
        min_estimate: f32,
        keep: &impl Fn(u32) -> bool,
    ) -> TopK {
        if limit == 0 {
            return TopK::new(0);
        }
        let mut lower = TopK::new(limit);
        let mut top = TopK::new(limit);
        let mut survivors: Vec<(u32, f32)> = Vec::new();
        let mut bar = min_estimate;
        let mut weighted = [0i32; SKETCH_BATCH];
        let mut uppers = [0f32; SKETCH_BATCH];
        let mut start = rows.start;
        while start < rows.end {
            let end = rows.end.min(start + SKETCH_BATCH);
            let (weighted, uppers) = (&mut weighted[..end - start], &mut uppers[..end - start]);
            self.sketches.weighted_levels(probe, start..end, weighted);
            self.sketches.upper_bounds(probe, start, weighted, uppers);
            for (row, &upper) in (start as u32..end as u32).zip(uppers.iter()) {
                if upper < bar || !keep(row) {
                    continue;
                }
                let low = upper - 2.0 * self.sketches.margin(probe, row);
                if low > lower.floor() {
                    // Among the best so far: compared on its codes at once, which raises
                    // the bar to the k-th int8 similarity found (never above the true k-th).
                    lower.push(low, row);
                    top.push(similarity(&self.codes, &q.codes, q.scale, row), row);
                    bar = top.floor().max(min_estimate);
                } else {
                    survivors.push((row, upper));
                }
            }
            start = end;
        }
        // In row order, the codes a few survivors ahead already on their way to the cache.
        survivors.retain(|&(_, upper)| upper >= bar);
        for i in 0..survivors.len() {
            if let Some(&(ahead, _)) = survivors.get(i + PREFETCH_AHEAD) {
                self.codes.prefetch(ahead);
            }
            let (row, upper) = survivors[i];
            if upper >= top.floor() {
                top.push(similarity(&self.codes, &q.codes, q.scale, row), row);
            }
        }
        top
    }

    fn intern(&mut self, c: &CollectionId) -> u32 {
        if let Some(&n) = self.collection_number.get(c) {
            return n;
        }
        let n = self.collections.len() as u32;
        self.collections.push(c.clone());
        self.collection_number.insert(c.clone(), n);
        self.collection_faces.push(0);
        n
    }

    /// Drops tombstoned rows. Row numbers change, so the graph is dropped too and rebuilt
    /// by [`ClientIndex::extend_graph`] (FAST search is exact meanwhile).
    fn compact(&mut self) {
        let mut renumber = vec![NONE; self.rows()];
        let mut codes = CodeMatrix::new(self.params.dimension);
        let mut faces = Vec::with_capacity(self.live);
        let mut owner = Vec::with_capacity(self.live);
        for (row, &slot) in self.owner.iter().enumerate() {
            if slot == NONE {
                continue;
            }
            renumber[row] = owner.len() as u32;
            codes.push_codes(self.codes.row(row as u32), self.codes.scale_of(row as u32));
            faces.push(self.faces[row]);
            owner.push(slot);
        }
        let next = self
            .owner
            .iter()
            .zip(&self.next)
            .filter(|(&slot, _)| slot != NONE)
            .map(|(_, &n)| {
                if n == NONE {
                    NONE
                } else {
                    renumber[n as usize]
                }
            })
            .collect();
        for p in self.slots.iter_mut().flatten() {
            p.first = renumber[p.first as usize];
        }
        self.sketches = SketchMatrix::of(&codes, self.params.dimension);
        self.codes = codes;
        self.faces = faces;
        self.owner = owner;
        self.next = next;
        self.graph = Hnsw::new(self.params.hnsw);
    }

    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.sketches.shrink_to_fit();
        self.faces.shrink_to_fit();
        self.owner.shrink_to_fit();
        self.next.shrink_to_fit();
        self.slots.shrink_to_fit();
        self.by_person.shrink_to_fit();
        self.graph.shrink_to_fit();
    }

    /// Bytes of RAM held per live face (codes, ids, links, person slots), for reports.
    pub fn memory_bytes(&self) -> usize {
        let rows = self.codes.memory_bytes()
            + self.sketches.memory_bytes()
            + self.faces.capacity() * 16
            + self.owner.capacity() * 4
            + self.next.capacity() * 4;
        let persons = self.slots.capacity() * std::mem::size_of::<Option<PersonSlot>>()
            + self
                .slots
                .iter()
                .flatten()
                .map(|p| p.collections.len() * 4)
                .sum::<usize>()
            // hashbrown: key + value + one control byte per bucket, at most 7/8 full.
            + self.by_person.capacity() * 8 / 7 * (12 + 4 + 1);
        rows + persons + self.graph.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantized::{dot_codes, dot_f32};
    use store::EMBEDDING_DIM;

    #[test]
    fn the_automatic_walk_widens_with_the_graph_and_a_fixed_one_does_not() {
        let auto = EfSearch::Auto;
        assert_eq!(auto.for_rows(0), 256);
        assert_eq!(auto.for_rows(300_000), 256);
        assert_eq!(auto.for_rows(400_000), 256);
        assert_eq!(auto.for_rows(500_000), 320);
        assert_eq!(auto.for_rows(1_000_000), 640);
        assert_eq!(auto.for_rows(2_000_000), 1000);
        assert_eq!(auto.for_rows(usize::MAX), 1000);
        assert_eq!(EfSearch::Fixed(100).for_rows(1_000_000), 100);
        assert_eq!(EfSearch::Fixed(0).for_rows(10), 1);
    }

    pub(crate) fn unit(seed: u64) -> Vec<f32> {
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
    fn put_remove_and_compact_keep_rows_consistent() {
        let mut idx = ClientIndex::new(IndexParams::default());
        let coll = CollectionId::new();
        for p in 0..3000u64 {
            let (a, b) = (unit(p * 2), unit(p * 2 + 1));
            let cols = if p % 3 == 0 {
                vec![coll.clone()]
            } else {
                vec![]
            };
            idx.put(
                key(p),
                &cols,
                &[(p as u128 * 2, &a), (p as u128 * 2 + 1, &b)],
            );
        }
        assert_eq!(idx.live_faces(), 6000);
        assert_eq!(idx.collection_faces[0], 2000);
        // Remove two thirds: compaction runs on the way.
        for p in (0..3000u64).filter(|p| p % 3 != 1) {
            assert!(idx.remove(&key(p)));
        }
        assert!(idx.rows() < 6000, "compacted");
        assert_eq!(idx.live_faces(), 2000);
        assert_eq!(idx.collection_faces[0], 0);
        for p in (0..3000u64).filter(|p| p % 3 == 1) {
            let found = idx.candidates(&unit(p * 2 + 1), None, Mode::Exact, 1, -1.0);
            let row = found.rows[0].1;
            assert_eq!(idx.face_of(row), p as u128 * 2 + 1);
            assert_eq!(idx.person_of(row), Some(key(p)));
        }
    }

    #[test]
    fn candidates_rescored_exactly_equal_a_full_f32_scan() {
        let mut idx = ClientIndex::new(IndexParams::default());
        let coll = CollectionId::new();
        let vectors: Vec<Vec<f32>> = (0..5000).map(|i| unit(i + 10_000)).collect();
        for (p, v) in vectors.iter().enumerate() {
            let cols = if p % 2 == 0 {
                vec![coll.clone()]
            } else {
                vec![]
            };
            idx.put(key(p as u64), &cols, &[(p as u128, v)]);
        }
        for probe in (0..50).map(|i| unit(i + 99_000)) {
            for scope in [None, Some(&coll)] {
                let in_scope = |face: usize| scope.is_none() || face.is_multiple_of(2);
                let exact = |face: usize| (dot_f32(&vectors[face], &probe), face);
                let mut full: Vec<(f32, usize)> = (0..vectors.len())
                    .filter(|&f| in_scope(f))
                    .map(exact)
                    .collect();
                full.sort_by(|a, b| b.0.total_cmp(&a.0));
                let found = idx.candidates(&probe, scope, Mode::Exact, 64, -1.0).rows;
                let mut got: Vec<(f32, usize)> = found
                    .iter()
                    .map(|&(_, row)| exact(idx.face_of(row) as usize))
                    .collect();
                assert!(
                    got.iter().all(|&(_, f)| in_scope(f)),
                    "the filter skips rows"
                );
                got.sort_by(|a, b| b.0.total_cmp(&a.0));
                assert_eq!(&got[..10], &full[..10]);
            }
        }
    }

    #[test]
    fn a_long_exact_scan_split_over_cores_equals_one_pass() {
        let mut idx = ClientIndex::new(IndexParams::default());
        let n = PARALLEL_SCAN_MIN_ROWS as u64 + 5000;
        let vectors: Vec<Vec<f32>> = (0..n).map(unit).collect();
        for (p, v) in vectors.iter().enumerate() {
            idx.put(key(p as u64), &[], &[(p as u128, v)]);
        }
        for probe in [3u64, 70_001, 123_456_789] {
            let probe = unit(probe);
            let q = Codes::quantise(&probe);
            let mut want: Vec<(f32, u32)> = (0..n as usize)
                .map(|r| {
                    let c = &idx.codes.all_codes()[r * EMBEDDING_DIM..(r + 1) * EMBEDDING_DIM];
                    let s = dot_codes(c, &q.codes) as f32 * idx.codes.scale_of(r as u32) * q.scale;
                    (s, r as u32)
                })
                .collect();
            want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let got = idx.candidates(&probe, None, Mode::Exact, 64, -1.0).rows;
            let scores = |v: &[(f32, u32)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
            assert_eq!(scores(&got), scores(&want[..64]));
        }
    }

    #[test]
    fn parts_round_trip_and_stray_references_are_refused() {
        let params = IndexParams {
            graph_min_faces: 10,
            ..IndexParams::default()
        };
        let mut idx = ClientIndex::new(params);
        for p in 0..40u64 {
            let v = unit(p);
            idx.put(key(p), &[CollectionId::new()], &[(p as u128, &v)]);
        }
        idx.extend_graph(usize::MAX);
        idx.remove(&key(3));
        let back = ClientIndex::from_parts(params, idx.parts()).expect("valid parts");
        assert_eq!(back.live_faces(), 39);
        assert_eq!(back.collection_faces, idx.collection_faces);
        assert_eq!(back.graph_backlog(), 0);
        let probe = unit(7);
        let rows = |i: &ClientIndex| i.candidates(&probe, None, Mode::Fast, 5, -1.0).rows;
        assert_eq!(rows(&back), rows(&idx));

        let mut bad = idx.parts();
        bad.owner.to_mut()[0] = 1000;
        assert!(ClientIndex::from_parts(params, bad).is_none());
        let mut bad = idx.parts();
        bad.graph.base_links.to_mut()[0] = 1000;
        assert!(ClientIndex::from_parts(params, bad).is_none());
        let mut bad = idx.parts();
        bad.next.to_mut().pop();
        assert!(ClientIndex::from_parts(params, bad).is_none());
    }

    /// Unit vectors of `dim` values: independent ones, or `clusters` tight groups (each
    /// face near one of a few centres, so that many faces score close to the best).
    fn gallery_vectors(dim: usize, n: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..clusters.max(1))
            .map(|_| (0..dim).map(|_| next()).collect())
            .collect();
        (0..n)
            .map(|i| {
                let centre = &centres[i % centres.len()];
                let spread = if clusters == 0 { 1.0 } else { 0.3 };
                let v: Vec<f32> = centre
                    .iter()
                    .map(|c| if clusters == 0 { 0.0 } else { *c } + spread * next())
                    .collect();
                let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-9);
                v.into_iter().map(|a| a / norm).collect()
            })
            .collect()
    }

    /// The two-stage scan finds exactly what the plain int8 scan finds (same similarities in
    /// the same order, same faces above the k-th), on independent and clustered faces of
    /// several lengths, after deletions, in a collection and with a minimum estimate.
    #[test]
    fn the_two_stage_scan_equals_the_int8_scan() {
        for (dim, clusters) in [
            (1, 0),
            (3, 4),
            (16, 0),
            (100, 8),
            (128, 0),
            (128, 20),
            (300, 5),
            (1024, 0),
        ] {
            let params = IndexParams {
                dimension: dim,
                ..IndexParams::default()
            };
            let mut idx = ClientIndex::new(params);
            let coll = CollectionId::new();
            let n = if dim >= 300 { 3000 } else { 6000 };
            let vectors = gallery_vectors(dim, n, clusters, dim as u64 * 31 + clusters as u64);
            for (p, v) in vectors.iter().enumerate() {
                let cols = if p % 3 == 0 {
                    vec![coll.clone()]
                } else {
                    vec![]
                };
                idx.put(key(p as u64), &cols, &[(p as u128, v)]);
            }
            // Deletions: every seventh person, and a run of rows (no compaction at this size).
            for p in (0..n as u64).filter(|p| p % 7 == 0 || (100..400).contains(p)) {
                assert!(idx.remove(&key(p)));
            }
            let probes = gallery_vectors(dim, 12, clusters, dim as u64 * 31 + clusters as u64 + 7);
            for (i, probe) in probes.iter().enumerate() {
                let scope = (i % 2 == 1).then_some(&coll);
                for (limit, min_estimate) in
                    [(64, -1.0), (10, -1.0), (1, -1.0), (64, 0.3), (64, 2.0)]
                {
                    let mut found = |scan| {
                        idx.set_exact_scan(scan);
                        idx.candidates(probe, scope, Mode::Exact, limit, min_estimate)
                            .rows
                    };
                    let (plain, two_stage) = (found(ExactScan::Int8), found(ExactScan::TwoStage));
                    let what = format!("dim {dim}, clusters {clusters}, probe {i}, limit {limit}, min {min_estimate}");
                    let scores = |v: &[(f32, u32)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
                    assert_eq!(scores(&two_stage), scores(&plain), "{what}");
                    let above = |v: &[(f32, u32)]| {
                        let last = v.last().map_or(f32::NEG_INFINITY, |x| x.0);
                        let mut rows: Vec<u32> =
                            v.iter().filter(|x| x.0 > last).map(|x| x.1).collect();
                        rows.sort_unstable();
                        rows
                    };
                    assert_eq!(above(&two_stage), above(&plain), "{what}");
                    for &(_, row) in &two_stage {
                        let person = idx.person_of(row).expect("a live face");
                        let p = u64::from_le_bytes(person[..8].try_into().expect("8 bytes"));
                        assert!(p % 7 != 0 && !(100..400).contains(&p), "{what}: deleted");
                        assert!(
                            scope.is_none() || p % 3 == 0,
                            "{what}: outside the collection"
                        );
                    }
                }
            }
        }
    }

    pub(crate) fn key(p: u64) -> [u8; 12] {
        let mut k = [0u8; 12];
        k[..8].copy_from_slice(&p.to_le_bytes());
        k
    }
}
