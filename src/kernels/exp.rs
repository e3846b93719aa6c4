//! Vectorizable `exp` for f32 and f64.
//!
//! Method (Cody–Waite): `n = round(t / ln 2)` by the 1.5·2^k magic-number trick,
//! `r = t − n·ln2` with ln 2 split in two so `n·C1` is exact, a polynomial for e^r − 1 on
//! [−ln2/2, ln2/2] (a degree-7 minimax for f32, a degree-12 one for f64), then
//! 2^n built in the exponent bits, in two factors so that subnormal results are rounded
//! correctly. Results below the smallest subnormal are exactly 0. In the normal range the
//! ISAs with a lane permute take a table form instead (`exp_f32_table`; `exp_f64_table`
//! where a two-source permute reads 16 f64).
//!
//! Every function is `#[inline(always)]` and branch-free, so a loop of them vectorizes under
//! each ISA the kernels are compiled for. Measured error: f32 <= 1 ulp on [-104, 0]
//! (exhaustive test), f64 <= 1 ulp on dense samples, its table form <= 0.6 (see the tests
//! below).

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

/// ln(2^-126) rounded up, with a margin: from here to 0 every f32 e^t is a normal number.
pub const F32_EXP_NORMAL_MIN_ARG: f32 = -87.0;
/// ln(2^-1022) rounded up, with a margin, for f64.
pub const F64_EXP_NORMAL_MIN_ARG: f64 = -708.0;

/// 1.5 * 2^23: adding it to |v| < 2^22 rounds v to an integer, held in the low bits.
const F32_MAGIC: f32 = 12_582_912.0;
/// 1.5 * 2^52, for f64.
const F64_MAGIC: f64 = 6_755_399_441_055_744.0;

/// Cody–Waite reduction for f32: `(z, r)` with `z = n + bias + 1.5·2^23` (so the low bits
/// of `z` hold `n + bias`) and `r = t + lo - n·ln 2`.
#[inline(always)]
fn reduce_f32<S: Simd>(t: f32, lo: f32, bias: f32) -> (f32, f32) {
    const C1: f32 = 0.693_145_75; // ln 2, high part: 16 significant bits, so n * C1 is exact.
    const C2: f32 = 1.428_606_8e-6; // ln 2 - C1.
    let magic = F32_MAGIC + bias;
    let z = fma_f32::<S>(t, std::f32::consts::LOG2_E, magic);
    let nf = z - magic;
    let r = fma_f32::<S>(nf, -C1, t);
    (z, fma_f32::<S>(nf, -C2, r) + lo)
}

/// e^r - 1 for r in [-ln2/2, ln2/2]: a minimax fit of (e^r - 1 - r) / r^2 for FMA evaluation
/// (the coefficients SLEEF publishes for its 1-ulp expf); measured <= 1 ulp with the scaling
/// below over [-104, 0], see the tests.
#[inline(always)]
fn expm1_reduced_f32<S: Simd>(r: f32) -> f32 {
    const P: [f32; 6] = [
        1.985_276_2e-4,
        1.393_043_6e-3,
        8.333_361e-3,
        4.166_648_5e-2,
        0.166_666_67,
        0.5,
    ];
    let mut p = P[0];
    for c in &P[1..] {
        p = fma_f32::<S>(p, r, *c);
    }
    fma_f32::<S>(p, r * r, r)
}

/// e^(t + lo) for f32, where `lo` is a small correction (the rounding error of `t`).
#[inline(always)]
pub fn exp_f32<S: Simd>(t: f32, lo: f32) -> f32 {
    let (z, r) = reduce_f32::<S>(t, lo, 0.0);
    let n = (z.to_bits() as i32).wrapping_sub(F32_MAGIC.to_bits() as i32);
    let q = expm1_reduced_f32::<S>(r);
    // 2^n as two factors: s1 = 2^clamp(n, -126, 127) is normal, so (1 + q) * s1 rounds
    // once; the second factor only scales results into the subnormal range, rounding once
    // more, or by 2 where n = 128 (t in (88.38, 88.72]), so s1 is never infinite.
    let n1 = n.clamp(-126, 127);
    let n2 = n.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n2.wrapping_add(127) as u32) << 23);
    let y = fma_f32::<S>(q, s1, s1) * s2;
    let y = if t < F32_EXP_MIN_ARG { 0.0 } else { y };
    if t > F32_EXP_MAX_ARG {
        f32::INFINITY
    } else {
        y
    }
}

