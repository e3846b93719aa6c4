//! Short rows (a few dozen values): per-row work reads each row as one masked window (see
//! `window`), while the exponentials, the bulk of the arithmetic, run flat over a block of
//! rows at full vector width. This avoids the per-row tail handling that makes peers slow on shapes such as
//! (65536, 10).

use crate::elem::Float;
use crate::kernels::row::Acc;
use crate::kernels::shift::{self, Shift};
use crate::kernels::window;
use crate::simd::Simd;

/// The longest row this path takes (ISAs with tiles take rows up to `tile::COLS` there).
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
pub fn row_max_expand<F: Float, const D: usize>(
    x: &[F],
    d: usize,
    m: &mut [F],
    mexp: &mut [F],
) -> bool {
    let d = len::<D>(d);
    if d <= 16 {
        max_windows::<F, 16>(x, d, m, mexp)
    } else {
        max_windows::<F, 32>(x, d, m, mexp)
    }
}

#[inline(always)]
fn max_windows<F: Float, const W: usize>(x: &[F], d: usize, m: &mut [F], mexp: &mut [F]) -> bool {
    let nw = window::windowed(x.len(), d, W);
    let keep = window::keep::<W>(d);
    let mut finite = true;
    for r in 0..nw {
        let mut v = window::load(x, r * d, &keep, F::NEG_INF);
        for s in [16, 8, 4, 2, 1] {
            if s < W {
                for i in 0..s {
                    // A NaN may or may not survive this select; either way the row is
                    // NaN (its sum is), or its maximum is not finite and the caller
                    // takes the general path.
                    v[i] = if v[i + s] > v[i] { v[i + s] } else { v[i] };
                }
            }
        }
        let top = v[0];
        finite &= top.is_finite();
        m[r] = top;
        let me: &mut [F; W] = (&mut mexp[r * d..r * d + W])
            .try_into()
            .expect("a full window");
        *me = [top; W];
    }
    for r in nw..x.len() / d {
        let mut v = F::NEG_INF;
        for &a in &x[r * d..(r + 1) * d] {
            v = if a > v { a } else { v };
        }
        finite &= v.is_finite();
        m[r] = v;
        mexp[r * d..(r + 1) * d].fill(v);
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

/// Per-row sums of `e` in f64, as `row::Acc`: the exact ones (x == max) counted apart, so
/// that `sum - 1` keeps its digits for log_softmax.
#[inline(always)]
pub fn row_sums<F: Float, const D: usize>(x: &[F], e: &[F], m: &[F], d: usize, s: &mut [Acc]) {
    let d = len::<D>(d);
    if d <= 16 {
        sum_windows::<F, 16>(x, e, m, d, s)
    } else {
        sum_windows::<F, 32>(x, e, m, d, s)
    }
}

#[inline(always)]
fn sum_windows<F: Float, const W: usize>(x: &[F], e: &[F], m: &[F], d: usize, s: &mut [Acc]) {
    let nw = window::windowed(x.len(), d, W);
    let keep = window::keep::<W>(d);
    for r in 0..nw {
        let xw: &[F; W] = x[r * d..r * d + W].try_into().expect("a full window");
        let ew: &[F; W] = e[r * d..r * d + W].try_into().expect("a full window");
        let mr = m[r];
        let mut rest = [0.0f64; W];
        let mut count = [0.0f64; W];
        for j in 0..W {
            let (xv, ev) = (xw[j], ew[j].to_f64());
            let top = xv == mr;
            rest[j] = if keep[j] & !top { ev } else { 0.0 };
            count[j] = if keep[j] & top { 1.0 } else { 0.0 };
        }
        for w in [16, 8, 4, 2, 1] {
            if w < W {
                for i in 0..w {
                    rest[i] += rest[i + w];
                    count[i] += count[i + w];
                }
            }
        }
        s[r] = Acc {
            hi: rest[0],
            lo: 0.0,
            count: count[0],
        };
    }
    for r in nw..x.len() / d {
        let (mut rest, mut count) = (0.0f64, 0.0f64);
        for (&xv, &ev) in x[r * d..(r + 1) * d].iter().zip(&e[r * d..(r + 1) * d]) {
            if xv == m[r] {
                count += 1.0;
            } else {
                rest += ev.to_f64();
            }
        }
        s[r] = Acc {
            hi: rest,
            lo: 0.0,
            count,
        };
    }
}

/// `out = e / sum[row]`, given each 1/sum as `F::recip` makes it.
#[inline(always)]
pub fn scale_rows<F: Float, S: Simd, const D: usize>(
    e: &[F],
    d: usize,
    inv: &[(F, F)],
    out: &mut [F],
) {
    let d = len::<D>(d);
    if d <= 16 {
        scale_windows::<F, S, 16>(e, d, inv, out)
    } else {
        scale_windows::<F, S, 32>(e, d, inv, out)
    }
}

#[inline(always)]
fn scale_windows<F: Float, S: Simd, const W: usize>(
    e: &[F],
    d: usize,
    inv: &[(F, F)],
    out: &mut [F],
) {
    let nw = window::windowed(e.len(), d, W);
    for (r, &(ih, il)) in inv.iter().enumerate().take(nw) {
        let ew: &[F; W] = e[r * d..r * d + W].try_into().expect("a full window");
        let ow: &mut [F; W] = (&mut out[r * d..r * d + W])
            .try_into()
            .expect("a full window");
        // Computed in a local copy and stored whole (stored lane by lane, it stayed scalar).
        let mut t = *ew;
        for v in t.iter_mut() {
            *v = F::fma::<S>(*v, ih, *v * il);
        }
        *ow = t;
    }
    for (r, &(ih, il)) in inv.iter().enumerate().skip(nw) {
        for (a, &b) in out[r * d..(r + 1) * d]
            .iter_mut()
            .zip(&e[r * d..(r + 1) * d])
        {
            *a = F::fma::<S>(b, ih, b * il);
        }
    }
}

/// `out = (x - m[row]) / T - log_sum[row]`, rounded once (see `Shift::log_out`).
#[inline(always)]
pub fn log_rows<F: Float, S: Simd, Sh: Shift<F>, const D: usize>(
    x: &[F],
    d: usize,
    m: &[F],
    log_sum: &[(f64, f64)],
    sh: Sh,
    out: &mut [F],
) {
    let d = len::<D>(d);
    if d <= 16 {
        log_windows::<F, S, Sh, 16>(x, d, m, log_sum, sh, out)
    } else {
        log_windows::<F, S, Sh, 32>(x, d, m, log_sum, sh, out)
    }
}

#[inline(always)]
fn log_windows<F: Float, S: Simd, Sh: Shift<F>, const W: usize>(
    x: &[F],
    d: usize,
    m: &[F],
    log_sum: &[(f64, f64)],
    sh: Sh,
    out: &mut [F],
) {
    let nw = window::windowed(x.len(), d, W);
    for r in 0..nw {
        let xw: &[F; W] = x[r * d..r * d + W].try_into().expect("a full window");
        let c = shift::log_const(m[r], log_sum[r]);
        // As in `scale_windows`: made in a local copy, stored whole.
        let mut t = *xw;
        for v in t.iter_mut() {
            *v = sh.log_out::<S>(*v, m[r], c, log_sum[r]);
        }
        let ow: &mut [F; W] = (&mut out[r * d..r * d + W])
            .try_into()
            .expect("a full window");
        *ow = t;
    }
    for r in nw..m.len() {
        let c = shift::log_const(m[r], log_sum[r]);
        for (o, &v) in out[r * d..(r + 1) * d].iter_mut().zip(&x[r * d..]) {
            *o = sh.log_out::<S>(v, m[r], c, log_sum[r]);
        }
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
        let mut s = [Acc::default(); 2];
        row_sums::<f64, 3>(&x, &e, &m, d, &mut s);
        assert_eq!(s[1].count, 3.0);
        let inv = [
            <f64 as Float>::recip(s[0].value()),
            <f64 as Float>::recip(s[1].value()),
        ];
        let mut out = [0.0; 6];
        scale_rows::<f64, Generic, 0>(&e, d, &inv, &mut out);
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
