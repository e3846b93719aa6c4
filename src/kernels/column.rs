//! Kernels for reductions over a non-last axis: the data is walked in memory order, one
//! contiguous slice of `w` columns per reduced index, with per-column state in small
//! buffers. Everything is elementwise across columns, so it vectorizes without gathers.

use crate::elem::Float;
use crate::kernels::exp;
use crate::kernels::row::{self, LANES};
use crate::kernels::shift::Shift;
use crate::simd::Simd;

/// Rows summed in the compute type before folding into the per-column f64 totals: short, so
/// that a column's sequential partial sum stays accurate (its error grows with its length).
pub const COL_FOLD: usize = 16;

/// `m = max(m, row)` and `min = min(min, row)` per column, ignoring NaN (a NaN makes the
/// column's sum NaN later).
#[inline(always)]
pub fn max_min_update<F: Float>(m: &mut [F], min: &mut [F], row: &[F]) {
    for ((a, b), &v) in m.iter_mut().zip(min.iter_mut()).zip(row) {
        *a = row::beyond::<F, true>(v, *a);
        *b = row::beyond::<F, false>(v, *b);
    }
}

/// Rows that `max_min_rows` takes at once.
pub const MAX_MIN_ROWS: usize = 4;

/// `max_min_update` over `MAX_MIN_ROWS` rows in order (the same results), `LANES` columns at
/// a time: each column's maximum and minimum are loaded and stored once per group of rows
/// instead of once per row. PERF: row by row, the compiler made each update a compare and
/// a masked store, two per 16 values. One thread, axis 0, against row by row: f32
/// (2048, 2048) logsumexp 0.88x the time, log_softmax 0.95x, softmax 1.0x; (1024, 4096)
/// softmax 0.87x, (512, 512) 0.91x, (100000, 16) 0.82x; f64 (2048, 2048) softmax 0.88x,
/// logsumexp 0.84x. (4096, 1024) softmax, whose rows of one page each come from memory,
/// 0.97x-1.05x.
#[inline(always)]
pub fn max_min_rows<F: Float>(m: &mut [F], min: &mut [F], rows: [&[F]; MAX_MIN_ROWS]) {
    let w = m.len();
    assert_eq!(min.len(), w);
    let rows = rows.map(|r| &r[..w]);
    let full = w / LANES * LANES;
    for j in (0..full).step_by(LANES) {
        let cols = j..j + LANES;
        let mc: &mut [F; LANES] = (&mut m[cols.clone()]).try_into().expect("LANES columns");
        let lc: &mut [F; LANES] = (&mut min[cols.clone()]).try_into().expect("LANES columns");
        let (mut a, mut b) = (*mc, *lc);
        for x in rows {
            let xc = &x[cols.clone()];
            for i in 0..LANES {
                a[i] = row::beyond::<F, true>(xc[i], a[i]);
                b[i] = row::beyond::<F, false>(xc[i], b[i]);
            }
        }
        (*mc, *lc) = (a, b);
    }
    for x in rows {
        max_min_update(&mut m[full..], &mut min[full..], &x[full..]);
    }
}

/// `s += exp((row - m) / T)` per column, the exact ones (row == m) counted in `ones`
/// instead (see `row::Acc`). With `NORMAL`, every column's range suits `Float::exp_normal`
/// (see `row::normal_range`).
#[inline(always)]
pub fn sum_update<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    s: &mut [F],
    ones: &mut [F],
    row: &[F],
    m: &[F],
    sh: Sh,
) {
    for (((a, c), &v), &mv) in s.iter_mut().zip(ones.iter_mut()).zip(row).zip(m) {
        let (hi, lo) = sh.split::<S>(v, mv);
        let e = row::exp_of::<F, S, NORMAL>(hi, lo);
        add_term(a, c, e, v == mv);
    }
}

