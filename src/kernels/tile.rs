//! Short rows as tiles: up to `TILE` rows of up to `COLS` values, transposed so that each
//! row is one lane and each of its values one column. A row's maximum and sum are then
//! plain vertical operations over its `d` columns, with no horizontal reduction per row.
//!
//! PERF: the window path (`short`) reduces each row across its lanes, which for (65536, 10)
//! cost more than the exponentials. The transposes are only fast where the ISA has
//! two-source shuffles (`Simd::TILES`); elsewhere rows of up to `short::SHORT_MAX` keep the
//! window path, and longer ones take the row path.
//!
//! Up to `short::SHORT_MAX` values, results have the bits of the window path: the maximum
//! is exact, the terms are the same exponentials, and the rest is added in
//! `short::sum_windows`'s order (for `W = 16` up to 16 columns, `W = 32` up to 32; longer
//! rows take the same tree over `W = 64`). (The window path adds the last rows of a
//! buffer, whose window would pass its end, in order instead, so a float64 result there
//! may differ in its last bit.)

use crate::elem::Float;
use crate::kernels::row::{self, Acc};
use crate::kernels::shift::{self, Shift};
use crate::kernels::short::len;
use crate::simd::Simd;

/// Rows per tile.
pub const TILE: usize = 16;
/// The longest row a tile holds. PERF (one thread, 64 MB): rows of 17 to 32 values took
/// the window path's 32-lane windows, f32 softmax 2.5x-3.7x the time of rows of 16; rows
/// of 33 to 47 took the row path, whose fixed cost per row made f32 softmax 1.1x-2.3x and
/// f64 logsumexp 1.4x-2.0x the time of tiles.
pub const COLS: usize = 48;

/// `t[j][r]` is value `j` of row `r`.
pub type Tile<F> = [[F; TILE]; COLS];

/// `t[j][r] = x[r * d + j]` for the `x.len() / d` (at most `TILE`) rows of `x`. Entries of
/// other rows or columns are unspecified. The portable form, and the reference for the
/// ISAs' own.
pub fn load<F: Copy>(x: &[F], d: usize, t: &mut Tile<F>) {
    assert!((1..=COLS).contains(&d) && x.len() / d <= TILE);
    for (r, row) in x.chunks_exact(d).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            t[j][r] = v;
        }
    }
}

/// `out[r * d + j] = t[j][r]` for the `out.len() / d` (at most `TILE`) rows of `out`.
pub fn store<F: Copy>(t: &Tile<F>, d: usize, out: &mut [F]) {
    assert!((1..=COLS).contains(&d) && out.len() / d <= TILE);
    for (r, row) in out.chunks_exact_mut(d).enumerate() {
        for (j, o) in row.iter_mut().enumerate() {
            *o = t[j][r];
        }
    }
}

/// Called once per column in each loop over the columns. PERF: the compiler fully unrolls
/// the short lane loops inside, and would then vectorize the column loop itself, with a
/// gather per lane; it does not vectorize a loop that holds an `asm` statement. The
/// statement is empty: no instruction, no memory, no flags.
#[inline(always)]
fn column_barrier() {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: an empty statement, declared to touch neither memory, stack nor flags.
    unsafe {
        std::arch::asm!("", options(nomem, nostack, preserves_flags))
    }
}

/// Each row's maximum and minimum over its `d` columns (the maximum NaN-ignoring, as
/// `row::max`, unless the first value is NaN; such a row is not finite and goes to the
/// general path either way).
#[inline(always)]
pub fn max_min<F: Float, const D: usize>(t: &Tile<F>, d: usize) -> ([F; TILE], [F; TILE]) {
    let d = len::<D>(d);
    let (mut m, mut lo) = (t[0], t[0]);
    for c in &t[1..d] {
        column_barrier();
        for ((mi, li), &v) in m.iter_mut().zip(lo.iter_mut()).zip(c) {
            *mi = row::beyond::<F, true>(v, *mi);
            *li = row::beyond::<F, false>(v, *li);
        }
    }
    (m, lo)
}

