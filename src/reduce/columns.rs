//! The column path: reductions over a strided axis whose inner axis is contiguous.
//!
//! Each reduced index is read as one contiguous run of columns, with per-column state in
//! small buffers. The columns are cut into tiles, each one task that makes all passes
//! (statistics, then write) over its columns. Where that leaves one tile (one outer index
//! and at most `COLUMN_TILE` columns) over a long reduced axis, the tile is cut along that
//! axis into chunks of rows instead, and each pass runs over the chunks in parallel, their
//! statistics merged in order between passes: full-width runs on every thread, and work
//! for all of them even where there are a few columns only.
//!
//! The statistics find each column's maximum first, then its sum: two reads of the input.
//! f32 inputs of `ONE_READ_MIN_BYTES` or more, which come from memory, take one instead:
//! log_softmax and logsumexp read a block of rows for its range and then again, from
//! cache, for its sums relative to the running maxima, rescaling the earlier sums where
//! those grow (`stats_of`); softmax, whose terms stay in out, does so by chunks of rows
//! (`chunk_stats`), each then scaled by its own factor (`ChunkScale`), and keeps two reads
//! for stacked tiles. f64 always takes two: a rescaled sum would cost its results an ulp.

use std::ops::Range;
use std::sync::Mutex;

use super::{
    in_waves, one_row, put_stats, Ctx, Interrupted, Kind, Scratch, OUT, STAT_M, STAT_S, X,
};
use crate::elem::{DType, Float};
use crate::kernels::shift::{self, Shift, Temp, Unit};
use crate::kernels::{column, row};
use crate::layout::{ColumnTiles, TileAt, MAX_OPS};
use crate::parallel::{self, Slots};
use crate::simd::{Job, Simd};

/// Most columns per tile on the column path. PERF: a tile reads each reduced index as one
/// contiguous run; runs with gaps between them (a tile narrower than the array) defeat the
/// hardware prefetchers, so tiles span the whole inner axis up to this width unless threads
/// need more tiles: (2048, 2048) axis 0 f32 softmax on one thread 1.5x faster than with
/// 1024-column tiles. The per-column state (about 40 bytes a column) stays in L2.
const COLUMN_TILE: usize = 4096;
/// The shortest run, in bytes, that column tiles are cut to for threads.
const COLUMN_SPLIT_MIN_BYTES: usize = 4096;
/// Bytes of a tile's block of rows, read twice in a row by the f32 statistics pass: its
/// second read comes from L2.
const BLOCK_BYTES: usize = 1 << 19;
/// Most rows per block: a narrow tile's blocks need no more to amortize their merges.
const BLOCK_MAX_ROWS: usize = 1024;
/// Inputs of at least this many bytes take their f32 statistics in one read (see the
/// module doc). PERF: smaller ones are read from cache either way, where the rescaling
/// only costs: (2048, 2048) axis 0 logsumexp, one thread, 0.81x the time from memory but
/// 1.07x from cache; (3000, 37) 1.05x-1.09x.
const ONE_READ_MIN_BYTES: usize = 1 << 23;

struct ColumnJob<'a, F> {
    ctx: &'a Ctx<'a, F>,
    tiles: ColumnTiles<'a>,
    /// Rows per block of the f32 statistics pass (see `block_rows`).
    block: usize,
    /// f32 and at least `ONE_READ_MIN_BYTES` (see the module doc).
    one_read: bool,
}

pub(super) fn run_columns<F: Float>(
    ctx: &Ctx<'_, F>,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Interrupted> {
    let l = &ctx.req.layout;
    let inner = *l.outer.last().expect("column path has an inner axis");
    let rest = &l.outer[..l.outer.len() - 1];
    let n_rest: usize = rest.iter().map(|d| d.len).product();
    let size = std::mem::size_of::<F>();
    let block = block_rows(inner.len, size);
    let bytes = n_rest * inner.len * ctx.d * size;
    let one_read = F::DTYPE == DType::F32 && bytes >= ONE_READ_MIN_BYTES;
    // Chunks of whole blocks, so that chunks fold their sums and cut their blocks where
    // one tile would; from the shape alone, so that every thread count sums alike.
    let rows = parallel::chunk_rows(ctx.d, inner.len, block);
    if n_rest == 1 && inner.len <= COLUMN_TILE && ctx.d > rows {
        let col = ColumnJob {
            ctx,
            tiles: ColumnTiles::new(rest, inner, inner.len),
            block,
            one_read,
        };
        let t = ctx.req.temperature;
        return if t == 1.0 {
            run_chunked(&col, rows, Unit, interrupted)
        } else {
            run_chunked(&col, rows, Temp::new(t), interrupted)
        };
    }
    let threads = if n_rest * inner.len * ctx.d >= parallel::PAR_MIN_ELEMS {
        parallel::num_threads()
    } else {
        1
    };
    let tile = column_tile(
        inner.len,
        threads.div_ceil(n_rest),
        std::mem::size_of::<F>(),
    );
    let job = ColumnJob {
        ctx,
        tiles: ColumnTiles::new(rest, inner, tile),
        block,
        one_read,
    };
    in_waves(&job, job.tiles.count(), tile * ctx.d, interrupted)
}