/// `exp_f32` for `t` in [`F32_EXP_NORMAL_MIN_ARG`, 0] (or NaN), where every result is
/// normal: the same reduction and polynomial without the range checks and the subnormal
/// scaling. Rows whose whole range lies there (nearly all) take it.
#[inline(always)]
pub fn exp_f32_normal<S: Simd>(t: f32, lo: f32) -> f32 {
    // With the exponent bias folded into the magic number, `z`'s bits shifted into the
    // exponent field are 2^n directly (n + 127 in [1, 127] here).
    let (z, r) = reduce_f32::<S>(t, lo, 127.0);
    let s = f32::from_bits(z.to_bits() << 23);
    fma_f32::<S>(expm1_reduced_f32::<S>(r), s, s)
}

/// 2^(j/8) for j in 0..8, rounded to f32, less `j << 20` in their bits: added to `z`'s bits
/// shifted by 20 (where the low 3 bits of `z` hold j and the rest n) the `j` cancels, and the
/// sum is the bits of 2^(j/8) · 2^n. Each entry is within 0.34 ulp of 2^(j/8) (see the tests).
pub const EXP2_EIGHTHS_F32: [u32; 8] = [
    0x3f80_0000,
    0x3f7b_95c2,
    0x3f78_37f0,
    0x3f75_fed7,
    0x3f75_04f3,
    0x3f75_672a,
    0x3f77_44fd,
    0x3f7a_c0c7,
];

/// The parts of the table form of `exp_f32_normal` (`exp_f32_table`) that come before and
/// after the table lookup, shared by the scalar form and the ISAs' intrinsics.
pub mod table_f32 {
    /// 8 / ln 2.
    pub const SCALE: f32 = 8.0 * std::f32::consts::LOG2_E;
    /// 1.5 · 2^23 (see `F32_MAGIC`): `t · SCALE + MAGIC` holds round(t · SCALE) in its low bits.
    pub const MAGIC: f32 = super::F32_MAGIC;
    /// ln 2 / 8 in two parts, as in `reduce_f32` (its parts over 8, exactly).
    pub const C1: f32 = 0.693_145_75 / 8.0;
    pub const C2: f32 = 1.428_606_8e-6 / 8.0;
    /// (e^r - 1 - r) / r^2 ≈ 1/2 + r/6 + r^2/24 on |r| <= ln2/16: the Taylor terms, whose
    /// remainder (< r^5/120 = 1.3e-9) is 0.01 ulp of the result.
    pub const G: [f32; 3] = [1.0 / 24.0, 1.0 / 6.0, 0.5];
    /// How far `z`'s bits are shifted to put n in the exponent field.
    pub const SHIFT: u32 = 20;
}

/// `exp_f32_normal` by a table: `e^t = 2^n · 2^(j/8) · e^r` with `|r| <= ln2/16`, so a
/// degree-4 polynomial suffices where the table-free form needs 7. PERF: 8 multiplies and
/// FMAs where `exp_f32_normal` has 11 (the ISAs with a lane permute look the table up in one
/// instruction, `Simd::exp_normal_lanes_f32`); measured max error 0.88 ulp (exhaustive test).
/// This scalar form is the portable statement of the same arithmetic, for the tests.
#[inline(always)]
pub fn exp_f32_table<S: Simd>(t: f32, lo: f32) -> f32 {
    use table_f32::*;
    let z = fma_f32::<S>(t, SCALE, MAGIC);
    let nf = z - MAGIC;
    let r = fma_f32::<S>(nf, -C1, t);
    let r = fma_f32::<S>(nf, -C2, r) + lo;
    let zb = z.to_bits();
    let s = f32::from_bits(EXP2_EIGHTHS_F32[(zb & 7) as usize].wrapping_add(zb << SHIFT));
    let g = fma_f32::<S>(fma_f32::<S>(G[0], r, G[1]), r, G[2]);
    let q = fma_f32::<S>(g, r * r, r);
    fma_f32::<S>(s, q, s)
}

