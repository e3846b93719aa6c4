//! Element types: the two compute types (f32, f64) and every storage dtype we read.
//!
//! float16 and bfloat16 are widened to f32 on load and narrowed on store, a block at a time;
//! bool and integers are read as f64. Loads are unaligned and undo a foreign byte order, so
//! any NumPy view can be read in place.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

use half::{bf16, f16};

use crate::kernels::exp::{
    exp_f32, exp_f32_normal, exp_f64, exp_f64_normal, fma_f32, fma_f64, F32_EXP_NORMAL_MIN_ARG,
    F64_EXP_NORMAL_MIN_ARG,
};
use crate::kernels::row::{Extremes, LANES};
use crate::kernels::tile::Tile;
use crate::simd::{Number, Simd};

/// A compute type: f32 or f64.
pub trait Float:
    Copy
    + Number
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const INF: Self;
    const NEG_INF: Self;
    const NAN: Self;
    /// The storage dtype with the same layout.
    const DTYPE: DType;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn is_nan(self) -> bool;
    /// Neither infinite nor NaN. (Both compares are always made, so loops of it vectorize.)
    #[inline(always)]
    fn is_finite(self) -> bool {
        (self > Self::NEG_INF) & (self < Self::INF)
    }
    /// `a * b + c`, fused where the ISA allows.
    fn fma<S: Simd>(a: Self, b: Self, c: Self) -> Self;
    /// e^(t + lo).
    fn exp<S: Simd>(t: Self, lo: Self) -> Self;
    /// The lowest `t` for which `exp_normal` may be used (every e^t from there to 0 normal).
    const EXP_NORMAL_MIN: f64;
    /// e^(t + lo) for `t` in [`EXP_NORMAL_MIN`, 0] or NaN (see `exp_f32_normal`).
    fn exp_normal<S: Simd>(t: Self, lo: Self) -> Self;
    /// Whether `exp_normal_lanes` is the ISA's table form (f32 where `Simd::EXP_TABLE`), so
    /// that loops take their exponentials `LANES` at a time.
    fn has_exp_table<S: Simd>() -> bool;
    /// `exp_normal` of `LANES` lanes.
    fn exp_normal_lanes<S: Simd>(t: [Self; LANES], lo: [Self; LANES]) -> [Self; LANES];
    /// `row::Extremes::take` through the ISA's own loop.
    fn max_min_lanes<S: Simd>(x: &[Self], e: &mut Extremes<Self>);
    /// `row::Extremes::fold` through the ISA's own fold.
    fn fold_extremes<S: Simd>(e: &Extremes<Self>) -> (Self, Self);
    /// `row::masked_lane_sums` through the ISA's own loop.
    fn masked_lane_sums<S: Simd>(x: &[Self], m: Self, e: &[Self]) -> ([Self; LANES], u64);
    /// `tile::load` through the ISA's own transpose.
    fn load_tile<S: Simd>(x: &[Self], d: usize, t: &mut Tile<Self>);
    /// `tile::store` through the ISA's own transpose.
    fn store_tile<S: Simd>(t: &Tile<Self>, d: usize, out: &mut [Self]);
    /// One log_softmax output, `(x - m) / T - log_sum`, rounded once: `split` is the shift as
    /// `hi + lo` (see `Shift::split`), `inv64` is 1/T.
    fn log_elem<S: Simd>(
        x: Self,
        m: Self,
        split: (Self, Self),
        inv64: f64,
        log_sum: (f64, f64),
    ) -> Self;
    /// 1/s as `hi + lo`, so that `e * hi + e * lo` is `e / s` without the bias a rounded
    /// reciprocal puts on every element of a row (and so on the row sum).
    fn recip(s: f64) -> (Self, Self);
    /// `(x - m) / T` as `hi + lo`: `t` and `inv` are T and 1/T in this type, `inv64` is 1/T
    /// in f64 (T itself may not be representable here).
    fn split_scaled<S: Simd>(x: Self, m: Self, t: Self, inv: Self, inv64: f64) -> (Self, Self);
    /// Read element `i` of raw storage of dtype `src` as this type.
    ///
    /// # Safety
    /// `p` must point to a readable element of dtype `src`.
    unsafe fn load(p: *const u8, src: DType, swapped: bool) -> Self;
    /// Write `v` as dtype `dst` (native byte order).
    ///
    /// # Safety
    /// `p` must point to a writable element of dtype `dst`.
    unsafe fn store(self, p: *mut u8, dst: DType);
}

