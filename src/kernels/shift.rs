//! Forming `(x - max) / T` as an unevaluated sum `hi + lo`, so that the rounding error of the
//! shift is carried into the exponential and the error of softmax does not grow with
//! `|x - max|`.

use crate::elem::Float;
use crate::simd::Simd;

/// `x - m` as `(d, e)` with `d + e` exact (Knuth's TwoSum).
#[inline(always)]
pub fn two_diff<F: Float>(x: F, m: F) -> (F, F) {
    let d = x - m;
    let bv = d - x;
    let e = (x - (d - bv)) - (m + bv);
    (d, e)
}

/// How an input value becomes the exponent: `x - m`, or `(x - m) / T`.
pub trait Shift<F: Float>: Copy + Send + Sync {
    /// Temperature 1 (`Unit` and its exact forms), whose `log_out` is `Unit::log_out`.
    const UNIT: bool = false;
    /// `(x - m) / T` as `(hi, lo)`. `lo` may be NaN where `hi` is infinite.
    fn split<S: Simd>(self, x: F, m: F) -> (F, F);
    /// Divide a row statistic (the maximum) by T, in f64.
    fn apply(self, v: f64) -> f64;
    /// 1/T.
    fn inv(self) -> f64;
    /// One log_softmax output, `(x - m) / T - log_sum`, rounded once; `c` is
    /// `log_const(m, log_sum)`.
    fn log_out<S: Simd>(self, x: F, m: F, c: (F, F), log_sum: (f64, f64)) -> F;
    /// Which exact form of the shift serves every `x` in [`min`, `m`] (`m` finite) at the
    /// least cost; only temperature 1 has cheaper ones than its own `split`.
    #[inline(always)]
    fn exact_form(self, _m: F, _min: F) -> Form {
        Form::Own
    }
    /// Which exact form of `x - c` serves every `x` in [`min`, `c`], for the log_softmax
    /// output with `c` the first part of `log_const` (at least the row's maximum):
    /// `Form::XFirst` or `MaxFirst` mean `log_out_fast` gives `log_out`'s result.
    #[inline(always)]
    fn log_form(self, _c: F, _min: F) -> Form {
        Form::Own
    }
}

/// The forms `x - m` can be made in exactly (see `Shift::exact_form`). Dekker's Fast2Sum
/// (3 flops) is exact when the first operand's binary exponent is at least the second's;
/// TwoSum (6 flops) always.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The maximum is <= 0, so every `|x| >= |m|`: Fast2Sum with `x` first (`XFirst`).
    XFirst,
    /// `m > 0` and no `|x|` has a larger exponent than `m`: Fast2Sum with `-m` first
    /// (`MaxFirst`). Rows of logits whose largest magnitude is the maximum's binade.
    MaxFirst,
    /// The shift's own `split`.
    Own,
}

/// Runs `$body` with `$name` bound to the cheapest exact shift for the values in
/// [`$min`, `$m`] (a `Shift` of another type where `Shift::exact_form` allows one).
macro_rules! with_exact_shift {
    ($sh:expr, $m:expr, $min:expr, $name:ident => $body:expr) => {
        match $crate::kernels::shift::Shift::exact_form($sh, $m, $min) {
            $crate::kernels::shift::Form::XFirst => {
                let $name = $crate::kernels::shift::XFirst;
                $body
            }
            $crate::kernels::shift::Form::MaxFirst => {
                let $name = $crate::kernels::shift::MaxFirst;
                $body
            }
            $crate::kernels::shift::Form::Own => {
                let $name = $sh;
                $body
            }
        }
    };
}
pub(crate) use with_exact_shift;

/// `m + log_sum` as an unevaluated sum `hi + lo` of two F (exact but for `lo`'s rounding):
/// the constant that temperature-1 log_softmax subtracts from a row.
#[inline(always)]
pub fn log_const<F: Float>(m: F, log_sum: (f64, f64)) -> (F, F) {
    let (c, e) = two_diff(m.to_f64(), -log_sum.0);
    let hi = F::from_f64(c);
    (hi, F::from_f64(((c - hi.to_f64()) + e) + log_sum.1))
}

/// Temperature 1.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unit;

