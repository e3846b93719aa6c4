//! `log(1 + u)` in f64 without branches or calls, so that a loop over many rows vectorizes.
//!
//! Float32 (and narrower) results take their per-row `log(sum)` from `ln_1p`. PERF: libm's
//! scalar `log1p` was a third of the time of short-row logsumexp ((65536, 10) f32). The
//! error, at most 2.5 eps of f64 relative (see the tests), is about 2^-29 of what an f32
//! result holds. Float64 results take it as a double-double from `ln_1p_parts`. PERF:
//! libm's `log1p` and `expm1` per row were half the time of short-row f64 logsumexp.

use crate::kernels::shift::two_diff;

/// ln 2 split so that `k * LN2_HI` is exact for every binary exponent `k` (its low 32 bits
/// are zero), and the rest.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// The bits of sqrt(1/2): mantissas are reduced into [sqrt(1/2), sqrt(2)).
const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
/// 2^52 + 1023: subtracted from `2^52 + biased exponent` to give the exponent as an f64
/// without an integer-to-float conversion (which AVX2 lacks for 64-bit lanes).
const EXP_BIAS_MAGIC: f64 = 4_503_599_627_370_496.0 + 1023.0;

/// `log(1 + u)` for every f64 (NaN, `u <= -1` and `+inf` as `f64::ln_1p`).
#[inline(always)]
pub fn ln_1p(u: f64) -> f64 {
    if in_domain(u) {
        ln_1p_finite(u)
    } else {
        u.ln_1p()
    }
}

/// `out[i] = ln_1p(u[i])`: one branch-free loop (it vectorizes), then libm for the rare
/// values outside `(-1, inf)`.
#[inline(always)]
pub fn ln_1p_batch(u: &[f64], out: &mut [f64]) {
    debug_assert_eq!(u.len(), out.len());
    for (o, &v) in out.iter_mut().zip(u) {
        *o = ln_1p_finite(v);
    }
    // PERF: one vectorized test of the whole batch; a branch per value was 7% of
    // short-row f32 logsumexp.
    if u.iter().fold(false, |bad, &v| bad | !in_domain(v)) {
        for (o, &v) in out.iter_mut().zip(u) {
            if !in_domain(v) {
                *o = v.ln_1p();
            }
        }
    }
}

#[inline(always)]
fn in_domain(u: f64) -> bool {
    u > -1.0 && u < f64::INFINITY
}

/// `(k, f)` with `y = 2^k f` and `f` in `[sqrt(1/2), sqrt(2))`, for positive normal `y`:
/// moving the exponent field by 1 - sqrt(1/2)'s mantissa makes it carry exactly where `f`
/// crosses sqrt(2).
#[inline(always)]
fn binade(y: f64) -> (f64, f64) {
    let ix = y
        .to_bits()
        .wrapping_add(0x3ff0_0000_0000_0000 - SQRT_HALF_BITS);
    let k = f64::from_bits(0x4330_0000_0000_0000 | (ix >> 52)) - EXP_BIAS_MAGIC;
    let f = f64::from_bits((ix & 0x000f_ffff_ffff_ffff) + SQRT_HALF_BITS);
    (k, f)
}

/// `log(1 + u)` for `-1 < u < inf`; anything else gives a meaningless finite value.
#[inline(always)]
fn ln_1p_finite(u: f64) -> f64 {
    // 1 + u = y + c exactly.
    let (y, c) = two_diff(1.0, -u);
    let (k, f) = binade(y);
    // log f = 2 atanh(s) = 2s (1 + z/3 + z^2/5 + ...), s = (f - 1) / (f + 1), z = s^2 < 0.0295:
    // through z^9 the series is left with under 2^-57 of its value. f - 1 is exact.
    let s = (f - 1.0) / (f + 1.0);
    let z = s * s;
    let mut p = 1.0 / 19.0;
    for den in [17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0] {
        p = p * z + 1.0 / den;
    }
    let two_s = s + s;
    // log(y + c) = log y + c / y to far below an ulp (|c / y| <= 2^-53).
    k * LN2_HI + (two_s + (two_s * z * p + (k * LN2_LO + c / y)))
}