/// Whether every exponent of the first `rows` rows lies where `Float::exp_normal` applies
/// (see `row::normal_range`).
#[inline(always)]
pub fn all_normal<F: Float, Sh: Shift<F>>(
    m: &[F; TILE],
    min: &[F; TILE],
    rows: usize,
    sh: Sh,
) -> bool {
    let mut ok = true;
    for (r, (&mv, &lv)) in m.iter().zip(min).enumerate() {
        ok &= (r >= rows) | row::normal_range(mv, lv, sh);
    }
    ok
}

/// Whether the first `rows` maxima are finite.
#[inline(always)]
pub fn all_finite<F: Float>(m: &[F; TILE], rows: usize) -> bool {
    let mut ok = true;
    for (r, &v) in m.iter().enumerate() {
        ok &= (r >= rows) | v.is_finite();
    }
    ok
}

/// Row sums as lanes: `count` the values equal to the maximum (their terms are 1), `rest`
/// the other terms in f64, as `Acc { hi: rest, lo: 0, count }`.
#[derive(Clone, Copy)]
pub struct Sums {
    pub rest: [f64; TILE],
    pub count: [f64; TILE],
}

impl Sums {
    #[inline(always)]
    pub fn acc(&self, r: usize) -> Acc {
        Acc {
            hi: self.rest[r],
            lo: 0.0,
            count: self.count[r],
        }
    }

    /// Each row's log(sum), with the bits of `row::log_of_sum`.
    #[inline(always)]
    pub fn logs<F: Float>(&self) -> Logs {
        let (mut m1, mut m1_lo) = ([0.0; TILE], [0.0; TILE]);
        for (r, (v, vl)) in m1.iter_mut().zip(m1_lo.iter_mut()).enumerate() {
            (*v, *vl) = self.acc(r).minus_one();
        }
        let mut l = Logs {
            hi: [0.0; TILE],
            lo: [0.0; TILE],
        };
        row::log_of_sums_lanes::<F>(&m1, &m1_lo, &mut l.hi, &mut l.lo);
        l
    }
}

/// Row log(sum)s as lanes, `hi[r] + lo[r]`. PERF: as pairs in one array they were stored
/// as halves and reloaded whole, a stalled store forward per load.
pub struct Logs {
    pub hi: [f64; TILE],
    pub lo: [f64; TILE],
}

impl Logs {
    #[inline(always)]
    pub fn get(&self, r: usize) -> (f64, f64) {
        (self.hi[r], self.lo[r])
    }
}

/// `e[j] = exp((t[j] - m) / T)` for the `d` columns, and the rows' sums; `NORMAL` when
/// `all_normal` holds.
#[inline(always)]
pub fn exp_sums<F: Float, S: Simd, Sh: Shift<F>, const D: usize, const NORMAL: bool>(
    t: &Tile<F>,
    d: usize,
    m: &[F; TILE],
    sh: Sh,
    e: &mut Tile<F>,
) -> Sums {
    let d = len::<D>(d);
    for (ec, tc) in e.iter_mut().zip(t).take(d) {
        column_barrier();
        if NORMAL && F::has_exp_table::<S>() {
            // A column is one register of the ISA's table form, as the row path takes it.
            *ec = row::exp_table_lanes_each::<F, S, Sh>(tc, m, sh);
            continue;
        }
        for ((o, &v), &mv) in ec.iter_mut().zip(tc).zip(m) {
            let (hi, lo) = sh.split::<S>(v, mv);
            *o = row::exp_of::<F, S, NORMAL>(hi, lo);
        }
    }
    // Counted in `F` lanes, exact up to `COLS` (PERF: in f64, each f32 column's count took
    // two registers and their masks).
    let mut ones = [F::ZERO; TILE];
    for tc in &t[..d] {
        column_barrier();
        for ((c, &v), &mv) in ones.iter_mut().zip(tc).zip(m) {
            *c = *c + if v == mv { F::ONE } else { F::ZERO };
        }
    }
    let count = ones.map(|c| c.to_f64());
    // The window path's tree over W columns: column j with j + W / 2, then j + W / 4, down
    // to j + 1, here depth first (PERF: breadth first, the partial sums went through the
    // stack). Columns past the row add +0 there, which changes no sum (every term is +0 or
    // more), so they are left out here.
    let c = Columns { t, e, m, d };
    Sums {
        rest: lane_sum(c.half(0), c.half(1)).unwrap_or([0.0; TILE]),
        count,
    }
}

