//! The softmax family (softmax, log_softmax, logsumexp and the (max, sum) partials used to
//! merge chunks) run over a [`Layout`]: picks the path for the shape, cuts it into tasks and
//! runs them, checking for interrupts between waves of tasks.
//!
//! Paths: contiguous rows are read in place; short contiguous rows take the flat path;
//! reductions over a strided axis with a contiguous inner axis take the column path; long
//! rows are cut into fixed superblocks whose partial (max, sum) are merged in order; anything
//! else (other dtypes, byte order, `where=`, scattered axes) is gathered a row or a
//! superblock at a time into a buffer of the compute type.

use std::ops::Range;

use crate::elem::{DType, Float};
use crate::kernels::shift::{self, Shift, Temp, Unit};
use crate::kernels::tile::{self, Tile};
use crate::kernels::{row, short, with_const_len};
use crate::layout::{Dim, Layout, Walker, MAX_OPS};
use crate::parallel::{self, TASK_ELEMS};
use crate::simd::{self, Job, Simd};

mod columns;

use columns::run_columns;

/// Operand slots.
pub const X: usize = 0;
pub const OUT: usize = 1;
pub const WHERE: usize = 2;
pub const TEMP: usize = 3;
pub const STAT_M: usize = 4;
pub const STAT_S: usize = 5;

/// Rows longer than this are cut into superblocks (the row no longer sits in L2), unless
/// they are few and fit in `L2_ROW_BYTES`.
pub const BIG_ROW: usize = 1 << 16;
/// Rows per task at least, where each thread still gets one: see `RowsJob`.
const AHEAD_ROWS: usize = 8;
/// Rows of at most this many bytes, when there are at least `ROWS_TO_SPLIT_BY_ROW` of them,
/// stay on the row path: three passes over a row that sits in L2 (1 MiB and up on current
/// cores) make each exponential once, where superblocks make it twice. The choice depends
/// on the shape only, so results stay the same for any thread count.
const L2_ROW_BYTES: usize = 1 << 19;
const ROWS_TO_SPLIT_BY_ROW: usize = 8;
/// Superblock length: the unit of work and of the fixed merge order for long rows.
pub const SUPERBLOCK: usize = 1 << 14;
/// Short rows of arrays of at least this many bytes copy each block of input in first and
/// write its results (if any) with streaming stores (where the ISA has them). PERF: such arrays
/// outgrow the last-level cache of most machines; a flat copy keeps many more lines in
/// flight than the per-row window loops, and a plain store reads each line before writing
/// it. (1000000, 16) f32 softmax: 1.5x faster, log_softmax 1.15x, side by side. The row
/// path gained nothing from streaming softmax's rows (0.9-1.06x), so only its log_softmax
/// streams (see `log_shift_streamed`).
const STREAM_MIN_BYTES: usize = 1 << 24;
/// Elements per wave of tasks; between waves the caller checks for Ctrl-C.
/// (About 2M elements: tens of milliseconds on the slowest, converting paths.)
const WAVE_ELEMS: usize = 1 << 21;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Softmax,
    LogSoftmax,
    LogSumExp,
    /// Per-row max (into STAT_M) and sum of exp(x - max) (into STAT_S).
    Stats,
    /// Softmax from given STAT_M and STAT_S.
    Finish,
    /// log_softmax from given STAT_M and STAT_S.
    FinishLog,
}

impl Kind {
    fn writes_rows(self) -> bool {
        matches!(
            self,
            Kind::Softmax | Kind::LogSoftmax | Kind::Finish | Kind::FinishLog
        )
    }
    fn is_log(self) -> bool {
        matches!(self, Kind::LogSoftmax | Kind::FinishLog)
    }
    fn is_finish(self) -> bool {
        matches!(self, Kind::Finish | Kind::FinishLog)
    }
}

/// Runs `$body` with the constant `$K` set to `$kind`: code inlined into `$body` that reads
/// the kind from `$K` keeps only that kind's branches.
macro_rules! with_const_kind {
    ($kind:expr, $K:ident => $body:expr) => {
        with_const_kind!(
            @arms $kind, $K, $body, [Softmax, LogSoftmax, LogSumExp, Stats, Finish, FinishLog]
        )
    };
    (@arms $kind:expr, $K:ident, $body:expr, [$($v:ident),*]) => {
        match $kind {
            $(Kind::$v => {
                const $K: Kind = Kind::$v;
                $body
            })*
        }
    };
}

/// What a row with no mass gives (see API.md, "Special values").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyRows {
    /// All -inf: NaN; all excluded by `where`: 0 (log: -inf).
    Default,
    Nan,
    Zero,
}

/// One array: base pointer, storage dtype, byte order.
#[derive(Clone, Copy, Debug)]
pub struct Operand {
    pub ptr: *mut u8,
    pub dtype: DType,
    pub swapped: bool,
}

impl Operand {
    pub const NONE: Operand = Operand {
        ptr: std::ptr::null_mut(),
        dtype: DType::F64,
        swapped: false,
    };
}

// SAFETY: an Operand is a plain address; the binding keeps the arrays alive and borrowed for
// the whole call, and tasks touch disjoint output elements.
unsafe impl Send for Operand {}
// SAFETY: as above.
unsafe impl Sync for Operand {}

/// A checked request: operands validated and laid out by the binding.
#[derive(Debug)]
pub struct Request {
    pub kind: Kind,
    pub layout: Layout,
    pub ops: [Operand; MAX_OPS],
    pub has_where: bool,
    /// Scalar temperature; ignored when `per_row_temp` (float64 values in the TEMP slot).
    pub temperature: f64,
    pub per_row_temp: bool,
    pub empty_rows: EmptyRows,
    /// `out` is `x` itself (same address, strides and dtype).
    pub in_place: bool,
    /// f32 or f64.
    pub compute: DType,
}

/// Returned when the interrupt check fired between waves.
#[derive(Debug, PartialEq, Eq)]
pub struct Interrupted;

/// Run the request. `interrupted` is polled between waves of work.
pub fn run(req: &Request, interrupted: &mut dyn FnMut() -> bool) -> Result<(), Interrupted> {
    match req.compute {
        DType::F32 => run_typed::<f32>(req, interrupted),
        _ => run_typed::<f64>(req, interrupted),
    }
}

/// Everything a task needs, fixed for the call.
struct Ctx<'a, F> {
    req: &'a Request,
    d: usize,
    /// The rows of x can be used in place as `&[F]`.
    x_direct: bool,
    /// The rows of out can be written in place as `&mut [F]`.
    out_direct: bool,
    /// The array is large enough for the short-row path to copy its input in and stream its
    /// results out (see `STREAM_MIN_BYTES`).
    large: bool,
    _f: std::marker::PhantomData<F>,
}