/// `log(1 + u + ul)` as `(hi, lo)`, `hi + lo` within 2^-58 of it, relative (measured:
/// 2^-59.4), with `|lo| <= eps |hi|`. For `|ul| <= ulp(u)` and `-1 < u < inf`
/// (`in_domain`); anything else gives a meaningless finite value. No branches, so a loop
/// over rows vectorizes; `mul_add` only forms an exact residual, so every ISA (and libm's
/// `fma` where there is no FMA unit) gives the same bits.
#[inline(always)]
pub fn ln_1p_parts(u: f64, ul: f64) -> (f64, f64) {
    // 1 + u + ul = y + c, rounding only in c (far below an ulp of y).
    let (y, c0) = two_diff(1.0, -u);
    let c = c0 + ul;
    let (k, f) = binade(y);
    // log f = 2 atanh(S), S = (f - 1) / (f + 1) = s + s_lo: f - 1 is exact, f + 1 is
    // a + a_lo, and the division's residual is exact with an FMA.
    let fm1 = f - 1.0;
    let (a, a_lo) = two_diff(f, -1.0);
    let s = fm1 / a;
    let s_lo = ((-s).mul_add(a, fm1) - s * a_lo) / a;
    // 2 atanh(S) = 2S + 2S z p(z), z = S^2 < 0.0295: through z^13 the series leaves under
    // 2^-70 of its value. s_lo enters through the derivative, 2 / (1 - S^2).
    let z = s * s;
    let mut p = 1.0 / 29.0;
    for den in [
        27.0, 25.0, 23.0, 21.0, 19.0, 17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0,
    ] {
        p = p * z + 1.0 / den;
    }
    let two_s = s + s;
    // log(1 + c / y) to second order: |c / y| <= 2^-53 unless y = 1.
    let q = c / y;
    let rest = two_s * z * p + ((s_lo + s_lo) * (1.0 + z) + (k * LN2_LO + (q - 0.5 * q * q)));
    // k ln2_hi is exact and, when not 0, larger than |2s| <= 0.35: Fast2Sum is exact.
    let kl = k * LN2_HI;
    let hi = kl + two_s;
    let lo = (two_s - (hi - kl)) + rest;
    let r = hi + lo;
    (r, lo - (r - hi))
}

/// `log(1 + u + ul)` as `ln_1p_parts`, for every `u` (outside `(-1, inf)`: libm's
/// `log1p(u)` and a zero low part).
#[inline(always)]
pub fn ln_1p_parts_any(u: f64, ul: f64) -> (f64, f64) {
    if in_domain(u) {
        ln_1p_parts(u, ul)
    } else {
        (u.ln_1p(), 0.0)
    }
}

