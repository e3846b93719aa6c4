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
    /// `(x - m) / T` as `(hi, lo)`. `lo` may be NaN where `hi` is infinite.
    fn split<S: Simd>(self, x: F, m: F) -> (F, F);
    /// Divide a row statistic (the maximum) by T, in f64.
    fn apply(self, v: f64) -> f64;
    /// 1/T.
    fn inv(self) -> f64;
}

/// Temperature 1.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unit;

impl<F: Float> Shift<F> for Unit {
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
}

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
}