macro_rules! float_common {
    (
        $t:ty,
        $dt:expr,
        $fma:ident,
        $exp:ident,
        $exp_normal:ident,
        $normal_min:expr,
        $sums:ident,
        $max_min:ident,
        $fold:ident,
        $load_tile:ident,
        $store_tile:ident
    ) => {
        const ZERO: Self = 0.0;
        const ONE: Self = 1.0;
        const INF: Self = <$t>::INFINITY;
        const NEG_INF: Self = <$t>::NEG_INFINITY;
        const NAN: Self = <$t>::NAN;
        const DTYPE: DType = $dt;
        #[inline(always)]
        fn is_nan(self) -> bool {
            self != self
        }
        #[inline(always)]
        fn fma<S: Simd>(a: Self, b: Self, c: Self) -> Self {
            $fma::<S>(a, b, c)
        }
        #[inline(always)]
        fn exp<S: Simd>(t: Self, lo: Self) -> Self {
            $exp::<S>(t, lo)
        }
        const EXP_NORMAL_MIN: f64 = $normal_min as f64;
        #[inline(always)]
        fn exp_normal<S: Simd>(t: Self, lo: Self) -> Self {
            $exp_normal::<S>(t, lo)
        }
        #[inline(always)]
        fn masked_lane_sums<S: Simd>(x: &[Self], m: Self, e: &[Self]) -> ([Self; LANES], u64) {
            S::$sums(x, m, e)
        }
        #[inline(always)]
        fn max_min_lanes<S: Simd>(x: &[Self], e: &mut Extremes<Self>) {
            S::$max_min(x, e)
        }
        #[inline(always)]
        fn fold_extremes<S: Simd>(e: &Extremes<Self>) -> (Self, Self) {
            S::$fold(e)
        }
        #[inline(always)]
        fn load_tile<S: Simd>(x: &[Self], d: usize, t: &mut Tile<Self>) {
            S::$load_tile(x, d, t)
        }
        #[inline(always)]
        fn store_tile<S: Simd>(t: &Tile<Self>, d: usize, out: &mut [Self]) {
            S::$store_tile(t, d, out)
        }
    };
}

impl Float for f32 {
    float_common!(
        f32,
        DType::F32,
        fma_f32,
        exp_f32,
        exp_f32_normal,
        F32_EXP_NORMAL_MIN_ARG,
        masked_lane_sums_f32,
        max_min_lanes_f32,
        fold_extremes_f32,
        load_tile_f32,
        store_tile_f32
    );
    #[inline(always)]
    fn has_exp_table<S: Simd>() -> bool {
        S::EXP_TABLE
    }
    #[inline(always)]
    fn exp_normal_lanes<S: Simd>(t: [Self; LANES], lo: [Self; LANES]) -> [Self; LANES] {
        S::exp_normal_lanes_f32(t, lo)
    }
    #[inline(always)]
    fn log_elem<S: Simd>(
        x: Self,
        m: Self,
        _split: (Self, Self),
        inv64: f64,
        log_sum: (f64, f64),
    ) -> Self {
        // In f64 (x - m is exact there), rounded once to f32.
        ((f64::from(x) - f64::from(m)) * inv64 - log_sum.0 - log_sum.1) as f32
    }
    #[inline(always)]
    fn recip(s: f64) -> (Self, Self) {
        let inv = 1.0 / s;
        let hi = inv as f32;
        (hi, (inv - f64::from(hi)) as f32)
    }
    #[inline(always)]
    fn split_scaled<S: Simd>(x: Self, m: Self, _t: Self, _inv: Self, inv64: f64) -> (Self, Self) {
        // In f64: the difference of two f32 is exact there, and 1/T carries 53 bits, so
        // hi + lo is (x - m) / T to far better than f32 precision.
        let q = (f64::from(x) - f64::from(m)) * inv64;
        let hi = q as f32;
        (hi, (q - f64::from(hi)) as f32)
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    unsafe fn load(p: *const u8, src: DType, swapped: bool) -> Self {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            match src {
                DType::F32 => f32::from_bits(read::<u32>(p, swapped)),
                DType::F16 => f16::from_bits(read::<u16>(p, swapped)).to_f32(),
                DType::BF16 => bf16::from_bits(read::<u16>(p, swapped)).to_f32(),
                _ => f64::load(p, src, swapped) as f32,
            }
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut u8, dst: DType) {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            match dst {
                DType::F32 => p.cast::<f32>().write_unaligned(self),
                DType::F16 => p
                    .cast::<u16>()
                    .write_unaligned(f16::from_f32(self).to_bits()),
                DType::BF16 => p
                    .cast::<u16>()
                    .write_unaligned(bf16::from_f32(self).to_bits()),
                _ => f64::from(self).store(p, dst),
            }
        }
    }
}