impl<F: Float> Ctx<'_, F> {
    fn row_dims(&self) -> &[Dim] {
        &self.req.layout.row
    }

    /// Base address of operand `k` for the row at outer offsets `offs`.
    #[inline(always)]
    fn base(&self, k: usize, offs: &[isize; MAX_OPS]) -> *mut u8 {
        let op = &self.req.ops[k];
        // Offsets stay inside the operand's memory: they come from its own shape and strides.
        op.ptr.wrapping_offset(self.req.layout.offsets[k] + offs[k])
    }

    #[inline(always)]
    fn shift_for(&self, offs: &[isize; MAX_OPS]) -> f64 {
        if self.req.per_row_temp {
            // SAFETY: the TEMP operand is a float64 array broadcast over the outer axes.
            unsafe { f64::load(self.base(TEMP, offs), DType::F64, false) }
        } else {
            self.req.temperature
        }
    }

    /// The row's values `range` (flat positions) as the compute type, masked by `where`,
    /// appended to `dst`. Returns how many are included.
    ///
    /// # Safety
    /// `offs` must be the offsets of a row of this request.
    #[inline(always)]
    unsafe fn gather(
        &self,
        offs: &[isize; MAX_OPS],
        range: Range<usize>,
        dst: &mut Vec<F>,
    ) -> usize {
        let x = &self.req.ops[X];
        let xb = self.base(X, offs);
        let wb = self.base(WHERE, offs);
        let mut included = 0;
        dst.clear();
        let mut w = Walker::at(self.row_dims(), range.start);
        for _ in range {
            // SAFETY: the walker stays within the row, whose elements are readable.
            unsafe {
                let mut v = F::load(xb.wrapping_offset(w.offsets[X]), x.dtype, x.swapped);
                if self.req.has_where {
                    if wb.wrapping_offset(w.offsets[WHERE]).read() == 0 {
                        v = F::NEG_INF;
                    } else {
                        included += 1;
                    }
                }
                dst.push(v);
            }
            w.advance();
        }
        if self.req.has_where {
            included
        } else {
            dst.len()
        }
    }

    /// Write `src` to the row's output positions starting at flat position `start`.
    ///
    /// # Safety
    /// `offs` must be the offsets of a row of this request, whose out is writable.
    #[inline(always)]
    unsafe fn scatter(&self, offs: &[isize; MAX_OPS], start: usize, src: &[F]) {
        let ob = self.base(OUT, offs);
        let dt = self.req.ops[OUT].dtype;
        let mut w = Walker::at(self.row_dims(), start);
        for &v in src {
            // SAFETY: the walker stays within the row of out, which is writable.
            unsafe { v.store(ob.wrapping_offset(w.offsets[OUT]), dt) };
            w.advance();
        }
    }

    /// Whether the row path reads rows of x in place: `x_direct`, and no result of the
    /// call overwrites x.
    #[inline(always)]
    fn rows_direct(&self) -> bool {
        self.x_direct && !(self.req.in_place && self.req.kind.writes_rows())
    }

    /// The row of x in place.
    ///
    /// # Safety
    /// Only when `x_direct`.
    #[inline(always)]
    unsafe fn x_slice(&self, offs: &[isize; MAX_OPS], range: Range<usize>) -> &[F] {
        let p = self.base(X, offs).cast::<F>();
        // SAFETY: x_direct means the row is `d` aligned, contiguous elements of type F.
        unsafe { std::slice::from_raw_parts(p.add(range.start), range.len()) }
    }

    /// The row of out in place.
    ///
    /// # Safety
    /// Only when `out_direct`; no other live reference to these elements.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn out_slice(&self, offs: &[isize; MAX_OPS], range: Range<usize>) -> &mut [F] {
        let p = self.base(OUT, offs).cast::<F>();
        // SAFETY: out_direct means the row is aligned contiguous F; tasks own disjoint rows.
        unsafe { std::slice::from_raw_parts_mut(p.add(range.start), range.len()) }
    }

    /// Store a per-row scalar result into operand `k`.
    #[inline(always)]
    fn put(&self, k: usize, offs: &[isize; MAX_OPS], v: F) {
        let dt = self.req.ops[k].dtype;
        // SAFETY: per-row outputs have one writable element per outer position.
        unsafe { v.store(self.base(k, offs), dt) }
    }

    #[inline(always)]
    fn get_stat(&self, k: usize, offs: &[isize; MAX_OPS]) -> F {
        let op = &self.req.ops[k];
        // SAFETY: STAT_M / STAT_S inputs have one readable element per outer position.
        unsafe { F::load(self.base(k, offs), op.dtype, op.swapped) }
    }
}

/// The summary of a row whose maximum is not finite, or that contains NaN.
#[derive(Clone, Copy, Debug)]
struct Special {
    nan: bool,
    /// Maximum: +inf (mass on the +inf entries) or -inf (no mass).
    m: f64,
    /// Number of +inf entries.
    posinf: f64,
    /// Whether the row has any element `where` keeps.
    any_included: bool,
}

impl Special {
    fn scan<F: Float>(xs: &[F], any_included: bool) -> Special {
        let mut s = Special {
            nan: false,
            m: f64::NEG_INFINITY,
            posinf: 0.0,
            any_included,
        };
        s.add(xs);
        s
    }

    fn add<F: Float>(&mut self, xs: &[F]) {
        for &v in xs {
            if v.is_nan() {
                self.nan = true;
            } else if v == F::INF {
                self.posinf += 1.0;
                self.m = f64::INFINITY;
            }
        }
    }

    /// An empty row: NaN or zero mass.
    fn empty_is_nan(&self, rule: EmptyRows) -> bool {
        match rule {
            EmptyRows::Nan => true,
            EmptyRows::Zero => false,
            EmptyRows::Default => self.any_included,
        }
    }

    /// The output for element value `v` (softmax or log_softmax).
    #[inline(always)]
    fn value<F: Float>(&self, v: F, log: bool, rule: EmptyRows) -> F {
        if self.nan {
            return F::NAN;
        }
        if self.m == f64::INFINITY {
            return match (v == F::INF, log) {
                (true, false) => F::from_f64(1.0 / self.posinf),
                (true, true) => F::from_f64(-self.posinf.ln()),
                (false, false) => F::ZERO,
                (false, true) => F::NEG_INF,
            };
        }
        match (self.empty_is_nan(rule), log) {
            (true, _) => F::NAN,
            (false, false) => F::ZERO,
            (false, true) => F::NEG_INF,
        }
    }

