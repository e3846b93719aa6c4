//! Kernels over one contiguous row (or one block of a long row).
//!
//! Softmax of a row is three passes: the maximum; `exp(x - max)` with its sum; a scale by one
//! reciprocal of the sum (Blanchard, Higham & Higham 2021: this shifted form has a smaller
//! error bound than `exp(x - logsumexp)`). Sums are folded into an f64 compensated total
//! every `FOLD` elements, so rounding error grows with n / FOLD rather than n / lanes.

use crate::elem::{DType, Float};
use crate::kernels::log;
use crate::kernels::shift::{self, Form, Shift};
use crate::simd::Simd;

/// Independent accumulators per reduction: enough for one 512-bit register of f32.
pub const LANES: usize = 16;
/// Elements summed in the compute type before folding into the f64 total (16 per lane, so
/// each lane's sequential sum stays short).
pub const FOLD: usize = 256;

/// A row's sum of exponentials, kept as `count` (terms that are exactly 1: the maximum and
/// its ties) plus a compensated (Neumaier) f64 sum `hi + lo` of the rest. Keeping the ones
/// apart means `sum - 1`, and so log1p of it, is accurate when the maximum dominates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Acc {
    pub hi: f64,
    pub lo: f64,
    pub count: f64,
}

impl Acc {
    #[inline(always)]
    pub fn add(&mut self, v: f64) {
        let t = self.hi + v;
        if self.hi.abs() >= v.abs() {
            self.lo += (self.hi - t) + v;
        } else {
            self.lo += (v - t) + self.hi;
        }
        self.hi = t;
    }

    /// Add another sum taken relative to the same maximum.
    #[inline(always)]
    pub fn merge(&mut self, other: Acc) {
        self.add(other.hi);
        self.add(other.lo);
        self.count += other.count;
    }

    /// The sum less one (the maximum's own term) as `m1 + m1_lo`, without cancellation:
    /// `(count - 1) + hi + lo`, its first addition exact.
    #[inline(always)]
    pub fn minus_one(self) -> (f64, f64) {
        let (t, e1) = crate::kernels::shift::two_diff(self.count - 1.0, -self.hi);
        let m1 = t + (e1 + self.lo);
        (m1, (t - m1) + (e1 + self.lo))
    }

    /// This sum times `f` (< 1): every term moves into the rest.
    #[inline(always)]
    pub fn scaled(self, f: f64) -> Acc {
        let mut a = Acc::default();
        a.add(self.count * f);
        a.add(self.hi * f);
        a.add(self.lo * f);
        a
    }

    #[inline(always)]
    pub fn value(self) -> f64 {
        self.count + (self.hi + self.lo)
    }
}

/// The NaN-ignoring maximum; -inf for an empty slice. (A NaN in a row is caught later: it
/// makes the sum NaN.)
#[inline(always)]
pub fn max<F: Float>(x: &[F]) -> F {
    extreme::<F, true>(x)
}

/// The NaN-ignoring minimum; +inf for an empty slice.
#[inline(always)]
pub fn min<F: Float>(x: &[F]) -> F {
    extreme::<F, false>(x)
}

/// `a` if it lies beyond `b` (above it for the maximum): a NaN `a` never does, and on ties
/// `b` stays. The one step of every NaN-ignoring maximum and minimum, rows and columns alike.
#[inline(always)]
pub fn beyond<F: Float, const MAX: bool>(a: F, b: F) -> F {
    let wins = if MAX { a > b } else { a < b };
    if wins {
        a
    } else {
        b
    }
}

/// The NaN-ignoring maximum (`MAX`) or minimum, in `LANES` lanes (the tail's values in the
/// first lanes) folded by `fold_extreme`. The AVX-512 level has the same in intrinsics
/// (`Simd::max_min_lanes_f32`).
#[inline(always)]
fn extreme<F: Float, const MAX: bool>(x: &[F]) -> F {
    let mut acc = [if MAX { F::NEG_INF } else { F::INF }; LANES];
    extreme_lanes::<F, MAX>(x, &mut acc);
    fold_extreme::<F, MAX>(acc)
}

/// `extreme`'s lanes carried on over `x`: lane `i` takes `x[i]`, `x[i + LANES]`, ..., so a
/// row taken in blocks of whole chunks (the last block alone with a tail) gives the lanes
/// of one pass. PERF: more accumulators (to shorten the dependency chain) made the
/// compiler's vector code slower, up to element by element on AVX2.
#[inline(always)]
fn extreme_lanes<F: Float, const MAX: bool>(x: &[F], lanes: &mut [F; LANES]) {
    let mut acc = *lanes;
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = beyond::<F, MAX>(c[i], acc[i]);
        }
    }
    for (a, &v) in acc.iter_mut().zip(tail) {
        *a = beyond::<F, MAX>(v, *a);
    }
    *lanes = acc;
}

/// The lanes of `extreme` folded as a tree, so the per-row tail is a few dependent steps
/// rather than one per lane.
#[inline(always)]
pub fn fold_extreme<F: Float, const MAX: bool>(mut acc: [F; LANES]) -> F {
    for half in [8, 4, 2, 1] {
        for i in 0..half {
            acc[i] = beyond::<F, MAX>(acc[i + half], acc[i]);
        }
    }
    acc[0]
}

/// The lanes of a row's NaN-ignoring maximum and minimum, filled a block at a time.
#[derive(Clone, Copy, Debug)]
pub struct Extremes<F> {
    pub hi: [F; LANES],
    pub lo: [F; LANES],
}

/// Nothing taken in yet.
impl<F: Float> Default for Extremes<F> {
    #[inline(always)]
    fn default() -> Self {
        Extremes {
            hi: [F::NEG_INF; LANES],
            lo: [F::INF; LANES],
        }
    }
}

impl<F: Float> Extremes<F> {
    /// Take in `x`, the row's next block (whole chunks of `LANES` unless it is the last).
    #[inline(always)]
    pub fn take<S: Simd>(&mut self, x: &[F]) {
        F::max_min_lanes::<S>(x, self)
    }

    /// The (maximum, minimum) of all taken in, through the ISA's own fold
    /// (`Simd::fold_extremes_f32`).
    #[inline(always)]
    pub fn fold<S: Simd>(&self) -> (F, F) {
        F::fold_extremes::<S>(self)
    }