/// The ranges of `0..w` between the sorted positions `skip`.
fn good_runs(skip: &[usize], w: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::with_capacity(skip.len() + 1);
    let mut start = 0;
    for &j in skip.iter().chain(std::iter::once(&w)) {
        if j > start {
            runs.push(start..j);
        }
        start = j + 1;
    }
    runs
}

/// Tile width for `cols` contiguous columns of `size` bytes cut into `parts` tiles for the
/// threads: as wide as allowed (see `COLUMN_TILE`), a whole number of 64-byte lines of f32
/// where it is cut, and no narrower than `COLUMN_SPLIT_MIN_BYTES` (narrower runs made two
/// threads slower than one: (4096, 1024) axis 0 f32 softmax).
fn column_tile(cols: usize, parts: usize, size: usize) -> usize {
    cols.div_ceil(parts.max(1))
        .max(COLUMN_SPLIT_MIN_BYTES / size)
        .next_multiple_of(16)
        .min(COLUMN_TILE)
        .min(cols)
        .max(1)
}

/// Rows per block of the f32 statistics pass over `cols` contiguous columns of `size`
/// bytes: `BLOCK_BYTES` of the widest tile. From the shape alone (not the tile, whose width
/// follows the threads), so that every thread count sums alike; a multiple of `COL_FOLD`.
fn block_rows(cols: usize, size: usize) -> usize {
    let rows = BLOCK_BYTES / (cols.min(COLUMN_TILE) * size).max(1);
    rows.clamp(column::COL_FOLD, BLOCK_MAX_ROWS) / column::COL_FOLD * column::COL_FOLD
}

impl<F: Float> Job for ColumnJob<'_, F> {
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        let t = self.ctx.req.temperature;
        if t == 1.0 {
            self.tile_of::<S, Unit>(task, Unit);
        } else {
            self.tile_of::<S, Temp<F>>(task, Temp::new(t));
        }
    }
}

/// A column's shift for its sums: its maximum, or a neutral 0 where that is not finite
/// (such columns are redone one by one).
#[inline(always)]
fn shift_of<F: Float>(m: F) -> F {
    if m.is_finite() {
        m
    } else {
        F::ZERO
    }
}

/// `a = max(a, b)` (`MAX`) or `min(a, b)` lane by lane, NaN in `b` ignored; on ties `a`
/// stays.
#[inline(always)]
fn extreme_into<F: Float, const MAX: bool>(a: &mut [F], b: &[F]) {
    for (a, &v) in a.iter_mut().zip(b) {
        *a = row::beyond::<F, MAX>(v, *a);
    }
}

/// Per-column maximum and minimum over some rows of a tile, NaN ignored.
struct ColRange<F> {
    m: Vec<F>,
    min: Vec<F>,
}

impl<F: Float> ColRange<F> {
    /// Fold in the range of later rows (on ties the earlier value stays, as row by row).
    fn merge(&mut self, later: &ColRange<F>) {
        extreme_into::<F, true>(&mut self.m, &later.m);
        extreme_into::<F, false>(&mut self.min, &later.min);
    }

    /// Each column's shift for the sums (`shift_of`), which columns have no finite
    /// maximum, and whether every other column suits `Float::exp_normal` (see
    /// `row::normal_range`).
    fn shifts<Sh: Shift<F>>(self, sh: Sh) -> (Vec<F>, Vec<bool>, bool) {
        let ColRange { m, min } = self;
        let special: Vec<bool> = m.iter().map(|&v| !v.is_finite()).collect();
        let normal = (0..m.len()).all(|j| special[j] || row::normal_range(m[j], min[j], sh));
        (m.into_iter().map(shift_of).collect(), special, normal)
    }
}

/// Per-column sums of the terms over some rows of a tile: compensated `hi + lo` of those
/// below the maximum, and the exact ones counted apart (see `row::Acc`).
struct ColSums {
    hi: Vec<f64>,
    lo: Vec<f64>,
    ones: Vec<f64>,
}

impl ColSums {
    fn zeros(w: usize) -> ColSums {
        ColSums {
            hi: vec![0.0; w],
            lo: vec![0.0; w],
            ones: vec![0.0; w],
        }
    }
}

/// Per-column statistics over some rows of a tile, in one read (f32): each column's
/// maximum (so far, in `stats_of`; NaN ignored) and its sums relative to it.
struct ColStats<F> {
    m: Vec<F>,
    sums: ColSums,
}

impl<F: Float> ColStats<F> {
    /// Move the sums onto the maxima `to` (see `column::rescale`).
    #[inline(always)]
    fn rescale<S: Simd, Sh: Shift<F>>(&mut self, to: &[F], sh: Sh) {
        let s = &mut self.sums;
        column::rescale::<F, S, Sh>(&mut self.m, to, &mut s.hi, &mut s.lo, &mut s.ones, sh);
    }