impl Float for f64 {
    float_common!(
        f64,
        DType::F64,
        fma_f64,
        exp_f64,
        exp_f64_normal,
        F64_EXP_NORMAL_MIN_ARG,
        masked_lane_sums_f64,
        max_min_lanes_f64,
        fold_extremes_f64,
        load_tile_f64,
        store_tile_f64
    );
    #[inline(always)]
    fn has_exp_table<S: Simd>() -> bool {
        S::EXP_TABLE_F64
    }
    #[inline(always)]
    fn exp_normal_lanes<S: Simd>(t: [Self; LANES], lo: [Self; LANES]) -> [Self; LANES] {
        S::exp_normal_lanes_f64(t, lo)
    }
    #[inline(always)]
    fn log_elem<S: Simd>(
        _x: Self,
        _m: Self,
        split: (Self, Self),
        _inv64: f64,
        log_sum: (f64, f64),
    ) -> Self {
        // (hi - log_sum) exactly as s + e2 (TwoSum), then the low parts, rounded once.
        let (hi, lo) = split;
        let (s, e2) = crate::kernels::shift::two_diff(hi, log_sum.0);
        if hi == f64::NEG_INFINITY {
            hi - log_sum.0
        } else {
            s + ((e2 + lo) - log_sum.1)
        }
    }
    #[inline(always)]
    fn recip(s: f64) -> (Self, Self) {
        let hi = 1.0 / s;
        // The residual 1 - hi*s is exact with one rounding.
        (hi, (-hi).mul_add(s, 1.0) / s)
    }
    #[inline(always)]
    fn split_scaled<S: Simd>(x: Self, m: Self, t: Self, inv: Self, _inv64: f64) -> (Self, Self) {
        let (d, e) = crate::kernels::shift::two_diff(x, m);
        let q = d * inv;
        // d - q*T exactly (one rounding), then the remainder over T. Without FMA hardware
        // mul_add is libm's slow exact fma: only the baseline ISA with a temperature pays.
        let r = (-q).mul_add(t, d);
        let lo = (r + e) * inv;
        if d.is_infinite() && x.is_finite() {
            // x - m overflowed although (x - m) / T may not: divide first.
            (x * inv - m * inv, 0.0)
        } else {
            (q, lo)
        }
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    unsafe fn load(p: *const u8, src: DType, swapped: bool) -> Self {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            match src {
                DType::F64 => f64::from_bits(read::<u64>(p, swapped)),
                DType::F32 => f64::from(f32::from_bits(read::<u32>(p, swapped))),
                DType::F16 => f64::from(f16::from_bits(read::<u16>(p, swapped)).to_f32()),
                DType::BF16 => f64::from(bf16::from_bits(read::<u16>(p, swapped)).to_f32()),
                DType::Bool => f64::from(u8::from(p.read() != 0)),
                DType::I8 => f64::from(p.cast::<i8>().read()),
                DType::U8 => f64::from(p.read()),
                DType::I16 => f64::from(read::<u16>(p, swapped) as i16),
                DType::U16 => f64::from(read::<u16>(p, swapped)),
                DType::I32 => f64::from(read::<u32>(p, swapped) as i32),
                DType::U32 => f64::from(read::<u32>(p, swapped)),
                DType::I64 => read::<u64>(p, swapped) as i64 as f64,
                DType::U64 => read::<u64>(p, swapped) as f64,
            }
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut u8, dst: DType) {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            match dst {
                DType::F64 => p.cast::<f64>().write_unaligned(self),
                _ => (self as f32).store(p, dst),
            }
        }
    }
}

/// Raw storage integers we can byte-swap.
pub trait Bits: Copy {
    fn swap(self) -> Self;
}
macro_rules! bits {
    ($($t:ty),*) => {$(impl Bits for $t {
        #[inline(always)]
        fn swap(self) -> Self { self.swap_bytes() }
    })*};
}
bits!(u16, u32, u64);

/// Unaligned read of a `T`, byte-swapped if the array is in foreign byte order.
///
/// # Safety
/// `p` must point to `size_of::<T>()` readable bytes.
#[inline(always)]
pub unsafe fn read<T: Bits>(p: *const u8, swapped: bool) -> T {
    // SAFETY: the caller guarantees the bytes are readable; `read_unaligned` needs no alignment.
    let v = unsafe { p.cast::<T>().read_unaligned() };
    if swapped {
        v.swap()
    } else {
        v
    }
}

/// A storage dtype the kernels read (and, for the float ones, write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F16,
    BF16,
    F32,
    F64,
}

impl DType {
    pub fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// From NumPy's kind character and itemsize (bfloat16 is recognised by the caller).
    pub fn from_kind(kind: u8, itemsize: usize) -> Option<DType> {
        Some(match (kind, itemsize) {
            (b'b', 1) => DType::Bool,
            (b'i', 1) => DType::I8,
            (b'u', 1) => DType::U8,
            (b'i', 2) => DType::I16,
            (b'u', 2) => DType::U16,
            (b'i', 4) => DType::I32,
            (b'u', 4) => DType::U32,
            (b'i', 8) => DType::I64,
            (b'u', 8) => DType::U64,
            (b'f', 2) => DType::F16,
            (b'f', 4) => DType::F32,
            (b'f', 8) => DType::F64,
            _ => return None,
        })
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// The compute type of the softmax family for this input: f32 for the narrow floats,
    /// f64 for f64, bool and integers.
    pub fn compute(self) -> DType {
        match self {
            DType::F16 | DType::BF16 | DType::F32 => DType::F32,
            _ => DType::F64,
        }
    }

    /// The result dtype of the softmax family: the input's float type, else float64.
    pub fn result(self) -> DType {
        if self.is_float() {
            self
        } else {
            DType::F64
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}