    /// logsumexp of the row, and its (max, sum) partials.
    fn lse(&self) -> (f64, f64, f64) {
        if self.nan {
            (f64::NAN, f64::NAN, f64::NAN)
        } else if self.m == f64::INFINITY {
            (f64::INFINITY, f64::INFINITY, self.posinf)
        } else {
            (f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0)
        }
    }

    /// From given partials (the finish kinds).
    fn from_stats(m: f64, s: f64) -> Special {
        Special {
            nan: m.is_nan() || s.is_nan(),
            m,
            posinf: s,
            any_included: true,
        }
    }
}

/// A task's buffers for `one_row`, on the request `ctx`.
struct Scratch<'c, F: Float> {
    x: Vec<F>,
    out: Vec<F>,
    logs: LogBatch,
    ctx: &'c Ctx<'c, F>,
}

impl<'c, F: Float> Scratch<'c, F> {
    fn new(ctx: &'c Ctx<'c, F>) -> Self {
        Scratch {
            x: Vec::new(),
            out: Vec::new(),
            logs: LogBatch::default(),
            ctx,
        }
    }
}

impl<F: Float> Drop for Scratch<'_, F> {
    /// The rows still waiting for their logs: no caller can forget them.
    #[inline(always)]
    fn drop(&mut self) {
        self.logs.flush(self.ctx);
    }
}

/// float32 logsumexp rows whose sums wait for their logs, taken `row::LOG_BATCH` at a time
/// in lanes (the same bits as one at a time). PERF: one row's log is a chain of dependent
/// steps that took ~8% of (64, 1000); in lanes, (64, 1000) and (1024, 1000) took 0.94x-0.95x
/// the time. Its `Scratch` flushes the last rows when dropped.
#[derive(Default)]
struct LogBatch {
    offs: [[isize; MAX_OPS]; row::LOG_BATCH],
    m_scaled: [f64; row::LOG_BATCH],
    accs: [row::Acc; row::LOG_BATCH],
    len: usize,
}

impl LogBatch {
    #[inline(always)]
    fn push<F: Float>(
        &mut self,
        ctx: &Ctx<'_, F>,
        offs: &[isize; MAX_OPS],
        m_scaled: f64,
        acc: row::Acc,
    ) {
        let i = self.len;
        (self.offs[i], self.m_scaled[i], self.accs[i]) = (*offs, m_scaled, acc);
        self.len += 1;
        if self.len == row::LOG_BATCH {
            self.flush(ctx);
        }
    }

    #[inline(always)]
    fn flush<F: Float>(&mut self, ctx: &Ctx<'_, F>) {
        let n = self.len;
        let mut logs = [(0.0, 0.0); row::LOG_BATCH];
        row::log_of_sums_into::<F>(&self.accs[..n], &mut logs[..n]);
        for ((offs, &m_scaled), &l) in self.offs.iter().zip(&self.m_scaled).zip(&logs[..n]) {
            put_lse(ctx, offs, m_scaled, l);
        }
        self.len = 0;
    }
}