    /// The portable `fold`: each set of lanes folded as a tree (`fold_extreme`).
    #[inline(always)]
    pub fn fold_portable(&self) -> (F, F) {
        (
            fold_extreme::<F, true>(self.hi),
            fold_extreme::<F, false>(self.lo),
        )
    }
}

/// The NaN-ignoring (maximum, minimum), through the ISA's own loop: one read of the row
/// where the ISA has it in intrinsics (AVX-512), two passes of `extreme` elsewhere (written
/// as one portable loop, the two reductions vectorized into lane shuffles).
#[inline(always)]
pub fn max_min<F: Float, S: Simd>(x: &[F]) -> (F, F) {
    let mut e = Extremes::default();
    e.take::<S>(x);
    e.fold::<S>()
}

/// The portable `max_min`: two passes.
#[inline(always)]
pub fn max_min_portable<F: Float>(x: &[F]) -> (F, F) {
    (max(x), min(x))
}

/// The portable `Extremes::take`: two passes.
#[inline(always)]
pub fn max_min_lanes_portable<F: Float>(x: &[F], e: &mut Extremes<F>) {
    extreme_lanes::<F, true>(x, &mut e.hi);
    extreme_lanes::<F, false>(x, &mut e.lo);
}

/// Whether every exponent `(x - m) / T` of a row with maximum `m` and minimum `min` lies
/// where `Float::exp_normal` applies, so the row can skip the range checks.
#[inline(always)]
pub fn normal_range<F: Float, Sh: Shift<F>>(m: F, min: F, sh: Sh) -> bool {
    // In f64, where m - min is exact; NaN or infinite ranges fail the test.
    (min.to_f64() - m.to_f64()) * sh.inv() >= F::EXP_NORMAL_MIN
}

/// e^(hi + lo), by `Float::exp_normal` when the caller has checked the row's range.
#[inline(always)]
pub fn exp_of<F: Float, S: Simd, const NORMAL: bool>(hi: F, lo: F) -> F {
    if NORMAL {
        F::exp_normal::<S>(hi, lo)
    } else {
        F::exp::<S>(hi, lo)
    }
}

/// Writes `out[i] = exp((x[i] - m) / T)` for one block (at most `FOLD` long) and returns
/// the block's sum of the terms other than the exact ones (x == m), and their count.
#[inline(always)]
fn exp_block<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    x: &[F],
    m: F,
    sh: Sh,
    out: &mut [F],
) -> (f64, f64) {
    debug_assert_eq!(x.len(), out.len());
    // PERF: the terms are made in one loop and summed in another over the stored block (in
    // L1). Summed as they were made, the lane accumulators lived in stack memory and every
    // step waited on store forwarding.
    exps_into::<F, S, Sh, NORMAL>(x, m, sh, out, |e| e);
    sum_terms::<F, S>(x, m, out)
}

/// `exp_block`'s sum and count without its terms, for a block in `Float::exp_normal`'s
/// range on an ISA with the table form (`Float::has_exp_table`): the table form hands back
/// a register of terms, summed as they are made (the same lanes and order as
/// `masked_lane_sums`, so the same sums). PERF: interleaved A/B, one thread, f32:
/// logsumexp took 0.94x-0.99x the time of the two loops of `exp_block`; softmax, whose
/// terms are its results, 1.05x-1.11x, so it keeps the two loops. Only the tail's terms
/// are stored, in a register's worth of scratch; a tie is counted by one masked add.
#[inline(always)]
fn sum_block_table<F: Float, S: Simd, Sh: Shift<F>>(x: &[F], m: F, sh: Sh) -> (f64, f64) {
    let full = x.len() / LANES * LANES;
    let (mut acc, mut tops) = ([F::ZERO; LANES], [F::ZERO; LANES]);
    for xc in x[..full].chunks_exact(LANES) {
        let e = exp_table_lanes::<F, S, Sh>(xc, m, sh);
        for i in 0..LANES {
            let top = xc[i] == m;
            acc[i] = acc[i] + if top { F::ZERO } else { e[i] };
            tops[i] = if top { tops[i] + F::ONE } else { tops[i] };
        }
    }
    // Each lane counts at most FOLD / LANES ones, exact in any float type.
    let ones = fold_lanes(tops).to_f64();
    let mut tail = [F::ZERO; LANES];
    let tail = &mut tail[..x.len() - full];
    tail_into::<F, S, Sh, true>(x, m, sh, tail, full, |e| e);
    sum_tail(&x[full..], m, tail, (fold_lanes(acc).to_f64(), ones))
}

/// `exp((x[i] - m) / T)` for `LANES` values (`x` holds that many), all in
/// `Float::exp_normal`'s range, by the ISA's table form (`Float::exp_normal_lanes`; callers
/// check `Float::has_exp_table`).
#[inline(always)]
fn exp_table_lanes<F: Float, S: Simd, Sh: Shift<F>>(x: &[F], m: F, sh: Sh) -> [F; LANES] {
    let (mut hi, mut lo) = ([F::ZERO; LANES], [F::ZERO; LANES]);
    for i in 0..LANES {
        (hi[i], lo[i]) = sh.split::<S>(x[i], m);
    }
    F::exp_normal_lanes::<S>(hi, lo)
}

/// `exp((x[i] - m[i]) / T)` for `LANES` values each with its own maximum (the rows of a
/// tile), by the table form as `exp_table_lanes`.
#[inline(always)]
pub fn exp_table_lanes_each<F: Float, S: Simd, Sh: Shift<F>>(
    x: &[F],
    m: &[F],
    sh: Sh,
) -> [F; LANES] {
    let (mut hi, mut lo) = ([F::ZERO; LANES], [F::ZERO; LANES]);
    for i in 0..LANES {
        (hi[i], lo[i]) = sh.split::<S>(x[i], m[i]);
    }
    F::exp_normal_lanes::<S>(hi, lo)
}

