//! x86_64 trampolines: the generic kernels compiled with AVX2+FMA or AVX-512 enabled.

use std::arch::x86_64::_mm_sfence;

use super::{Job, Number, Simd};
use crate::kernels::row::LANES;

#[derive(Clone, Copy)]
pub struct Avx2;
impl Simd for Avx2 {
    const FMA: bool = true;

    #[inline(always)]
    fn masked_lane_sums_f32(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        // SAFETY: this marker is private to `simd` and named only by `avx2_body`, which runs
        // after AVX2 and popcnt were detected.
        unsafe { sums::f32_avx2(x, m, e) }
    }

    #[inline(always)]
    fn masked_lane_sums_f64(x: &[f64], m: f64, e: &[f64]) -> ([f64; LANES], u64) {
        // SAFETY: as above.
        unsafe { sums::f64_avx2(x, m, e) }
    }

    #[inline(always)]
    fn stream_fence() {
        // SAFETY: SSE is part of the x86_64 baseline.
        unsafe { _mm_sfence() }
    }

    #[inline(always)]
    fn stream_copy<T: Number>(dst: &mut [T], src: &[T]) {
        // SAFETY: as above, AVX2 was detected.
        unsafe { stream::avx2(dst, src) }
    }
}

#[derive(Clone, Copy)]
pub struct Avx512;
impl Simd for Avx512 {
    const FMA: bool = true;

    #[inline(always)]
    fn masked_lane_sums_f32(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        // SAFETY: this marker is private to `simd` and named only by `avx512_body`, which
        // runs after AVX-512 and popcnt were detected.
        unsafe { sums::f32_avx512(x, m, e) }
    }

    #[inline(always)]
    fn masked_lane_sums_f64(x: &[f64], m: f64, e: &[f64]) -> ([f64; LANES], u64) {
        // SAFETY: as above.
        unsafe { sums::f64_avx512(x, m, e) }
    }

    #[inline(always)]
    fn stream_fence() {
        // SAFETY: SSE is part of the x86_64 baseline.
        unsafe { _mm_sfence() }
    }

    #[inline(always)]
    fn stream_copy<T: Number>(dst: &mut [T], src: &[T]) {
        // SAFETY: as above, AVX-512 was detected.
        unsafe { stream::avx512(dst, src) }
    }
}

/// Copies with non-temporal stores: the bytes before the first aligned vector and after the
/// last are copied plainly.
mod stream {
    use std::arch::x86_64::*;

    use crate::simd::Number;

    #[target_feature(enable = "avx512f")]
    pub fn avx512<T: Number>(dst: &mut [T], src: &[T]) {
        copy::<T, 64>(dst, src, |d, s| {
            // SAFETY: `copy` passes 64 readable bytes at `s` and 64 writable, 64-byte-aligned
            // bytes at `d`, as `_mm512_stream_si512` requires.
            unsafe { _mm512_stream_si512(d.cast(), _mm512_loadu_si512(s.cast())) }
        })
    }

    #[target_feature(enable = "avx2")]
    pub fn avx2<T: Number>(dst: &mut [T], src: &[T]) {
        copy::<T, 32>(dst, src, |d, s| {
            // SAFETY: as in `avx512`, with 32 bytes.
            unsafe { _mm256_stream_si256(d.cast(), _mm256_loadu_si256(s.cast())) }
        })
    }

    /// `dst.copy_from_slice(src)`, the `W`-byte vectors at `W`-aligned addresses of `dst`
    /// by `store(to, from)`.
    #[inline(always)]
    fn copy<T: Number, const W: usize>(
        dst: &mut [T],
        src: &[T],
        store: impl Fn(*mut u8, *const u8),
    ) {
        assert_eq!(dst.len(), src.len());
        let len = size_of_val(dst);
        let (d, s) = (dst.as_mut_ptr().cast::<u8>(), src.as_ptr().cast::<u8>());
        let head = d.align_offset(W).min(len);
        // SAFETY: both slices hold `len` bytes of plain numbers (`Number`), a `&mut` slice
        // cannot overlap a shared one, and every range below lies inside `0..len`.
        unsafe {
            std::ptr::copy_nonoverlapping(s, d, head);
            let mut i = head;
            while i + W <= len {
                store(d.add(i), s.add(i));
                i += W;
            }
            std::ptr::copy_nonoverlapping(s.add(i), d.add(i), len - i);
        }
    }
}

/// `row::masked_lane_sums` in intrinsics: `LANES` accumulators as one or more registers,
/// each lane adding its terms in the same order as the portable loop (a masked-off term
/// adds nothing, or +0), so every level gives the same bits.
mod sums {
    use std::arch::x86_64::*;

    use crate::kernels::row::LANES;

    #[target_feature(enable = "avx512f,popcnt")]
    pub fn f32_avx512(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        debug_assert!(x.len() == e.len() && x.len().is_multiple_of(LANES));
        let mv = _mm512_set1_ps(m);
        let mut acc = _mm512_setzero_ps();
        let mut ones = 0u64;
        for (xc, ec) in x.chunks_exact(LANES).zip(e.chunks_exact(LANES)) {
            // SAFETY: each chunk holds 16 readable f32 (unaligned loads).
            let (xv, ev) = unsafe { (_mm512_loadu_ps(xc.as_ptr()), _mm512_loadu_ps(ec.as_ptr())) };
            let top = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(xv, mv);
            acc = _mm512_mask_add_ps(acc, !top, acc, ev);
            ones += u64::from(top.count_ones());
        }
        let mut out = [0.0f32; LANES];
        // SAFETY: `out` has room for 16 f32.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), acc) };
        (out, ones)
    }