impl<F: Float> Shift<F> for Unit {
    const UNIT: bool = true;
    #[inline(always)]
    fn split<S: Simd>(self, x: F, m: F) -> (F, F) {
        two_diff(x, m)
    }
    #[inline(always)]
    fn apply(self, v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn inv(self) -> f64 {
        1.0
    }
    /// `x - c` with the first subtraction exact (TwoSum), in F: PERF: the same rounding as
    /// `Float::log_elem` at about half its cost in f32, which there works in f64.
    #[inline(always)]
    fn log_out<S: Simd>(self, x: F, _m: F, c: (F, F), _log_sum: (f64, f64)) -> F {
        log_finish(two_diff(x, c.0), c.1)
    }
    /// `exact_form` with `c` for the maximum: its reasoning holds for any `c` at least as
    /// large as every value of the row.
    #[inline(always)]
    fn log_form(self, c: F, min: F) -> Form {
        if c.to_f64().is_finite() {
            self.exact_form(c, min)
        } else {
            Form::Own
        }
    }
    #[inline(always)]
    fn exact_form(self, m: F, min: F) -> Form {
        let (m, min) = (m.to_f64(), min.to_f64());
        // In f64, where every value of F is normal: its exponent field orders the binades
        // (an F subnormal's own exponent is only larger, so the test stays sufficient).
        if m <= 0.0 {
            Form::XFirst
        } else if min.abs().to_bits() >> 52 <= m.to_bits() >> 52 {
            Form::MaxFirst
        } else {
            Form::Own
        }
    }
}

/// `(x - c.0) - c.1` from the exact `x - c.0 = s + t`, rounded once.
#[inline(always)]
fn log_finish<F: Float>((s, t): (F, F), c_lo: F) -> F {
    // x = -inf, or x - c beyond the range (t is NaN then): the limit.
    if s == F::NEG_INF {
        s
    } else {
        s + (t - c_lo)
    }
}

/// `Unit::log_out` with `x - c.0` made by Fast2Sum (3 flops instead of TwoSum's 6), for rows
/// where `Shift::log_form` gave that form: the same result.
#[inline(always)]
pub fn log_out_fast<F: Float, const X_FIRST: bool>(x: F, c: (F, F)) -> F {
    log_finish(fast_diff::<F, X_FIRST>(x, c.0), c.1)
}

/// Temperature 1 where `Form::XFirst` holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct XFirst;

/// Temperature 1 where `Form::MaxFirst` holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaxFirst;

/// `x - m` by Fast2Sum, with `x` first (`X_FIRST`) or `-m` first: the same `(hi, lo)` as
/// `two_diff` wherever the caller's `Form` holds.
#[inline(always)]
pub fn fast_diff<F: Float, const X_FIRST: bool>(x: F, m: F) -> (F, F) {
    let d = x - m;
    let e = if X_FIRST { -m - (d - x) } else { x - (d + m) };
    (d, e)
}

macro_rules! fast_unit {
    ($ty:ty, $x_first:expr) => {
        impl<F: Float> Shift<F> for $ty {
            const UNIT: bool = true;
            #[inline(always)]
            fn split<S: Simd>(self, x: F, m: F) -> (F, F) {
                fast_diff::<F, { $x_first }>(x, m)
            }
            #[inline(always)]
            fn apply(self, v: f64) -> f64 {
                v
            }
            #[inline(always)]
            fn inv(self) -> f64 {
                1.0
            }
            #[inline(always)]
            fn log_out<S: Simd>(self, x: F, m: F, c: (F, F), log_sum: (f64, f64)) -> F {
                Unit.log_out::<S>(x, m, c, log_sum)
            }
            #[inline(always)]
            fn log_form(self, c: F, min: F) -> Form {
                Unit.log_form(c, min)
            }
        }
    };
}
fast_unit!(XFirst, true);
fast_unit!(MaxFirst, false);

/// A temperature T > 0, with its reciprocal.
#[derive(Clone, Copy, Debug)]
pub struct Temp<F> {
    t: F,
    inv: F,
    t64: f64,
}

impl<F: Float> Temp<F> {
    pub fn new(t: f64) -> Temp<F> {
        Temp {
            t: F::from_f64(t),
            inv: F::from_f64(1.0 / t),
            t64: t,
        }
    }
}

impl<F: Float> Shift<F> for Temp<F> {
    #[inline(always)]
    fn split<S: Simd>(self, x: F, m: F) -> (F, F) {
        F::split_scaled::<S>(x, m, self.t, self.inv, 1.0 / self.t64)
    }
    #[inline(always)]
    fn apply(self, v: f64) -> f64 {
        v / self.t64
    }
    #[inline(always)]
    fn inv(self) -> f64 {
        1.0 / self.t64
    }
    #[inline(always)]
    fn log_out<S: Simd>(self, x: F, m: F, _c: (F, F), log_sum: (f64, f64)) -> F {
        F::log_elem::<S>(x, m, self.split::<S>(x, m), self.inv(), log_sum)
    }
}

/// Random rows for the tests of the exact forms, here and in `row`.
#[cfg(test)]
pub(crate) mod testing {
    use crate::elem::Float;