/// A tile's terms by column, for the sum tree. (PERF: methods and functions, not closures:
/// closures here were compiled out of line, without the caller's target features, and the
/// tiles ran 0.7x-0.9x as fast.)
struct Columns<'a, F> {
    t: &'a Tile<F>,
    e: &'a Tile<F>,
    m: &'a [F; TILE],
    d: usize,
}

impl<F: Float> Columns<'_, F> {
    /// Columns `j`, `j + 4`, `j + 2` and `j + 6`, each with its group, added in the tree's
    /// order.
    #[inline(always)]
    fn half(&self, j: usize) -> Option<[f64; TILE]> {
        lane_sum(
            lane_sum(self.group(j), self.group(j + 4)),
            lane_sum(self.group(j + 2), self.group(j + 6)),
        )
    }

    /// The terms of column `j` plus those of column `j + 8`, each of these first plus its
    /// column 16 further on for rows of more than 16, and each of those first plus its
    /// column 32 further on for rows of more than 32.
    #[inline(always)]
    fn group(&self, j: usize) -> Option<[f64; TILE]> {
        if self.d > 32 {
            lane_sum(
                lane_sum(
                    lane_sum(self.column(j), self.column(j + 32)),
                    lane_sum(self.column(j + 16), self.column(j + 48)),
                ),
                lane_sum(
                    lane_sum(self.column(j + 8), self.column(j + 40)),
                    lane_sum(self.column(j + 24), self.column(j + 56)),
                ),
            )
        } else if self.d > 16 {
            lane_sum(
                lane_sum(self.column(j), self.column(j + 16)),
                lane_sum(self.column(j + 8), self.column(j + 24)),
            )
        } else {
            lane_sum(self.column(j), self.column(j + 8))
        }
    }

    /// The terms of column `j`, if the rows have one.
    #[inline(always)]
    fn column(&self, j: usize) -> Option<[f64; TILE]> {
        if j < self.d {
            Some(terms(&self.t[j], &self.e[j], self.m))
        } else {
            None
        }
    }
}

/// `a + b` by lanes, an absent column adding nothing.
#[inline(always)]
fn lane_sum(a: Option<[f64; TILE]>, b: Option<[f64; TILE]>) -> Option<[f64; TILE]> {
    match (a, b) {
        (Some(mut a), Some(b)) => {
            column_barrier();
            for (x, &y) in a.iter_mut().zip(&b) {
                *x += y;
            }
            Some(a)
        }
        (a, None) => a,
        (None, b) => b,
    }
}

/// One column's terms in f64, those of the maximum left out (they are counted apart).
#[inline(always)]
fn terms<F: Float>(tc: &[F; TILE], ec: &[F; TILE], m: &[F; TILE]) -> [f64; TILE] {
    let mut o = [0.0f64; TILE];
    for (((o, &v), &ev), &mv) in o.iter_mut().zip(tc).zip(ec).zip(m) {
        // Both loaded before the select: a select on a load became a branch per lane.
        let ev = ev.to_f64();
        *o = if v == mv { 0.0 } else { ev };
    }
    o
}

/// `e[j] /= sum` for the `d` columns, through `F::recip` as the row path does.
#[inline(always)]
pub fn scale<F: Float, S: Simd, const D: usize>(e: &mut Tile<F>, d: usize, s: &Sums) {
    let d = len::<D>(d);
    let mut ih = [F::ZERO; TILE];
    let mut il = [F::ZERO; TILE];
    for r in 0..TILE {
        (ih[r], il[r]) = F::recip(s.acc(r).value());
    }
    for ec in e.iter_mut().take(d) {
        column_barrier();
        for ((v, &h), &l) in ec.iter_mut().zip(&ih).zip(&il) {
            *v = F::fma::<S>(*v, h, *v * l);
        }
    }
}