fn run_typed<F: Float>(
    req: &Request,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Interrupted> {
    let l = &req.layout;
    let n = l.outer_len();
    let d = l.row_len();
    if n == 0 || (d == 0 && req.kind.writes_rows()) {
        return Ok(());
    }
    let size = std::mem::size_of::<F>() as isize;
    let aligned = |k: usize| l.is_aligned(k, req.ops[k].ptr, size as usize);
    let run1 = l.row_run();
    let x_direct = !req.has_where
        && req.ops[X].dtype == F::DTYPE
        && !req.ops[X].swapped
        && run1.is_some_and(|r| r.strides[X] == size)
        && aligned(X);
    let out_direct = req.kind.writes_rows()
        && req.ops[OUT].dtype == F::DTYPE
        && run1.is_some_and(|r| r.strides[OUT] == size)
        && aligned(OUT);
    let large = n * d * size as usize >= STREAM_MIN_BYTES;
    let ctx = Ctx::<F> {
        req,
        d,
        x_direct,
        out_direct,
        large,
        _f: std::marker::PhantomData,
    };

    // Column path: one strided reduced axis, the innermost outer axis contiguous.
    if let (Some(r), Some(inner)) = (run1, l.outer.last()) {
        let col_ok = !req.has_where
            && !req.per_row_temp
            && req.ops[X].dtype == F::DTYPE
            && !req.ops[X].swapped
            && aligned(X)
            && r.strides[X] != size
            && r.strides[X] > 0
            && inner.strides[X] == size
            && (!req.kind.writes_rows()
                || (req.ops[OUT].dtype == F::DTYPE && inner.strides[OUT] == size && aligned(OUT)));
        if col_ok {
            return run_columns(&ctx, interrupted);
        }
    }
    let fits_l2 = d * size as usize <= L2_ROW_BYTES && n >= ROWS_TO_SPLIT_BY_ROW;
    if d > BIG_ROW && !fits_l2 {
        return run_superblocks(&ctx, interrupted);
    }
    // Short rows laid end to end: longer ones where the ISA takes them as tiles.
    if let [outer] = l.outer.as_slice() {
        let row_bytes = d as isize * size;
        let short_max = if simd::selected().tiles() {
            tile::COLS
        } else {
            short::SHORT_MAX
        };
        let short_ok = x_direct
            && !req.per_row_temp
            && !req.kind.is_finish()
            && (2..=short_max).contains(&d)
            && outer.strides[X] == row_bytes
            && (!req.kind.writes_rows() || (out_direct && outer.strides[OUT] == row_bytes));
        if short_ok {
            let job = ShortJob { ctx: &ctx };
            let tasks = n.div_ceil(short::SHORT_ROWS);
            return in_waves(&job, tasks, short::SHORT_ROWS * d, interrupted);
        }
    }
    // Long rows go several to a task (as many as leave each thread one), so that each but
    // the first takes its extremes during the exp pass of the row before (`row::Ahead`).
    let ahead_rows = AHEAD_ROWS.min(n.div_ceil(parallel::num_threads()));
    let rows_per_task = (TASK_ELEMS / d.max(1)).max(ahead_rows).clamp(1, n);
    let job = RowsJob {
        ctx: &ctx,
        rows_per_task,
    };
    in_waves(
        &job,
        n.div_ceil(rows_per_task),
        rows_per_task * d.max(1),
        interrupted,
    )
}

/// Run `tasks` tasks of about `task_elems` elements each, in waves.
pub fn in_waves<J: Job>(
    job: &J,
    tasks: usize,
    task_elems: usize,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Interrupted> {
    // At least one task per thread in a wave, or big tasks (column tiles) would run alone.
    let per_wave = (WAVE_ELEMS / task_elems.max(1)).max(parallel::num_threads());
    let mut start = 0;
    while start < tasks {
        let end = (start + per_wave).min(tasks);
        parallel::run_range(job, start..end, (end - start) * task_elems);
        start = end;
        if start < tasks && interrupted() {
            return Err(Interrupted);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Rows that fit in L2: three passes per row.

struct RowsJob<'a, F> {
    ctx: &'a Ctx<'a, F>,
    rows_per_task: usize,
}

impl<F: Float> Job for RowsJob<'_, F> {
    /// PERF: each kind's rows in a function of their own (`Simd::outline`). With every kind
    /// and row variant inlined into one body per ISA, those bodies reached 2 MB and the
    /// release build spent most of its 40-80 minutes on them.
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        with_const_kind!(self.ctx.req.kind, K => S::outline(
            #[inline(always)]
            || self.rows::<S>(task, K),
        ))
    }
}

impl<F: Float> RowsJob<'_, F> {
    /// The rows of `task`; `kind` is the request's.
    #[inline(always)]
    fn rows<S: Simd>(&self, task: usize, kind: Kind) {
        let ctx = self.ctx;
        let n = ctx.req.layout.outer_len();
        let start = task * self.rows_per_task;
        let end = (start + self.rows_per_task).min(n);
        let mut sc = Scratch::new(ctx);
        let mut w = Walker::at(&ctx.req.layout.outer, start);
        let ahead_ok = ctx.rows_direct() && !kind.is_finish();
        // The current row's extremes where the row before took them in (`row::Ahead`).
        let mut known = None;
        for i in start..end {
            let offs = w.offsets;
            w.advance();
            let next = if ahead_ok && i + 1 < end {
                // SAFETY: rows_direct, and w is at the next row of this task.
                Some(unsafe { ctx.x_slice(&w.offsets, 0..ctx.d) })
            } else {
                None
            };
            let t = ctx.shift_for(&offs);
            known = if t == 1.0 {
                one_row::<F, S, Unit>(ctx, kind, &offs, Unit, (known, next), &mut sc)
            } else {
                let sh = Temp::new(t);
                one_row::<F, S, Temp<F>>(ctx, kind, &offs, sh, (known, next), &mut sc)
            };
        }
        if ctx.large {
            S::stream_fence(); // log_shift_streamed
        }
    }
}

/// One row, `kind` being the request's: its extremes are `known` where the row before took
/// them in; `next`, where given, is the next row, whose extremes are returned where this
/// row's exp pass took them in.
///
/// No closures here (`unwrap_or_else`, `map`): the compiler kept some out of line, where
/// they lacked the target features of the job body (the AVX2 level took its maxima in SSE2
/// code).
#[inline(always)]
fn one_row<F: Float, S: Simd, Sh: Shift<F>>(
    ctx: &Ctx<'_, F>,
    kind: Kind,
    offs: &[isize; MAX_OPS],
    sh: Sh,
    (known, next): (Option<(F, F)>, Option<&[F]>),
    sc: &mut Scratch<'_, F>,
) -> Option<(F, F)> {
    let d = ctx.d;
    let mut included = d;
    let xs: &[F] = if ctx.rows_direct() {
        // SAFETY: rows_direct.
        unsafe { ctx.x_slice(offs, 0..d) }
    } else {
        // SAFETY: offs is a row of this request.
        included = unsafe { ctx.gather(offs, 0..d, &mut sc.x) };
        &sc.x
    };
    let (m, min, acc) = if kind.is_finish() {
        let m = ctx.get_stat(STAT_M, offs);
        let s = ctx.get_stat(STAT_S, offs).to_f64();
        (
            m,
            F::NEG_INF,
            row::Acc {
                hi: s,
                lo: 0.0,
                count: 0.0,
            },
        )
    } else {
        let (m, min) = match known {
            Some(e) => e,
            None => row::max_min::<F, S>(xs),
        };
        (m, min, row::Acc::default())
    };
    let finite = m.is_finite();
    if !finite || (kind.is_finish() && acc.value().is_nan()) {
        let sp = if kind.is_finish() {
            Special::from_stats(m.to_f64(), acc.value())
        } else {
            Special::scan(xs, included > 0)
        };
        write_special(ctx, offs, &sp, xs, &mut sc.out);
        return None;
    }
    let mut ahead = match next {
        Some(x) => Some(row::Ahead::new(x)),
        None => None,
    };
    if row::normal_range(m, min, sh) {
        // PERF: the exp pass's shift by Fast2Sum where the row allows (3 flops of its ~20).
        shift::with_exact_shift!(sh, m, min, s2 => {
            let bufs = (&mut sc.out, &mut sc.logs);
            row_body::<F, S, _, true>(ctx, kind, offs, s2, xs, (m, min, acc), ahead.as_mut(), bufs)
        });
    } else {
        row_body::<F, S, Sh, false>(
            ctx,
            kind,
            offs,
            sh,
            xs,
            (m, min, acc),
            ahead.as_mut(),
            (&mut sc.out, &mut sc.logs),
        );
    }
    // None where the kind's pass took nothing in: that row then takes its own.
    match ahead {
        Some(a) => a.extremes::<S>(),
        None => None,
    }
}

/// One row with a finite maximum `m` and minimum `min` (-inf where not known) (and, for
/// the finishing kinds, its sum `acc`); `ahead` as in `row::sum_exp`; `buf` holds results
/// that are not written in place, `logs` the logsumexp rows that wait for their logs.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_body<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    ctx: &Ctx<'_, F>,
    kind: Kind,
    offs: &[isize; MAX_OPS],
    sh: Sh,
    xs: &[F],
    (m, min, acc): (F, F, row::Acc),
    ahead: Option<&mut row::Ahead<'_, F>>,
    (buf, logs): (&mut Vec<F>, &mut LogBatch),
) {
    let d = ctx.d;
    match kind {
        // PERF: f64's log in lanes (a longer form, with two divisions) took 1.06x-1.13x the
        // time of one row at a time, so f64 keeps that.
        Kind::LogSumExp if F::DTYPE != DType::F64 => {
            let acc = row::sum_exp::<F, S, Sh, NORMAL>(xs, m, sh, ahead);
            logs.push(ctx, offs, sh.apply(m.to_f64()), acc);
        }
        Kind::LogSumExp | Kind::Stats => {
            let acc = row::sum_exp::<F, S, Sh, NORMAL>(xs, m, sh, ahead);
            put_stats(ctx, offs, sh.apply(m.to_f64()), m, acc);
        }
        _ => {
            let out: &mut [F] = if ctx.out_direct {
                // SAFETY: out_direct; this task owns the row.
                unsafe { ctx.out_slice(offs, 0..d) }
            } else {
                buf.resize(d, F::ZERO);
                buf
            };
            match kind {
                Kind::Softmax => {
                    let acc = row::sum_exp_into::<F, S, Sh, NORMAL>(xs, m, sh, out, ahead);
                    row::scale::<F, S>(out, F::recip(acc.value()));
                }
                Kind::LogSoftmax => {
                    let acc = row::sum_exp::<F, S, Sh, NORMAL>(xs, m, sh, ahead);
                    let ls = row::log_of_sum::<F>(acc);
                    if ctx.large && ctx.out_direct && d * size_of::<F>() >= STREAM_ROW_MIN_BYTES {
                        log_shift_streamed::<F, S, Sh>(xs, m, min, sh, ls, out);
                    } else {
                        row::log_shift::<F, S, Sh>(xs, m, min, sh, ls, out);
                    }
                }
                Kind::Finish => {
                    row::exp_scale::<F, S, Sh, NORMAL>(xs, m, sh, F::recip(acc.value()), out)
                }
                _ => row::log_shift::<F, S, Sh>(
                    xs,
                    m,
                    min,
                    sh,
                    row::log_of_sum::<F>(row::Acc { count: 0.0, ..acc }),
                    out,
                ),
            }
            if !ctx.out_direct {
                // SAFETY: offs is a row of this request.
                unsafe { ctx.scatter(offs, 0, buf) };
            }
        }
    }
}