/// Cody–Waite reduction for f64, as `reduce_f32`.
#[inline(always)]
fn reduce_f64<S: Simd>(t: f64, lo: f64, bias: f64) -> (f64, f64) {
    const C1: f64 = 6.931_457_519_531_25e-1; // 21 significant bits
    const C2: f64 = 1.428_606_820_309_417_3e-6;
    let magic = F64_MAGIC + bias;
    let z = fma_f64::<S>(t, std::f64::consts::LOG2_E, magic);
    let nf = z - magic;
    let r = fma_f64::<S>(nf, -C1, t);
    (z, fma_f64::<S>(nf, -C2, r) + lo)
}

/// e^r - 1 for r in [-ln2/2, ln2/2]: `r + r^2 g(r)`, with `g` the degree-10 minimax fit of
/// (e^r - 1 - r) / r^2 there (our own Remez fit, max error 1.4e-18). PERF: one FMA fewer
/// than the degree-13 Taylor series it replaced, at no cost in accuracy: an FMA-exact
/// emulation of `exp_f64_normal` against mpmath on 2 x 10^5 points measured 0.94 ulp, the
/// Taylor series 0.97 (a degree-9 fit: 0.99, too close to the 1-ulp bound).
#[inline(always)]
fn expm1_reduced_f64<S: Simd>(r: f64) -> f64 {
    const G: [f64; 11] = [
        2.092_159_701_859_715_3e-9,
        2.510_520_670_874_170_4e-8,
        2.755_725_289_181_569_6e-7,
        2.755_725_542_480_905e-6,
        2.480_158_734_735_763_8e-5,
        1.984_126_987_480_138_2e-4,
        1.388_888_888_887_439_4e-3,
        8.333_333_333_326_141e-3,
        4.166_666_666_666_668_5e-2,
        0.166_666_666_666_666_7,
        0.5,
    ];
    let mut q = G[0];
    for c in &G[1..] {
        q = fma_f64::<S>(q, r, *c);
    }
    fma_f64::<S>(q, r * r, r)
}

/// e^(t + lo) for f64, where `lo` is a small correction (the rounding error of `t`).
#[inline(always)]
pub fn exp_f64<S: Simd>(t: f64, lo: f64) -> f64 {
    let (z, r) = reduce_f64::<S>(t, lo, 0.0);
    let n = (z.to_bits() as i64).wrapping_sub(F64_MAGIC.to_bits() as i64);
    let q = expm1_reduced_f64::<S>(r);
    let n1 = n.clamp(-1022, 1023); // as in exp_f32: n = 1024 just below overflow
    let n2 = n.wrapping_sub(n1);
    let s1 = f64::from_bits((n1.wrapping_add(1023) as u64) << 52);
    let s2 = f64::from_bits((n2.wrapping_add(1023) as u64) << 52);
    let y = fma_f64::<S>(q, s1, s1) * s2;
    let y = if t < F64_EXP_MIN_ARG { 0.0 } else { y };
    if t > F64_EXP_MAX_ARG {
        f64::INFINITY
    } else {
        y
    }
}

/// 2^(j/16) for j in 0..16, rounded to f64, less `j << 48` in their bits: the same scheme
/// as `EXP2_EIGHTHS_F32`, with 4 bits of `j` and a shift of 48.
pub const EXP2_SIXTEENTHS_F64: [u64; 16] = [
    0x3ff0_0000_0000_0000,
    0x3fef_b558_6cf9_890f,
    0x3fef_72b8_3c7d_517b,
    0x3fef_387a_6e75_6238,
    0x3fef_06fe_0a31_b715,
    0x3fee_dea6_4c12_3422,
    0x3fee_bfda_d536_2a27,
    0x3fee_ab07_dd48_5429,
    0x3fee_a09e_667f_3bcd,
    0x3fee_a114_73eb_0187,
    0x3fee_ace5_422a_a0db,
    0x3fee_c491_82a3_f090,
    0x3fee_e89f_995a_d3ad,
    0x3fef_199b_dd85_529c,
    0x3fef_5818_dcfb_a487,
    0x3fef_a4af_a2a4_90da,
];

