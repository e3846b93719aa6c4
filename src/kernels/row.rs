//! Kernels over one contiguous row (or one block of a long row).
//!
//! Softmax of a row is three passes: the maximum; `exp(x - max)` with its sum; a scale by one
//! reciprocal of the sum (Blanchard, Higham & Higham 2021: this shifted form has a smaller
//! error bound than `exp(x - logsumexp)`). Sums are folded into an f64 compensated total
//! every `FOLD` elements, so rounding error grows with n / FOLD rather than n / lanes.

use crate::elem::Float;
use crate::kernels::shift::Shift;
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

    /// The sum less one (the maximum's own term), without cancellation.
    #[inline(always)]
    pub fn minus_one(self) -> f64 {
        (self.count - 1.0) + (self.hi + self.lo)
    }
}

/// The NaN-ignoring maximum; -inf for an empty slice. (A NaN in a row is caught later: it
/// makes the sum NaN.)
#[inline(always)]
pub fn max<F: Float>(x: &[F]) -> F {
    let mut acc = [F::NEG_INF; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    let mut m = F::NEG_INF;
    for &v in acc.iter().chain(tail) {
        if v > m {
            m = v;
        }
    }
    m
}

/// Writes `out[i] = exp((x[i] - m) / T)` for one block (at most `FOLD` long) and returns
/// the block's sum of the terms other than the exact ones (x == m), and their count.
#[inline(always)]
fn exp_block<F: Float, S: Simd, Sh: Shift<F>>(x: &[F], m: F, sh: Sh, out: &mut [F]) -> (f64, f64) {
    debug_assert_eq!(x.len(), out.len());
    // PERF: one register of lane accumulators, summed as the terms are made. (A separate
    // summing loop over the stored block compiled to lane extracts per step.)
    let mut acc = [F::ZERO; LANES];
    let mut ones = [F::ZERO; LANES];
    let xs = x.chunks_exact(LANES);
    let x_tail = xs.remainder();
    let mut os = out.chunks_exact_mut(LANES);
    for (xc, oc) in xs.zip(&mut os) {
        for i in 0..LANES {
            let (hi, lo) = sh.split::<S>(xc[i], m);
            let e = F::exp::<S>(hi, lo);
            oc[i] = e;
            // The exact ones (x == m, where e is exactly 1) are counted, not summed.
            let top = xc[i] == m;
            acc[i] = acc[i] + if top { F::ZERO } else { e };
            ones[i] = ones[i] + if top { F::ONE } else { F::ZERO };
        }
    }
    let mut total = 0.0f64;
    let mut count = 0.0f64;
    for (o, &v) in os.into_remainder().iter_mut().zip(x_tail) {
        let (hi, lo) = sh.split::<S>(v, m);
        let e = F::exp::<S>(hi, lo);
        *o = e;
        if v == m {
            count += 1.0;
        } else {
            total += e.to_f64();
        }
    }
    // Pairwise over the lanes keeps the fold itself accurate.
    // (Constant widths, so the loops unroll and the lanes stay in registers.)
    for w in [8, 4, 2, 1] {
        for i in 0..w {
            acc[i] = acc[i] + acc[i + w];
            ones[i] = ones[i] + ones[i + w];
        }
    }
    (total + acc[0].to_f64(), count + ones[0].to_f64())
}

/// `sum(exp((x - m) / T))`, writing each term to `out`.
#[inline(always)]
pub fn sum_exp_into<F: Float, S: Simd, Sh: Shift<F>>(x: &[F], m: F, sh: Sh, out: &mut [F]) -> Acc {
    let mut acc = Acc::default();
    for (xb, ob) in x.chunks(FOLD).zip(out.chunks_mut(FOLD)) {
        let (rest, ones) = exp_block::<F, S, Sh>(xb, m, sh, ob);
        acc.add(rest);
        acc.count += ones;
    }
    acc
}

/// `sum(exp((x - m) / T))` without storing the terms.
#[inline(always)]
pub fn sum_exp<F: Float, S: Simd, Sh: Shift<F>>(x: &[F], m: F, sh: Sh) -> Acc {
    let mut scratch = [F::ZERO; FOLD];
    let mut acc = Acc::default();
    for xb in x.chunks(FOLD) {
        let (rest, ones) = exp_block::<F, S, Sh>(xb, m, sh, &mut scratch[..xb.len()]);
        acc.add(rest);
        acc.count += ones;
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
pub fn exp_scale<F: Float, S: Simd, Sh: Shift<F>>(
    x: &[F],
    m: F,
    sh: Sh,
    inv: (F, F),
    out: &mut [F],
) {
    for (o, &v) in out.iter_mut().zip(x) {
        let (hi, lo) = sh.split::<S>(v, m);
        let e = F::exp::<S>(hi, lo);
        *o = F::fma::<S>(e, inv.0, e * inv.1);
    }
}

/// `out = (x - m) / T - log_sum`, rounded once (see `Float::log_elem`), so that the winning
/// class keeps its digits.
#[inline(always)]
pub fn log_shift<F: Float, S: Simd, Sh: Shift<F>>(
    x: &[F],
    m: F,
    sh: Sh,
    log_sum: (f64, f64),
    out: &mut [F],
) {
    let inv = sh.inv();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = F::log_elem::<S>(v, m, sh.split::<S>(v, m), inv, log_sum);
    }
}

/// log(sum) as `hi + lo`, from a compensated sum that includes the maximum's term 1:
/// `hi = log1p(sum - 1)`, and `lo` the first-order correction `(sum - e^hi) / sum` with the
/// sum's low part, so that `lo` carries what rounding `hi` lost (about 0.5 ulp of log(sum),
/// which for log_softmax and logsumexp would otherwise be the largest error).
#[inline(always)]
pub fn log_of_sum(acc: Acc) -> (f64, f64) {
    // sum - 1 = (count - 1) + hi + lo, kept as m1 + m1_lo.
    let (t, e1) = crate::kernels::shift::two_diff(acc.count - 1.0, -acc.hi);
    let m1 = t + (e1 + acc.lo);
    let m1_lo = (t - m1) + (e1 + acc.lo);
    let hi = m1.ln_1p();
    let lo = ((m1 - hi.exp_m1()) + m1_lo) / (1.0 + m1);
    if lo.is_finite() {
        (hi, lo)
    } else {
        (hi, 0.0)
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
        let s = sum_exp_into::<f64, Generic, Unit>(&x, m, Unit, &mut out);
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
        let a = sum_exp_into::<f32, Generic, Unit>(&x, m, Unit, &mut out);
        let b = sum_exp::<f32, Generic, Unit>(&x, m, Unit);
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
        let s = sum_exp_into::<f64, Generic, _>(&x, m, Temp::new(t), &mut out);
        let want: f64 = x.iter().map(|v| ((v - m) / t).exp()).sum();
        assert!((s.value() - want).abs() < 1e-15);
    }

    #[test]
    fn log_shift_keeps_the_winner_accurate() {
        // One dominant class: log_softmax of the winner is -log1p(tiny), not 0.
        let x = [0.0f32, -30.0];
        let m = max(&x);
        let s = sum_exp::<f32, Generic, Unit>(&x, m, Unit);
        let l = log_of_sum(s);
        let mut out = [0.0f32; 2];
        log_shift::<f32, Generic, Unit>(&x, m, Unit, l, &mut out);
        let want = -(-30.0f64).exp().ln_1p();
        assert!(
            ((f64::from(out[0]) - want) / want).abs() < 1e-6,
            "{}",
            out[0]
        );
        assert_eq!(out[1], (-30.0 - l.0 - l.1) as f32);
    }

    #[test]
    fn shift_error_is_carried_into_exp() {
        // x - m rounds in f32; the TwoSum correction keeps the exponential accurate.
        let x = [-79.3f32, 0.7];
        let m = 0.7f32;
        let mut out = [0.0f32; 2];
        sum_exp_into::<f32, Generic, Unit>(&x, m, Unit, &mut out);
        let want = (f64::from(x[0]) - f64::from(m)).exp();
        let rel = ((f64::from(out[0]) - want) / want).abs();
        assert!(rel < 2.0 * f64::from(f32::EPSILON), "rel {rel}");
    }
}