/// Writes `out[i] = post(exp((x[i] - m) / T))`. With `NORMAL` on an ISA with a table form
/// (`Float::has_exp_table`), `LANES` values at a time by it, the tail as `tail_into` does.
#[inline(always)]
fn exps_into<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    x: &[F],
    m: F,
    sh: Sh,
    out: &mut [F],
    post: impl Fn(F) -> F,
) {
    debug_assert_eq!(x.len(), out.len());
    let mut done = 0;
    if NORMAL && F::has_exp_table::<S>() {
        done = x.len() / LANES * LANES;
        for (oc, xc) in out[..done]
            .chunks_exact_mut(LANES)
            .zip(x[..done].chunks_exact(LANES))
        {
            let e = exp_table_lanes::<F, S, Sh>(xc, m, sh);
            for (o, e) in oc.iter_mut().zip(e) {
                *o = post(e);
            }
        }
    }
    tail_into::<F, S, Sh, NORMAL>(x, m, sh, &mut out[done..], done, post);
}

/// `exps_into` for `x[done..]` alone, into `out` (as long as that). With `NORMAL` on an ISA
/// with a table form and a whole window before it, by the table form over the last window
/// of `x`, which overlaps terms already made (only the new ones are kept), so the fused
/// loop of `sum_block_table` and the two loops make the same terms; a whole `x` shorter
/// than a window, by the table form too. Otherwise one at a time by `exp_of`. PERF: one
/// thread, f32 softmax, against one at a time: (100, 300) 0.76x the time, (64, 1000)
/// 0.96x-0.98x.
#[inline(always)]
fn tail_into<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    x: &[F],
    m: F,
    sh: Sh,
    out: &mut [F],
    done: usize,
    post: impl Fn(F) -> F,
) {
    debug_assert_eq!(out.len(), x.len() - done);
    if NORMAL && F::has_exp_table::<S>() && done >= LANES && done < x.len() {
        let start = x.len() - LANES;
        let e = exp_table_lanes::<F, S, Sh>(&x[start..], m, sh);
        for (o, &e) in out.iter_mut().zip(&e[done - start..]) {
            *o = post(e);
        }
        return;
    }
    if NORMAL && F::has_exp_table::<S>() && done == 0 && x.len() < LANES {
        // A row shorter than a register, padded with its maximum: the table form as the
        // short-row tiles take it, so a row gets the same terms on either path.
        let mut xs = [m; LANES];
        for (p, &v) in xs.iter_mut().zip(x) {
            *p = v;
        }
        let e = exp_table_lanes::<F, S, Sh>(&xs, m, sh);
        for (o, &e) in out.iter_mut().zip(&e) {
            *o = post(e);
        }
        return;
    }
    for (o, &v) in out.iter_mut().zip(&x[done..]) {
        let (hi, lo) = sh.split::<S>(v, m);
        *o = post(exp_of::<F, S, NORMAL>(hi, lo));
    }
}

/// The sum of the terms `e` of one block other than the exact ones (x == m, where e is
/// exactly 1: they are counted, not summed), and their count.
#[inline(always)]
fn sum_terms<F: Float, S: Simd>(x: &[F], m: F, e: &[F]) -> (f64, f64) {
    let full = x.len() / LANES * LANES;
    let (acc, ones) = F::masked_lane_sums::<S>(&x[..full], m, &e[..full]);
    let lanes = (fold_lanes(acc).to_f64(), ones as f64);
    sum_tail(&x[full..], m, &e[full..], lanes)
}

/// `sum_terms` of a block's last values (fewer than `LANES`), one at a time, added on to
/// the lanes' `(sum, count)`.
#[inline(always)]
fn sum_tail<F: Float>(x: &[F], m: F, e: &[F], lanes: (f64, f64)) -> (f64, f64) {
    let (mut total, mut count) = lanes;
    for (&v, &t) in x.iter().zip(e) {
        if v == m {
            count += 1.0;
        } else {
            total += t.to_f64();
        }
    }
    (total, count)
}

/// Lane sums of a whole number of chunks of `LANES`: lane `i` adds, in order, the terms at
/// `i`, `i + LANES`, ... where `x != m`; and the count of `x == m`. The portable form; the
/// x86_64 levels have the same in intrinsics (the compiler kept these lanes in stack memory
/// or shuffled them one by one), with the same order of additions and so the same result.
#[inline(always)]
pub fn masked_lane_sums<F: Float>(x: &[F], m: F, e: &[F]) -> ([F; LANES], u64) {
    let mut acc = [F::ZERO; LANES];
    let mut ones = 0u64;
    for (xc, ec) in x.chunks_exact(LANES).zip(e.chunks_exact(LANES)) {
        for i in 0..LANES {
            let top = xc[i] == m;
            acc[i] = acc[i] + if top { F::ZERO } else { ec[i] };
            ones += u64::from(top);
        }
    }
    (acc, ones)
}

/// The sum of the lanes, pairwise (which keeps the fold itself accurate).
///
/// PERF: every loop has a constant trip count, so all of them unroll and the lanes stay
/// in registers.
#[inline(always)]
pub fn fold_lanes<F: Float>(mut a: [F; LANES]) -> F {
    for i in 0..8 {
        a[i] = a[i] + a[i + 8];
    }
    for i in 0..4 {
        a[i] = a[i] + a[i + 4];
    }
    for i in 0..2 {
        a[i] = a[i] + a[i + 2];
    }
    a[0] + a[1]
}

/// The next row, and the lanes of its extremes (`Extremes`), taken in a block at a time while
/// this row's exp pass runs. PERF: rows that came from L3 or memory had their own pass for
/// the extremes, bound by the loads; beside the exp pass (bound by arithmetic) the loads
/// cost little. Taken after each block's exponentials rather than before: before, arrays
/// from memory took up to 1.2x the time.
pub struct Ahead<'a, F> {
    x: &'a [F],
    ext: Extremes<F>,
    taken: usize,
}

impl<'a, F: Float> Ahead<'a, F> {
    #[inline(always)]
    pub fn new(x: &'a [F]) -> Self {
        Ahead {
            x,
            ext: Extremes::default(),
            taken: 0,
        }
    }

    /// Take in the next `len` values (the length of the block just made).
    #[inline(always)]
    fn take<S: Simd>(&mut self, len: usize) {
        let at = self.taken;
        self.ext.take::<S>(&self.x[at..at + len]);
        self.taken += len;
    }

    /// The row's (maximum, minimum), once every value was taken in.
    #[inline(always)]
    pub fn extremes<S: Simd>(&self) -> Option<(F, F)> {
        if self.taken == self.x.len() {
            Some(self.ext.fold::<S>())
        } else {
            None
        }
    }
}