/// Elements per block of `log_shift_streamed`: 4 KiB of f32, which stay in L1.
const STREAM_BLOCK: usize = 1024;
/// The shortest row whose log_softmax results stream (`log_shift_streamed`).
const STREAM_ROW_MIN_BYTES: usize = 4096;

/// `row::log_shift` (elementwise, so the same bits) a block at a time into a cached
/// buffer, then into `out` by streaming stores. PERF: log_softmax's write pass makes no
/// exponential, so in arrays of `STREAM_MIN_BYTES` or more its plain stores (each reading
/// its line first) were its limit. One thread, caches flushed, f32: (4096, 4096) 0.74x the
/// time (f64 0.74x, two threads 0.76x), (16384, 1024) 0.80x, (21845, 768) 0.92x, but
/// (32768, 512) 1.03x, hence `STREAM_ROW_MIN_BYTES`.
#[inline(always)]
fn log_shift_streamed<F: Float, S: Simd, Sh: Shift<F>>(
    xs: &[F],
    m: F,
    min: F,
    sh: Sh,
    log_sum: (f64, f64),
    out: &mut [F],
) {
    let mut block = [F::ZERO; STREAM_BLOCK];
    for (x, o) in xs.chunks(STREAM_BLOCK).zip(out.chunks_mut(STREAM_BLOCK)) {
        let b = &mut block[..x.len()];
        row::log_shift::<F, S, Sh>(x, m, min, sh, log_sum, b);
        S::stream_copy(o, b);
    }
}

/// Store logsumexp (m / T + log sum) or the (max, sum) partials of one row.
#[inline(always)]
fn put_stats<F: Float>(
    ctx: &Ctx<'_, F>,
    offs: &[isize; MAX_OPS],
    m_scaled: f64,
    m: F,
    acc: row::Acc,
) {
    if ctx.req.kind == Kind::LogSumExp {
        put_lse(ctx, offs, m_scaled, row::log_of_sum::<F>(acc));
    } else {
        let s = acc.value();
        ctx.put(STAT_M, offs, if s.is_nan() { F::NAN } else { m });
        ctx.put(STAT_S, offs, F::from_f64(s));
    }
}

/// Store logsumexp, `m / T + log sum`, given log sum as `row::log_of_sum` makes it.
#[inline(always)]
fn put_lse<F: Float>(
    ctx: &Ctx<'_, F>,
    offs: &[isize; MAX_OPS],
    m_scaled: f64,
    log_sum: (f64, f64),
) {
    ctx.put(OUT, offs, F::from_f64(row::add_parts(m_scaled, log_sum)));
}

/// Outputs of a row with no finite maximum (or NaN partials), from its values `xs`.
fn write_special<F: Float>(
    ctx: &Ctx<'_, F>,
    offs: &[isize; MAX_OPS],
    sp: &Special,
    xs: &[F],
    buf: &mut Vec<F>,
) {
    let kind = ctx.req.kind;
    if kind.writes_rows() {
        let rule = ctx.req.empty_rows;
        let log = kind.is_log();
        let vals: Vec<F> = xs.iter().map(|&v| sp.value(v, log, rule)).collect();
        if ctx.out_direct {
            // SAFETY: out_direct; this task owns the row.
            unsafe { ctx.out_slice(offs, 0..xs.len()) }.copy_from_slice(&vals);
        } else {
            buf.clear();
            buf.extend_from_slice(&vals);
            // SAFETY: offs is a row of this request.
            unsafe { ctx.scatter(offs, 0, buf) };
        }
        return;
    }
    let (lse, m, s) = sp.lse();
    if kind == Kind::LogSumExp {
        ctx.put(OUT, offs, F::from_f64(lse));
    } else {
        ctx.put(STAT_M, offs, F::from_f64(m));
        ctx.put(STAT_S, offs, F::from_f64(s));
    }
}

// ---------------------------------------------------------------------------------------
// Short contiguous rows: scalar per-row work, flat exponentials.

struct ShortJob<'a, F> {
    ctx: &'a Ctx<'a, F>,
}

impl<F: Float> Job for ShortJob<'_, F> {
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        let t = self.ctx.req.temperature;
        if t == 1.0 {
            short_rows_d::<F, S, Unit>(self.ctx, task, Unit);
        } else {
            short_rows_d::<F, S, Temp<F>>(self.ctx, task, Temp::new(t));
        }
        if self.ctx.large {
            S::stream_fence();
        }
    }
}

/// PERF: common class counts get their own unrolled copy.
#[inline(always)]
fn short_rows_d<F: Float, S: Simd, Sh: Shift<F>>(ctx: &Ctx<'_, F>, task: usize, sh: Sh) {
    with_const_len!(ctx.d, [2, 3, 4, 8, 10, 16, 32], D => short_rows::<F, S, Sh, D>(ctx, task, sh))
}