/// What each entry of `EXP2_SIXTEENTHS_F64` lacks, relative to it: 2^(j/16) = T(1 + c).
/// Carried into the polynomial's sum, the table is as good as exact. Without it the
/// entries' own error (up to 0.48 ulp) took the result to 1.002 ulp (the emulation of
/// `exp_f64_table`'s doc, the same points).
pub const EXP2_SIXTEENTHS_REL_F64: [f64; 16] = [
    0.0,
    8.189317638195515e-17,
    -2.7939114859515733e-17,
    7.826573258636076e-17,
    3.3484623336251524e-17,
    3.750854201303127e-17,
    1.9572585293112036e-17,
    5.68648095791174e-17,
    -6.835808657661922e-17,
    -2.3591094770850053e-17,
    5.1548301170786783e-17,
    1.5341410053603723e-17,
    4.875160526227062e-17,
    1.685487290628973e-17,
    1.790126907604513e-17,
    -5.545065618639427e-17,
];

/// The parts of `exp_f64_table` before and after its lookups, as `table_f32`.
pub mod table_f64 {
    /// 16 / ln 2.
    pub const SCALE: f64 = 16.0 * std::f64::consts::LOG2_E;
    /// 1.5 · 2^52 (see `F64_MAGIC`).
    pub const MAGIC: f64 = super::F64_MAGIC;
    /// ln 2 / 16 in two parts, as in `reduce_f64` (its parts over 16, exactly): n · C1 is
    /// exact for the |n| < 2^15 of the normal range.
    pub const C1: f64 = 6.931_457_519_531_25e-1 / 16.0;
    pub const C2: f64 = 1.428_606_820_309_417_3e-6 / 16.0;
    /// (e^r - 1 - r) / r^2 on |r| <= ln2/32: the Taylor terms to r^5/5040, whose remainder
    /// (r^6/40320 · r^2 < 1.3e-18) is 0.01 ulp of the result.
    pub const G: [f64; 6] = [
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
    ];
    /// How far `z`'s bits are shifted to put n in the exponent field.
    pub const SHIFT: u32 = 48;
}

/// `exp_f64_normal` by a table: `e^t = 2^n · 2^(j/16) · e^r` with `|r| <= ln2/32`. PERF:
/// 11 multiplies and FMAs where `exp_f64_normal` has 16; on AVX-512 (Zen 4) the f64 exp
/// loops are bound by those. The lookups are lane permutes there
/// (`Simd::exp_normal_lanes_f64`); this scalar form states the same arithmetic, for the
/// tests. Max error 0.54 ulp on 3 x 10^4 points of [-708, 0] with correction terms (an
/// exact emulation against mpmath), where `exp_f64_normal` measured 0.94.
#[inline(always)]
pub fn exp_f64_table<S: Simd>(t: f64, lo: f64) -> f64 {
    use table_f64::*;
    let z = fma_f64::<S>(t, SCALE, MAGIC);
    let nf = z - MAGIC;
    let r = fma_f64::<S>(nf, -C1, t);
    let r = fma_f64::<S>(nf, -C2, r) + lo;
    let zb = z.to_bits();
    let j = (zb & 15) as usize;
    let s = f64::from_bits(EXP2_SIXTEENTHS_F64[j].wrapping_add(zb << SHIFT));
    let mut g = G[0];
    for c in &G[1..] {
        g = fma_f64::<S>(g, r, *c);
    }
    let q = fma_f64::<S>(g, r * r, r);
    fma_f64::<S>(s, q + EXP2_SIXTEENTHS_REL_F64[j], s)
}