    #[target_feature(enable = "avx512f,popcnt")]
    pub fn f64_avx512(x: &[f64], m: f64, e: &[f64]) -> ([f64; LANES], u64) {
        debug_assert!(x.len() == e.len() && x.len().is_multiple_of(LANES));
        let mv = _mm512_set1_pd(m);
        let mut acc = [_mm512_setzero_pd(); 2];
        let mut ones = 0u64;
        for (xc, ec) in x.chunks_exact(LANES).zip(e.chunks_exact(LANES)) {
            for (h, a) in acc.iter_mut().enumerate() {
                // SAFETY: each chunk holds 16 readable f64; this reads 8 of them.
                let (xv, ev) = unsafe {
                    (
                        _mm512_loadu_pd(xc.as_ptr().add(8 * h)),
                        _mm512_loadu_pd(ec.as_ptr().add(8 * h)),
                    )
                };
                let top = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(xv, mv);
                *a = _mm512_mask_add_pd(*a, !top, *a, ev);
                ones += u64::from(top.count_ones());
            }
        }
        let mut out = [0.0f64; LANES];
        for (h, a) in acc.iter().enumerate() {
            // SAFETY: `out` has room for 16 f64.
            unsafe { _mm512_storeu_pd(out.as_mut_ptr().add(8 * h), *a) };
        }
        (out, ones)
    }

    #[target_feature(enable = "avx2,popcnt")]
    pub fn f32_avx2(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        debug_assert!(x.len() == e.len() && x.len().is_multiple_of(LANES));
        let mv = _mm256_set1_ps(m);
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut ones = 0u64;
        for (xc, ec) in x.chunks_exact(LANES).zip(e.chunks_exact(LANES)) {
            for (h, a) in acc.iter_mut().enumerate() {
                // SAFETY: each chunk holds 16 readable f32; this reads 8 of them.
                let (xv, ev) = unsafe {
                    (
                        _mm256_loadu_ps(xc.as_ptr().add(8 * h)),
                        _mm256_loadu_ps(ec.as_ptr().add(8 * h)),
                    )
                };
                let top = _mm256_cmp_ps::<_CMP_EQ_OQ>(xv, mv);
                *a = _mm256_add_ps(*a, _mm256_andnot_ps(top, ev));
                ones += u64::from(_mm256_movemask_ps(top).count_ones());
            }
        }
        let mut out = [0.0f32; LANES];
        for (h, a) in acc.iter().enumerate() {
            // SAFETY: `out` has room for 16 f32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * h), *a) };
        }
        (out, ones)
    }

    #[target_feature(enable = "avx2,popcnt")]
    pub fn f64_avx2(x: &[f64], m: f64, e: &[f64]) -> ([f64; LANES], u64) {
        debug_assert!(x.len() == e.len() && x.len().is_multiple_of(LANES));
        let mv = _mm256_set1_pd(m);
        let mut acc = [_mm256_setzero_pd(); 4];
        let mut ones = 0u64;
        for (xc, ec) in x.chunks_exact(LANES).zip(e.chunks_exact(LANES)) {
            for (h, a) in acc.iter_mut().enumerate() {
                // SAFETY: each chunk holds 16 readable f64; this reads 4 of them.
                let (xv, ev) = unsafe {
                    (
                        _mm256_loadu_pd(xc.as_ptr().add(4 * h)),
                        _mm256_loadu_pd(ec.as_ptr().add(4 * h)),
                    )
                };
                let top = _mm256_cmp_pd::<_CMP_EQ_OQ>(xv, mv);
                *a = _mm256_add_pd(*a, _mm256_andnot_pd(top, ev));
                ones += u64::from(_mm256_movemask_pd(top).count_ones());
            }
        }
        let mut out = [0.0f64; LANES];
        for (h, a) in acc.iter().enumerate() {
            // SAFETY: `out` has room for 16 f64.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(4 * h), *a) };
        }
        (out, ones)
    }
}

pub fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("popcnt")
}

pub fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("popcnt")
}

// The bodies leave out popcnt (detected with each level, and enabled in `sums` only): with
// it, the short-row loops compiled to scalar code, (65536, 10) taking 1.7x as long.
#[target_feature(enable = "avx2,fma")]
fn avx2_body<J: Job>(job: &J, task: usize) {
    job.run::<Avx2>(task)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn avx512_body<J: Job>(job: &J, task: usize) {
    job.run::<Avx512>(task)
}

pub fn run_avx2<J: Job>(job: &J, task: usize) {
    debug_assert!(has_avx2());
    // SAFETY: `dispatch` only selects AVX2 after `Isa::is_available` confirmed AVX2 and FMA
    // on this CPU, so the instructions the body was compiled with exist.
    unsafe { avx2_body(job, task) }
}

pub fn run_avx512<J: Job>(job: &J, task: usize) {
    debug_assert!(has_avx512());
    // SAFETY: as above, AVX-512 F/BW/DQ/VL and FMA were detected before this level was chosen.
    unsafe { avx512_body(job, task) }
}