#[inline(always)]
fn short_rows<F: Float, S: Simd, Sh: Shift<F>, const D: usize>(
    ctx: &Ctx<'_, F>,
    task: usize,
    sh: Sh,
) {
    let d = ctx.d;
    if S::TILES && d <= tile::COLS {
        return tile_rows::<F, S, Sh, D>(ctx, task, sh);
    }
    let n = ctx.req.layout.outer_len();
    let r0 = task * short::SHORT_ROWS;
    let rows = short::SHORT_ROWS.min(n - r0);
    if d > short::SHORT_MAX {
        // Rows for tiles, on an ISA selected since they were routed here (tests switch).
        rows_one_by_one::<F, S, Sh>(ctx, r0, rows, sh);
        return;
    }
    let len = rows * d;
    let outer = ctx.req.layout.outer[0];
    let mut offs = [0isize; MAX_OPS];
    for (o, s) in offs.iter_mut().zip(outer.strides) {
        *o = s * r0 as isize;
    }
    let mut mexp = vec![F::ZERO; len];
    let mut m = vec![F::ZERO; rows];
    let mut e = vec![F::ZERO; len];
    let mut sums = vec![row::Acc::default(); rows];
    let kind = ctx.req.kind;
    let copy;
    // SAFETY: x_direct; rows r0..r0+rows are `len` contiguous elements.
    let xall = unsafe { ctx.x_slice(&offs, 0..len) };
    let xs: &[F] = if ctx.large || (ctx.req.in_place && kind.writes_rows()) {
        copy = xall.to_vec();
        &copy
    } else {
        xall
    };
    if !short::row_max_expand::<F, D>(xs, d, &mut m, &mut mexp) {
        // A row with no finite maximum: do this block row by row.
        rows_one_by_one::<F, S, Sh>(ctx, r0, rows, sh);
        return;
    }
    short::exp_flat::<F, S, Sh>(xs, &mexp, sh, &mut e);
    short::row_sums::<F, D>(xs, &e, &m, d, &mut sums);
    match kind {
        Kind::Softmax => {
            let inv: Vec<(F, F)> = sums.iter().map(|s| F::recip(s.value())).collect();
            // SAFETY: out_direct and contiguous over these rows; this task owns them.
            let out = unsafe { ctx.out_slice(&offs, 0..len) };
            if ctx.large {
                // mexp is free now: the results go there first.
                short::scale_rows::<F, S, D>(&e, d, &inv, &mut mexp);
                S::stream_copy(out, &mexp);
            } else {
                short::scale_rows::<F, S, D>(&e, d, &inv, out);
            }
        }
        Kind::LogSoftmax => {
            let logs = row::log_of_sums::<F>(&sums);
            // SAFETY: as above.
            let out = unsafe { ctx.out_slice(&offs, 0..len) };
            if ctx.large {
                // e is free now: the results go there first.
                short::log_rows::<F, S, Sh, D>(xs, d, &m, &logs, sh, &mut e);
                S::stream_copy(out, &e);
            } else {
                short::log_rows::<F, S, Sh, D>(xs, d, &m, &logs, sh, out);
            }
        }
        Kind::LogSumExp => {
            let logs = row::log_of_sums::<F>(&sums);
            let mut w = Walker::at(&ctx.req.layout.outer, r0);
            for (&mv, &ls) in m.iter().zip(&logs) {
                put_lse(ctx, &w.offsets, sh.apply(mv.to_f64()), ls);
                w.advance();
            }
        }
        _ => {
            let mut w = Walker::at(&ctx.req.layout.outer, r0);
            for (&mv, &acc) in m.iter().zip(&sums) {
                put_stats(ctx, &w.offsets, sh.apply(mv.to_f64()), mv, acc);
                w.advance();
            }
        }
    }
}

/// Rows `first..first + rows` of a short-row block by the general row path, for blocks
/// with a row whose maximum is not finite: a rare case, out of line (`Simd::outline`) so
/// that each short-row variant does not carry a copy of the row path.
#[inline(always)]
fn rows_one_by_one<F: Float, S: Simd, Sh: Shift<F>>(
    ctx: &Ctx<'_, F>,
    first: usize,
    rows: usize,
    sh: Sh,
) {
    S::outline(
        #[inline(always)]
        || {
            let mut sc = Scratch::new(ctx);
            let mut w = Walker::at(&ctx.req.layout.outer, first);
            for _ in 0..rows {
                one_row::<F, S, Sh>(ctx, ctx.req.kind, &w.offsets, sh, (None, None), &mut sc);
                w.advance();
            }
        },
    )
}

