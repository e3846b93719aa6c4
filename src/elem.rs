//! Element types: the two compute types (f32, f64) and every storage dtype we read.
//!
//! float16 and bfloat16 are widened to f32 on load and narrowed on store, a block at a time;
//! bool and integers are read as f64. Loads are unaligned and undo a foreign byte order, so
//! any NumPy view can be read in place.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

use half::{bf16, f16};

use crate::kernels::exp::{exp_f32, exp_f64, fma_f32, fma_f64};
use crate::simd::Simd;

/// A compute type: f32 or f64.
pub trait Float:
    Copy
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
    /// `a * b + c`, fused where the ISA allows.
    fn fma<S: Simd>(a: Self, b: Self, c: Self) -> Self;
    /// e^(t + lo).
    fn exp<S: Simd>(t: Self, lo: Self) -> Self;
    /// `d - q * t` with a single rounding (exact when `q` is close to `d / t`).
    fn residual<S: Simd>(q: Self, t: Self, d: Self) -> Self;
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
    ($t:ty, $dt:expr, $fma:ident, $exp:ident) => {
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
    };
}

impl Float for f32 {
    float_common!(f32, DType::F32, fma_f32, exp_f32);
    #[inline(always)]
    fn residual<S: Simd>(q: Self, t: Self, d: Self) -> Self {
        if S::FMA {
            (-q).mul_add(t, d)
        } else {
            // The product of two f32 is exact in f64.
            (f64::from(d) - f64::from(q) * f64::from(t)) as f32
        }
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
                DType::F16 => p.cast::<u16>().write_unaligned(f16::from_f32(self).to_bits()),
                DType::BF16 => p.cast::<u16>().write_unaligned(bf16::from_f32(self).to_bits()),
                _ => f64::from(self).store(p, dst),
            }
        }
    }
}

impl Float for f64 {
    float_common!(f64, DType::F64, fma_f64, exp_f64);
    #[inline(always)]
    fn residual<S: Simd>(q: Self, t: Self, d: Self) -> Self {
        // Without FMA hardware this is libm's (slow, exact) fma: only the baseline ISA with a
        // temperature pays for it.
        (-q).mul_add(t, d)
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
