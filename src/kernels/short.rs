//! Short rows (a few dozen values): per-row work is done with scalar loops, while the
//! exponentials, the bulk of the arithmetic, run flat over a block of rows at full vector
//! width. This avoids the per-row tail handling that makes peers slow on shapes such as
//! (65536, 10).

use crate::elem::Float;
use crate::kernels::shift::Shift;
use crate::simd::Simd;

/// The longest row this path takes.
pub const SHORT_MAX: usize = 32;
/// Rows per block: the block and its scratch stay in L1.
pub const SHORT_ROWS: usize = 256;

/// The row length: the compile-time `D` when the caller specialised on it (PERF: the
/// per-row loops then unroll completely), else the runtime `d`.
#[inline(always)]
pub fn len<const D: usize>(d: usize) -> usize {
    if D == 0 {
        d
    } else {
        D
    }
}

/// Per-row maxima of `x` (rows of `d`), also written out once per element into `mexp`.
/// Returns false if some row's maximum is not finite (the caller takes the general path).
#[inline(always)]
pub fn row_max_expand<F: Float, const D: usize>(x: &[F], d: usize, m: &mut [F], mexp: &mut [F]) -> bool {
    let d = len::<D>(d);
    let mut finite = true;
    for ((row, mr), me) in x.chunks_exact(d).zip(m.iter_mut()).zip(mexp.chunks_exact_mut(d)) {
        let mut v = F::NEG_INF;
        for &a in row {
            v = if a > v { a } else { v };
        }
        finite &= v > F::NEG_INF && v < F::INF;
        *mr = v;
        me.fill(v);
    }
    finite
}

/// `e = exp((x - mexp) / T)`, flat.
#[inline(always)]
pub fn exp_flat<F: Float, S: Simd, Sh: Shift<F>>(x: &[F], mexp: &[F], sh: Sh, e: &mut [F]) {
    for ((o, &v), &mv) in e.iter_mut().zip(x).zip(mexp) {
        let (hi, lo) = sh.split::<S>(v, mv);
        *o = F::exp::<S>(hi, lo);
    }
}

/// Per-row sums of `e` in f64.
#[inline(always)]
pub fn row_sums<F: Float, const D: usize>(e: &[F], d: usize, s: &mut [f64]) {
    let d = len::<D>(d);
    for (row, sr) in e.chunks_exact(d).zip(s.iter_mut()) {
        *sr = row.iter().map(|v| v.to_f64()).sum();
    }
}

/// `out = x * inv[row]`.
#[inline(always)]
pub fn scale_rows<F: Float, const D: usize>(e: &[F], d: usize, inv: &[F], out: &mut [F]) {
    let d = len::<D>(d);
    for ((row, o), &iv) in e.chunks_exact(d).zip(out.chunks_exact_mut(d)).zip(inv) {
        for (a, &b) in o.iter_mut().zip(row) {
            *a = b * iv;
        }
    }
}

/// Write each row's value `v[row]` over its `d` elements.
#[inline(always)]
pub fn expand<F: Float, const D: usize>(v: &[F], d: usize, out: &mut [F]) {
    let d = len::<D>(d);
    for (row, &x) in out.chunks_exact_mut(d).zip(v) {
        row.fill(x);
    }
}

/// `out = (x - mexp) / T - lexp`, flat.
#[inline(always)]
pub fn log_flat<F: Float, S: Simd, Sh: Shift<F>>(
    x: &[F],
    mexp: &[F],
    lexp: &[F],
    sh: Sh,
    out: &mut [F],
) {
    for (((o, &v), &mv), &l) in out.iter_mut().zip(x).zip(mexp).zip(lexp) {
        let (hi, lo) = sh.split::<S>(v, mv);
        let lo = if hi == F::NEG_INF { F::ZERO } else { lo };
        *o = (hi - l) + lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::shift::Unit;
    use crate::simd::Generic;

    #[test]
    fn short_rows_softmax() {
        let d = 3;
        let x = [1.0f64, 3.0, 2.0, 0.0, 0.0, 0.0];
        let mut m = [0.0; 2];
        let mut mexp = [0.0; 6];
        assert!(row_max_expand::<f64, 0>(&x, d, &mut m, &mut mexp));
        assert_eq!(m, [3.0, 0.0]);
        let mut e = [0.0; 6];
        exp_flat::<f64, Generic, Unit>(&x, &mexp, Unit, &mut e);
        let mut s = [0.0; 2];
        row_sums::<f64, 3>(&e, d, &mut s);
        let inv = [1.0 / s[0], 1.0 / s[1]];
        let mut out = [0.0; 6];
        scale_rows::<f64, 0>(&e, d, &inv, &mut out);
        assert!((out[1] - 0.665_240_955_774_821_6).abs() < 1e-15);
        assert!((out[4] - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn non_finite_maximum_is_reported() {
        let x = [1.0f32, f32::INFINITY];
        let (mut m, mut me) = ([0.0; 1], [0.0; 2]);
        assert!(!row_max_expand::<f32, 2>(&x, 2, &mut m, &mut me));
        let x = [f32::NEG_INFINITY; 2];
        assert!(!row_max_expand::<f32, 2>(&x, 2, &mut m, &mut me));
    }
}