/// `sum_update` that also writes each term to `out`, for `scale` to finish in place.
#[inline(always)]
pub fn sum_update_into<F: Float, S: Simd, Sh: Shift<F>, const NORMAL: bool>(
    s: &mut [F],
    ones: &mut [F],
    row: &[F],
    m: &[F],
    sh: Sh,
    out: &mut [F],
) {
    for ((((a, c), &v), &mv), o) in s.iter_mut().zip(ones.iter_mut()).zip(row).zip(m).zip(out) {
        let (hi, lo) = sh.split::<S>(v, mv);
        let e = row::exp_of::<F, S, NORMAL>(hi, lo);
        *o = e;
        add_term(a, c, e, v == mv);
    }
}

#[inline(always)]
fn add_term<F: Float>(s: &mut F, ones: &mut F, e: F, top: bool) {
    *s = *s + if top { F::ZERO } else { e };
    *ones = *ones + if top { F::ONE } else { F::ZERO };
}

/// Fold the compute-type partial sums into the f64 totals and clear them.
#[inline(always)]
pub fn fold<F: Float>(total: &mut [f64], partial: &mut [F]) {
    for (t, p) in total.iter_mut().zip(partial.iter_mut()) {
        *t += p.to_f64();
        *p = F::ZERO;
    }
}

/// Fold partial sums into compensated (Neumaier) f64 totals `hi + lo` and clear them, so
/// that long columns do not accumulate the rounding of d / COL_FOLD sequential additions.
#[inline(always)]
pub fn fold_compensated<F: Float>(hi: &mut [f64], lo: &mut [f64], partial: &mut [F]) {
    for ((h, l), p) in hi.iter_mut().zip(lo.iter_mut()).zip(partial.iter_mut()) {
        let v = p.to_f64();
        let t = *h + v;
        *l += if h.abs() >= v.abs() {
            (*h - t) + v
        } else {
            (v - t) + *h
        };
        *h = t;
        *p = F::ZERO;
    }
}

/// e^((m - to) / T), in f64, for a maximum that grew from `m` to `to`; exactly 1 where it
/// did not grow, and 0 where `m` is -inf (a column with no finite value yet).
#[inline(always)]
pub fn growth<F: Float, S: Simd, Sh: Shift<F>>(m: F, to: F, sh: Sh) -> f64 {
    let arg = if to > m {
        sh.apply(m.to_f64() - to.to_f64())
    } else {
        0.0
    };
    exp::exp_f64::<S>(arg, 0.0)
}

/// Move per-column sums, `hi + lo` plus `ones` exact ones relative to the maxima `m`, onto
/// the maxima `to` (each at least its `m`), and set `m = to`. A column whose maximum grew
/// is scaled by e^((m - to) / T), made in f64 (an ulp of f64, far below an f32 result's),
/// and its ones join the rest; every other column keeps its bits.
#[inline(always)]
pub fn rescale<F: Float, S: Simd, Sh: Shift<F>>(
    m: &mut [F],
    to: &[F],
    hi: &mut [f64],
    lo: &mut [f64],
    ones: &mut [f64],
    sh: Sh,
) {
    // A fold rather than `any`, which stops early and so does not vectorize.
    if !m
        .iter()
        .zip(to)
        .fold(false, |grew, (&a, &b)| grew | (b > a))
    {
        return;
    }
    let sums = hi.iter_mut().zip(lo.iter_mut()).zip(ones.iter_mut());
    for ((mv, &t), ((h, l), o)) in m.iter_mut().zip(to).zip(sums) {
        let grew = t > *mv;
        let f = growth::<F, S, Sh>(*mv, t, sh);
        *h = *h * f + if grew { *o * f } else { 0.0 };
        *l *= f;
        *o = if grew { 0.0 } else { *o };
        *mv = t;
    }
}

/// `out = exp((row - m) / T) / sum` per column, given 1/sum as `inv_hi + inv_lo`.
#[inline(always)]
pub fn exp_scale<F: Float, S: Simd, Sh: Shift<F>>(
    out: &mut [F],
    row: &[F],
    m: &[F],
    inv_hi: &[F],
    inv_lo: &[F],
    sh: Sh,
) {
    for ((((o, &v), &mv), &ih), &il) in out.iter_mut().zip(row).zip(m).zip(inv_hi).zip(inv_lo) {
        let (hi, lo) = sh.split::<S>(v, mv);
        let e = F::exp::<S>(hi, lo);
        *o = F::fma::<S>(e, ih, e * il);
    }
}