/// `out[j] = (t[j] - m) / T - log_sum`, rounded once (see `Shift::log_out`), for the `d`
/// columns.
#[inline(always)]
pub fn log<F: Float, S: Simd, Sh: Shift<F>, const D: usize>(
    t: &Tile<F>,
    d: usize,
    m: &[F; TILE],
    logs: &Logs,
    sh: Sh,
    out: &mut Tile<F>,
) {
    let d = len::<D>(d);
    // Lanes in separate arrays, as `Logs`.
    let (mut c_hi, mut c_lo) = ([F::ZERO; TILE], [F::ZERO; TILE]);
    for r in 0..TILE {
        (c_hi[r], c_lo[r]) = shift::log_const(m[r], logs.get(r));
    }
    for (oc, tc) in out.iter_mut().zip(t).take(d) {
        column_barrier();
        for (r, (o, &v)) in oc.iter_mut().zip(tc).enumerate() {
            *o = sh.log_out::<S>(v, m[r], (c_hi[r], c_lo[r]), logs.get(r));
        }
    }
}

/// `out[r] = v[r]` for the first `out.len()` (at most `TILE`) lanes. PERF: a copy of any
/// length was a call to memcpy, which the whole-tile copy then shared.
#[inline(always)]
pub fn put_lanes<F: Copy>(v: &[F; TILE], out: &mut [F]) {
    match <&mut [F; TILE]>::try_from(&mut *out) {
        Ok(o) => *o = *v,
        Err(_) => {
            for (o, &x) in out.iter_mut().zip(v) {
                column_barrier();
                *o = x;
            }
        }
    }
}

/// Each row's argmax with NumPy's rules (the first NaN, else the first maximum), as lanes.
///
/// PERF: one pass keeps each lane's first strictly greater value and its column; a NaN
/// compares false and would be passed over, so a tile where one of the first `d` columns
/// holds a NaN (its running sum is NaN then, or after inf - inf) is redone by `argmax_keys`.
#[inline(always)]
pub fn argmax<F: Float, const D: usize>(t: &Tile<F>, d: usize) -> [u32; TILE] {
    let d = len::<D>(d);
    let mut m = t[0];
    let mut sum = t[0];
    let mut at = [0u32; TILE];
    for (j, c) in t[..d].iter().enumerate().skip(1) {
        column_barrier();
        for (((mi, ai), si), &v) in m.iter_mut().zip(&mut at).zip(&mut sum).zip(c) {
            let gt = v > *mi;
            *mi = if gt { v } else { *mi };
            *ai = if gt { j as u32 } else { *ai };
            *si = *si + v;
        }
    }
    if sum.iter().any(|s| s.is_nan()) {
        return argmax_keys::<F, D>(t, d);
    }
    at
}