    /// Chunks' statistics in row order, all moved onto their common maxima; with
    /// `factors`, also each chunk's own maxima and the factors from them to the common.
    #[inline(always)]
    fn common<S: Simd, Sh: Shift<F>>(chunks: Vec<ColStats<F>>, sh: Sh, factors: bool) -> Common<F> {
        let mut m = vec![F::NEG_INF; chunks.first().map_or(0, |c| c.m.len())];
        for c in &chunks {
            extreme_into::<F, true>(&mut m, &c.m);
        }
        let mut out = Common {
            m: Vec::new(),
            sums: Vec::with_capacity(chunks.len()),
            factors: Vec::new(),
        };
        for mut c in chunks {
            if factors {
                let f = (c.m.iter().zip(&m))
                    .map(|(&from, &to)| column::growth::<F, S, Sh>(from, to, sh))
                    .collect();
                out.factors.push((c.m.clone(), f));
            }
            c.rescale::<S, Sh>(&m, sh);
            out.sums.push(c.sums);
        }
        out.m = m;
        out
    }
}

/// Chunks' statistics merged (`ColStats::common`).
struct Common<F> {
    /// The common maxima.
    m: Vec<F>,
    /// Each chunk's sums relative to them.
    sums: Vec<ColSums>,
    /// Where asked: each chunk's own maxima, and the factors from them to the common ones.
    factors: Vec<(Vec<F>, Vec<f64>)>,
}

/// How the write pass scales one chunk's terms (`ColumnJob::chunk_stats`).
struct ChunkScale<F> {
    /// The chunk's shifts (`shift_of` its maxima).
    m: Vec<F>,
    /// factor / sum as `inv_hi + inv_lo`; 1 / sum where the chunk holds the maximum.
    inv_hi: Vec<F>,
    inv_lo: Vec<F>,
}

impl<F: Float> ChunkScale<F> {
    fn new(chunk_m: Vec<F>, factors: &[f64], s1: &[f64]) -> ChunkScale<F> {
        let m = chunk_m.into_iter().map(shift_of).collect();
        let (inv_hi, inv_lo) = (factors.iter().zip(s1))
            .map(|(&f, &mo)| {
                // `Float::recip`'s split of f / sum (the same bits where f = 1, in f32).
                let g = f * (1.0 / (1.0 + mo));
                let hi = F::from_f64(g);
                (hi, F::from_f64(g - hi.to_f64()))
            })
            .unzip();
        ChunkScale { m, inv_hi, inv_lo }
    }
}

/// Each column's shift (`shift_of`) and its sum minus one (NaN where the maximum is not
/// finite), from its chunks' sums relative to the common maxima `m`.
fn conclude_sums<F: Float>(m: Vec<F>, chunks: &[ColSums]) -> (Vec<F>, Vec<f64>) {
    let special: Vec<bool> = m.iter().map(|&v| !v.is_finite()).collect();
    let s1 = sums_minus_one(chunks, &special);
    (m.into_iter().map(shift_of).collect(), s1)
}

/// Each column's sum minus one, from its chunks' sums in row order (compensated across
/// chunks too); NaN for the `special` columns. Minus one: the count and the rest stay apart
/// until log1p, as in `row::Acc::minus_one`. One chunk gives what one tile gave.
fn sums_minus_one(chunks: &[ColSums], special: &[bool]) -> Vec<f64> {
    let w = special.len();
    let (mut hi, mut lo, mut ones) = (vec![0.0f64; w], vec![0.0f64; w], vec![0.0f64; w]);
    // Zipped, not indexed: without bounds checks the loop vectorizes (indexed, the merge of
    // 16 chunks of 2048 columns took 2% of (2048, 2048) axis 0 softmax).
    for c in chunks {
        let (h_lo, ch) = (hi.iter_mut().zip(lo.iter_mut()), c.hi.iter().zip(&c.lo));
        for (((h, l), (&v, &vl)), (o, &vo)) in h_lo.zip(ch).zip(ones.iter_mut().zip(&c.ones)) {
            // Fast2Sum on the larger and smaller: the sums of finite columns are >= 0.
            let t = *h + v;
            let (a, b) = if *h >= v { (*h, v) } else { (v, *h) };
            *l += (a - t) + b;
            *l += vl;
            *h = t;
            *o += vo;
        }
    }
    (0..w)
        .map(|j| {
            if special[j] {
                f64::NAN
            } else {
                (ones[j] - 1.0) + (hi[j] + lo[j])
            }
        })
        .collect()
}

/// What the write pass needs, per column of a tile.
struct WritePlan<F> {
    m: Vec<F>,
    /// The columns it writes: the runs between the bad ones, which are redone one by one
    /// (in place, writing them here would overwrite their inputs).
    runs: Vec<Range<usize>>,
    /// log_softmax: each column's log of its sum, and `shift::log_const`.
    logs: Vec<(f64, f64)>,
    c: Vec<(F, F)>,
    /// softmax: 1 / sum as `inv_hi + inv_lo`.
    inv_hi: Vec<F>,
    inv_lo: Vec<F>,
    /// softmax by `chunk_stats`: each chunk's own shifts and scales, for `m` and `inv_*`.
    chunks: Vec<ChunkScale<F>>,
}