    /// Numbers in [0, 1) from a xorshift generator: a fixed stream, no dependency.
    pub fn uniform(mut state: u64) -> impl FnMut() -> f64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `len` values spread over a random scale in [2^lo, 2^(lo + span)), mostly below 0.
    pub fn row<F: Float>(
        next: &mut impl FnMut() -> f64,
        (lo, span): (f64, f64),
        len: usize,
    ) -> Vec<F> {
        let scale = 2f64.powf(next() * span + lo);
        let offset = (next() - 0.6) * scale * 4.0;
        (0..len)
            .map(|_| F::from_f64(offset + (next() - 0.5) * scale))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{row as random_row, uniform};
    use super::*;
    use crate::simd::Generic;

    /// f32 log_softmax outputs at temperature 1 are the correctly rounded `x - m - log_sum`
    /// (to within a hair: the reference itself is f64), over exponents near and far.
    #[test]
    fn unit_log_out_is_rounded_once() {
        let mut next = uniform(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            let scale = 10f64.powf(next() * 8.0 - 4.0);
            let m = ((next() - 0.5) * scale) as f32;
            let x = m - (next() * scale * 2.0) as f32;
            let l0 = (next() * 12.0).exp().ln_1p();
            let log_sum = (l0, l0 * 1e-17 * (next() - 0.5));
            let c = log_const(m, log_sum);
            let got = Unit.log_out::<Generic>(x, m, c, log_sum);
            let want = (f64::from(x) - f64::from(m)) - log_sum.0 - log_sum.1;
            // The spacing of f32 around the result (the wider side at a power of two).
            let a = (want as f32).abs();
            let up = f32::from_bits(a.to_bits() + 1) - a;
            let down = if a > 0.0 {
                a - f32::from_bits(a.to_bits() - 1)
            } else {
                up
            };
            let ulp = f64::from(up.max(down));
            let err = (f64::from(got) - want).abs();
            assert!(
                err <= 0.5 * ulp * (1.0 + 1e-6),
                "x {x} m {m} {log_sum:?}: {got} vs {want}"
            );
        }
    }

    /// Wherever `Unit::exact_form` picks a Fast2Sum form for a row, that form gives
    /// `two_diff`'s `(hi, lo)` for every value of the row: random rows over many scales and
    /// offsets, and values at the edges of the maximum's binade.
    fn fast_forms_are_exact<F: Float>() {
        let mut next = uniform(0x2545_f491_4f6c_dd1d);
        let mut seen = [0usize; 3];
        for _ in 0..20_000 {
            let mut row: Vec<F> = random_row(&mut next, (-20.0, 40.0), 16);
            let m = crate::kernels::row::max(&row);
            // At the edge of the maximum's binade [2^k, 2^(k+1)): a negative value just
            // inside it, one just past it, and the maximum's negative.
            let k = m.to_f64().abs().log2().floor();
            let top = 2f64.powf(k + 1.0);
            for v in [-top * (1.0 - 1e-6), -top, -m.to_f64()] {
                let v = F::from_f64(v);
                if v <= m && next() < 0.5 {
                    row.push(v);
                }
            }
            let min = crate::kernels::row::min(&row);
            let form = Unit.exact_form(m, min);
            seen[form as usize] += 1;
            for &x in &row {
                let want = two_diff(x, m);
                let got = match form {
                    Form::XFirst => fast_diff::<F, true>(x, m),
                    Form::MaxFirst => fast_diff::<F, false>(x, m),
                    Form::Own => continue,
                };
                // Equal values (a zero `lo` may differ in sign, which exp ignores).
                assert!(
                    got.0.to_f64() == want.0.to_f64() && got.1.to_f64() == want.1.to_f64(),
                    "{form:?} x {x:?} m {m:?} min {min:?}: {got:?} vs {want:?}"
                );
            }
        }
        assert!(
            seen.iter().all(|&n| n > 1000),
            "every form exercised: {seen:?}"
        );
    }

    #[test]
    fn fast_forms_match_two_diff() {
        fast_forms_are_exact::<f32>();
        fast_forms_are_exact::<f64>();
    }

    /// The forms are chosen by the binades of the maximum and the minimum.
    #[test]
    fn exact_form_by_binade() {
        assert_eq!(Unit.exact_form(-1.0f32, -50.0), Form::XFirst);
        assert_eq!(Unit.exact_form(0.0f32, -5.0), Form::XFirst);
        assert_eq!(Unit.exact_form(3.0f32, -3.9), Form::MaxFirst);
        assert_eq!(Unit.exact_form(3.0f32, 1e-30), Form::MaxFirst);
        assert_eq!(Unit.exact_form(3.0f32, -4.0), Form::Own);
        assert_eq!(Unit.exact_form(1e-40f32, -1e-40), Form::MaxFirst);
        assert_eq!(Temp::<f32>::new(2.0).exact_form(-1.0, -2.0), Form::Own);
    }

    #[test]
    fn unit_log_out_limits() {
        let ls = (2.0f64.ln(), 0.0);
        let big = f32::MAX;
        let lo = Unit.log_out::<Generic>(-big, big, log_const(big, ls), ls);
        assert_eq!(lo, f32::NEG_INFINITY);
        let inf = Unit.log_out::<Generic>(f32::NEG_INFINITY, 1.0, log_const(1.0, ls), ls);
        assert_eq!(inf, f32::NEG_INFINITY);
        // The winner keeps its digits: -log1p(tiny), not 0.
        let tiny = (1e-12f64.ln_1p(), 0.0);
        let w = Unit.log_out::<Generic>(1000.0f32, 1000.0, log_const(1000.0f32, tiny), tiny);
        assert_eq!(w, -1e-12f32);
    }
}
