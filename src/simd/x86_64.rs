//! x86_64 trampolines: the generic kernels compiled with AVX2+FMA or AVX-512 enabled.

use std::arch::x86_64::_mm_sfence;

use super::{Job, Number, Simd};
use crate::kernels::row::{Extremes, LANES};
use crate::kernels::tile::Tile;

#[derive(Clone, Copy)]
pub struct Avx2;
impl Simd for Avx2 {
    const FMA: bool = true;
    const EXP_TABLE: bool = true;

    #[inline(always)]
    fn outline<R>(f: impl FnOnce() -> R) -> R {
        // SAFETY: this marker is named only by `avx2_body`, which runs after AVX2 and FMA
        // were detected.
        unsafe { outline_avx2(f) }
    }

    #[inline(always)]
    fn exp_normal_lanes_f32(t: [f32; LANES], lo: [f32; LANES]) -> [f32; LANES] {
        // SAFETY: this marker is private to `simd` and named only by `avx2_body`, which runs
        // after AVX2 and FMA were detected.
        unsafe { exp_table::f32_avx2(t, lo) }
    }

    #[inline(always)]
    fn masked_lane_sums_f32(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        // SAFETY: this marker is private to `simd` and named only by `avx2_body`, which runs
        // after AVX2 was detected.
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
    const EXP_TABLE: bool = true;
    const EXP_TABLE_F64: bool = true;

    #[inline(always)]
    fn outline<R>(f: impl FnOnce() -> R) -> R {
        // SAFETY: this marker is named only by `avx512_body`, which runs after AVX-512 and
        // FMA were detected.
        unsafe { outline_avx512(f) }
    }

    #[inline(always)]
    fn exp_normal_lanes_f32(t: [f32; LANES], lo: [f32; LANES]) -> [f32; LANES] {
        // SAFETY: this marker is private to `simd` and named only by `avx512_body`, which
        // runs after AVX-512 and FMA were detected.
        unsafe { exp_table::f32_avx512(t, lo) }
    }

    #[inline(always)]
    fn exp_normal_lanes_f64(t: [f64; LANES], lo: [f64; LANES]) -> [f64; LANES] {
        // SAFETY: as above.
        unsafe { exp_table::f64_avx512(t, lo) }
    }

    #[inline(always)]
    fn masked_lane_sums_f32(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        // SAFETY: this marker is private to `simd` and named only by `avx512_body`, which
        // runs after AVX-512 was detected.
        unsafe { sums::f32_avx512(x, m, e) }
    }

    #[inline(always)]
    fn masked_lane_sums_f64(x: &[f64], m: f64, e: &[f64]) -> ([f64; LANES], u64) {
        // SAFETY: as above.
        unsafe { sums::f64_avx512(x, m, e) }
    }

    #[inline(always)]
    fn max_min_lanes_f32(x: &[f32], e: &mut Extremes<f32>) {
        // SAFETY: as above.
        unsafe { extremes::f32_avx512(x, e) }
    }

    #[inline(always)]
    fn max_min_lanes_f64(x: &[f64], e: &mut Extremes<f64>) {
        // SAFETY: as above.
        unsafe { extremes::f64_avx512(x, e) }
    }

    /// PERF: the portable tree, inlined into the AVX-512 row loop, compiled to scalar code
    /// tangled with a tail loop (rows of 40 f32 took 1.3x-1.45x the time); out of line it
    /// was 60 scalar instructions and stack round trips a row.
    #[inline(always)]
    fn fold_extremes_f32(e: &Extremes<f32>) -> (f32, f32) {
        // SAFETY: as above.
        unsafe { extremes::fold_f32_avx512(e) }
    }

    #[inline(always)]
    fn fold_extremes_f64(e: &Extremes<f64>) -> (f64, f64) {
        // SAFETY: as above.
        unsafe { extremes::fold_f64_avx512(e) }
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

    const TILES: bool = true;
    const MASK_REGS: bool = true;

    #[inline(always)]
    fn load_tile_f32(x: &[f32], d: usize, t: &mut Tile<f32>) {
        // SAFETY: as above, AVX-512 was detected.
        unsafe { tile::load_f32(x, d, t) }
    }

    #[inline(always)]
    fn store_tile_f32(t: &Tile<f32>, d: usize, out: &mut [f32]) {
        // SAFETY: as above.
        unsafe { tile::store_f32(t, d, out) }
    }

    #[inline(always)]
    fn load_tile_f64(x: &[f64], d: usize, t: &mut Tile<f64>) {
        // SAFETY: as above.
        unsafe { tile::load_f64(x, d, t) }
    }

    #[inline(always)]
    fn store_tile_f64(t: &Tile<f64>, d: usize, out: &mut [f64]) {
        // SAFETY: as above.
        unsafe { tile::store_f64(t, d, out) }
    }
}

/// `kernels::tile::load` and `store` with AVX-512: each row is one masked load or store
/// (lanes past the row are neither read nor written), and the tile is transposed in
/// registers by two-source shuffles.
mod tile {
    use std::arch::x86_64::*;

    use crate::kernels::tile::{Tile, COLS, TILE};

    /// The rows of `len` values of `d` each, checked against the tile. PERF: a multiply,
    /// not a division, for the usual full tile.
    #[inline(always)]
    fn rows_of(len: usize, d: usize) -> usize {
        assert!((1..=COLS).contains(&d) && len <= TILE * d);
        if len == TILE * d {
            TILE
        } else {
            len / d
        }
    }

    /// The first `n` of 16 lanes (`n` may pass 16 or be 0).
    fn lanes16(n: usize) -> __mmask16 {
        ((1u32 << n.min(16)) - 1) as __mmask16
    }

    /// The first `n` of 8 lanes (`n` may pass 8 or be 0).
    fn lanes8(n: usize) -> __mmask8 {
        ((1u32 << n.min(8)) - 1) as __mmask8
    }

    /// 16 x 16 f32 transpose: `v[j]` lane `r` becomes `v[r]` lane `j`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose_f32(v: &mut [__m512; 16]) {
        // Pairs of rows interleaved, then 4 x 4 blocks within each 128-bit lane: u[4k + c]
        // holds, in 128-bit lane q, column 4q + c of rows 4k..4k + 4.
        let mut u = [_mm512_setzero_ps(); 16];
        for k in 0..4 {
            let a = _mm512_unpacklo_ps(v[4 * k], v[4 * k + 1]);
            let b = _mm512_unpackhi_ps(v[4 * k], v[4 * k + 1]);
            let c = _mm512_unpacklo_ps(v[4 * k + 2], v[4 * k + 3]);
            let e = _mm512_unpackhi_ps(v[4 * k + 2], v[4 * k + 3]);
            u[4 * k] = _mm512_shuffle_ps::<0x44>(a, c);
            u[4 * k + 1] = _mm512_shuffle_ps::<0xEE>(a, c);
            u[4 * k + 2] = _mm512_shuffle_ps::<0x44>(b, e);
            u[4 * k + 3] = _mm512_shuffle_ps::<0xEE>(b, e);
        }
        // Then the 128-bit lanes: column 4q + c gathers lane q of u[c], u[4 + c], u[8 + c]
        // and u[12 + c].
        for c in 0..4 {
            let w0 = _mm512_shuffle_f32x4::<0x88>(u[c], u[4 + c]);
            let w1 = _mm512_shuffle_f32x4::<0xDD>(u[c], u[4 + c]);
            let w2 = _mm512_shuffle_f32x4::<0x88>(u[8 + c], u[12 + c]);
            let w3 = _mm512_shuffle_f32x4::<0xDD>(u[8 + c], u[12 + c]);
            v[c] = _mm512_shuffle_f32x4::<0x88>(w0, w2);
            v[8 + c] = _mm512_shuffle_f32x4::<0xDD>(w0, w2);
            v[4 + c] = _mm512_shuffle_f32x4::<0x88>(w1, w3);
            v[12 + c] = _mm512_shuffle_f32x4::<0xDD>(w1, w3);
        }
    }

    /// 8 x 8 f64 transpose.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose_f64(v: [__m512d; 8]) -> [__m512d; 8] {
        let mut out = [_mm512_setzero_pd(); 8];
        // t[2k + p] holds, in 128-bit lane q, column 2q + p of rows 2k and 2k + 1.
        let t: [__m512d; 8] = std::array::from_fn(|i| {
            let (a, b) = (v[i & !1], v[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_pd(a, b)
            } else {
                _mm512_unpackhi_pd(a, b)
            }
        });
        for p in 0..2 {
            let s0 = _mm512_shuffle_f64x2::<0x88>(t[p], t[2 + p]);
            let s1 = _mm512_shuffle_f64x2::<0xDD>(t[p], t[2 + p]);
            let s2 = _mm512_shuffle_f64x2::<0x88>(t[4 + p], t[6 + p]);
            let s3 = _mm512_shuffle_f64x2::<0xDD>(t[4 + p], t[6 + p]);
            out[p] = _mm512_shuffle_f64x2::<0x88>(s0, s2);
            out[4 + p] = _mm512_shuffle_f64x2::<0xDD>(s0, s2);
            out[2 + p] = _mm512_shuffle_f64x2::<0x88>(s1, s3);
            out[6 + p] = _mm512_shuffle_f64x2::<0xDD>(s1, s3);
        }
        out
    }

    /// A tile of f32 is 16 x 16 blocks, one per 16 columns: lanes `16P..` of the rows go to
    /// columns `16P..`, for the blocks of columns the rows reach.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn load_f32(x: &[f32], d: usize, t: &mut Tile<f32>) {
        let rows = rows_of(x.len(), d);
        for part in 0..COLS / 16 {
            let keep = lanes16(d.saturating_sub(16 * part));
            if keep == 0 {
                break;
            }
            let mut v = [_mm512_setzero_ps(); 16];
            for (r, vr) in v.iter_mut().enumerate() {
                if r < rows {
                    // SAFETY: lanes 16 * part.. of row r, those of them inside the row
                    // (which lies inside x: r < x.len() / d); masked-off lanes are not read.
                    *vr = unsafe { _mm512_maskz_loadu_ps(keep, x.as_ptr().add(r * d + 16 * part)) };
                }
            }
            transpose_f32(&mut v);
            // All 16 columns of the block (those past `d` get zeros): PERF: stores of the
            // first `d` were compiled into a `memcpy` call from a stack copy of the
            // registers.
            for (tj, vj) in t[16 * part..].iter_mut().zip(&v) {
                // SAFETY: a tile column holds 16 f32.
                unsafe { _mm512_storeu_ps(tj.as_mut_ptr(), *vj) };
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn store_f32(t: &Tile<f32>, d: usize, out: &mut [f32]) {
        let rows = rows_of(out.len(), d);
        for part in 0..COLS / 16 {
            let keep = lanes16(d.saturating_sub(16 * part));
            if keep == 0 {
                break;
            }
            // All 16 columns of the block: those past `d` only reach lanes that the masked
            // stores leave out. PERF: loads of the first `d` alone were compiled into a
            // memset and a memcpy of the tile to the stack, 4%-5% of (65536, 10) softmax.
            // SAFETY: a tile column holds 16 f32.
            let mut v: [__m512; 16] =
                std::array::from_fn(|j| unsafe { _mm512_loadu_ps(t[16 * part + j].as_ptr()) });
            transpose_f32(&mut v);
            for (r, vr) in v.iter().enumerate() {
                if r < rows {
                    // SAFETY: as in `load_f32`, for the writable `out`.
                    unsafe {
                        _mm512_mask_storeu_ps(out.as_mut_ptr().add(r * d + 16 * part), keep, *vr)
                    };
                }
            }
        }
    }

    /// A tile of f64 is 8 x 8 blocks, two per 8 columns: rows `8R..` by lanes `8C..` goes
    /// to columns `8C..` by lanes `8R..`, for the blocks of columns the rows reach.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn load_f64(x: &[f64], d: usize, t: &mut Tile<f64>) {
        let rows = rows_of(x.len(), d);
        for part in 0..COLS / 8 {
            let keep = lanes8(d.saturating_sub(8 * part));
            if keep == 0 {
                break;
            }
            for block in 0..2 {
                let mut v = [_mm512_setzero_pd(); 8];
                for (i, vr) in v.iter_mut().enumerate() {
                    let r = 8 * block + i;
                    if r < rows {
                        // SAFETY: as in `load_f32`: lanes 8 * part.. of row r, those of
                        // them inside the row.
                        *vr = unsafe {
                            _mm512_maskz_loadu_pd(keep, x.as_ptr().add(r * d + 8 * part))
                        };
                    }
                }
                let c = transpose_f64(v);
                for (i, ci) in c.iter().enumerate() {
                    let j = 8 * part + i;
                    if j < d {
                        // SAFETY: a tile column holds 16 f64; this writes 8 of them.
                        unsafe { _mm512_storeu_pd(t[j].as_mut_ptr().add(8 * block), *ci) };
                    }
                }
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn store_f64(t: &Tile<f64>, d: usize, out: &mut [f64]) {
        let rows = rows_of(out.len(), d);
        for part in 0..COLS / 8 {
            let keep = lanes8(d.saturating_sub(8 * part));
            if keep == 0 {
                break;
            }
            for block in 0..2 {
                let mut c = [_mm512_setzero_pd(); 8];
                for (i, ci) in c.iter_mut().enumerate() {
                    let j = 8 * part + i;
                    if j < d {
                        // SAFETY: a tile column holds 16 f64; this reads 8 of them.
                        *ci = unsafe { _mm512_loadu_pd(t[j].as_ptr().add(8 * block)) };
                    }
                }
                let v = transpose_f64(c);
                for (i, vr) in v.iter().enumerate() {
                    let r = 8 * block + i;
                    if r < rows {
                        // SAFETY: as in `load_f64`, for the writable `out`.
                        unsafe {
                            _mm512_mask_storeu_pd(out.as_mut_ptr().add(r * d + 8 * part), keep, *vr)
                        };
                    }
                }
            }
        }
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

/// `row::Extremes::take` in one read of the block: the same lanes as the portable
/// `extreme_lanes` (`vmaxps`/`vminps` keep their second operand on ties and NaN, as `beyond`
/// does), so the same results; the two reductions' chains overlap.
mod extremes {
    use std::arch::x86_64::*;

    use crate::kernels::row::{Extremes, LANES};
    use crate::simd::prefetch_ahead;

    #[target_feature(enable = "avx512f")]
    pub fn f32_avx512(x: &[f32], e: &mut Extremes<f32>) {
        // SAFETY: each array holds 16 f32.
        let (mut hi, mut lo) = unsafe {
            (
                _mm512_loadu_ps(e.hi.as_ptr()),
                _mm512_loadu_ps(e.lo.as_ptr()),
            )
        };
        let chunks = x.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            prefetch_ahead(c.as_ptr(), 64);
            // SAFETY: each chunk holds 16 readable f32.
            let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
            hi = _mm512_max_ps(v, hi);
            lo = _mm512_min_ps(v, lo);
        }
        let k = ((1u32 << tail.len()) - 1) as __mmask16;
        // SAFETY: the mask covers the tail's values only; masked lanes are not read.
        let v = unsafe { _mm512_maskz_loadu_ps(k, tail.as_ptr()) };
        hi = _mm512_mask_max_ps(hi, k, v, hi);
        lo = _mm512_mask_min_ps(lo, k, v, lo);
        // SAFETY: each array has room for 16 f32.
        unsafe {
            _mm512_storeu_ps(e.hi.as_mut_ptr(), hi);
            _mm512_storeu_ps(e.lo.as_mut_ptr(), lo);
        }
    }

    /// `Extremes::fold_portable` in registers: the same tree (lane `i` takes lane
    /// `i + half` where that lies beyond it), as `max_ps(a, b)` is `a > b ? a : b` and
    /// `min_ps(a, b)` is `a < b ? a : b`, NaN and equal zeros giving `b` as `beyond` does.
    #[target_feature(enable = "avx512f")]
    pub fn fold_f32_avx512(e: &Extremes<f32>) -> (f32, f32) {
        // SAFETY: each array holds 16 f32.
        let (hi, lo) = unsafe {
            (
                _mm512_loadu_ps(e.hi.as_ptr()),
                _mm512_loadu_ps(e.lo.as_ptr()),
            )
        };
        (fold16_f32::<true>(hi), fold16_f32::<false>(lo))
    }

    /// Lanes 8..16 onto 0..8, then 4, 2 and 1, by `max_ps` (`MAX`) or `min_ps`.
    #[target_feature(enable = "avx512f")]
    fn fold16_f32<const MAX: bool>(v: __m512) -> f32 {
        let top = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        let v8 = pick8_ps::<MAX>(top, _mm512_castps512_ps256(v));
        let v4 = pick4_ps::<MAX>(_mm256_extractf128_ps::<1>(v8), _mm256_castps256_ps128(v8));
        let v2 = pick4_ps::<MAX>(_mm_movehl_ps(v4, v4), v4);
        let v1 = if MAX {
            _mm_max_ss(_mm_shuffle_ps::<1>(v2, v2), v2)
        } else {
            _mm_min_ss(_mm_shuffle_ps::<1>(v2, v2), v2)
        };
        _mm_cvtss_f32(v1)
    }

    #[target_feature(enable = "avx512f")]
    fn pick8_ps<const MAX: bool>(a: __m256, b: __m256) -> __m256 {
        if MAX {
            _mm256_max_ps(a, b)
        } else {
            _mm256_min_ps(a, b)
        }
    }

    #[target_feature(enable = "avx512f")]
    fn pick4_ps<const MAX: bool>(a: __m128, b: __m128) -> __m128 {
        if MAX {
            _mm_max_ps(a, b)
        } else {
            _mm_min_ps(a, b)
        }
    }

    /// `fold_f32_avx512` for f64: lanes 0..8 and 8..16 are two registers.
    #[target_feature(enable = "avx512f")]
    pub fn fold_f64_avx512(e: &Extremes<f64>) -> (f64, f64) {
        let fold = |a: &[f64; LANES], max: bool| {
            // SAFETY: each array holds 16 f64.
            let (low, high) = unsafe {
                (
                    _mm512_loadu_pd(a.as_ptr()),
                    _mm512_loadu_pd(a.as_ptr().add(8)),
                )
            };
            let pick8 = |a, b| {
                if max {
                    _mm512_max_pd(a, b)
                } else {
                    _mm512_min_pd(a, b)
                }
            };
            let pick4 = |a, b| {
                if max {
                    _mm256_max_pd(a, b)
                } else {
                    _mm256_min_pd(a, b)
                }
            };
            let pick2 = |a, b| {
                if max {
                    _mm_max_pd(a, b)
                } else {
                    _mm_min_pd(a, b)
                }
            };
            let v8 = pick8(high, low);
            let v4 = pick4(_mm512_extractf64x4_pd::<1>(v8), _mm512_castpd512_pd256(v8));
            let v2 = pick2(_mm256_extractf128_pd::<1>(v4), _mm256_castpd256_pd128(v4));
            let v1 = if max {
                _mm_max_sd(_mm_unpackhi_pd(v2, v2), v2)
            } else {
                _mm_min_sd(_mm_unpackhi_pd(v2, v2), v2)
            };
            _mm_cvtsd_f64(v1)
        };
        (fold(&e.hi, true), fold(&e.lo, false))
    }

    #[target_feature(enable = "avx512f")]
    pub fn f64_avx512(x: &[f64], e: &mut Extremes<f64>) {
        // Lanes 0..8 and 8..16 of the portable accumulator.
        let (mut hi, mut lo) = ([_mm512_setzero_pd(); 2], [_mm512_setzero_pd(); 2]);
        for j in 0..2 {
            // SAFETY: each array holds 16 f64; this reads 8 of them.
            unsafe {
                hi[j] = _mm512_loadu_pd(e.hi.as_ptr().add(8 * j));
                lo[j] = _mm512_loadu_pd(e.lo.as_ptr().add(8 * j));
            }
        }
        let chunks = x.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            prefetch_ahead(c.as_ptr(), 128);
            for j in 0..2 {
                // SAFETY: each chunk holds 16 readable f64.
                let v = unsafe { _mm512_loadu_pd(c.as_ptr().add(8 * j)) };
                hi[j] = _mm512_max_pd(v, hi[j]);
                lo[j] = _mm512_min_pd(v, lo[j]);
            }
        }
        for j in 0..2 {
            let n = tail.len().saturating_sub(8 * j).min(8);
            let k = ((1u32 << n) - 1) as __mmask8;
            // SAFETY: the mask covers the tail's values only; masked lanes are not read.
            let v = unsafe { _mm512_maskz_loadu_pd(k, tail.as_ptr().wrapping_add(8 * j)) };
            let hj = _mm512_mask_max_pd(hi[j], k, v, hi[j]);
            let lj = _mm512_mask_min_pd(lo[j], k, v, lo[j]);
            // SAFETY: each array has room for 16 f64; this writes 8 of them.
            unsafe {
                _mm512_storeu_pd(e.hi.as_mut_ptr().add(8 * j), hj);
                _mm512_storeu_pd(e.lo.as_mut_ptr().add(8 * j), lj);
            }
        }
    }
}

/// `kernels::exp::exp_f32_table` on 16 lanes, the table looked up by a lane permute (its 8
/// entries fill one AVX2 register; AVX-512 holds them twice, as its permute reads 4 index
/// bits); `exp_f64_table` on AVX-512. Same operations in the same order as the scalar
/// forms, so the same bits.
mod exp_table {
    use std::arch::x86_64::*;

    use crate::kernels::exp::{table_f32::*, EXP2_EIGHTHS_F32};
    use crate::kernels::row::LANES;

    #[target_feature(enable = "avx512f,fma")]
    pub fn f32_avx512(t: [f32; LANES], lo: [f32; LANES]) -> [f32; LANES] {
        let table: [u32; 16] = std::array::from_fn(|i| EXP2_EIGHTHS_F32[i % 8]);
        // SAFETY: each array holds 16 f32 (unaligned loads and store).
        unsafe {
            let (t, lo) = (_mm512_loadu_ps(t.as_ptr()), _mm512_loadu_ps(lo.as_ptr()));
            let magic = _mm512_set1_ps(MAGIC);
            let z = _mm512_fmadd_ps(t, _mm512_set1_ps(SCALE), magic);
            let nf = _mm512_sub_ps(z, magic);
            let r = _mm512_fmadd_ps(nf, _mm512_set1_ps(-C1), t);
            let r = _mm512_add_ps(_mm512_fmadd_ps(nf, _mm512_set1_ps(-C2), r), lo);
            let tab = _mm512_loadu_si512(table.as_ptr().cast());
            let e = _mm512_permutexvar_epi32(_mm512_castps_si512(z), tab);
            let s = _mm512_add_epi32(e, _mm512_slli_epi32::<SHIFT>(_mm512_castps_si512(z)));
            let s = _mm512_castsi512_ps(s);
            let g = _mm512_fmadd_ps(_mm512_set1_ps(G[0]), r, _mm512_set1_ps(G[1]));
            let g = _mm512_fmadd_ps(g, r, _mm512_set1_ps(G[2]));
            let y = _mm512_fmadd_ps(s, _mm512_fmadd_ps(g, _mm512_mul_ps(r, r), r), s);
            let mut out = [0.0f32; LANES];
            _mm512_storeu_ps(out.as_mut_ptr(), y);
            out
        }
    }

    /// `kernels::exp::exp_f64_table` on 16 lanes, as two registers: each table (16 f64)
    /// fills two registers, and a two-source permute reads the low 4 bits of each index.
    #[target_feature(enable = "avx512f,fma")]
    pub fn f64_avx512(t: [f64; LANES], lo: [f64; LANES]) -> [f64; LANES] {
        use crate::kernels::exp::{table_f64, EXP2_SIXTEENTHS_F64, EXP2_SIXTEENTHS_REL_F64};
        let mut out = [0.0f64; LANES];
        // SAFETY: each table holds 16 values and each lane array 16 f64; every load and
        // store below reads or writes 8 of them (unaligned).
        unsafe {
            let hi = EXP2_SIXTEENTHS_F64.as_ptr();
            let (ta, tb) = (
                _mm512_loadu_si512(hi.cast()),
                _mm512_loadu_si512(hi.add(8).cast()),
            );
            let rel = EXP2_SIXTEENTHS_REL_F64.as_ptr();
            let (ra, rb) = (_mm512_loadu_pd(rel), _mm512_loadu_pd(rel.add(8)));
            let magic = _mm512_set1_pd(table_f64::MAGIC);
            for h in 0..2 {
                let tv = _mm512_loadu_pd(t.as_ptr().add(8 * h));
                let lv = _mm512_loadu_pd(lo.as_ptr().add(8 * h));
                let z = _mm512_fmadd_pd(tv, _mm512_set1_pd(table_f64::SCALE), magic);
                let nf = _mm512_sub_pd(z, magic);
                let r = _mm512_fmadd_pd(nf, _mm512_set1_pd(-table_f64::C1), tv);
                let r = _mm512_fmadd_pd(nf, _mm512_set1_pd(-table_f64::C2), r);
                let r = _mm512_add_pd(r, lv);
                let zi = _mm512_castpd_si512(z);
                let e = _mm512_permutex2var_epi64(ta, zi, tb);
                let s = _mm512_add_epi64(e, _mm512_slli_epi64::<{ table_f64::SHIFT }>(zi));
                let s = _mm512_castsi512_pd(s);
                let c = _mm512_permutex2var_pd(ra, zi, rb);
                let mut g = _mm512_set1_pd(table_f64::G[0]);
                for &gc in &table_f64::G[1..] {
                    g = _mm512_fmadd_pd(g, r, _mm512_set1_pd(gc));
                }
                let q = _mm512_fmadd_pd(g, _mm512_mul_pd(r, r), r);
                let y = _mm512_fmadd_pd(s, _mm512_add_pd(q, c), s);
                _mm512_storeu_pd(out.as_mut_ptr().add(8 * h), y);
            }
        }
        out
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn f32_avx2(t: [f32; LANES], lo: [f32; LANES]) -> [f32; LANES] {
        let mut out = [0.0f32; LANES];
        // SAFETY: each array holds 16 f32; each half reads or writes 8 of them.
        unsafe {
            let tab = _mm256_loadu_si256(EXP2_EIGHTHS_F32.as_ptr().cast());
            for h in 0..2 {
                let tv = _mm256_loadu_ps(t.as_ptr().add(8 * h));
                let lv = _mm256_loadu_ps(lo.as_ptr().add(8 * h));
                let magic = _mm256_set1_ps(MAGIC);
                let z = _mm256_fmadd_ps(tv, _mm256_set1_ps(SCALE), magic);
                let nf = _mm256_sub_ps(z, magic);
                let r = _mm256_fmadd_ps(nf, _mm256_set1_ps(-C1), tv);
                let r = _mm256_add_ps(_mm256_fmadd_ps(nf, _mm256_set1_ps(-C2), r), lv);
                let e = _mm256_permutevar8x32_epi32(tab, _mm256_castps_si256(z));
                let s = _mm256_slli_epi32::<{ SHIFT as i32 }>(_mm256_castps_si256(z));
                let s = _mm256_castsi256_ps(_mm256_add_epi32(e, s));
                let g = _mm256_fmadd_ps(_mm256_set1_ps(G[0]), r, _mm256_set1_ps(G[1]));
                let g = _mm256_fmadd_ps(g, r, _mm256_set1_ps(G[2]));
                let y = _mm256_fmadd_ps(s, _mm256_fmadd_ps(g, _mm256_mul_ps(r, r), r), s);
                _mm256_storeu_ps(out.as_mut_ptr().add(8 * h), y);
            }
        }
        out
    }
}

/// `row::masked_lane_sums` in intrinsics: `LANES` accumulators as one or more registers,
/// each lane adding its terms in the same order as the portable loop (a masked-off term
/// adds +0), so every level gives the same bits. PERF: the term is masked before the add
/// (a masked add compiled to an add and a blend, lengthening each accumulator's chain of
/// dependent steps by a cycle), and the ones are counted in integer lanes (no popcnt, which
/// the bodies leave out, so these inline into them).
mod sums {
    use std::arch::x86_64::*;

    use crate::kernels::row::LANES;

    #[target_feature(enable = "avx512f")]
    pub fn f32_avx512(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        debug_assert!(x.len() == e.len() && x.len().is_multiple_of(LANES));
        let mv = _mm512_set1_ps(m);
        let mut acc = _mm512_setzero_ps();
        let mut ones = _mm512_setzero_si512();
        for (xc, ec) in x.chunks_exact(LANES).zip(e.chunks_exact(LANES)) {
            // SAFETY: each chunk holds 16 readable f32 (unaligned loads).
            let (xv, ev) = unsafe { (_mm512_loadu_ps(xc.as_ptr()), _mm512_loadu_ps(ec.as_ptr())) };
            let top = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(xv, mv);
            acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(!top, ev));
            ones = _mm512_mask_add_epi32(ones, top, ones, _mm512_set1_epi32(1));
        }
        let mut out = [0.0f32; LANES];
        // SAFETY: `out` has room for 16 f32.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), acc) };
        (out, _mm512_reduce_add_epi32(ones) as u64)
    }

    #[target_feature(enable = "avx512f")]
    pub fn f64_avx512(x: &[f64], m: f64, e: &[f64]) -> ([f64; LANES], u64) {
        debug_assert!(x.len() == e.len() && x.len().is_multiple_of(LANES));
        let mv = _mm512_set1_pd(m);
        let mut acc = [_mm512_setzero_pd(); 2];
        let mut ones = _mm512_setzero_si512();
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
                *a = _mm512_add_pd(*a, _mm512_maskz_mov_pd(!top, ev));
                ones = _mm512_mask_add_epi64(ones, top, ones, _mm512_set1_epi64(1));
            }
        }
        let mut out = [0.0f64; LANES];
        for (h, a) in acc.iter().enumerate() {
            // SAFETY: `out` has room for 16 f64.
            unsafe { _mm512_storeu_pd(out.as_mut_ptr().add(8 * h), *a) };
        }
        (out, _mm512_reduce_add_epi64(ones) as u64)
    }

    #[target_feature(enable = "avx2")]
    pub fn f32_avx2(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        debug_assert!(x.len() == e.len() && x.len().is_multiple_of(LANES));
        let mv = _mm256_set1_ps(m);
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut ones = _mm256_setzero_si256();
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
                // A true lane is all ones: -1.
                ones = _mm256_sub_epi32(ones, _mm256_castps_si256(top));
            }
        }
        let mut out = [0.0f32; LANES];
        for (h, a) in acc.iter().enumerate() {
            // SAFETY: `out` has room for 16 f32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * h), *a) };
        }
        let mut counts = [0u32; 8];
        // SAFETY: `counts` has room for 8 u32.
        unsafe { _mm256_storeu_si256(counts.as_mut_ptr().cast(), ones) };
        (out, counts.iter().map(|&c| u64::from(c)).sum())
    }

    #[target_feature(enable = "avx2")]
    pub fn f64_avx2(x: &[f64], m: f64, e: &[f64]) -> ([f64; LANES], u64) {
        debug_assert!(x.len() == e.len() && x.len().is_multiple_of(LANES));
        let mv = _mm256_set1_pd(m);
        let mut acc = [_mm256_setzero_pd(); 4];
        let mut ones = _mm256_setzero_si256();
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
                // A true lane is all ones: -1.
                ones = _mm256_sub_epi64(ones, _mm256_castpd_si256(top));
            }
        }
        let mut out = [0.0f64; LANES];
        for (h, a) in acc.iter().enumerate() {
            // SAFETY: `out` has room for 16 f64.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(4 * h), *a) };
        }
        let mut counts = [0u64; 4];
        // SAFETY: `counts` has room for 4 u64.
        unsafe { _mm256_storeu_si256(counts.as_mut_ptr().cast(), ones) };
        (out, counts.iter().sum())
    }
}

