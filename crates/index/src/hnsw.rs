//! A hierarchical navigable small-world graph (Malkov & Yashunin, 2016) over the int8 codes
//! of [`crate::quantized`]: the approximate index behind FAST search. Rows are the caller's
//! row numbers; distances are int8 dot products times the two scales (≈ cosine); the caller
//! re-scores the returned candidates exactly. Deleted rows stay in the graph as tombstones
//! (they still route searches) and are never returned.

use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rayon::prelude::*;

use crate::quantized::{dot_codes, prefetch, CodeMatrix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on upper layers (twice this on layer 0).
    pub m: usize,
    /// Candidates kept while inserting.
    pub ef_construction: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 128,
        }
    }
}

/// A similarity and a row, ordered by similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, u32);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

pub struct Hnsw {
    params: HnswParams,
    /// Layer-0 links: `2 * m` slots per row, `u32::MAX` for an empty slot.
    base_links: Vec<u32>,
    /// Links on layers >= 1, for the few rows that reach them: `upper[row][layer - 1]`.
    upper: HashMap<u32, Vec<Vec<u32>>>,
    entry: Option<(u32, usize)>,
    deleted: Vec<bool>,
    level_rng: u64,
}

const EMPTY: u32 = u32::MAX;

/// A graph as plain data: what [`Hnsw::parts`] lends and [`Hnsw::from_parts`] checks and
/// takes back.
pub struct HnswParts<'a> {
    pub params: HnswParams,
    /// Layer-0 links: `2 * m` slots per row, `u32::MAX` for an empty slot.
    pub base_links: Cow<'a, [u32]>,
    /// `(row, its links on layers 1, 2, ...)` for the rows above layer 0, by row.
    pub upper: Vec<(u32, Cow<'a, [Vec<u32>]>)>,
    /// The entry row and its top layer; `None` while the graph is empty.
    pub entry: Option<(u32, usize)>,
    /// One tombstone flag per row.
    pub deleted: Cow<'a, [bool]>,
    /// The level generator's state, so that a graph read back grows as it would have.
    pub level_rng: u64,
}

/// A thread's search buffers, reused by every search on that thread so that a warm search
/// allocates nothing (growing heaps per query cost FAST its p99).
struct Scratch {
    /// Generation-stamped visited marks: a row is visited when its mark equals `generation`.
    generation: u32,
    marks: Vec<u32>,
    /// The unvisited neighbours of the row being expanded, loaded together before any is
    /// compared (so that their cache misses overlap instead of queueing one by one).
    fresh: Vec<u32>,
    /// Most similar first: the frontier still to expand.
    candidates: BinaryHeap<Scored>,
    /// Least similar on top (to evict): the best `ef` rows seen.
    found: BinaryHeap<Reverse<Scored>>,
}

impl Scratch {
    /// Starts a search over a graph of `rows` rows: nothing is visited yet.
    fn begin(&mut self, rows: usize) -> u32 {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
        if self.marks.len() < rows {
            self.marks.resize(rows, 0);
        }
        self.candidates.clear();
        self.found.clear();
        self.generation
    }

    /// What the last search found, most similar first.
    fn take_sorted(&mut self) -> Vec<Scored> {
        let mut out: Vec<Scored> = self.found.drain().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            generation: 0,
            marks: Vec::new(),
            fresh: Vec::new(),
            candidates: BinaryHeap::new(),
            found: BinaryHeap::new(),
        })
    };
}

/// Rows added in one parallel step at most: each row of a step is searched against the graph
/// as it was before the step and compared with every other row of the step (so that faces
/// enrolled together, often one person's, still link to each other).
const MAX_BATCH: usize = 512;

/// Read access to the vectors the graph is built over.
pub trait Vectors {
    fn codes(&self, row: u32) -> &[i8];
    fn scale(&self, row: u32) -> f32;
    /// A hint that `row` is about to be compared: start loading it.
    fn prefetch(&self, _row: u32) {}
}

impl Vectors for CodeMatrix {
    fn codes(&self, row: u32) -> &[i8] {
        self.row(row)
    }

    fn scale(&self, row: u32) -> f32 {
        self.scale_of(row)
    }