/// `sum(exp((x - m) / T))`, writing each term to `out`; meanwhile `ahead`'s extremes (its
/// row as long as `x`). `NORMAL`: see `normal_range`.
#[inline(always)]
pub fn sum_exp_into<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    x: &[F],
    m: F,
    sh: Sh,
    out: &mut [F],
    mut ahead: Option<&mut Ahead<'_, F>>,
) -> Acc {
    let mut acc = Acc::default();
    for (xb, ob) in x.chunks(FOLD).zip(out.chunks_mut(FOLD)) {
        let (rest, ones) = exp_block::<F, S, Sh, NORMAL>(xb, m, sh, ob);
        acc.add(rest);
        acc.count += ones;
        if let Some(a) = ahead.as_deref_mut() {
            a.take::<S>(xb.len());
        }
    }
    acc
}

/// `sum(exp((x - m) / T))` without storing the terms; `ahead` as in `sum_exp_into`.
#[inline(always)]
pub fn sum_exp<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    x: &[F],
    m: F,
    sh: Sh,
    mut ahead: Option<&mut Ahead<'_, F>>,
) -> Acc {
    let mut acc = Acc::default();
    let mut add = |(rest, ones): (f64, f64), len: usize| {
        acc.add(rest);
        acc.count += ones;
        if let Some(a) = ahead.as_deref_mut() {
            a.take::<S>(len);
        }
    };
    if NORMAL && F::has_exp_table::<S>() {
        // PERF: no scratch block, which was zeroed on every call (a memset of 1 or 2 KiB per
        // row). Interleaved A/B, one thread: logsumexp of (100, 100) f64 0.79x-0.88x the
        // time, of (64, 1000) f64 0.97x, of (200, 300) f32 0.95x; log_softmax of
        // (64, 1000) f64 0.94x; f32 rows of 1000 and more the same.
        for xb in x.chunks(FOLD) {
            add(sum_block_table::<F, S, Sh>(xb, m, sh), xb.len());
        }
    } else {
        let mut scratch = [F::ZERO; FOLD];
        for xb in x.chunks(FOLD) {
            let e = &mut scratch[..xb.len()];
            add(exp_block::<F, S, Sh, NORMAL>(xb, m, sh, e), xb.len());
        }
    }
    acc
}

/// `out /= sum`, given 1/sum as `F::recip` makes it.
#[inline(always)]
pub fn scale<F: Float, S: Simd>(out: &mut [F], inv: (F, F)) {
    for v in out.iter_mut() {
        *v = F::fma::<S>(*v, inv.0, *v * inv.1);
    }
}

/// `out = exp((x - m) / T) / sum`, given 1/sum as `F::recip` makes it.
#[inline(always)]
pub fn exp_scale<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    x: &[F],
    m: F,
    sh: Sh,
    inv: (F, F),
    out: &mut [F],
) {
    exps_into::<F, S, Sh, NORMAL>(x, m, sh, out, |e| F::fma::<S>(e, inv.0, e * inv.1));
}

/// `sum_exp` for a block whose minimum is `min`, by the unchecked exp (and the cheapest exact
/// shift) where the span allows.
#[inline(always)]
pub fn sum_exp_spanned<F: Float, S: Simd, Sh: Shift<F>>(x: &[F], m: F, min: F, sh: Sh) -> Acc {
    if normal_range(m, min, sh) {
        shift::with_exact_shift!(sh, m, min, s2 => sum_exp::<F, S, _, true>(x, m, s2, None))
    } else {
        sum_exp::<F, S, Sh, false>(x, m, sh, None)
    }
}

/// `sum_exp_into` for a block whose minimum is `min`, as `sum_exp_spanned`.
#[inline(always)]
pub fn sum_exp_into_spanned<F: Float, S: Simd, Sh: Shift<F>>(
    x: &[F],
    m: F,
    min: F,
    sh: Sh,
    out: &mut [F],
) -> Acc {
    if normal_range(m, min, sh) {
        shift::with_exact_shift!(sh, m, min, s2 => sum_exp_into::<F, S, _, true>(x, m, s2, out, None))
    } else {
        sum_exp_into::<F, S, Sh, false>(x, m, sh, out, None)
    }
}

/// `exp_scale` for a block whose minimum is `min`, as `sum_exp_spanned`.
#[inline(always)]
pub fn exp_scale_spanned<F: Float, S: Simd, Sh: Shift<F>>(
    x: &[F],
    m: F,
    min: F,
    sh: Sh,
    inv: (F, F),
    out: &mut [F],
) {
    if normal_range(m, min, sh) {
        shift::with_exact_shift!(sh, m, min, s2 => exp_scale::<F, S, _, true>(x, m, s2, inv, out))
    } else {
        exp_scale::<F, S, Sh, false>(x, m, sh, inv, out)
    }
}

/// `out = (x - m) / T - log_sum`, rounded once (see `Shift::log_out`), so that the winning
/// class keeps its digits. `min` is at most every value of `x` (-inf if not known): where
/// it allows (`Shift::log_form`), the exact first subtraction takes the cheaper Fast2Sum.
#[inline(always)]
pub fn log_shift<F: Float, S: Simd, Sh: Shift<F>>(
    x: &[F],
    m: F,
    min: F,
    sh: Sh,
    log_sum: (f64, f64),
    out: &mut [F],
) {
    let c = shift::log_const(m, log_sum);
    // No x - c is -inf (no x is -inf and none overflows: rounding is monotonic), which
    // `log_out_fast` and `Unit::log_out` would have to pass on.
    let finite = min - c.0 > F::NEG_INF;
    match sh.log_form(c.0, min) {
        Form::XFirst if finite => log_finite::<F, S, X_FIRST>(x, c, out),
        Form::MaxFirst if finite => log_finite::<F, S, MAX_FIRST>(x, c, out),
        Form::Own if finite && Sh::UNIT => log_finite::<F, S, TWO_SUM>(x, c, out),
        Form::XFirst => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = shift::log_out_fast::<F, true>(v, c);
            }
        }
        Form::MaxFirst => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = shift::log_out_fast::<F, false>(v, c);
            }
        }
        Form::Own => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = sh.log_out::<S>(v, m, c, log_sum);
            }
        }
    }
}

/// The exact forms of `x - c.0` for `log_finite`: Fast2Sum with `x` first or `-c.0` first
/// (`shift::fast_diff`), or TwoSum (`shift::two_diff`).
const X_FIRST: u8 = 0;
const MAX_FIRST: u8 = 1;
const TWO_SUM: u8 = 2;