impl<F> WritePlan<F> {
    /// The shifts and softmax scales for the rows of chunk `chunk` (0 for a whole tile).
    fn scales(&self, chunk: usize) -> (&[F], &[F], &[F]) {
        match self.chunks.get(chunk) {
            Some(c) => (&c.m, &c.inv_hi, &c.inv_lo),
            None => (&self.m, &self.inv_hi, &self.inv_lo),
        }
    }
}

/// The chunks' statistics moved onto their common maxima (`ColStats::common`), as a job
/// so that the rescaling runs on the selected ISA.
struct MergeJob<F, Sh> {
    chunks: Mutex<Vec<ColStats<F>>>,
    factors: bool,
    result: Mutex<Option<Common<F>>>,
    sh: Sh,
}

impl<F: Float, Sh: Shift<F>> Job for MergeJob<F, Sh> {
    fn run<S: Simd>(&self, _task: usize) {
        let chunks = std::mem::take(&mut *lock(&self.chunks));
        let merged = ColStats::common::<S, Sh>(chunks, self.sh, self.factors);
        *lock(&self.result) = Some(merged);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<F: Float> ColumnJob<'_, F> {
    /// Reduced index `i` of the tile at `offs` (`w` columns) in operand `k` (X or OUT).
    #[inline(always)]
    fn row_ptr(&self, k: usize, offs: &[isize; MAX_OPS], i: usize) -> *mut F {
        let rd = self.ctx.req.layout.row[0];
        self.ctx
            .base(k, offs)
            .wrapping_offset(rd.strides[k] * i as isize)
            .cast::<F>()
    }

    #[inline(always)]
    fn xrow(&self, t: &TileAt, i: usize) -> &[F] {
        // SAFETY: the column path requires aligned, contiguous F across the inner axis.
        unsafe { std::slice::from_raw_parts(self.row_ptr(X, &t.offs, i), t.w) }
    }

    /// # Safety
    /// The caller's task owns reduced index `i` of this tile in `out`, and holds no other
    /// reference to it (in place, none to the same row of x either).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn outrow(&self, t: &TileAt, i: usize) -> &mut [F] {
        // SAFETY: out is aligned contiguous F across the inner axis (column path condition);
        // ownership as the caller promises.
        unsafe { std::slice::from_raw_parts_mut(self.row_ptr(OUT, &t.offs, i), t.w) }
    }

    /// Softmax leaves each term in out on the way and scales it there, so each exponential
    /// is made once. Not in place: a column found bad by its sum is redone from x.
    fn terms_in_out(&self) -> bool {
        self.ctx.req.kind == Kind::Softmax && !self.ctx.req.in_place
    }

    /// Whether the statistics take one read block by block (`stats_of`): not for softmax,
    /// whose terms stay in out, relative to maxima that must not grow after (see
    /// `chunk_stats`). PERF: making each exponential twice instead, after one read, was
    /// slower: (2048, 2048) axis 0 f32, one thread, from memory, 5.6 ms against 5.0.
    fn blocks_in_one_read(&self) -> bool {
        self.one_read && self.ctx.req.kind != Kind::Softmax
    }

    /// All passes over every row of one tile.
    #[inline(always)]
    fn tile_of<S: Simd, Sh: Shift<F>>(&self, task: usize, sh: Sh) {
        let t = self.tiles.at(task);
        let d = self.ctx.d;
        let (m, s1) = if self.ctx.req.kind.is_finish() {
            self.given_stats(&t)
        } else if self.blocks_in_one_read() {
            let st = self.stats_of::<S, Sh>(&t, 0..d, sh);
            conclude_sums(st.m, &[st.sums])
        } else {
            let (m, special, normal) = self.range_of(&t, 0..d).shifts(sh);
            let mut sums = ColSums::zeros(t.w);
            self.add_sums::<S, Sh>(&mut sums, &t, 0..d, &m, normal, sh);
            let s1 = sums_minus_one(&[sums], &special);
            (m, s1)
        };
        let (plan, bad) = self.conclude(&t, m, &s1, sh);
        if let Some(p) = plan {
            self.write_rows::<S, Sh>(&t, 0..d, 0, &p, sh);
        }
        if !bad.is_empty() {
            self.redo_columns::<S, Sh>(&t, &bad, sh);
        }
    }

    /// The maximum and sum minus one of each column, as given (the finish kinds).
    fn given_stats(&self, t: &TileAt) -> (Vec<F>, Vec<f64>) {
        t.columns()
            .map(|co| {
                let m = self.ctx.get_stat(STAT_M, &co);
                (m, self.ctx.get_stat(STAT_S, &co).to_f64() - 1.0)
            })
            .unzip()
    }

