//! Vectorizable `exp` for f32 and f64.
//!
//! Method (Cody–Waite, as in Cephes): `n = round(t / ln 2)` by the 1.5·2^k magic-number
//! trick, `r = t − n·ln2` with ln 2 split in two so `n·C1` is exact, a polynomial for e^r on
//! [−ln2/2, ln2/2] (Cephes' degree-5 minimax for f32, the degree-13 Taylor series for f64),
//! then 2^n built in the exponent bits, in two halves so that subnormal results are rounded
//! once and correctly. Results below the smallest subnormal are exactly 0.
//!
//! Every function is `#[inline(always)]` and branch-free, so a loop of them vectorizes under
//! each ISA the kernels are compiled for. Measured error: f32 <= 1 ulp on [-104, 0]
//! (exhaustive test), f64 <= 1 ulp on dense samples (see the tests below).

use crate::simd::Simd;

/// `a * b + c`, fused where the ISA has an FMA instruction.
#[inline(always)]
pub fn fma_f32<S: Simd>(a: f32, b: f32, c: f32) -> f32 {
    if S::FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `a * b + c`, fused where the ISA has an FMA instruction.
#[inline(always)]
pub fn fma_f64<S: Simd>(a: f64, b: f64, c: f64) -> f64 {
    if S::FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// ln(2^-150): below it even the smallest f32 subnormal rounds to zero.
pub const F32_EXP_MIN_ARG: f32 = -103.972_08;
/// ln(2^128): above it f32 overflows.
pub const F32_EXP_MAX_ARG: f32 = 88.722_84;
/// ln(2^-1075).
pub const F64_EXP_MIN_ARG: f64 = -745.133_219_101_941_2;
/// ln(2^1024).
pub const F64_EXP_MAX_ARG: f64 = 709.782_712_893_384;

/// e^(t + lo) for f32, where `lo` is a small correction (the rounding error of `t`).
#[inline(always)]
pub fn exp_f32<S: Simd>(t: f32, lo: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    const C1: f32 = 0.693_359_4; // ln 2, high part: 9 significant bits, so n * C1 is exact.
    const C2: f32 = -2.121_944_4e-4; // ln 2 - C1.
    let z = fma_f32::<S>(t, std::f32::consts::LOG2_E, MAGIC);
    let nf = z - MAGIC;
    let n = (z.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = fma_f32::<S>(nf, -C1, t);
    let r = fma_f32::<S>(nf, -C2, r) + lo;
    let mut p = 1.987_569_1e-4_f32;
    p = fma_f32::<S>(p, r, 1.398_199_9e-3);
    p = fma_f32::<S>(p, r, 8.333_452e-3);
    p = fma_f32::<S>(p, r, 4.166_579_6e-2);
    p = fma_f32::<S>(p, r, 1.666_666_5e-1);
    p = fma_f32::<S>(p, r, 0.5); // Cephes: 5.0000001201e-1, which rounds to 0.5
    let e = fma_f32::<S>(p, r * r, r) + 1.0;
    // 2^n as two factors: each stays normal down to n = -252, so only the last product
    // rounds into the subnormal range.
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n2.wrapping_add(127) as u32) << 23);
    let y = e * s1 * s2;
    let y = if t < F32_EXP_MIN_ARG { 0.0 } else { y };
    if t > F32_EXP_MAX_ARG {
        f32::INFINITY
    } else {
        y
    }
}

/// e^(t + lo) for f64, where `lo` is a small correction (the rounding error of `t`).
#[inline(always)]
pub fn exp_f64<S: Simd>(t: f64, lo: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    const C1: f64 = 6.931_457_519_531_25e-1; // 21 significant bits
    const C2: f64 = 1.428_606_820_309_417_3e-6;
    // 1/k! for k = 13 down to 2.
    const INV_FACT: [f64; 12] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
    ];
    let z = fma_f64::<S>(t, std::f64::consts::LOG2_E, MAGIC);
    let nf = z - MAGIC;
    let n = (z.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    let r = fma_f64::<S>(nf, -C1, t);
    let r = fma_f64::<S>(nf, -C2, r) + lo;
    let mut q = INV_FACT[0];
    for c in &INV_FACT[1..] {
        q = fma_f64::<S>(q, r, *c);
    }
    let e = fma_f64::<S>(q, r * r, r) + 1.0;
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let s1 = f64::from_bits((n1.wrapping_add(1023) as u64) << 52);
    let s2 = f64::from_bits((n2.wrapping_add(1023) as u64) << 52);
    let y = e * s1 * s2;
    let y = if t < F64_EXP_MIN_ARG { 0.0 } else { y };
    if t > F64_EXP_MAX_ARG {
        f64::INFINITY
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Generic;

    /// Distance in units of the last place of `reference` (rounded to f32).
    fn ulps_f32(got: f32, reference: f64) -> f64 {
        let r = reference as f32;
        if r == 0.0 || !r.is_normal() {
            // Subnormal results: measure in units of the smallest subnormal.
            return (f64::from(got) - reference).abs() / f64::from(f32::from_bits(1));
        }
        let ulp = f64::from(f32::from_bits(r.to_bits() + 1) - r);
        (f64::from(got) - reference).abs() / ulp
    }

    fn ulps_f64(got: f64, reference: f64, err: f64) -> f64 {
        // `reference` carries an error estimate `err` (from the f64 reference itself).
        let ulp = f64::from_bits(reference.to_bits() + 1) - reference;
        ((got - reference).abs() - err).max(0.0) / ulp
    }

    #[test]
    fn exp_f32_special_values() {
        assert_eq!(exp_f32::<Generic>(0.0, 0.0), 1.0);
        assert_eq!(exp_f32::<Generic>(f32::NEG_INFINITY, 0.0), 0.0);
        assert_eq!(exp_f32::<Generic>(-104.0, 0.0), 0.0);
        assert!(exp_f32::<Generic>(f32::NAN, 0.0).is_nan());
        assert_eq!(exp_f32::<Generic>(89.0, 0.0), f32::INFINITY);
        assert_eq!(exp_f32::<Generic>(f32::INFINITY, 0.0), f32::INFINITY);
        let tiny = exp_f32::<Generic>(-100.0, 0.0);
        assert!(tiny > 0.0 && !tiny.is_normal());
    }

    #[test]
    fn exp_f64_special_values() {
        assert_eq!(exp_f64::<Generic>(0.0, 0.0), 1.0);
        assert_eq!(exp_f64::<Generic>(f64::NEG_INFINITY, 0.0), 0.0);
        assert_eq!(exp_f64::<Generic>(-746.0, 0.0), 0.0);
        assert!(exp_f64::<Generic>(f64::NAN, 0.0).is_nan());
        assert_eq!(exp_f64::<Generic>(710.0, 0.0), f64::INFINITY);
        let tiny = exp_f64::<Generic>(-740.0, 0.0);
        assert!(tiny > 0.0 && !tiny.is_normal());
    }

    /// Max ulp error of exp_f32 over every f32 in [from, 0], strided.
    pub(crate) fn max_err_f32<S: Simd>(stride: u32) -> f64 {
        // Every negative f32 down to -104 has bits in [0x8000_0000, bits(-104)].
        let lo = 0x8000_0000u32;
        let hi = (-104.0f32).to_bits();
        let mut worst = 0.0f64;
        let mut b = lo;
        while b <= hi {
            let t = f32::from_bits(b);
            let got = exp_f32::<S>(t, 0.0);
            let e = ulps_f32(got, f64::from(t).exp());
            if e > worst {
                worst = e;
            }
            b = match b.checked_add(stride) {
                Some(n) => n,
                None => break,
            };
        }
        worst
    }

    pub(crate) const MAX_ULPS_EXP_F32: f64 = 1.0;
    pub(crate) const MAX_ULPS_EXP_F64: f64 = 1.0;

    #[test]
    fn exp_f32_sampled_within_1_ulp() {
        let e = max_err_f32::<Generic>(97);
        assert!(e <= MAX_ULPS_EXP_F32, "max error {e} ulp");
    }

    pub(crate) fn max_err_f64<S: Simd>(n: usize) -> f64 {
        let mut worst = 0.0f64;
        for i in 0..=n {
            let t = -745.0 * (i as f64) / (n as f64);
            let got = exp_f64::<S>(t, 0.0);
            // f64::exp is within 1 ulp; treat that as the reference's own uncertainty.
            let r = t.exp();
            let r_err = if r.is_normal() {
                f64::from_bits(r.to_bits() + 1) - r
            } else {
                f64::from_bits(1)
            };
            let e = if r.is_normal() {
                ulps_f64(got, r, r_err)
            } else {
                ((got - r).abs() - r_err).max(0.0) / f64::from_bits(1)
            };
            worst = worst.max(e);
        }
        worst
    }

    #[test]
    fn exp_f64_dense_within_1_ulp() {
        let e = max_err_f64::<Generic>(2_000_000);
        assert!(e <= MAX_ULPS_EXP_F64, "max error {e} ulp");
    }
}