/// `(hi[i], lo[i]) = ln_1p_parts_any(u[i], ul[i])`: one branch-free loop, then libm for
/// the rare values outside `(-1, inf)`. Lanes in separate arrays: PERF: pairs in one array
/// were stored as halves and reloaded whole, a stalled store forward per load.
#[inline(always)]
pub fn ln_1p_parts_batch(u: &[f64], ul: &[f64], hi: &mut [f64], lo: &mut [f64]) {
    debug_assert!(u.len() == ul.len() && u.len() == hi.len() && u.len() == lo.len());
    for (((h, l), &v), &vl) in hi.iter_mut().zip(lo.iter_mut()).zip(u).zip(ul) {
        (*h, *l) = ln_1p_parts(v, vl);
    }
    if u.iter().fold(false, |bad, &v| bad | !in_domain(v)) {
        for ((h, l), &v) in hi.iter_mut().zip(lo.iter_mut()).zip(u) {
            if !in_domain(v) {
                (*h, *l) = (v.ln_1p(), 0.0);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Error of `ln_1p(u)` against libm's, relative, in units of f64 eps (libm is within
    /// 1 ulp itself). Measured: 1.97 at worst.
    fn eps_off(u: f64) -> f64 {
        let (got, want) = (ln_1p(u), u.ln_1p());
        (got - want).abs() / (want.abs() * f64::EPSILON).max(f64::MIN_POSITIVE)
    }

    #[test]
    fn within_2_5_eps_of_libm_on_dense_samples() {
        let mut worst = 0.0f64;
        // Row sums minus one live in [0, n - 1]; also cover tiny, negative and huge values.
        let mut u = 1e-300f64;
        while u < 1e300 {
            for v in [u, -u.min(0.999_999)] {
                worst = worst.max(eps_off(v));
            }
            u *= 1.000_37;
        }
        for i in 0..2_000_000 {
            let v = f64::from(i) * 1.3e-4;
            worst = worst.max(eps_off(v));
        }
        assert!(worst <= 2.5, "worst {worst} eps");
    }

    #[test]
    fn exact_and_special_values() {
        assert_eq!(ln_1p(0.0), 0.0);
        assert_eq!(ln_1p(1e-30), 1e-30);
        assert_eq!(ln_1p(-1.0), f64::NEG_INFINITY);
        assert_eq!(ln_1p(f64::INFINITY), f64::INFINITY);
        assert!(ln_1p(f64::NAN).is_nan());
        assert!(ln_1p(-2.0).is_nan());
    }

    /// Double-double helpers for an independent check: exp of `(hi, lo)` to about 2^-100.
    fn two_prod(a: f64, b: f64) -> (f64, f64) {
        let p = a * b;
        (p, a.mul_add(b, -p))
    }

    fn dd_add(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
        let (s, e) = two_diff(a.0, -b.0);
        let t = e + a.1 + b.1;
        let r = s + t;
        (r, t - (r - s))
    }

    pub(crate) fn dd_mul(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
        let (p, e) = two_prod(a.0, b.0);
        let t = e + a.0 * b.1 + a.1 * b.0;
        let r = p + t;
        (r, t - (r - p))
    }

    fn dd_div_int(a: (f64, f64), k: f64) -> (f64, f64) {
        let q = a.0 / k;
        let rem = (-q).mul_add(k, a.0) + a.1;
        let q2 = rem / k;
        let r = q + q2;
        (r, q2 - (r - q))
    }

    /// e^(hi + lo) as a double-double: hi + lo = n ln2 + r, e^r by its Taylor series.
    pub(crate) fn dd_exp(x: (f64, f64)) -> (f64, f64) {
        const LN2: (f64, f64) = (std::f64::consts::LN_2, 2.319_046_813_846_299_6e-17);
        let n = (x.0 / LN2.0).round();
        let r = dd_add(x, dd_mul((-n, 0.0), LN2));
        let mut e = (1.0, 0.0);
        for k in (1..=27).rev() {
            e = dd_add((1.0, 0.0), dd_div_int(dd_mul(r, e), f64::from(k)));
        }
        (e.0 * n.exp2(), e.1 * n.exp2())
    }

    /// |e^(hi + lo) - (1 + u + ul)| / (1 + u): the relative error of `ln_1p_parts`.
    fn parts_error(u: f64, ul: f64) -> f64 {
        let (hi, lo) = ln_1p_parts(u, ul);
        assert!(
            lo.abs() <= hi.abs() * f64::EPSILON,
            "u = {u}: lo {lo} vs hi {hi}"
        );
        let e = dd_exp((hi, lo));
        let (y, c) = two_diff(1.0, -u);
        ((e.0 - y) + (e.1 - c - ul)).abs() / y
    }

    #[test]
    fn parts_within_2_pow_minus_58_on_dense_samples() {
        let mut worst = 0.0f64;
        // Sums less one: tiny to huge, with low parts of either sign.
        let mut u = 1e-300f64;
        let mut i = 0u32;
        while u < 1e300 {
            let ul = u * f64::EPSILON * 0.5 * (f64::from(i % 7) / 3.0 - 1.0);
            worst = worst.max(parts_error(u, ul)).max(parts_error(u, 0.0));
            u *= 1.000_37;
            i += 1;
        }
        for j in 0..1_000_000 {
            let u = f64::from(j) * 3.7e-5;
            worst = worst.max(parts_error(u, u * 1e-17));
        }
        assert!(
            worst <= 2f64.powi(-58),
            "worst {:e} = 2^{}",
            worst,
            worst.log2()
        );
    }

    #[test]
    fn parts_batch_is_the_scalar_function() {
        let u: Vec<(f64, f64)> = (0..500)
            .map(|i| match i % 6 {
                0 => (f64::NAN, 0.0),
                1 => (f64::INFINITY, 0.0),
                2 => (0.0, 0.0),
                3 => (1e-310, 0.0),
                _ => (f64::from(i) * 0.37, f64::from(i) * 1e-18),
            })
            .collect();
        let (v, vl): (Vec<f64>, Vec<f64>) = u.iter().copied().unzip();
        let (mut hi, mut lo) = (vec![0.0; u.len()], vec![0.0; u.len()]);
        ln_1p_parts_batch(&v, &vl, &mut hi, &mut lo);
        for ((&(v, vl), &h), &l) in u.iter().zip(&hi).zip(&lo) {
            let (wh, wl) = ln_1p_parts_any(v, vl);
            assert_eq!(
                (h.to_bits(), l.to_bits()),
                (wh.to_bits(), wl.to_bits()),
                "u = {v}"
            );
        }
        assert_eq!(ln_1p_parts_any(0.0, 0.0), (0.0, 0.0));
        assert_eq!(ln_1p_parts_any(1e-310, 0.0).0, 1e-310);
        assert_eq!(ln_1p_parts_any(f64::INFINITY, 0.0).0, f64::INFINITY);
        assert!(ln_1p_parts_any(f64::NAN, 0.0).0.is_nan());
    }

    #[test]
    fn batch_is_the_scalar_function() {
        let u: Vec<f64> = (0..1000)
            .map(|i| match i % 7 {
                0 => f64::NAN,
                1 => -1.0,
                2 => f64::INFINITY,
                3 => -1.5,
                _ => f64::from(i) * 0.37 - 5.0 * f64::from(i % 3),
            })
            .collect();
        let mut out = vec![0.0; u.len()];
        ln_1p_batch(&u, &mut out);
        for (&v, &o) in u.iter().zip(&out) {
            assert_eq!(o.to_bits(), ln_1p(v).to_bits(), "u = {v}");
        }
    }
}