/// Temperature-1 log_softmax results `(x - c.0) - c.1`, the first subtraction exact by
/// `FORM`, where no `x - c.0` is -inf: `shift::log_out_fast` and `Unit::log_out` without
/// the compare and blend that pass -inf on. PERF: their adds and subtractions all issued on
/// Zen 4's two FP add pipes, which bounded the loop; two of Fast2Sum's five (four of
/// TwoSum's eight) are made here as multiply-adds by a 1 the compiler cannot see (exact, so
/// the same bits), which issue on its two FMA pipes. Interleaved A/B, one thread, f32
/// log_softmax of N(0, 16) rows (Fast2Sum): (64, 512) 0.96x the time, (64, 1000) 0.96x,
/// (2048, 512) 0.97x, longer rows and f64 0.98x-1.0x; of N(-6, 16) rows (TwoSum):
/// (64, 512) 0.92x, (64, 1000) 0.92x, (2048, 512) 0.94x, (32, 32000) 0.89x, f64 (64, 1000)
/// 0.91x.
#[inline(always)]
fn log_finite<F: Float, S: Simd, const FORM: u8>(x: &[F], c: (F, F), out: &mut [F]) {
    let one = std::hint::black_box(F::ONE);
    let (neg_one, neg_c0, neg_c1) = (-one, -c.0, -c.1);
    for (o, &v) in out.iter_mut().zip(x) {
        let d = F::fma::<S>(v, one, neg_c0);
        let e = match FORM {
            X_FIRST => neg_c0 - (d - v),
            MAX_FIRST => v - (d + c.0),
            _ => {
                let bv = F::fma::<S>(v, neg_one, d);
                (v - (d - bv)) - F::fma::<S>(bv, one, c.0)
            }
        };
        *o = d + F::fma::<S>(e, one, neg_c1);
    }
}

/// log(sum) as `hi + lo`, from a compensated sum that includes the maximum's term 1.
/// Float64: a double-double `log(1 + m1 + m1_lo)` (`log::ln_1p_parts`), so that `lo`
/// carries what rounding `hi` lost (about 0.5 ulp of log(sum), which for log_softmax and
/// logsumexp would otherwise be the largest error). Results in `F` = f32 (and narrower)
/// keep 24 bits, so that loss (below 2^-50) is not measured there: `hi` comes from
/// `log::ln_1p` and `lo` from the sum's low part alone. PERF: libm's `log1p` and `expm1`
/// per row were most of the time of short rows.
#[inline(always)]
pub fn log_of_sum<F: Float>(acc: Acc) -> (f64, f64) {
    let (m1, m1_lo) = acc.minus_one();
    if F::DTYPE == DType::F64 {
        log::ln_1p_parts_any(m1, m1_lo)
    } else {
        (log::ln_1p(m1), log_lo(m1, m1_lo))
    }
}

/// `log_of_sum` of each sum, the log1p of a float32 family's sums in one vectorized loop.
#[inline(always)]
pub fn log_of_sums<F: Float>(accs: &[Acc]) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); accs.len()];
    for (a, o) in accs.chunks(LOG_BATCH).zip(out.chunks_mut(LOG_BATCH)) {
        log_of_sums_into::<F>(a, o);
    }
    out
}

/// Sums per call of `log_of_sums_into`.
pub const LOG_BATCH: usize = 16;

/// `log_of_sums` of at most `LOG_BATCH` sums into `out`, with no allocation.
#[inline(always)]
pub fn log_of_sums_into<F: Float>(accs: &[Acc], out: &mut [(f64, f64)]) {
    assert!(accs.len() <= LOG_BATCH && out.len() == accs.len());
    match accs {
        [] => return,
        // One sum (a one-row call, or the last of a batch): the lanes would cost 16 logs.
        [acc] => {
            out[0] = log_of_sum::<F>(*acc);
            return;
        }
        _ => {}
    }
    // All lanes, the unused ones at log1p(0): the loops then have no remainder.
    let (mut m1, mut m1_lo) = ([0.0; LOG_BATCH], [0.0; LOG_BATCH]);
    for ((v, vl), a) in m1.iter_mut().zip(m1_lo.iter_mut()).zip(accs) {
        (*v, *vl) = a.minus_one();
    }
    let (mut hi, mut lo) = ([0.0; LOG_BATCH], [0.0; LOG_BATCH]);
    log_of_sums_lanes::<F>(&m1, &m1_lo, &mut hi, &mut lo);
    for ((o, &h), &l) in out.iter_mut().zip(&hi).zip(&lo) {
        *o = (h, l);
    }
}

/// `log_of_sum` of sums given as lanes, `m1[i] + m1_lo[i]` from `Acc::minus_one`, into
/// `hi[i] + lo[i]`, with its bits. Lanes in separate arrays, so that each loop vectorizes.
#[inline(always)]
pub fn log_of_sums_lanes<F: Float>(m1: &[f64], m1_lo: &[f64], hi: &mut [f64], lo: &mut [f64]) {
    if F::DTYPE == DType::F64 {
        log::ln_1p_parts_batch(m1, m1_lo, hi, lo);
        return;
    }
    log::ln_1p_batch(m1, hi);
    for ((l, &v), &vl) in lo.iter_mut().zip(m1).zip(m1_lo) {
        *l = log_lo(v, vl);
    }
}

/// The low part of log(1 + m1 + rest) beside `log::ln_1p(m1)`: what `rest` adds.
#[inline(always)]
fn log_lo(m1: f64, rest: f64) -> f64 {
    let lo = rest / (1.0 + m1);
    if lo.is_finite() {
        lo
    } else {
        0.0
    }
}