    fn prefetch(&self, row: u32) {
        CodeMatrix::prefetch(self, row)
    }
}

/// The int8 estimate of the cosine between stored `row` and the query codes `q` (scale
/// `q_scale`): what the graph and the exact scan both rank on.
#[inline]
pub(crate) fn similarity(v: &impl Vectors, q: &[i8], q_scale: f32, row: u32) -> f32 {
    dot_codes(v.codes(row), q) as f32 * v.scale(row) * q_scale
}

impl Hnsw {
    pub fn new(params: HnswParams) -> Self {
        Hnsw {
            params,
            base_links: Vec::new(),
            upper: HashMap::new(),
            entry: None,
            deleted: Vec::new(),
            level_rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn len(&self) -> usize {
        self.deleted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deleted.is_empty()
    }

    /// Returns spare capacity (after a bulk build).
    pub fn shrink_to_fit(&mut self) {
        self.base_links.shrink_to_fit();
        self.deleted.shrink_to_fit();
    }

    /// Bytes held by links and flags (not the vectors), spare capacity included.
    pub fn memory_bytes(&self) -> usize {
        self.base_links.capacity() * 4
            + self.deleted.capacity()
            + self
                .upper
                .values()
                .map(|l| 16 + l.iter().map(|v| 24 + v.len() * 4).sum::<usize>())
                .sum::<usize>()
    }

    fn slots(&self) -> usize {
        2 * self.params.m
    }

    fn random_level(&mut self) -> usize {
        self.level_rng ^= self.level_rng << 13;
        self.level_rng ^= self.level_rng >> 7;
        self.level_rng ^= self.level_rng << 17;
        let u = ((self.level_rng >> 11) as f64 / (1u64 << 53) as f64).max(1e-12);
        let ml = 1.0 / (self.params.m as f64).ln();
        ((-u.ln() * ml) as usize).min(16)
    }

    /// Where `row`'s layer-0 link slots lie in `base_links`.
    fn base_slots(&self, row: u32) -> std::ops::Range<usize> {
        let s = self.slots();
        row as usize * s..(row as usize + 1) * s
    }

    fn links(&self, row: u32, layer: usize) -> &[u32] {
        if layer == 0 {
            let all = &self.base_links[self.base_slots(row)];
            let n = all.iter().position(|&x| x == EMPTY).unwrap_or(all.len());
            &all[..n]
        } else {
            self.upper
                .get(&row)
                .and_then(|l| l.get(layer - 1))
                .map_or(&[], Vec::as_slice)
        }
    }

    fn set_links(&mut self, row: u32, layer: usize, links: &[u32]) {
        if layer == 0 {
            let slots = self.base_slots(row);
            let dst = &mut self.base_links[slots];
            let n = links.len().min(dst.len());
            dst.fill(EMPTY);
            dst[..n].copy_from_slice(&links[..n]);
        } else if let Some(l) = self.upper.get_mut(&row).and_then(|l| l.get_mut(layer - 1)) {
            l.clear();
            l.extend_from_slice(links);
        }
    }

    /// Best-first search of one layer from `entry`, keeping the `ef` most similar rows in
    /// `scratch.found`.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        v: &impl Vectors,
        q: &[i8],
        q_scale: f32,
        entry: &[Scored],
        ef: usize,
        layer: usize,
        scratch: &mut Scratch,
    ) {
        let gen = scratch.begin(self.len());
        let Scratch {
            marks,
            fresh,
            candidates,
            found,
            ..
        } = scratch;
        for &e in entry {
            if marks[e.1 as usize] == gen {
                continue;
            }
            marks[e.1 as usize] = gen;
            candidates.push(e);
            found.push(Reverse(e));
            if found.len() > ef {
                found.pop();
            }
        }
        while let Some(c) = candidates.pop() {
            let worst = found.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0);
            if c.0 < worst && found.len() >= ef {
                break;
            }
            if let Some(next) = candidates.peek() {
                self.prefetch_links(next.1, layer);
            }
            fresh.clear();
            for &nb in self.links(c.1, layer) {
                if marks[nb as usize] != gen {
                    marks[nb as usize] = gen;
                    v.prefetch(nb);
                    fresh.push(nb);
                }
            }
            for &nb in fresh.iter() {
                let s = similarity(v, q, q_scale, nb);
                let worst = found.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0);
                if found.len() < ef || s > worst {
                    candidates.push(Scored(s, nb));
                    found.push(Reverse(Scored(s, nb)));
                    if found.len() > ef {
                        found.pop();
                    }
                }
            }
        }
    }

    /// A hint that `row`'s links on `layer` are about to be read.
    fn prefetch_links(&self, row: u32, layer: usize) {
        if layer == 0 {
            if let Some(links) = self.base_links.get(self.base_slots(row)) {
                prefetch(links);
            }
        }
    }

    /// Greedy descent on an upper layer: moves to a more similar neighbour while there is one.
    fn greedy(
        &self,
        v: &impl Vectors,
        q: &[i8],
        q_scale: f32,
        from: Scored,
        layer: usize,
    ) -> Scored {
        let mut best = from;
        loop {
            let mut moved = false;
            for &nb in self.links(best.1, layer) {
                let s = similarity(v, q, q_scale, nb);
                if s > best.0 {
                    best = Scored(s, nb);
                    moved = true;
                }
            }
            if !moved {
                return best;
            }
        }
    }

    /// The diversity heuristic: keep a candidate only if it is more similar to the new
    /// node than to every neighbour already kept (spreads links across directions).
    fn select(&self, v: &impl Vectors, candidates: &[Scored], max: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(max);
        for c in candidates {
            if kept.len() >= max {
                break;
            }
            let diverse = kept
                .iter()
                .all(|&k| similarity(v, v.codes(k), v.scale(k), c.1) < c.0);
            if diverse {
                kept.push(c.1);
            }
        }
        // Top up with the closest remaining, so that sparse regions stay connected.
        for c in candidates {
            if kept.len() >= max {
                break;
            }
            if !kept.contains(&c.1) {
                kept.push(c.1);
            }
        }
        kept
    }

    fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            self.slots()
        } else {
            self.params.m
        }
    }

    /// Appends an unlinked row at `level`.
    fn add_row(&mut self, row: u32, level: usize) {
        debug_assert_eq!(row as usize, self.len());
        self.deleted.push(false);
        self.base_links
            .extend(std::iter::repeat_n(EMPTY, self.slots()));
        if level > 0 {
            self.upper.insert(row, vec![Vec::new(); level]);
        }
    }

    /// Adds `row`, which must be the next row (`len()`), whose vector `v` already holds.
    #[cfg(test)]
    pub fn insert(&mut self, v: &(impl Vectors + Sync), row: u32) {
        debug_assert_eq!(row as usize, self.len());
        self.insert_rows(v, 1);
    }

    /// Adds the next `count` rows (from `len()`), whose vectors `v` already holds, on the
    /// threads of the current rayon pool. Small graphs grow a row at a time; larger ones in
    /// steps of up to an eighth of their size, the rows of a step searched in parallel.
    pub fn insert_rows(&mut self, v: &(impl Vectors + Sync), count: usize) {
        let end = self.len() + count;
        while self.len() < end {
            let first = self.len() as u32;
            if self.entry.is_none() {
                let level = self.random_level();
                self.add_row(first, level);
                self.entry = Some((first, level));
                continue;
            }
            let step = (end - self.len()).min(self.len() / 8).clamp(1, MAX_BATCH);
            self.insert_step(v, first, step);
        }
    }

    /// One parallel step: plan every new row's links on the graph as it stands (read-only,
    /// in parallel), write them, then merge the reverse links into each touched neighbour
    /// (in parallel, one task per neighbour, so no two tasks write the same list).
    fn insert_step(&mut self, v: &(impl Vectors + Sync), first: u32, count: usize) {
        let Some((entry, top)) = self.entry else {
            return;
        };
        let rows: Vec<u32> = (first..first + count as u32).collect();
        let levels: Vec<usize> = rows.iter().map(|_| self.random_level()).collect();
        for (&row, &level) in rows.iter().zip(&levels) {
            self.add_row(row, level);
        }
        let graph = &*self;
        let plans: Vec<Vec<Vec<u32>>> = rows
            .par_iter()
            .zip(&levels)
            .map(|(&row, &level)| graph.plan_links(v, row, level, (entry, top), &rows, &levels))
            .collect();
        let mut reverse: Vec<(usize, u32, u32)> = Vec::new();
        for (&row, plan) in rows.iter().zip(&plans) {
            for (layer, chosen) in plan.iter().enumerate() {
                self.set_links(row, layer, chosen);
                reverse.extend(chosen.iter().map(|&nb| (layer, nb, row)));
            }
        }
        reverse.sort_unstable();
        let groups: Vec<&[(usize, u32, u32)]> =
            reverse.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1).collect();
        let graph = &*self;
        let merged: Vec<(usize, u32, Vec<u32>)> = groups
            .par_iter()
            .map(|group| {
                let (layer, nb) = (group[0].0, group[0].1);
                let mut links = graph.links(nb, layer).to_vec();
                for &(_, _, row) in group.iter() {
                    if !links.contains(&row) {
                        links.push(row);
                    }
                }
                let max = graph.max_links(layer);
                if links.len() > max {
                    let (nq, ns) = (v.codes(nb), v.scale(nb));
                    let mut scored: Vec<Scored> = links
                        .iter()
                        .map(|&l| Scored(similarity(v, nq, ns, l), l))
                        .collect();
                    scored.sort_by(|a, b| b.cmp(a));
                    links = graph.select(v, &scored, max);
                }
                (layer, nb, links)
            })
            .collect();
        for (layer, nb, links) in merged {
            self.set_links(nb, layer, &links);
        }
        if let Some((i, &level)) = levels
            .iter()
            .enumerate()
            .max_by_key(|&(i, l)| (*l, Reverse(i)))
        {
            if level > top {
                self.entry = Some((rows[i], level));
            }
        }
    }

    /// The links of new `row` on each of its layers: the graph's best `ef_construction`
    /// rows plus the step's other rows on that layer, thinned by the diversity heuristic.
    fn plan_links(
        &self,
        v: &impl Vectors,
        row: u32,
        level: usize,
        (entry, top): (u32, usize),
        step_rows: &[u32],
        step_levels: &[usize],
    ) -> Vec<Vec<u32>> {
        let (q, qs) = (v.codes(row), v.scale(row));
        let mut plan = vec![Vec::new(); level + 1];
        let mut ep = Scored(similarity(v, q, qs, entry), entry);
        for layer in (level + 1..=top).rev() {
            ep = self.greedy(v, q, qs, ep, layer);
        }
        let mut entries = vec![ep];
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            for layer in (0..=level).rev() {
                let mut found = if layer <= top {
                    self.search_layer(
                        v,
                        q,
                        qs,
                        &entries,
                        self.params.ef_construction,
                        layer,
                        &mut scratch,
                    );
                    scratch.take_sorted()
                } else {
                    Vec::new()
                };
                if !found.is_empty() {
                    entries.clone_from(&found);
                }
                found.extend(
                    step_rows
                        .iter()
                        .zip(step_levels)
                        .filter(|&(&peer, &peer_level)| peer != row && peer_level >= layer)
                        .map(|(&peer, _)| Scored(similarity(v, q, qs, peer), peer)),
                );
                found.sort_by(|a, b| b.cmp(a));
                plan[layer] = self.select(v, &found, self.params.m);
            }
        });
        plan
    }

    pub fn delete(&mut self, row: u32) {
        if let Some(d) = self.deleted.get_mut(row as usize) {
            *d = true;
        }
    }

    pub fn is_deleted(&self, row: u32) -> bool {
        self.deleted.get(row as usize).copied().unwrap_or(true)
    }

    /// The graph as plain data, borrowed (what the snapshot writes).
    pub fn parts(&self) -> HnswParts<'_> {
        let mut upper: Vec<(u32, Cow<'_, [Vec<u32>]>)> = self
            .upper
            .iter()
            .map(|(row, layers)| (*row, Cow::Borrowed(layers.as_slice())))
            .collect();
        upper.sort_by_key(|(row, _)| *row);
        HnswParts {
            params: self.params,
            base_links: Cow::Borrowed(&self.base_links),
            upper,
            entry: self.entry,
            deleted: Cow::Borrowed(&self.deleted),
            level_rng: self.level_rng,
        }
    }

    /// A graph from [`Hnsw::parts`] (as read back from a snapshot), checking that every link
    /// points at a row; `None` when the parts do not make a graph.
    pub fn from_parts(parts: HnswParts<'_>) -> Option<Hnsw> {
        let HnswParts {
            params,
            base_links,
            upper,
            entry,
            deleted,
            level_rng,
        } = parts;
        let slots = 2 * params.m;
        if slots == 0 || base_links.len() % slots != 0 {
            return None;
        }
        let rows = base_links.len() / slots;
        let valid = |l: &u32| *l == EMPTY || (*l as usize) < rows;
        if !base_links.iter().all(valid) {
            return None;
        }
        let mut by_row = HashMap::with_capacity(upper.len());
        for (row, layers) in upper {
            if row as usize >= rows || layers.len() > 16 || !layers.iter().flatten().all(valid) {
                return None;
            }
            by_row.insert(row, layers.into_owned());
        }
        if let Some((row, top)) = entry {
            if row as usize >= rows || (top != 0 && by_row.get(&row)?.len() != top) {
                return None;
            }
        }
        if deleted.len() != rows {
            return None;
        }
        Some(Hnsw {
            params,
            base_links: base_links.into_owned(),
            upper: by_row,
            entry,
            deleted: deleted.into_owned(),
            level_rng,
        })
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Up to `ef` live rows that `keep`, most similar first by the int8 estimate.
    #[cfg(test)]
    pub fn search(
        &self,
        v: &impl Vectors,
        q: &[i8],
        q_scale: f32,
        ef: usize,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<(f32, u32)> {
        let mut out = Vec::new();
        self.search_each(v, q, q_scale, ef, keep, |s, row| out.push((s, row)));
        out.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        out
    }

    /// [`Hnsw::search`] without allocating: hands each live row that `keep`s to `found`, in
    /// no particular order.
    pub fn search_each(
        &self,
        v: &impl Vectors,
        q: &[i8],
        q_scale: f32,
        ef: usize,
        keep: impl Fn(u32) -> bool,
        mut found: impl FnMut(f32, u32),
    ) {
        let Some((entry, top)) = self.entry else {
            return;
        };
        let mut ep = Scored(similarity(v, q, q_scale, entry), entry);
        for layer in (1..=top).rev() {
            ep = self.greedy(v, q, q_scale, ep, layer);
        }
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            self.search_layer(v, q, q_scale, &[ep], ef, 0, &mut scratch);
            for Reverse(s) in scratch.found.drain() {
                if !self.is_deleted(s.1) && keep(s.1) {
                    found(s.0, s.1);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantized::{dot_f32, Codes};
    use store::EMBEDDING_DIM;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        }
        fn unit(&mut self, centre: Option<&[f32]>, noise: f32) -> Vec<f32> {
            let v: Vec<f32> = (0..EMBEDDING_DIM)
                .map(|i| centre.map_or(0.0, |c| c[i]) + noise * self.next())
                .collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / n).collect()
        }
    }

    /// recall@1 of `graph` over 200 probes near the identities of `vectors`.
    fn recall_at_1(
        graph: &Hnsw,
        codes: &CodeMatrix,
        vectors: &[Vec<f32>],
        rng: &mut Rng,
        centres: &[Vec<f32>],
    ) -> f64 {
        let mut hits = 0;
        for i in 0..200 {
            let q = rng.unit(Some(&centres[(i * 7) % centres.len()]), 0.15);
            let (best, top) = exact_best_and_graph_top(graph, codes, vectors, &q);
            hits += usize::from(top == Some(best));
        }
        hits as f64 / 200.0
    }

    /// The row of `vectors` nearest to `q` by exact search, and the row the graph ranks
    /// first (its candidates re-scored exactly, as the gallery does), at ef 64.
    fn exact_best_and_graph_top(
        graph: &Hnsw,
        codes: &CodeMatrix,
        vectors: &[Vec<f32>],
        q: &[f32],
    ) -> (usize, Option<usize>) {
        let best = (0..vectors.len())
            .max_by(|&a, &b| dot_f32(&vectors[a], q).total_cmp(&dot_f32(&vectors[b], q)))
            .expect("rows");
        let qc = Codes::quantise(q);
        let found = graph.search(codes, &qc.codes, qc.scale, 64, |_| true);
        let top = found
            .iter()
            .max_by(|a, b| {
                dot_f32(&vectors[a.1 as usize], q).total_cmp(&dot_f32(&vectors[b.1 as usize], q))
            })
            .map(|f| f.1 as usize);
        (best, top)
    }

    #[test]
    fn a_graph_grown_in_parallel_steps_searches_as_well_as_one_grown_row_by_row() {
        let mut rng = Rng(7);
        let centres: Vec<Vec<f32>> = (0..1500).map(|_| rng.unit(None, 1.0)).collect();
        let mut codes = CodeMatrix::new(EMBEDDING_DIM);
        let mut vectors = Vec::new();
        // One identity's faces are consecutive rows, as one person's enrolment is: they land
        // in one step and must still find each other.
        for i in 0..6000 {
            let v = rng.unit(Some(&centres[i / 4]), 0.15);
            codes.push(&v);
            vectors.push(v);
        }
        let mut one_by_one = Hnsw::new(HnswParams::default());
        for row in 0..6000u32 {
            one_by_one.insert(&codes, row);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .expect("a pool");
        let mut stepped = Hnsw::new(HnswParams::default());
        pool.install(|| {
            stepped.insert_rows(&codes, 100);
            stepped.insert_rows(&codes, 5900);
        });
        assert_eq!(stepped.len(), 6000);
        let parts = stepped.parts();
        assert!(
            Hnsw::from_parts(parts).is_some(),
            "every link points at a row"
        );
        // Each face links to another face of its identity (its nearest by far).
        let linked = (0..6000u32)
            .filter(|&r| stepped.links(r, 0).iter().any(|&l| l / 4 == r / 4))
            .count();
        assert!(linked >= 5990, "{linked}/6000 faces link to their identity");
        let serial = recall_at_1(&one_by_one, &codes, &vectors, &mut Rng(9), &centres);
        let parallel = recall_at_1(&stepped, &codes, &vectors, &mut Rng(9), &centres);
        assert!(
            parallel >= 0.97,
            "recall@1 {parallel} (row by row: {serial})"
        );
        assert!(parallel >= serial - 0.02, "recall@1 {parallel} vs {serial}");
    }

    #[test]
    fn finds_the_exact_best_nearly_always_and_never_returns_deleted_rows() {
        let mut rng = Rng(42);
        let centres: Vec<Vec<f32>> = (0..1000).map(|_| rng.unit(None, 1.0)).collect();
        let mut vectors = Vec::new();
        let mut codes = CodeMatrix::new(EMBEDDING_DIM);
        let mut graph = Hnsw::new(HnswParams::default());
        for i in 0..4000 {
            let v = rng.unit(Some(&centres[i % 1000]), 0.15);
            let row = codes.push(&v);
            graph.insert(&codes, row);
            vectors.push(v);
        }
        let mut hits = 0;
        let queries = 200;
        for i in 0..queries {
            let q = rng.unit(Some(&centres[(i * 7) % 1000]), 0.15);
            let (best, top) = exact_best_and_graph_top(&graph, &codes, &vectors, &q);
            hits += usize::from(top == Some(best));
            let qc = Codes::quantise(&q);
            // Delete the best: it must never come back.
            graph.delete(best as u32);
            let again = graph.search(&codes, &qc.codes, qc.scale, 64, |_| true);
            assert!(again.iter().all(|f| f.1 as usize != best));
            // A filter is honoured.
            let odd = graph.search(&codes, &qc.codes, qc.scale, 64, |r| r % 2 == 1);
            assert!(odd.iter().all(|f| f.1 % 2 == 1));
        }
        assert!(
            hits as f64 / queries as f64 >= 0.97,
            "recall@1 {hits}/{queries}"
        );
    }
}