/// `out = out / sum` per column, over the terms `sum_update_into` left there: the same
/// results as `exp_scale`, without making each exponential again.
#[inline(always)]
pub fn scale<F: Float, S: Simd>(out: &mut [F], inv_hi: &[F], inv_lo: &[F]) {
    for ((o, &ih), &il) in out.iter_mut().zip(inv_hi).zip(inv_lo) {
        let e = *o;
        *o = F::fma::<S>(e, ih, e * il);
    }
}

/// `out = (row - m) / T - log_sum` per column, rounded once; `c` holds each column's
/// `shift::log_const`.
#[inline(always)]
pub fn log_shift<F: Float, S: Simd, Sh: Shift<F>>(
    out: &mut [F],
    row: &[F],
    m: &[F],
    log_sum: &[(f64, f64)],
    c: &[(F, F)],
    sh: Sh,
) {
    for ((((o, &v), &mv), &ls), &cv) in out.iter_mut().zip(row).zip(m).zip(log_sum).zip(c) {
        *o = sh.log_out::<S>(v, mv, cv, ls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::shift::{Temp, Unit};
    use crate::simd::Generic;

    /// `rescale`'s cases, compiled for the ISA it runs on.
    struct RescaleCases;

    impl crate::simd::Job for RescaleCases {
        fn run<S: Simd>(&self, _task: usize) {
            let (inf, nan) = (f32::INFINITY, f64::NAN);
            // Kept; grown by 2; no finite value yet, then 1; still none; NaN sums; to +inf.
            let mut m = [1.0f32, 1.0, -inf, -inf, 0.0, 5.0];
            let to = [1.0f32, 3.0, 1.0, -inf, 1.0, inf];
            let mut hi = [0.25, 0.5, 0.0, 0.0, nan, 0.5];
            let mut lo = [1e-18, 1e-18, 0.0, 0.0, 0.0, 0.0];
            let mut ones = [2.0, 1.0, 0.0, 0.0, 1.0, 1.0];
            rescale::<f32, S, Unit>(&mut m, &to, &mut hi, &mut lo, &mut ones, Unit);
            assert_eq!(m, to);
            assert_eq!((hi[0], lo[0], ones[0]), (0.25, 1e-18, 2.0), "same bits");
            let want = 1.5 * (-2.0f64).exp();
            assert!(((hi[1] + lo[1]) / want - 1.0).abs() < 1e-15, "{}", hi[1]);
            assert_eq!(ones[1], 0.0);
            assert_eq!((hi[2], lo[2], ones[2]), (0.0, 0.0, 0.0));
            assert_eq!((hi[3], lo[3], ones[3]), (0.0, 0.0, 0.0));
            assert!(hi[4].is_nan() && ones[4] == 0.0);
            assert_eq!((hi[5], ones[5]), (0.0, 0.0));
            // A temperature divides the distance: e^((0 - 1) / 0.5).
            let (mut m, mut hi, mut lo, mut ones) = ([0.0f32], [0.0], [0.0], [1.0]);
            rescale::<f32, S, Temp<f32>>(
                &mut m,
                &[1.0],
                &mut hi,
                &mut lo,
                &mut ones,
                Temp::new(0.5),
            );
            assert!((hi[0] / (-2.0f64).exp() - 1.0).abs() < 1e-15, "{}", hi[0]);
            // Nothing grew: nothing moves.
            let (mut m, mut hi, mut lo, mut ones) =
                ([2.0f32, -inf], [0.5, 0.0], [1e-17, 0.0], [3.0, 0.0]);
            rescale::<f32, S, Unit>(&mut m, &[2.0, -inf], &mut hi, &mut lo, &mut ones, Unit);
            assert_eq!((hi, lo, ones), ([0.5, 0.0], [1e-17, 0.0], [3.0, 0.0]));
        }
    }

    /// `max_min_rows` against `max_min_update` row by row, compiled for the ISA it runs on.
    struct MaxMinRowsCases;

    impl crate::simd::Job for MaxMinRowsCases {
        fn run<S: Simd>(&self, _task: usize) {
            let (inf, nan) = (f32::INFINITY, f32::NAN);
            let special = [nan, inf, -inf, 0.0, -0.0, f32::MIN_POSITIVE / 4.0, 3.0];
            for w in [1, 15, 16, 17, 40] {
                // Values cycle through the specials and a spread of others, by row and
                // column; the extremes start from NaN-free values.
                let value = |r: usize, j: usize| match (r * 7 + j * 3) % 11 {
                    k if k < special.len() => special[k],
                    k => (k as f32 - 8.0) * (r as f32 + 1.0),
                };
                let rows: Vec<Vec<f32>> = (0..MAX_MIN_ROWS)
                    .map(|r| (0..w).map(|j| value(r, j)).collect())
                    .collect();
                let start: Vec<f32> = (0..w).map(|j| (j as f32) - 20.0).collect();
                let (mut m1, mut lo1) = (start.clone(), start.clone());
                for r in &rows {
                    max_min_update(&mut m1, &mut lo1, r);
                }
                let (mut m4, mut lo4) = (start.clone(), start);
                let group = std::array::from_fn(|r| rows[r].as_slice());
                max_min_rows(&mut m4, &mut lo4, group);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&m4), bits(&m1), "maxima, width {w}");
                assert_eq!(bits(&lo4), bits(&lo1), "minima, width {w}");
            }
        }
    }

    #[test]
    fn max_min_rows_matches_row_by_row_on_every_isa() {
        for isa in crate::simd::Isa::available() {
            assert!(crate::simd::select(isa));
            crate::simd::dispatch(&MaxMinRowsCases, 0);
        }
    }

    #[test]
    fn rescale_moves_grown_columns_only_on_every_isa() {
        for isa in crate::simd::Isa::available() {
            assert!(crate::simd::select(isa));
            crate::simd::dispatch(&RescaleCases, 0);
        }
    }

    #[test]
    fn column_softmax_matches_reference() {
        // 3 reduced rows of 5 columns.
        let rows: [[f64; 5]; 3] = [
            [1.0, 0.0, -1.0, 5.0, 2.0],
            [3.0, 0.0, -2.0, 5.0, -2.0],
            [2.0, 0.0, -3.0, 4.0, 0.5],
        ];
        let mut m = [f64::NEG_INFINITY; 5];
        let mut min = [f64::INFINITY; 5];
        for r in &rows {
            max_min_update(&mut m, &mut min, r);
        }
        assert_eq!(min, [1.0, 0.0, -3.0, 4.0, -2.0]);
        let mut s = [0.0; 5];
        let mut ones = [0.0; 5];
        let mut terms = [[0.0; 5]; 3];
        for (r, t) in rows.iter().zip(terms.iter_mut()) {
            sum_update_into::<f64, Generic, Unit, false>(&mut s, &mut ones, r, &m, Unit, t);
        }
        let mut total = [0.0; 5];
        fold(&mut total, &mut s);
        let inv: Vec<(f64, f64)> = total
            .iter()
            .zip(ones)
            .map(|(t, c)| <f64 as Float>::recip(t + c))
            .collect();
        let (ih, il): (Vec<f64>, Vec<f64>) = inv.into_iter().unzip();
        for (j, r) in rows.iter().enumerate() {
            let mut out = [0.0; 5];
            exp_scale::<f64, Generic, Unit>(&mut out, r, &m, &ih, &il, Unit);
            // The two-step form gives the same bits.
            let mut two_step = terms[j];
            scale::<f64, Generic>(&mut two_step, &ih, &il);
            assert_eq!(two_step, out);
            for c in 0..5 {
                let z: f64 = rows.iter().map(|q| (q[c] - m[c]).exp()).sum();
                let want = (rows[j][c] - m[c]).exp() / z;
                assert!((out[c] - want).abs() < 1e-15);
            }
        }
    }
}