/// The short rows of one task, `tile::TILE` at a time, as tiles (see `kernels::tile`).
#[inline(always)]
fn tile_rows<F: Float, S: Simd, Sh: Shift<F>, const D: usize>(
    ctx: &Ctx<'_, F>,
    task: usize,
    sh: Sh,
) {
    let d = ctx.d;
    let n = ctx.req.layout.outer_len();
    let r0 = task * short::SHORT_ROWS;
    let end = n.min(r0 + short::SHORT_ROWS);
    let outer = ctx.req.layout.outer[0];
    let kind = ctx.req.kind;
    let size = std::mem::size_of::<F>();
    // logsumexp into contiguous values of this type: a tile's results are one slice.
    let lse_direct = kind == Kind::LogSumExp
        && ctx.req.ops[OUT].dtype == F::DTYPE
        && outer.strides[OUT] == size as isize
        && ctx.req.layout.is_aligned(OUT, ctx.req.ops[OUT].ptr, size);
    let mut t: Tile<F> = [[F::ZERO; tile::TILE]; tile::COLS];
    let mut e = t;
    // Results on their way to streaming stores.
    let mut buf = [F::ZERO; tile::TILE * tile::COLS];
    for g in (r0..end).step_by(tile::TILE) {
        let rows = tile::TILE.min(end - g);
        let len = rows * d;
        let mut offs = [0isize; MAX_OPS];
        for (o, s) in offs.iter_mut().zip(outer.strides) {
            *o = s * g as isize;
        }
        // SAFETY: x_direct; rows g..g + rows are `len` contiguous elements. Only read here,
        // before any result of these rows is written (in place, out is the same memory).
        F::load_tile::<S>(unsafe { ctx.x_slice(&offs, 0..len) }, d, &mut t);
        let (m, min) = tile::max_min::<F, D>(&t, d);
        if !tile::all_finite(&m, rows) {
            // A row with no finite maximum: these rows one by one.
            rows_one_by_one::<F, S, Sh>(ctx, g, rows, sh);
            continue;
        }
        let sums = if tile::all_normal(&m, &min, rows, sh) {
            tile::exp_sums::<F, S, Sh, D, true>(&t, d, &m, sh, &mut e)
        } else {
            tile::exp_sums::<F, S, Sh, D, false>(&t, d, &m, sh, &mut e)
        };
        let res = match kind {
            Kind::Softmax => {
                tile::scale::<F, S, D>(&mut e, d, &sums);
                &e
            }
            Kind::LogSoftmax => {
                tile::log::<F, S, Sh, D>(&t, d, &m, &sums.logs::<F>(), sh, &mut e);
                &e
            }
            Kind::LogSumExp if lse_direct => {
                let logs = sums.logs::<F>();
                let mut lse = [F::ZERO; tile::TILE];
                for (r, (v, &mv)) in lse.iter_mut().zip(&m).enumerate() {
                    *v = F::from_f64(row::add_parts(sh.apply(mv.to_f64()), logs.get(r)));
                }
                let p = ctx.base(OUT, &offs).cast::<F>();
                // SAFETY: lse_direct: one aligned F per row, contiguous across these rows,
                // which this task owns.
                tile::put_lanes(&lse, unsafe { std::slice::from_raw_parts_mut(p, rows) });
                continue;
            }
            _ => {
                // No closure here: out of line it could lack the target features.
                let logs = if kind == Kind::LogSumExp {
                    Some(sums.logs::<F>())
                } else {
                    None
                };
                let mut w = Walker::at(&ctx.req.layout.outer, g);
                for (r, &mv) in m.iter().enumerate().take(rows) {
                    let m_scaled = sh.apply(mv.to_f64());
                    match &logs {
                        Some(l) => put_lse(ctx, &w.offsets, m_scaled, l.get(r)),
                        None => put_stats(ctx, &w.offsets, m_scaled, mv, sums.acc(r)),
                    }
                    w.advance();
                }
                continue;
            }
        };
        // SAFETY: out_direct and contiguous over these rows; this task owns them, and x is
        // no longer borrowed.
        let out = unsafe { ctx.out_slice(&offs, 0..len) };
        if ctx.large {
            F::store_tile::<S>(res, d, &mut buf[..len]);
            S::stream_copy(out, &buf[..len]);
        } else {
            F::store_tile::<S>(res, d, out);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Long rows: superblocks with a fixed merge order.

/// Partial statistics of one superblock.
#[derive(Clone, Copy, Debug)]
struct Partial {
    m: f64,
    /// The superblock's own minimum, for the write pass's choice of exp (see
    /// `row::normal_range`); not taken by the max-only pass.
    min: f64,
    acc: row::Acc,
    /// Contains +inf, or NaN, or only -inf: the row needs the special pass.
    special: bool,
    included: usize,
    /// The superblock's terms e^((x - max) / T), relative to the row's maximum, are in `out`.
    terms: bool,
}

struct StatsJob<'a, F> {
    ctx: &'a Ctx<'a, F>,
    row0: usize,
    blocks: usize,
    parts: &'a [std::sync::Mutex<Partial>],
    /// Only the superblock maxima (the first pass of the f64 path, and of softmax that
    /// keeps its terms).
    max_only: bool,
    /// Per row: take the sums relative to this maximum rather than the superblock's own, so
    /// the merge needs no rescaling (whose exp would cost f64 results an ulp).
    shared_max: Option<&'a [f64]>,
    /// Leave the terms in `out` (see `keeps_terms`); requires `shared_max`.
    keep_terms: bool,
}

impl<F: Float> Job for StatsJob<'_, F> {
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        let ctx = self.ctx;
        let (r, b) = (self.row0 + task / self.blocks, task % self.blocks);
        let offs = Walker::at(&ctx.req.layout.outer, r).offsets;
        let range = b * SUPERBLOCK..((b + 1) * SUPERBLOCK).min(ctx.d);
        let mut buf = Vec::new();
        let mut included = range.len();
        let xs: &[F] = if ctx.x_direct {
            // SAFETY: x_direct.
            unsafe { ctx.x_slice(&offs, range.clone()) }
        } else {
            // SAFETY: offs is a row of this request.
            included = unsafe { ctx.gather(&offs, range.clone(), &mut buf) };
            &buf
        };
        let (own, lo) = if self.max_only {
            (row::max(xs), F::NEG_INF)
        } else {
            row::max_min::<F, S>(xs)
        };
        let m = match self.shared_max {
            Some(ms) if own.is_finite() => F::from_f64(ms[task / self.blocks]),
            _ => own,
        };
        let t = ctx.shift_for(&offs);
        let finite = m.is_finite();
        let terms = self.keep_terms && finite;
        let acc = if self.max_only || !finite {
            row::Acc::default()
        } else if terms {
            // SAFETY: out_direct (`keeps_terms`); this task owns this superblock of the row.
            let out = unsafe { ctx.out_slice(&offs, range) };
            if t == 1.0 {
                row::sum_exp_into_spanned::<F, S, Unit>(xs, m, lo, Unit, out)
            } else {
                row::sum_exp_into_spanned::<F, S, Temp<F>>(xs, m, lo, Temp::new(t), out)
            }
        } else if t == 1.0 {
            row::sum_exp_spanned::<F, S, Unit>(xs, m, lo, Unit)
        } else {
            row::sum_exp_spanned::<F, S, Temp<F>>(xs, m, lo, Temp::new(t))
        };
        let special = own == F::INF
            || acc.value().is_nan()
            || (own == F::NEG_INF && xs.iter().any(|v| v.is_nan()));
        let p = Partial {
            m: m.to_f64(),
            min: lo.to_f64(),
            acc,
            special,
            included,
            terms,
        };
        *self.parts[task].lock().unwrap_or_else(|e| e.into_inner()) = p;
    }
}

/// The merged statistics of a long row.
#[derive(Clone, Copy, Debug)]
struct Merged {
    m: f64,
    acc: row::Acc,
    special: bool,
    any_included: bool,
}

fn merge_row(parts: &[Partial], t: f64) -> Merged {
    let mut out = Merged {
        m: f64::NEG_INFINITY,
        acc: row::Acc::default(),
        special: false,
        any_included: false,
    };
    for p in parts {
        out.special |= p.special;
        out.any_included |= p.included > 0;
        if p.special || p.m == f64::NEG_INFINITY {
            continue;
        }
        if p.m > out.m {
            let f = ((out.m - p.m) / t).exp();
            out.acc = out.acc.scaled(f);
            out.acc.merge(p.acc);
            out.m = p.m;
        } else {
            let f = ((p.m - out.m) / t).exp();
            if p.m == out.m {
                out.acc.merge(p.acc);
            } else {
                out.acc.merge(p.acc.scaled(f));
            }
        }
    }
    out.special |= out.m == f64::NEG_INFINITY;
    out
}

struct WriteJob<'a, F> {
    ctx: &'a Ctx<'a, F>,
    row0: usize,
    blocks: usize,
    merged: &'a [Merged],
    /// The statistics pass's partials, for each superblock's minimum.
    parts: &'a [Partial],
}