    #[inline(always)]
    fn range_of(&self, t: &TileAt, rows: Range<usize>) -> ColRange<F> {
        let mut r = ColRange {
            m: vec![F::NEG_INF; t.w],
            min: vec![F::INF; t.w],
        };
        self.max_min_into(&mut r.m, &mut r.min, t, rows);
        r
    }

    /// Fold the range of `rows` into per-column maxima `m` and minima `min`, by groups of
    /// `column::MAX_MIN_ROWS` rows.
    #[inline(always)]
    fn max_min_into(&self, m: &mut [F], min: &mut [F], t: &TileAt, rows: Range<usize>) {
        let mut i = rows.start;
        while i + column::MAX_MIN_ROWS <= rows.end {
            let group = std::array::from_fn(|r| self.xrow(t, i + r));
            column::max_min_rows(m, min, group);
            i += column::MAX_MIN_ROWS;
        }
        for i in i..rows.end {
            column::max_min_update(m, min, self.xrow(t, i));
        }
    }

    /// The maxima of `rows` and their sums relative to them, in one read from memory: a
    /// block of rows at a time is read for its range, then again from cache for its sums
    /// relative to the running maxima, the earlier sums rescaled where those grew.
    /// `rows` starts at a multiple of `self.block`, so blocks fall alike for every chunking.
    #[inline(always)]
    fn stats_of<S: Simd, Sh: Shift<F>>(
        &self,
        t: &TileAt,
        rows: Range<usize>,
        sh: Sh,
    ) -> ColStats<F> {
        let w = t.w;
        let mut st = ColStats {
            m: vec![F::NEG_INF; w],
            sums: ColSums::zeros(w),
        };
        let (mut next, mut min, mut shift) = (vec![F::ZERO; w], vec![F::ZERO; w], vec![F::ZERO; w]);
        let mut start = rows.start;
        while start < rows.end {
            let block = start..(start + self.block).min(rows.end);
            next.copy_from_slice(&st.m);
            min.fill(F::INF);
            self.max_min_into(&mut next, &mut min, t, block.clone());
            st.rescale::<S, Sh>(&next, sh);
            // The shifts as in `ColRange::shifts`; a column with no finite maximum yet has
            // sums of 0 or NaN, which a later finite maximum scales by 0.
            let mut normal = true;
            for ((s, &mv), &lo) in shift.iter_mut().zip(&st.m).zip(&min) {
                *s = shift_of(mv);
                normal &= !mv.is_finite() || row::normal_range(mv, lo, sh);
            }
            self.add_sums::<S, Sh>(&mut st.sums, t, block.clone(), &shift, normal, sh);
            start = block.end;
        }
        st
    }

    /// Softmax's statistics of one chunk of rows, in one read from memory: the chunk's
    /// maxima, then (from cache, just read) its sums relative to them, with the terms left
    /// in out where `terms_in_out`. The write pass scales each chunk by its own factors
    /// (`ChunkScale`), as the chunk's maxima are not the column's.
    #[inline(always)]
    fn chunk_stats<S: Simd, Sh: Shift<F>>(
        &self,
        t: &TileAt,
        rows: Range<usize>,
        sh: Sh,
    ) -> ColStats<F> {
        let range = self.range_of(t, rows.clone());
        let m = range.m.clone();
        let (shift, _, normal) = range.shifts(sh);
        let mut sums = ColSums::zeros(t.w);
        self.add_sums::<S, Sh>(&mut sums, t, rows, &shift, normal, sh);
        ColStats { m, sums }
    }

    /// Add the sums of `rows` relative to the shifts `m` (see `ColRange::shifts`) to
    /// `sums`, leaving the terms in out where `terms_in_out`. `rows` starts at a multiple
    /// of `COL_FOLD`.
    #[inline(always)]
    fn add_sums<S: Simd, Sh: Shift<F>>(
        &self,
        sums: &mut ColSums,
        t: &TileAt,
        rows: Range<usize>,
        m: &[F],
        normal: bool,
        sh: Sh,
    ) {
        let w = t.w;
        let terms = self.terms_in_out();
        // PERF: allocated per call: shared by the blocks of `stats_of` instead, they made
        // (1000000, 16) axis 0 f32 logsumexp take 1.15x the time.
        let mut part = vec![F::ZERO; w];
        let mut ones = vec![F::ZERO; w];
        let end = rows.end;
        for i in rows {
            let (x, p, c) = (self.xrow(t, i), &mut part, &mut ones);
            if terms {
                // SAFETY: this task owns row i of the tile; not in place (`terms_in_out`).
                let out = unsafe { self.outrow(t, i) };
                if normal {
                    column::sum_update_into::<F, S, Sh, true>(p, c, x, m, sh, out);
                } else {
                    column::sum_update_into::<F, S, Sh, false>(p, c, x, m, sh, out);
                }
            } else if normal {
                column::sum_update::<F, S, Sh, true>(p, c, x, m, sh);
            } else {
                column::sum_update::<F, S, Sh, false>(p, c, x, m, sh);
            }
            if (i + 1) % column::COL_FOLD == 0 || i + 1 == end {
                column::fold_compensated(&mut sums.hi, &mut sums.lo, &mut part);
                column::fold(&mut sums.ones, &mut ones);
            }
        }
    }