/// `a + b` where `b = (hi, lo)`, with the first addition exact (TwoSum).
#[inline(always)]
pub fn add_parts(a: f64, b: (f64, f64)) -> f64 {
    let (s, e) = crate::kernels::shift::two_diff(a, -b.0);
    if s.is_finite() {
        s + (e + b.1)
    } else {
        a + b.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::shift::{Temp, Unit};
    use crate::simd::Generic;

    /// Runs `job` compiled for every ISA this CPU has, then `check` on what it left.
    fn on_every_isa(check: impl Fn(&str), job: &impl crate::simd::Job) {
        for isa in crate::simd::Isa::available() {
            assert!(crate::simd::select(isa));
            crate::simd::dispatch(job, 0);
            check(isa.name());
        }
    }

    /// Rows with ties at the maximum, a NaN and every tail length.
    fn rows<F: Float>() -> Vec<Vec<F>> {
        (0..70)
            .map(|n| {
                let mut v: Vec<F> = (0..n)
                    .map(|i| F::from_f64(((i * 37 % 23) as f64) * 0.25 - 3.0))
                    .collect();
                if n > 40 {
                    v[n / 3] = F::NAN;
                }
                v
            })
            .collect()
    }

    struct SumsJob<F> {
        got: std::sync::Mutex<Vec<([F; LANES], u64)>>,
    }

    impl<F: Float> crate::simd::Job for SumsJob<F> {
        fn run<S: Simd>(&self, _task: usize) {
            let mut got = self.got.lock().unwrap();
            got.clear();
            for x in rows::<F>() {
                let full = x.len() / LANES * LANES;
                let m = max(&x);
                let e: Vec<F> = x.iter().map(|&v| F::exp::<S>(v - m, F::ZERO)).collect();
                got.push(F::masked_lane_sums::<S>(&x[..full], m, &e[..full]));
            }
        }
    }

    fn lane_sums_match_portable<F: Float>() {
        let job = SumsJob::<F> {
            got: std::sync::Mutex::new(Vec::new()),
        };
        on_every_isa(
            |isa| {
                let got = job.got.lock().unwrap();
                for (x, g) in rows::<F>().iter().zip(got.iter()) {
                    let full = x.len() / LANES * LANES;
                    let m = max(x);
                    let e: Vec<F> = x
                        .iter()
                        .map(|&v| F::exp::<Generic>(v - m, F::ZERO))
                        .collect();
                    let want = masked_lane_sums(&x[..full], m, &e[..full]);
                    assert_eq!(g.1, want.1, "{isa}: count, row of {}", x.len());
                    for (a, b) in g.0.iter().zip(want.0.iter()) {
                        // Same bits (NaN lanes: both NaN).
                        assert!(
                            a.to_f64().to_bits() == b.to_f64().to_bits()
                                || (a.is_nan() && b.is_nan()),
                            "{isa}: lanes {:?} vs {:?}",
                            g.0,
                            want.0
                        );
                    }
                }
            },
            &job,
        );
    }

    /// The intrinsic lane sums of each x86_64 level add in the portable order: same bits.
    #[test]
    fn masked_lane_sums_same_bits_on_every_isa() {
        lane_sums_match_portable::<f32>();
        lane_sums_match_portable::<f64>();
    }

    /// A block's `(sum, count)` (by `sum_block_table` where the ISA has the table form) and
    /// the terms `exp_block` wrote.
    type Block = ((f64, f64), Vec<f32>);

    /// Per row of `fused_rows`: `exp_block` with `NORMAL`, and `sum_block_table`.
    struct FusedJob {
        got: std::sync::Mutex<Vec<Block>>,
    }

    /// Blocks of every length up to `FOLD`, in the normal range, with ties at the maximum
    /// in several lanes.
    fn fused_rows() -> Vec<Vec<f32>> {
        (0..=FOLD)
            .map(|n| (0..n).map(|i| ((i * 29 % 31) as f32) * -0.37).collect())
            .collect()
    }

    impl crate::simd::Job for FusedJob {
        fn run<S: Simd>(&self, _task: usize) {
            let got = fused_rows()
                .iter()
                .map(|x| {
                    // The two loops that results take store every term; where the ISA has
                    // the table form, the fused loop gives the same sums without them.
                    let mut e = vec![0.0f32; x.len()];
                    let mut sums = exp_block::<f32, S, Unit, true>(x, 0.0, Unit, &mut e);
                    if f32::has_exp_table::<S>() {
                        let fused = sum_block_table::<f32, S, Unit>(x, 0.0, Unit);
                        assert_eq!(fused, sums, "{x:?}");
                        sums = fused;
                    }
                    // With a whole window, the tail's terms too are the table form's.
                    if f32::has_exp_table::<S>() && x.len() >= LANES {
                        for (&v, &t) in x.iter().zip(&e) {
                            let want = crate::kernels::exp::exp_f32_table::<S>(v, 0.0);
                            assert_eq!(t.to_bits(), want.to_bits(), "e^{v}, row of {}", x.len());
                        }
                    }
                    (sums, e)
                })
                .collect();
            *self.got.lock().unwrap() = got;
        }
    }

    /// `sum_block_table` sums its terms as it makes them: the sums must be those of the
    /// two-loop form over the same terms (`sum_terms`), bit for bit, the count that of the
    /// ties, and every term within 1 ulp of e^x.
    #[test]
    fn fused_block_sums_match_stored_terms_on_every_isa() {
        let job = FusedJob {
            got: std::sync::Mutex::new(Vec::new()),
        };
        on_every_isa(
            |isa| {
                let (rows, got) = (fused_rows(), job.got.lock().unwrap());
                assert_eq!(got.len(), rows.len(), "{isa}");
                for (x, (sums, e)) in rows.iter().zip(got.iter()) {
                    assert_eq!(*sums, sum_terms::<f32, Generic>(x, 0.0, e), "{isa}, {x:?}");
                    let ties = x.iter().filter(|&&v| v == 0.0).count();
                    assert_eq!(sums.1, ties as f64, "{isa}");
                    for (&v, &t) in x.iter().zip(e) {
                        let want = f64::from(v).exp();
                        let ulp = f64::from(f32::from_bits((want as f32).to_bits() + 1))
                            - f64::from(want as f32);
                        assert!((f64::from(t) - want).abs() <= ulp, "{isa}: e^{v} = {t}");
                    }
                }
            },
            &job,
        );
    }

    struct MaxMinJob<F> {
        /// Per row: in one call; in blocks of 48 and the rest; ahead of a row's exp pass.
        got: std::sync::Mutex<Vec<[(F, F); 3]>>,
    }

    /// Rows of every length below 200 (every tail) and some longer than `FOLD`, with NaN,
    /// infinities and both zeros.
    fn extreme_rows<F: Float>() -> Vec<Vec<F>> {
        (0..200)
            .chain([255, 256, 257, 600, 1000])
            .map(|n| {
                (0..n)
                    .map(|i| match (i * 7 + n) % 11 {
                        0 => F::NAN,
                        1 if n % 3 == 0 => F::from_f64(-0.0),
                        2 if n % 3 == 0 => F::ZERO,
                        3 if n % 5 == 0 => F::INF,
                        4 if n % 7 == 0 => F::NEG_INF,
                        k => F::from_f64(((i * 37 % 23) as f64 - 11.0) * (k as f64 - 5.0) / 4.0),
                    })
                    .collect()
            })
            .collect()
    }

    impl<F: Float> crate::simd::Job for MaxMinJob<F> {
        fn run<S: Simd>(&self, _task: usize) {
            let mut got = self.got.lock().unwrap();
            *got = extreme_rows::<F>()
                .iter()
                .map(|x| {
                    let mut blocks = Extremes::default();
                    for b in x.chunks(48) {
                        blocks.take::<S>(b);
                    }
                    let mut ahead = Ahead::new(x);
                    let row = vec![F::ZERO; x.len()];
                    let s = sum_exp::<F, S, Unit, false>(&row, F::ZERO, Unit, Some(&mut ahead));
                    assert_eq!(s.value(), x.len() as f64);
                    let taken = ahead.extremes::<S>().expect("every value taken in");
                    [max_min::<F, S>(x), blocks.fold::<S>(), taken]
                })
                .collect();
        }
    }

    /// Each ISA's one-pass max/min gives the portable two passes' values, zeros' signs too,
    /// taken in one call, in blocks, or ahead of another row's exp pass.
    fn max_min_matches_portable<F: Float>() {
        let job = MaxMinJob::<F> {
            got: std::sync::Mutex::new(Vec::new()),
        };
        on_every_isa(
            |isa| {
                let got = job.got.lock().unwrap();
                for (x, ways) in extreme_rows::<F>().iter().zip(got.iter()) {
                    let (wm, wlo) = max_min_portable(x);
                    let bits = |v: F| v.to_f64().to_bits();
                    for (k, &(m, lo)) in ways.iter().enumerate() {
                        let (got, want) = ((bits(m), bits(lo)), (bits(wm), bits(wlo)));
                        assert_eq!(got, want, "{isa}, way {k}: {x:?}");
                    }
                    // And the plain definition: NaN ignored, +-inf for an all-NaN or empty row.
                    let (m, lo) = ways[0];
                    let finite = x.iter().filter(|v| !v.is_nan()).map(|v| v.to_f64());
                    let want = finite.clone().fold(f64::NEG_INFINITY, f64::max);
                    assert_eq!(m.to_f64(), want, "{isa}: max of {x:?}");
                    assert_eq!(lo.to_f64(), finite.fold(f64::INFINITY, f64::min), "{isa}");
                }
            },
            &job,
        );
    }

    #[test]
    fn max_min_same_bits_on_every_isa() {
        max_min_matches_portable::<f32>();
        max_min_matches_portable::<f64>();
    }

    /// Lanes of every pairing of equal zeros of either sign, infinities, NaN and plain
    /// values, so that a fold taking any pair in another order gives another bit.
    fn fold_cases<F: Float>() -> Vec<Extremes<F>> {
        let pool = [
            -0.0,
            0.0,
            -0.0,
            1.5,
            -2.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut pick = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            F::from_f64(pool[(state >> 33) as usize % pool.len()])
        };
        (0..2000)
            .map(|_| Extremes {
                hi: std::array::from_fn(|_| pick()),
                lo: std::array::from_fn(|_| pick()),
            })
            .collect()
    }

    struct FoldJob<F> {
        got: std::sync::Mutex<Vec<(F, F)>>,
    }

    impl<F: Float> crate::simd::Job for FoldJob<F> {
        fn run<S: Simd>(&self, _task: usize) {
            let folds = fold_cases::<F>().iter().map(|e| e.fold::<S>()).collect();
            *self.got.lock().unwrap() = folds;
        }
    }

    /// Each ISA's fold of the lanes takes them in the portable tree's order: the same bits.
    fn fold_matches_portable<F: Float>() {
        let job = FoldJob::<F> {
            got: std::sync::Mutex::new(Vec::new()),
        };
        let bits = |(m, lo): (F, F)| (m.to_f64().to_bits(), lo.to_f64().to_bits());
        on_every_isa(
            |isa| {
                let got = job.got.lock().unwrap();
                for (e, &g) in fold_cases::<F>().iter().zip(got.iter()) {
                    assert_eq!(bits(g), bits(e.fold_portable()), "{isa}: {e:?}");
                }
            },
            &job,
        );
    }

    #[test]
    fn lane_folds_same_bits_on_every_isa() {
        fold_matches_portable::<f32>();
        fold_matches_portable::<f64>();
    }

    #[test]
    fn normal_range_decides_by_the_row_span() {
        assert!(normal_range(0.0f32, -87.0, Unit));
        assert!(!normal_range(0.0f32, -87.5, Unit));
        assert!(normal_range(10.0f32, -160.0, Temp::new(2.0)));
        assert!(!normal_range(0.0f32, f32::NEG_INFINITY, Unit));
        assert!(!normal_range(0.0f32, f32::NAN, Unit));
        assert!(normal_range(0.0f64, -700.0, Unit));
        assert!(!normal_range(0.0f64, -709.0, Unit));
    }

    /// The range-checked and unchecked paths agree (within 1 ulp per term) where both apply.
    #[test]
    fn normal_path_matches_full_path() {
        let x: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919 % 1733) as f32) * 0.05 - 80.0)
            .collect();
        let (m, lo) = max_min_portable(&x);
        assert!(normal_range(m, lo, Unit));
        let (mut a, mut b) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        let sa = sum_exp_into::<f32, Generic, Unit, true>(&x, m, Unit, &mut a, None);
        let sb = sum_exp_into::<f32, Generic, Unit, false>(&x, m, Unit, &mut b, None);
        assert!((sa.value() / sb.value() - 1.0).abs() < 1e-7);
        for (p, q) in a.iter().zip(&b) {
            assert!(p.to_bits().abs_diff(q.to_bits()) <= 1, "{p} vs {q}");
        }
    }

    #[test]
    fn max_ignores_nan_and_handles_tails() {
        let mut v: Vec<f32> = (0..37).map(|i| i as f32).collect();
        v[5] = f32::NAN;
        assert_eq!(max(&v), 36.0);
        assert_eq!(max::<f32>(&[]), f32::NEG_INFINITY);
        assert_eq!(max(&[f32::NAN]), f32::NEG_INFINITY);
    }

    #[test]
    fn softmax_of_seed_example() {
        let x = [1.0f64, 3.0, 2.0];
        let m = max(&x);
        let mut out = [0.0; 3];
        let s = sum_exp_into::<f64, Generic, Unit, false>(&x, m, Unit, &mut out, None);
        scale::<f64, Generic>(&mut out, <f64 as Float>::recip(s.value()));
        let want = [
            0.090_030_573_170_380_46,
            0.665_240_955_774_821_6,
            0.244_728_471_054_797_6,
        ];
        for (g, w) in out.iter().zip(want) {
            assert!((g - w).abs() <= 4.0 * f64::EPSILON * w, "{g} vs {w}");
        }
    }

    #[test]
    fn sum_exp_matches_stored_terms_and_reference() {
        let x: Vec<f32> = (0..5000)
            .map(|i| ((i * 37 % 101) as f32) * 0.1 - 5.0)
            .collect();
        let m = max(&x);
        let mut out = vec![0.0f32; x.len()];
        let a = sum_exp_into::<f32, Generic, Unit, false>(&x, m, Unit, &mut out, None);
        let b = sum_exp::<f32, Generic, Unit, false>(&x, m, Unit, None);
        assert_eq!(a, b);
        let want: f64 = x.iter().map(|&v| (f64::from(v) - f64::from(m)).exp()).sum();
        assert!((a.value() - want).abs() / want < 1e-6);
    }

    #[test]
    fn temperature_divides_the_shift() {
        let x = [0.5f64, -2.0, 4.0];
        let t = 3.0;
        let m = max(&x);
        let mut out = [0.0; 3];
        let s = sum_exp_into::<f64, Generic, _, false>(&x, m, Temp::new(t), &mut out, None);
        let want: f64 = x.iter().map(|v| ((v - m) / t).exp()).sum();
        assert!((s.value() - want).abs() < 1e-15);
    }

    #[test]
    fn log_shift_keeps_the_winner_accurate() {
        // One dominant class: log_softmax of the winner is -log1p(tiny), not 0.
        let x = [0.0f32, -30.0];
        let m = max(&x);
        let s = sum_exp::<f32, Generic, Unit, false>(&x, m, Unit, None);
        let l = log_of_sum::<f32>(s);
        let mut out = [0.0f32; 2];
        log_shift::<f32, Generic, Unit>(&x, m, f32::NEG_INFINITY, Unit, l, &mut out);
        let want = -(-30.0f64).exp().ln_1p();
        assert!(
            ((f64::from(out[0]) - want) / want).abs() < 1e-6,
            "{}",
            out[0]
        );
        assert_eq!(out[1], (-30.0 - l.0 - l.1) as f32);
    }

    /// log_shift given the row's minimum (the cheaper forms it allows, and where no `x - c`
    /// is -inf the loops without that check, `log_finite`) gives the bits it gives without
    /// (the checked loops: TwoSum, or Fast2Sum with `x` first where c <= 0), on every ISA:
    /// rows over many scales and offsets, each form exercised, with and without a -inf,
    /// and with values near the largest float of either sign, where `x - c` overflows.
    struct LogFormsJob<F>(std::marker::PhantomData<F>);

    impl<F: Float> crate::simd::Job for LogFormsJob<F> {
        fn run<S: Simd>(&self, _task: usize) {
            let largest = if F::DTYPE == DType::F64 {
                f64::MAX
            } else {
                f64::from(f32::MAX)
            };
            let mut next = shift::testing::uniform(0x853c_49e6_748f_ea9b);
            let mut seen = [[0usize; 3]; 2];
            for _ in 0..5_000 {
                let mut x: Vec<F> = shift::testing::row(&mut next, (-10.0, 30.0), 40);
                if next() < 0.1 {
                    x[7] = F::NEG_INF;
                }
                if next() < 0.05 {
                    // Both in the top binade: Fast2Sum with the maximum first is exact.
                    x[3] = F::from_f64(largest * 0.75);
                    x[5] = F::from_f64(-largest * (0.75 + 0.2 * next()));
                }
                let (m, min) = max_min_portable(&x);
                let l = log_of_sum::<F>(sum_exp::<F, S, Unit, false>(&x, m, Unit, None));
                let form = Unit.log_form(shift::log_const(m, l).0, min) as usize;
                seen[usize::from(min.to_f64().is_finite())][form] += 1;
                let (mut fast, mut own) = (vec![F::ZERO; x.len()], vec![F::ZERO; x.len()]);
                log_shift::<F, S, Unit>(&x, m, min, Unit, l, &mut fast);
                log_shift::<F, S, Unit>(&x, m, F::NEG_INF, Unit, l, &mut own);
                for (a, b) in fast.iter().zip(&own) {
                    assert_eq!(
                        a.to_f64().to_bits(),
                        b.to_f64().to_bits(),
                        "m {m:?} min {min:?}"
                    );
                }
            }
            // Rows with a -inf take XFirst or Own; the finite ones every form.
            assert!(seen[0][Form::XFirst as usize] > 50 && seen[0][Form::Own as usize] > 50);
            assert!(seen[1].iter().all(|&n| n > 200), "every form: {seen:?}");
        }
    }

    #[test]
    fn fast_log_forms_give_the_same_bits() {
        let ok = |_: &str| {};
        on_every_isa(ok, &LogFormsJob::<f32>(std::marker::PhantomData));
        on_every_isa(ok, &LogFormsJob::<f64>(std::marker::PhantomData));
    }

    #[test]
    fn shift_error_is_carried_into_exp() {
        // x - m rounds in f32; the TwoSum correction keeps the exponential accurate.
        let x = [-79.3f32, 0.7];
        let m = 0.7f32;
        let mut out = [0.0f32; 2];
        sum_exp_into::<f32, Generic, Unit, false>(&x, m, Unit, &mut out, None);
        let want = (f64::from(x[0]) - f64::from(m)).exp();
        let rel = ((f64::from(out[0]) - want) / want).abs();
        assert!(rel < 2.0 * f64::from(f32::EPSILON), "rel {rel}");
    }
}