impl<F: Float> Job for WriteJob<'_, F> {
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        let ctx = self.ctx;
        let (ri, b) = (task / self.blocks, task % self.blocks);
        let mg = self.merged[ri];
        if mg.special {
            return; // written by the special pass
        }
        let offs = Walker::at(&ctx.req.layout.outer, self.row0 + ri).offsets;
        let range = b * SUPERBLOCK..((b + 1) * SUPERBLOCK).min(ctx.d);
        let inv = F::recip(mg.acc.value());
        if self.parts[task].terms {
            // SAFETY: out_direct (`keeps_terms`); this task owns this superblock of the row.
            row::scale::<F, S>(unsafe { ctx.out_slice(&offs, range) }, inv);
            return;
        }
        let mut bx = Vec::new();
        let xs: &[F] = if ctx.x_direct && !ctx.req.in_place {
            // SAFETY: x_direct.
            unsafe { ctx.x_slice(&offs, range.clone()) }
        } else {
            // SAFETY: offs is a row of this request.
            unsafe { ctx.gather(&offs, range.clone(), &mut bx) };
            &bx
        };
        let mut bo = Vec::new();
        let out: &mut [F] = if ctx.out_direct {
            // SAFETY: out_direct; this task owns this superblock of the row.
            unsafe { ctx.out_slice(&offs, range.clone()) }
        } else {
            bo.resize(range.len(), F::ZERO);
            &mut bo
        };
        let m = F::from_f64(mg.m);
        let min = F::from_f64(self.parts[task].min);
        let t = ctx.shift_for(&offs);
        let log = ctx.req.kind.is_log();
        let ls = row::log_of_sum::<F>(mg.acc);
        match (log, t == 1.0) {
            (false, true) => row::exp_scale_spanned::<F, S, Unit>(xs, m, min, Unit, inv, out),
            (false, false) => {
                row::exp_scale_spanned::<F, S, Temp<F>>(xs, m, min, Temp::new(t), inv, out)
            }
            (true, true) => row::log_shift::<F, S, Unit>(xs, m, min, Unit, ls, out),
            (true, false) => row::log_shift::<F, S, Temp<F>>(xs, m, min, Temp::new(t), ls, out),
        }
        if !ctx.out_direct {
            // SAFETY: offs is a row of this request.
            unsafe { ctx.scatter(&offs, range.start, &bo) };
        }
    }
}

/// Whether softmax's statistics pass leaves each term in `out` relative to the row's
/// maximum, so that the write pass only scales it: each exponential made once instead of
/// twice (f32 pays for it with one more read of the row, the maximum first). Not in place,
/// where the special pass may still need the input, and not through a buffer.
fn keeps_terms<F: Float>(ctx: &Ctx<'_, F>) -> bool {
    ctx.req.kind == Kind::Softmax && ctx.out_direct && !ctx.req.in_place
}

fn run_superblocks<F: Float>(
    ctx: &Ctx<'_, F>,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Interrupted> {
    let n = ctx.req.layout.outer_len();
    let blocks = ctx.d.div_ceil(SUPERBLOCK);
    let rows_per_wave = (WAVE_ELEMS / ctx.d).max(1);
    let mut r0 = 0;
    while r0 < n {
        let rows = rows_per_wave.min(n - r0);
        let empty = Partial {
            m: f64::NEG_INFINITY,
            min: f64::NEG_INFINITY,
            acc: row::Acc::default(),
            special: false,
            included: 0,
            terms: false,
        };
        let parts: Vec<std::sync::Mutex<Partial>> = (0..rows * blocks)
            .map(|_| std::sync::Mutex::new(empty))
            .collect();
        let keep_terms = keeps_terms(ctx);
        // Softmax takes its sums relative to the row maximum whether or not it keeps its
        // terms, so that every `out` gets the same bits.
        let shared_first = F::DTYPE == DType::F64 || ctx.req.kind == Kind::Softmax;
        let shared: Option<Vec<f64>> = shared_first.then(|| {
            let job = StatsJob {
                ctx,
                row0: r0,
                blocks,
                parts: &parts,
                max_only: true,
                shared_max: None,
                keep_terms: false,
            };
            parallel::run_range(&job, 0..rows * blocks, rows * ctx.d);
            (0..rows)
                .map(|ri| {
                    let ps = &parts[ri * blocks..(ri + 1) * blocks];
                    ps.iter()
                        .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()).m)
                        .fold(f64::NEG_INFINITY, f64::max)
                })
                .collect()
        });
        let job = StatsJob {
            ctx,
            row0: r0,
            blocks,
            parts: &parts,
            max_only: false,
            shared_max: shared.as_deref(),
            keep_terms,
        };
        parallel::run_range(&job, 0..rows * blocks, rows * ctx.d);
        let parts: Vec<Partial> = parts
            .into_iter()
            .map(|p| p.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let mut merged = Vec::with_capacity(rows);
        let mut w = Walker::at(&ctx.req.layout.outer, r0);
        for ri in 0..rows {
            let t = ctx.shift_for(&w.offsets);
            let mg = merge_row(&parts[ri * blocks..(ri + 1) * blocks], t);
            merged.push(mg);
            if mg.special {
                special_long_row(ctx, &w.offsets, mg.any_included);
            } else if !ctx.req.kind.writes_rows() {
                let m = F::from_f64(mg.m);
                put_stats(ctx, &w.offsets, mg.m / t, m, mg.acc);
            }
            w.advance();
        }
        if ctx.req.kind.writes_rows() {
            let job = WriteJob {
                ctx,
                row0: r0,
                blocks,
                merged: &merged,
                parts: &parts,
            };
            parallel::run_range(&job, 0..rows * blocks, rows * ctx.d);
        }
        r0 += rows;
        if r0 < n && interrupted() {
            return Err(Interrupted);
        }
    }
    Ok(())
}

/// A long row with +inf, NaN or no mass: scan, then write, a superblock at a time.
fn special_long_row<F: Float>(ctx: &Ctx<'_, F>, offs: &[isize; MAX_OPS], any_included: bool) {
    let d = ctx.d;
    let mut buf = Vec::new();
    let mut sp = Special {
        nan: false,
        m: f64::NEG_INFINITY,
        posinf: 0.0,
        any_included,
    };
    for b in (0..d).step_by(SUPERBLOCK) {
        // SAFETY: offs is a row of this request.
        unsafe { ctx.gather(offs, b..(b + SUPERBLOCK).min(d), &mut buf) };
        sp.add(&buf);
    }
    if !ctx.req.kind.writes_rows() {
        write_special(ctx, offs, &sp, &[], &mut buf);
        return;
    }
    let (log, rule) = (ctx.req.kind.is_log(), ctx.req.empty_rows);
    for b in (0..d).step_by(SUPERBLOCK) {
        let range = b..(b + SUPERBLOCK).min(d);
        // SAFETY: offs is a row of this request.
        unsafe { ctx.gather(offs, range.clone(), &mut buf) };
        let vals: Vec<F> = buf.iter().map(|&v| sp.value(v, log, rule)).collect();
        // SAFETY: as above; out is writable.
        unsafe { ctx.scatter(offs, range.start, &vals) };
    }
}