pub fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

pub fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("fma")
}

// The bodies leave out popcnt, which nothing needs: with it, the short-row loops compiled to
// scalar code, (65536, 10) taking 1.7x as long.
#[target_feature(enable = "avx2,fma")]
fn avx2_body<J: Job>(job: &J, task: usize) {
    job.run::<Avx2>(task)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn avx512_body<J: Job>(job: &J, task: usize) {
    job.run::<Avx512>(task)
}

// `Simd::outline`: the features of the bodies above.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
fn outline_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
#[inline(never)]
fn outline_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tile::{self as portable, COLS, TILE};

    fn tiles_match<T: Copy + PartialEq + std::fmt::Debug>(
        make: fn(usize) -> T,
        load: unsafe fn(&[T], usize, &mut Tile<T>),
        store: unsafe fn(&Tile<T>, usize, &mut [T]),
    ) {
        let guard = make(99_999);
        for d in 1..=COLS {
            for n in 0..=TILE {
                // Inside a larger buffer: nothing before or after the rows is read or written.
                let mut buf: Vec<T> = (0..n * d + 40).map(make).collect();
                let x = &buf[20..20 + n * d];
                let (mut want, mut got) = ([[guard; TILE]; COLS], [[guard; TILE]; COLS]);
                portable::load(x, d, &mut want);
                // SAFETY: the caller checked AVX-512.
                unsafe { load(x, d, &mut got) };
                for j in 0..d {
                    assert_eq!(got[j][..n], want[j][..n], "d={d} n={n} column {j}");
                }
                let t: Tile<T> =
                    std::array::from_fn(|j| std::array::from_fn(|r| make(j * 100 + r)));
                let mut want_out = buf.clone();
                portable::store(&t, d, &mut want_out[20..20 + n * d]);
                // SAFETY: as above.
                unsafe { store(&t, d, &mut buf[20..20 + n * d]) };
                assert_eq!(buf, want_out, "d={d} n={n}");
            }
        }
    }

    #[test]
    fn avx512_tiles_match_the_portable_transpose() {
        if !has_avx512() {
            eprintln!("no AVX-512 here: the tile transposes are not exercised");
            return;
        }
        tiles_match::<f32>(|i| i as f32 + 0.5, tile::load_f32, tile::store_f32);
        tiles_match::<f64>(|i| i as f64 - 0.25, tile::load_f64, tile::store_f64);
    }
}