    /// From each column's maximum (or shift) `m` and sum minus one `s1`: logsumexp and the
    /// stats kinds store theirs; softmax and log_softmax get what their write pass needs.
    /// Also the bad columns (no finite maximum, or NaN), to be redone one by one.
    fn conclude<Sh: Shift<F>>(
        &self,
        t: &TileAt,
        m: Vec<F>,
        s1: &[f64],
        sh: Sh,
    ) -> (Option<WritePlan<F>>, Vec<usize>) {
        let ctx = self.ctx;
        let bad: Vec<usize> = (0..t.w)
            .filter(|&j| !m[j].is_finite() || s1[j].is_nan())
            .collect();
        if !ctx.req.kind.writes_rows() {
            for ((&mv, &mo), co) in m.iter().zip(s1).zip(t.columns()) {
                let acc = row::Acc {
                    hi: mo,
                    lo: 0.0,
                    count: 1.0,
                };
                put_stats(ctx, &co, sh.apply(mv.to_f64()), mv, acc);
            }
            return (None, bad);
        }
        let mut plan = WritePlan {
            runs: good_runs(&bad, t.w),
            logs: Vec::new(),
            c: Vec::new(),
            inv_hi: Vec::new(),
            inv_lo: Vec::new(),
            chunks: Vec::new(),
            m,
        };
        if ctx.req.kind.is_log() {
            let sums: Vec<row::Acc> = s1
                .iter()
                .map(|&mo| row::Acc {
                    hi: mo,
                    lo: 0.0,
                    count: 1.0,
                })
                .collect();
            plan.logs = row::log_of_sums::<F>(&sums);
            plan.c = (plan.m.iter().zip(&plan.logs))
                .map(|(&mv, &ls)| shift::log_const(mv, ls))
                .collect();
        } else {
            (plan.inv_hi, plan.inv_lo) = s1.iter().map(|&mo| F::recip(1.0 + mo)).unzip();
        }
        (Some(plan), bad)
    }

    /// Write the results of `rows`, in chunk `chunk` (softmax or log_softmax).
    #[inline(always)]
    fn write_rows<S: Simd, Sh: Shift<F>>(
        &self,
        t: &TileAt,
        rows: Range<usize>,
        chunk: usize,
        p: &WritePlan<F>,
        sh: Sh,
    ) {
        let (m, inv_hi, inv_lo) = p.scales(chunk);
        let req = self.ctx.req;
        let log = req.kind.is_log();
        let terms = self.terms_in_out();
        let mut copy = vec![F::ZERO; if req.in_place { t.w } else { 0 }];
        for i in rows {
            if terms {
                // SAFETY: this task owns row i of the tile.
                let out = unsafe { self.outrow(t, i) };
                for r in p.runs.iter().cloned() {
                    column::scale::<F, S>(&mut out[r.clone()], &inv_hi[r.clone()], &inv_lo[r]);
                }
                continue;
            }
            // In place, the row is copied before `out` (the same memory) is borrowed.
            let xr: &[F] = if req.in_place {
                copy.copy_from_slice(self.xrow(t, i));
                &copy
            } else {
                self.xrow(t, i)
            };
            // SAFETY: this task owns row i of the tile; in place, x's row is no longer
            // borrowed (it was copied).
            let out = unsafe { self.outrow(t, i) };
            for r in p.runs.iter().cloned() {
                let (o, x, mr) = (&mut out[r.clone()], &xr[r.clone()], &m[r.clone()]);
                if log {
                    column::log_shift::<F, S, Sh>(o, x, mr, &p.logs[r.clone()], &p.c[r], sh);
                } else {
                    let (ih, il) = (&inv_hi[r.clone()], &inv_lo[r]);
                    column::exp_scale::<F, S, Sh>(o, x, mr, ih, il, sh);
                }
            }
        }
    }

    /// Redo columns `cols` of tile `t` one by one on gathered copies (correct in place
    /// too: each column is read before it is written). A column's result never depends on
    /// the tile it was in. Out of line, but compiled for the ISA (`Simd::outline`): as a
    /// plain method it had the baseline's instructions only.
    #[inline(always)]
    fn redo_columns<S: Simd, Sh: Shift<F>>(&self, t: &TileAt, cols: &[usize], sh: Sh) {
        S::outline(
            #[inline(always)]
            || {
                let col = self.col_ctx();
                let mut sc = Scratch::new(&col);
                for &j in cols {
                    let offs = t.column(j);
                    one_row::<F, S, Sh>(&col, col.req.kind, &offs, sh, (None, None), &mut sc);
                }
            },
        )
    }