/// `exp_f64` for `t` in [`F64_EXP_NORMAL_MIN_ARG`, 0] (or NaN), as `exp_f32_normal`.
#[inline(always)]
pub fn exp_f64_normal<S: Simd>(t: f64, lo: f64) -> f64 {
    let (z, r) = reduce_f64::<S>(t, lo, 1023.0);
    let s = f64::from_bits(z.to_bits() << 52);
    fma_f64::<S>(expm1_reduced_f64::<S>(r), s, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::row::LANES;
    use crate::simd::{self, Generic, Isa, Job};

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
        // Just below overflow: finite and correctly scaled (2^127.5 = e^88.376).
        for t in [88.5f32, 88.7] {
            let big = exp_f32::<Generic>(t, 0.0);
            assert!(big.is_finite() && (f64::from(big) / f64::from(t).exp() - 1.0).abs() < 1e-6);
        }
        assert_eq!(exp_f32::<Generic>(f32::INFINITY, 0.0), f32::INFINITY);
        let tiny = exp_f32::<Generic>(-100.0, 0.0);
        assert!(tiny > 0.0 && !tiny.is_normal());
    }

    #[test]
    fn normal_range_variants_at_their_ends() {
        assert_eq!(exp_f32_normal::<Generic>(0.0, 0.0), 1.0);
        assert_eq!(exp_f32_normal::<Generic>(-0.0, 0.0), 1.0);
        assert!(exp_f32_normal::<Generic>(f32::NAN, 0.0).is_nan());
        let low = exp_f32_normal::<Generic>(F32_EXP_NORMAL_MIN_ARG, 0.0);
        assert!(low.is_normal() && low == exp_f32::<Generic>(F32_EXP_NORMAL_MIN_ARG, 0.0));
        assert_eq!(exp_f64_normal::<Generic>(0.0, 0.0), 1.0);
        assert!(exp_f64_normal::<Generic>(f64::NAN, 0.0).is_nan());
        let low = exp_f64_normal::<Generic>(F64_EXP_NORMAL_MIN_ARG, 0.0);
        assert!(low.is_normal() && low == exp_f64::<Generic>(F64_EXP_NORMAL_MIN_ARG, 0.0));
        // The correction term is used as by the full version.
        let (t, lo) = (-3.5f32, 1e-7f32);
        assert_eq!(exp_f32_normal::<Generic>(t, lo), exp_f32::<Generic>(t, lo));
    }

    #[test]
    fn exp_f64_special_values() {
        assert_eq!(exp_f64::<Generic>(0.0, 0.0), 1.0);
        assert_eq!(exp_f64::<Generic>(f64::NEG_INFINITY, 0.0), 0.0);
        assert_eq!(exp_f64::<Generic>(-746.0, 0.0), 0.0);
        assert!(exp_f64::<Generic>(f64::NAN, 0.0).is_nan());
        assert_eq!(exp_f64::<Generic>(710.0, 0.0), f64::INFINITY);
        for t in [709.5f64, 709.78] {
            let big = exp_f64::<Generic>(t, 0.0);
            assert!(big.is_finite() && (big / t.exp() - 1.0).abs() < 1e-14);
        }
        let tiny = exp_f64::<Generic>(-740.0, 0.0);
        assert!(tiny > 0.0 && !tiny.is_normal());
    }

    /// Max ulp error of exp_f32 (and of exp_f32_normal and the ISA's `exp_normal_lanes_f32`
    /// where they apply) over the f32 values with bits in `bits` (negative numbers:
    /// bits from 0x8000_0000 up are -0.0 towards -inf).
    #[inline(always)]
    fn max_err_f32<S: Simd>(bits: std::ops::Range<u32>) -> f64 {
        let mut worst = 0.0f64;
        let mut lanes = Vec::with_capacity(LANES);
        for b in bits {
            let t = f32::from_bits(b);
            let want = f64::from(t).exp();
            worst = worst.max(ulps_f32(exp_f32::<S>(t, 0.0), want));
            if t >= F32_EXP_NORMAL_MIN_ARG {
                worst = worst.max(ulps_f32(exp_f32_normal::<S>(t, 0.0), want));
                lanes.push(t);
                if lanes.len() == LANES {
                    worst = worst.max(lanes_err_f32::<S>(&lanes, 0.0));
                    lanes.clear();
                }
            }
        }
        if !lanes.is_empty() {
            lanes.resize(LANES, lanes[0]);
            worst = worst.max(lanes_err_f32::<S>(&lanes, 0.0));
        }
        worst
    }

    /// Max ulp error of `Simd::exp_normal_lanes_f32` on the 16 values `t`, each with the
    /// correction `lo` (for `e^(t + lo)`, measured in f64). Where the ISA has the table form
    /// it must give the scalar table form's bits.
    #[inline(always)]
    fn lanes_err_f32<S: Simd>(t: &[f32], lo: f32) -> f64 {
        let t: [f32; LANES] = t.try_into().unwrap();
        let got = S::exp_normal_lanes_f32(t, [lo; LANES]);
        let mut worst = 0.0f64;
        for (&g, &v) in got.iter().zip(&t) {
            if S::EXP_TABLE {
                assert_eq!(g.to_bits(), exp_f32_table::<S>(v, lo).to_bits(), "t = {v}");
            }
            worst = worst.max(ulps_f32(g, (f64::from(v) + f64::from(lo)).exp()));
        }
        worst
    }

    pub(crate) const MAX_ULPS_EXP_F32: f64 = 1.0;
    pub(crate) const MAX_ULPS_EXP_F64: f64 = 1.0;
    /// The f64 table form's bound (0.54 ulp measured).
    pub(crate) const MAX_ULPS_EXP_F64_TABLE: f64 = 0.6;

    /// Runs the error scans under each ISA through the real dispatcher.
    struct ErrJob {
        chunk: u32,
        f64_samples: usize,
        worst_f32: std::sync::Mutex<f64>,
        worst_f64: std::sync::Mutex<f64>,
    }

    /// First and last bit patterns of the softmax domain [-104, -0.0].
    const DOMAIN: (u32, u32) = (0x8000_0000, 0xC2D0_0000);

    impl Job for ErrJob {
        #[inline(always)]
        fn run<S: Simd>(&self, task: usize) {
            if task == usize::MAX {
                let e = max_err_f64::<S>(self.f64_samples);
                *self.worst_f64.lock().unwrap() = e;
                return;
            }
            let lo = DOMAIN.0 + task as u32 * self.chunk;
            let hi = (lo.saturating_add(self.chunk)).min(DOMAIN.1 + 1);
            let e = max_err_f32::<S>(lo..hi);
            let mut w = self.worst_f32.lock().unwrap();
            *w = w.max(e);
        }
    }

    fn scan_every_isa(chunk: u32, f64_samples: usize) {
        use rayon::prelude::*;
        for isa in Isa::available() {
            assert!(simd::select(isa));
            let job = ErrJob {
                chunk,
                f64_samples,
                worst_f32: std::sync::Mutex::new(0.0),
                worst_f64: std::sync::Mutex::new(0.0),
            };
            let tasks = (DOMAIN.1 - DOMAIN.0) / chunk + 1;
            (0..tasks as usize)
                .into_par_iter()
                .for_each(|t| simd::dispatch(&job, t));
            simd::dispatch(&job, usize::MAX);
            let (e32, e64) = (
                *job.worst_f32.lock().unwrap(),
                *job.worst_f64.lock().unwrap(),
            );
            assert!(
                e32 <= MAX_ULPS_EXP_F32,
                "{}: f32 exp max error {e32} ulp",
                isa.name()
            );
            assert!(
                e64 <= MAX_ULPS_EXP_F64,
                "{}: f64 exp max error {e64} ulp",
                isa.name()
            );
        }
    }

    /// Every f32 in [-104, 0] (the whole softmax domain) on every ISA this CPU has.
    #[test]
    fn exp_f32_exhaustive_within_1_ulp_on_every_isa() {
        scan_every_isa(1 << 22, 1 << 21);
    }

    /// Max ulp error of exp_f64 (and of exp_f64_normal where it applies) on `n + 1` evenly spaced points of [-745, 0], measured
    /// against libm's exp with its own error (< 1 ulp) taken off.
    #[inline(always)]
    fn max_err_f64<S: Simd>(n: usize) -> f64 {
        let mut worst = 0.0f64;
        for i in 0..=n {
            let t = -745.0 * (i as f64) / (n as f64);
            let r = t.exp();
            let err = |got: f64| {
                if r.is_normal() {
                    ulps_f64(got, r, f64::from_bits(r.to_bits() + 1) - r)
                } else {
                    ((got - r).abs() - f64::from_bits(1)).max(0.0) / f64::from_bits(1)
                }
            };
            worst = worst.max(err(exp_f64::<S>(t, 0.0)));
            if t >= F64_EXP_NORMAL_MIN_ARG {
                worst = worst.max(err(exp_f64_normal::<S>(t, 0.0)));
            }
        }
        worst
    }

    /// The table's entries are 2^(j/8) rounded to nearest, less `j << 20`, each within
    /// 0.34 ulp.
    #[test]
    fn exp2_eighths_are_rounded_powers() {
        for (j, &e) in EXP2_EIGHTHS_F32.iter().enumerate() {
            let exact = (j as f64 / 8.0).exp2();
            let v = f32::from_bits(e.wrapping_add((j as u32) << table_f32::SHIFT));
            assert_eq!(v, exact as f32, "j = {j}");
            let ulp = f64::from(f32::from_bits(v.to_bits() + 1) - v);
            assert!((f64::from(v) - exact).abs() / ulp < 0.34, "j = {j}");
        }
    }

    /// `EXP2_SIXTEENTHS_F64` holds 2^(j/16) rounded to nearest, and with its correction
    /// it is exact to 2^-100: (T (1 + c))^16, in double-double, is 2^j.
    #[test]
    fn exp2_sixteenths_and_their_corrections() {
        use crate::kernels::log::tests::dd_mul;
        for (j, (&e, &c)) in EXP2_SIXTEENTHS_F64
            .iter()
            .zip(&EXP2_SIXTEENTHS_REL_F64)
            .enumerate()
        {
            let t = f64::from_bits(e.wrapping_add((j as u64) << table_f64::SHIFT));
            assert!((1.0..2.0).contains(&t), "j = {j}");
            // T in [1, 2), where an ulp is EPSILON: nearest means within half of it.
            assert!((t * c).abs() <= f64::EPSILON / 2.0, "j = {j}");
            let mut v = (t, t * c);
            for _ in 0..4 {
                v = dd_mul(v, v);
            }
            let want = (j as f64).exp2();
            assert!(((v.0 - want) + v.1).abs() / want < 1e-28, "j = {j}: {v:?}");
        }
    }

    /// `Simd::exp_normal_lanes_f64` on every ISA, over dense samples of the normal range
    /// with correction terms up to half an ulp of `t` either way: the table form's scalar
    /// bits where the ISA has it (`exp_f64_normal`'s elsewhere), and each within its bound
    /// of e^(t + lo) taken in double-double.
    #[test]
    fn exp_f64_lanes_on_every_isa() {
        /// The worst error, and whether it is the table form's.
        struct LanesJob(std::sync::Mutex<(f64, bool)>);
        impl Job for LanesJob {
            fn run<S: Simd>(&self, _task: usize) {
                use crate::kernels::log::tests::dd_exp;
                let n = 100_000;
                let (mut t, mut lo) = ([0.0f64; LANES], [0.0f64; LANES]);
                let mut worst = 0.0f64;
                for i in 0..n {
                    let k = i % LANES;
                    // Spread over [-708, 0], with small arguments near 0 as well.
                    t[k] = if i % 3 == 0 {
                        -(i as f64) * 1e-7
                    } else {
                        F64_EXP_NORMAL_MIN_ARG * (i as f64 + 0.37) / n as f64
                    };
                    let half_ulp = (f64::from_bits(t[k].to_bits() + 1) - t[k]).abs() / 2.0;
                    lo[k] = half_ulp * ((i % 5) as f64 / 2.0 - 1.0);
                    if k + 1 < LANES {
                        continue;
                    }
                    let got = S::exp_normal_lanes_f64(t, lo);
                    for ((&g, &tv), &lv) in got.iter().zip(&t).zip(&lo) {
                        let want = if S::EXP_TABLE_F64 {
                            exp_f64_table::<S>(tv, lv)
                        } else {
                            exp_f64_normal::<S>(tv, lv)
                        };
                        assert_eq!(g.to_bits(), want.to_bits(), "t = {tv}, lo = {lv}");
                        let r = dd_exp((tv, lv));
                        let ulp = f64::from_bits(r.0.to_bits() + 1) - r.0;
                        worst = worst.max(((g - r.0) - r.1).abs() / ulp);
                    }
                }
                *self.0.lock().unwrap() = (worst, S::EXP_TABLE_F64);
            }
        }
        let mut seen = Vec::new();
        for isa in Isa::available() {
            assert!(simd::select(isa));
            let job = LanesJob(std::sync::Mutex::new((f64::NAN, false)));
            simd::dispatch(&job, 0);
            let (worst, table) = *job.0.lock().unwrap();
            let bound = if table {
                MAX_ULPS_EXP_F64_TABLE
            } else {
                MAX_ULPS_EXP_F64
            };
            seen.push((isa.name(), worst, bound));
        }
        assert!(seen.iter().all(|s| s.1 <= s.2), "{seen:?}");
    }

    /// `exp_normal_lanes_f32` with a correction term: e^(t + lo) within 1 ulp (1.05 without
    /// FMA) for `lo` up to half an ulp of `t` either way, and at the normal range's ends, on
    /// every ISA.
    #[test]
    fn exp_lanes_carry_the_correction_term_on_every_isa() {
        struct LoJob(std::sync::Mutex<f64>);
        impl Job for LoJob {
            fn run<S: Simd>(&self, _task: usize) {
                let mut worst = 0.0f64;
                let mut bits = 0x8000_0000u32;
                while f32::from_bits(bits) >= F32_EXP_NORMAL_MIN_ARG {
                    let t0 = f32::from_bits(bits);
                    let t: Vec<f32> = (0..LANES as u32)
                        .map(|i| f32::from_bits(bits + i).max(F32_EXP_NORMAL_MIN_ARG))
                        .collect();
                    let half_ulp = (f32::from_bits(bits + 1) - t0) / 2.0;
                    for lo in [half_ulp, -half_ulp, half_ulp / 3.0] {
                        worst = worst.max(lanes_err_f32::<S>(&t, lo));
                    }
                    bits += 99_991;
                }
                let ends = [0.0, -0.0, F32_EXP_NORMAL_MIN_ARG, -1e-30, -86.99, -0.043];
                let mut t = [0.0f32; LANES];
                t[..ends.len()].copy_from_slice(&ends[..]);
                worst = worst.max(lanes_err_f32::<S>(&t, 0.0));
                // Without FMA (the portable form) the polynomial's steps round twice each:
                // measured 1.02 ulp with a correction term (lo = 0: within 1, see above).
                let bound = if S::FMA { MAX_ULPS_EXP_F32 } else { 1.05 };
                *self.0.lock().unwrap() = worst / bound;
            }
        }
        let mut seen = Vec::new();
        for isa in Isa::available() {
            assert!(simd::select(isa));
            let job = LoJob(std::sync::Mutex::new(f64::NAN));
            simd::dispatch(&job, 0);
            seen.push((isa.name(), *job.0.lock().unwrap()));
        }
        // Each ISA's error over its bound.
        assert!(seen.iter().all(|s| s.1 <= 1.0), "{seen:?}");
    }
}