/// `argmax` for tiles that may hold NaNs. Each value gets a key, its column for a NaN and
/// `COLS` + its column for a maximum; the least key wins. Out of line, so compiled for the
/// baseline ISA: only tiles whose rows hold a NaN take it.
#[inline(never)]
fn argmax_keys<F: Float, const D: usize>(t: &Tile<F>, d: usize) -> [u32; TILE] {
    let d = len::<D>(d);
    let mut m = [F::NEG_INF; TILE];
    for c in &t[..d] {
        column_barrier();
        for (mi, &v) in m.iter_mut().zip(c) {
            *mi = row::beyond::<F, true>(v, *mi);
        }
    }
    let mut key = [u32::MAX; TILE];
    for (j, c) in t[..d].iter().enumerate() {
        column_barrier();
        for ((k, &v), &mv) in key.iter_mut().zip(c).zip(&m) {
            let at = if v == mv { (COLS + j) as u32 } else { u32::MAX };
            let kj = if v.is_nan() { j as u32 } else { at };
            *k = (*k).min(kj);
        }
    }
    for k in key.iter_mut() {
        *k %= COLS as u32;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::row::Acc;
    use crate::kernels::shift::{Temp, Unit};
    use crate::kernels::short;
    use crate::simd::Generic;

    /// Rows with ties for the maximum, -inf values and a wide range of terms.
    fn rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n * d)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32;
                match (s >> 20) % 13 {
                    0 => 3.0,
                    1 => f32::NEG_INFINITY,
                    _ => (u - 0.5) * 40.0 + (i % 3) as f32,
                }
            })
            .collect()
    }

    /// The window path's softmax and sums of the rows of `x`. Zero rows are appended so
    /// that each row of `x` is read as a window (the last rows of a buffer are added in
    /// order instead: a quirk of that path, not a rule).
    fn windows<Sh: Shift<f32>>(x: &[f32], d: usize, sh: Sh) -> (Vec<f32>, Vec<Acc>) {
        let (rows_n, len) = (x.len() / d, x.len());
        let mut x = x.to_vec();
        x.resize(len + TILE * d, 0.0);
        let x = &x[..];
        let n = x.len() / d;
        let (mut m, mut mexp, mut e) = (vec![0.0; n], vec![0.0; x.len()], vec![0.0; x.len()]);
        assert!(short::row_max_expand::<f32, 0>(x, d, &mut m, &mut mexp));
        short::exp_flat::<f32, Generic, Sh>(x, &mexp, sh, &mut e);
        let mut s = vec![Acc::default(); n];
        short::row_sums::<f32, 0>(x, &e, &m, d, &mut s);
        let inv: Vec<(f32, f32)> = s.iter().map(|a| <f32 as Float>::recip(a.value())).collect();
        let mut out = vec![0.0; x.len()];
        short::scale_rows::<f32, Generic, 0>(&e, d, &inv, &mut out);
        out.truncate(len);
        s.truncate(rows_n);
        (out, s)
    }

    #[test]
    fn tile_path_has_the_window_paths_bits() {
        for d in 2..=short::SHORT_MAX {
            for rows_n in [1, 5, TILE] {
                let x = rows(rows_n, d, (d * 31 + rows_n) as u64);
                for sh in [None, Some(Temp::<f32>::new(0.7))] {
                    let (want, want_s) = match sh {
                        None => windows(&x, d, Unit),
                        Some(t) => windows(&x, d, t),
                    };
                    let mut t = [[0.0f32; TILE]; COLS];
                    load(&x, d, &mut t);
                    let (m, _) = max_min::<f32, 0>(&t, d);
                    assert!(all_finite(&m, rows_n));
                    let mut e = [[0.0f32; TILE]; COLS];
                    let s = match sh {
                        None => exp_sums::<f32, Generic, Unit, 0, false>(&t, d, &m, Unit, &mut e),
                        Some(tp) => {
                            exp_sums::<f32, Generic, Temp<f32>, 0, false>(&t, d, &m, tp, &mut e)
                        }
                    };
                    for (r, w) in want_s.iter().enumerate() {
                        assert_eq!(s.acc(r), *w, "d={d} row {r}");
                    }
                    scale::<f32, Generic, 0>(&mut e, d, &s);
                    let mut got = vec![0.0; x.len()];
                    store(&e, d, &mut got);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "d={d} rows={rows_n}");
                }
            }
        }
    }

    /// The window path's tree over `terms` padded with +0 to 16, 32 or 64, breadth first.
    fn window_tree(terms: &[f64]) -> f64 {
        let mut r = terms.to_vec();
        r.resize(terms.len().next_power_of_two().max(16), 0.0);
        let mut step = r.len() / 2;
        while step > 0 {
            for i in 0..step {
                r[i] += r[i + step];
            }
            step /= 2;
        }
        r[0]
    }

    #[test]
    fn tile_sums_follow_the_window_tree_and_keep_the_bound_for_every_width() {
        for d in 2..=COLS {
            let x = rows(TILE, d, (d * 7 + 3) as u64);
            let mut t = [[0.0f32; TILE]; COLS];
            load(&x, d, &mut t);
            let (m, _) = max_min::<f32, 0>(&t, d);
            let mut e = [[0.0f32; TILE]; COLS];
            let s = exp_sums::<f32, Generic, Unit, 0, false>(&t, d, &m, Unit, &mut e);
            for r in 0..TILE {
                let top = |j: usize| t[j][r] == m[r];
                let terms: Vec<f64> = (0..d)
                    .map(|j| if top(j) { 0.0 } else { f64::from(e[j][r]) })
                    .collect();
                let want = window_tree(&terms);
                assert_eq!(s.rest[r].to_bits(), want.to_bits(), "d={d} row {r}");
                assert_eq!(s.count[r], (0..d).filter(|&j| top(j)).count() as f64);
            }
            scale::<f32, Generic, 0>(&mut e, d, &s);
            for (r, row) in x.chunks_exact(d).enumerate() {
                let top = row
                    .iter()
                    .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
                let z: f64 = row.iter().map(|&v| (f64::from(v) - top).exp()).sum();
                for (j, &v) in row.iter().enumerate() {
                    let want = (f64::from(v) - top).exp() / z;
                    if want >= f64::from(f32::MIN_POSITIVE) {
                        let err = (f64::from(e[j][r]) - want).abs() / want;
                        assert!(
                            err <= 4.0 * f64::from(f32::EPSILON),
                            "d={d} ({r}, {j}): {err}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn load_then_store_is_the_identity() {
        for d in 1..=COLS {
            for n in 0..=TILE {
                let x: Vec<f64> = (0..n * d).map(|i| i as f64).collect();
                let mut t = [[-1.0f64; TILE]; COLS];
                load(&x, d, &mut t);
                for (i, &v) in x.iter().enumerate() {
                    assert_eq!(t[i % d][i / d], v);
                }
                let mut back = vec![0.0; n * d];
                store(&t, d, &mut back);
                assert_eq!(back, x);
            }
        }
    }

    #[test]
    fn non_finite_maxima_are_found_in_the_rows_only() {
        let mut t = [[0.0f32; TILE]; COLS];
        t[0][5] = f32::INFINITY;
        let (m, _) = max_min::<f32, 0>(&t, 3);
        assert!(!all_finite(&m, 6));
        assert!(all_finite(&m, 5));
        t[0][5] = f32::NEG_INFINITY;
        let (m, _) = max_min::<f32, 0>(&t, 1);
        assert!(!all_finite(&m, 6));
    }

    #[test]
    fn argmax_matches_the_window_path() {
        use crate::kernels::argmax::{argmax_packed, PACKED_MAX};
        for d in 1..=PACKED_MAX {
            for case in 0..4 {
                let mut x = rows(TILE, d, d as u64 + 40);
                // A row of -inf only, a row of ties; then, in turn, none of these, a NaN
                // after a maximum, a NaN first, +inf and -inf in one row (a NaN sum).
                x[3 * d..4 * d].fill(f32::NEG_INFINITY);
                x[4 * d..5 * d].fill(2.5);
                match case {
                    1 => x[2 * d + d / 2] = f32::NAN,
                    2 => x[2 * d] = f32::NAN,
                    3 => {
                        x[5 * d + d - 1] = f32::INFINITY;
                        x[5 * d] = f32::NEG_INFINITY;
                    }
                    _ => {}
                }
                let mut want = [0u32; TILE];
                argmax_packed(&x, d, |r, i| want[r] = i as u32);
                let mut t = [[0.0f32; TILE]; COLS];
                load(&x, d, &mut t);
                assert_eq!(argmax::<f32, 0>(&t, d), want, "d={d} case={case}");
                assert_eq!(argmax_keys::<f32, 0>(&t, d), want, "d={d} case={case}");
                match d {
                    10 => assert_eq!(argmax::<f32, 10>(&t, d), want, "case={case}"),
                    16 => assert_eq!(argmax::<f32, 16>(&t, d), want, "case={case}"),
                    32 => assert_eq!(argmax::<f32, 32>(&t, d), want, "case={case}"),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn log_matches_the_row_form() {
        let d = 10;
        let x = rows(TILE, d, 7);
        let mut t = [[0.0f32; TILE]; COLS];
        load(&x, d, &mut t);
        let (m, _) = max_min::<f32, 0>(&t, d);
        let mut e = [[0.0f32; TILE]; COLS];
        let s = exp_sums::<f32, Generic, Unit, 0, false>(&t, d, &m, Unit, &mut e);
        let logs = s.logs::<f32>();
        for r in 0..TILE {
            let want = crate::kernels::row::log_of_sum::<f32>(s.acc(r));
            assert_eq!(logs.get(r), want, "row {r}");
        }
        let mut out = [[0.0f32; TILE]; COLS];
        log::<f32, Generic, Unit, 0>(&t, d, &m, &logs, Unit, &mut out);
        let mut got = vec![0.0; x.len()];
        store(&out, d, &mut got);
        for r in 0..TILE {
            let mut want = vec![0.0; d];
            let row = &x[r * d..(r + 1) * d];
            crate::kernels::row::log_shift::<f32, Generic, Unit>(
                row,
                m[r],
                crate::kernels::row::max_min_portable(row).1,
                Unit,
                logs.get(r),
                &mut want,
            );
            assert_eq!(got[r * d..(r + 1) * d], want[..]);
        }
    }
}