    /// The same request seen as strided rows (no in-place views), for the scalar fallback.
    fn col_ctx(&self) -> Ctx<'_, F> {
        Ctx {
            req: self.ctx.req,
            d: self.ctx.d,
            x_direct: false,
            out_direct: false,
            large: false,
            _f: std::marker::PhantomData,
        }
    }
}

// ---------------------------------------------------------------------------------------
// A lone tile cut into chunks of rows: each pass runs over the chunks in parallel, and the
// chunks' statistics are merged in order between passes.

enum Pass<'a, F> {
    /// One read (f32): each chunk's `ColStats`, by `stats_of`.
    Stats(&'a Slots<ColStats<F>>),
    /// One read for softmax (f32): each chunk's `ColStats`, by `chunk_stats`.
    ChunkStats(&'a Slots<ColStats<F>>),
    Range(&'a Slots<ColRange<F>>),
    Sums {
        m: &'a [F],
        normal: bool,
        out: &'a Slots<ColSums>,
    },
    Write(&'a WritePlan<F>),
    /// One task: the bad columns, one by one.
    Redo(&'a [usize]),
}

/// One pass over a lone tile: task `c` takes rows `c * rows..(c + 1) * rows`.
struct ChunkJob<'a, F, Sh> {
    col: &'a ColumnJob<'a, F>,
    tile: TileAt,
    rows: usize,
    sh: Sh,
    pass: Pass<'a, F>,
}

impl<F: Float, Sh: Shift<F>> Job for ChunkJob<'_, F, Sh> {
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        let (col, t, sh) = (self.col, &self.tile, self.sh);
        let rows = task * self.rows..((task + 1) * self.rows).min(col.ctx.d);
        match self.pass {
            Pass::Stats(out) => out.put(task, col.stats_of::<S, Sh>(t, rows, sh)),
            Pass::ChunkStats(out) => out.put(task, col.chunk_stats::<S, Sh>(t, rows, sh)),
            Pass::Range(out) => out.put(task, col.range_of(t, rows)),
            Pass::Sums { m, normal, out } => {
                let mut sums = ColSums::zeros(t.w);
                col.add_sums::<S, Sh>(&mut sums, t, rows, m, normal, sh);
                out.put(task, sums)
            }
            Pass::Write(p) => col.write_rows::<S, Sh>(t, rows, task, p, sh),
            Pass::Redo(bad) => col.redo_columns::<S, Sh>(t, bad, sh),
        }
    }
}

/// The lone tile of `col`, in chunks of `rows` rows (see `parallel::chunk_rows`).
fn run_chunked<F: Float, Sh: Shift<F>>(
    col: &ColumnJob<'_, F>,
    rows: usize,
    sh: Sh,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Interrupted> {
    let ctx = col.ctx;
    let tile = col.tiles.at(0);
    let chunks = ctx.d.div_ceil(rows);
    let elems = rows * tile.w;
    // A fn rather than a closure: each pass borrows its own data for its own lifetime.
    fn job<'a, F, Sh>(
        col: &'a ColumnJob<'a, F>,
        tile: TileAt,
        rows: usize,
        sh: Sh,
        pass: Pass<'a, F>,
    ) -> ChunkJob<'a, F, Sh> {
        ChunkJob {
            col,
            tile,
            rows,
            sh,
            pass,
        }
    }
    let mut chunk_factors = Vec::new();
    let (m, s1) = if ctx.req.kind.is_finish() {
        col.given_stats(&tile)
    } else if col.one_read {
        let stats = Slots::new(chunks);
        let by_chunk = !col.blocks_in_one_read();
        let pass = if by_chunk {
            Pass::ChunkStats(&stats)
        } else {
            Pass::Stats(&stats)
        };
        in_waves(&job(col, tile, rows, sh, pass), chunks, elems, interrupted)?;
        let merge = MergeJob {
            chunks: Mutex::new(stats.into_results().collect()),
            factors: by_chunk,
            result: Mutex::new(None),
            sh,
        };
        parallel::run_range(&merge, 0..1, 0);
        let merged = lock(&merge.result).take().expect("the merge ran");
        chunk_factors = merged.factors;
        conclude_sums(merged.m, &merged.sums)
    } else {
        let ranges = Slots::new(chunks);
        in_waves(
            &job(col, tile, rows, sh, Pass::Range(&ranges)),
            chunks,
            elems,
            interrupted,
        )?;
        let mut ranges = ranges.into_results();
        let mut range = ranges.next().expect("two chunks or more");
        for r in ranges {
            range.merge(&r);
        }
        let (m, special, normal) = range.shifts(sh);
        let sums = Slots::new(chunks);
        let pass = Pass::Sums {
            m: &m,
            normal,
            out: &sums,
        };
        in_waves(&job(col, tile, rows, sh, pass), chunks, elems, interrupted)?;
        let sums: Vec<ColSums> = sums.into_results().collect();
        let s1 = sums_minus_one(&sums, &special);
        (m, s1)
    };
    let (mut plan, bad) = col.conclude(&tile, m, &s1, sh);
    if let Some(p) = &mut plan {
        p.chunks = (chunk_factors.into_iter())
            .map(|(cm, f)| ChunkScale::new(cm, &f, &s1))
            .collect();
    }
    if let Some(p) = &plan {
        in_waves(
            &job(col, tile, rows, sh, Pass::Write(p)),
            chunks,
            elems,
            interrupted,
        )?;
    }
    if !bad.is_empty() {
        parallel::run_range(&job(col, tile, rows, sh, Pass::Redo(&bad)), 0..1, 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_runs_are_the_gaps_between_skipped_columns() {
        assert_eq!(good_runs(&[], 5), vec![0..5]);
        assert_eq!(good_runs(&[0, 2, 3], 6), vec![1..2, 4..6]);
        assert_eq!(good_runs(&[4], 5), vec![0..4]);
        assert_eq!(good_runs(&[0, 1], 2), Vec::<Range<usize>>::new());
    }

    #[test]
    fn column_tiles_follow_threads_down_to_4_kib_runs() {
        assert_eq!(column_tile(2048, 1, 4), 2048);
        assert_eq!(column_tile(2048, 2, 4), 1024);
        assert_eq!(column_tile(2048, 4, 4), 1024);
        assert_eq!(column_tile(1024, 2, 4), 1024);
        assert_eq!(column_tile(1024, 2, 8), 512);
        assert_eq!(column_tile(20000, 1, 4), COLUMN_TILE);
        assert_eq!(column_tile(10, 3, 4), 10);
    }

    #[test]
    fn lone_tiles_are_cut_into_chunks_of_whole_blocks_by_shape() {
        for (d, w) in [(4000, 48), (2048, 2048), (1_000_000, 16), (5000, 1000)] {
            for size in [4, 8] {
                let block = block_rows(w, size);
                assert_eq!(block % column::COL_FOLD, 0, "({d}, {w})");
                assert_eq!(parallel::chunk_rows(d, w, block) % block, 0, "({d}, {w})");
            }
        }
        assert_eq!(block_rows(2048, 4), 64);
        assert_eq!(block_rows(16, 4), BLOCK_MAX_ROWS);
        assert_eq!(block_rows(100_000, 8), column::COL_FOLD);
        assert!(parallel::chunk_rows(120, 2000, block_rows(2000, 4)) >= 120); // one chunk: the tile path
    }

    #[test]
    fn chunk_sums_merge_compensated_and_one_chunk_is_one_tile() {
        let big = (1u64 << 53) as f64;
        let chunk = |hi: f64, lo: f64, ones: f64| ColSums {
            hi: vec![hi],
            lo: vec![lo],
            ones: vec![ones],
        };
        // Summed naively, 2^53 + 1 + 1 stays 2^53.
        let three = [
            chunk(big, 0.0, 1.0),
            chunk(1.0, 0.0, 0.0),
            chunk(1.0, 0.0, 0.0),
        ];
        assert_eq!(sums_minus_one(&three, &[false]), vec![big + 2.0]);
        assert!(sums_minus_one(&three, &[true])[0].is_nan());
        let (hi, lo) = (0.75, 3e-17);
        assert_eq!(
            sums_minus_one(&[chunk(hi, lo, 2.0)], &[false]),
            vec![(2.0 - 1.0) + (hi + lo)]
        );
    }

    #[test]
    fn chunk_scales_divide_the_factor_by_the_sum() {
        let (s1, f) = ([0.5, 3.0, f64::NAN], [1.0, 0.25, 0.0]);
        let c = ChunkScale::<f32>::new(vec![2.0, f32::NEG_INFINITY, f32::INFINITY], &f, &s1);
        assert_eq!(c.m, vec![2.0, 0.0, 0.0]);
        // The chunk holding the maximum gets 1 / sum, as one tile would.
        assert_eq!((c.inv_hi[0], c.inv_lo[0]), <f32 as Float>::recip(1.5));
        assert_eq!((c.inv_hi[1], c.inv_lo[1]), (0.0625, 0.0));
        assert!(c.inv_hi[2].is_nan());
        let g = 1.0 / 3.0;
        let c = ChunkScale::<f32>::new(vec![0.0], &[g], &[0.0]);
        // Two f32 halves carry 48 bits.
        assert!((f64::from(c.inv_hi[0]) + f64::from(c.inv_lo[0]) - g).abs() < g * 1e-14);
    }

    #[test]
    fn merged_ranges_keep_the_earlier_of_equal_values_and_skip_nan() {
        let mut r = ColRange {
            m: vec![0.0f32, -0.0, 1.0],
            min: vec![0.0f32, -0.0, 1.0],
        };
        let later = ColRange {
            m: vec![-0.0f32, 0.0, f32::NAN],
            min: vec![-0.0f32, 0.0, f32::NAN],
        };
        r.merge(&later);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&r.m), bits(&[0.0, -0.0, 1.0]));
        assert_eq!(bits(&r.min), bits(&[0.0, -0.0, 1.0]));
    }
}
