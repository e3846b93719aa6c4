//! Runtime ISA selection.
//!
//! Kernels are written once, generic over a zero-sized [`Simd`] marker, and marked
//! `#[inline(always)]`; [`dispatch`] enters them through a `#[target_feature]` trampoline so
//! the compiler vectorizes the same source for AVX-512, AVX2+FMA, NEON or the baseline.
//! The choice is made once per block of work, never per row.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::kernels::exp;
use crate::kernels::row::{self, LANES};
use crate::kernels::tile::{self, Tile};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

/// An instruction-set level the kernels can be compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust with the target's default features (SSE2 on x86_64).
    Generic = 1,
    /// AVX2 with FMA (x86_64).
    Avx2 = 2,
    /// AVX-512 F/BW/DQ/VL with FMA (x86_64).
    Avx512 = 3,
    /// NEON with FMA (aarch64).
    Neon = 4,
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Generic, Isa::Avx2, Isa::Avx512, Isa::Neon];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether this CPU can run code compiled for `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86_64::has_avx2(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86_64::has_avx512(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => aarch64::has_neon(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// This level's `Simd::TILES`, for choices made before the dispatch.
    pub fn tiles(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => <x86_64::Avx512 as Simd>::TILES,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => <x86_64::Avx2 as Simd>::TILES,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => <aarch64::Neon as Simd>::TILES,
            _ => <Generic as Simd>::TILES,
        }
    }

    /// Every level this CPU can run, best last.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    fn best() -> Isa {
        [Isa::Avx512, Isa::Neon, Isa::Avx2]
            .into_iter()
            .find(|i| i.is_available())
            .unwrap_or(Isa::Generic)
    }
}

/// Compile-time facts a kernel may branch on (the branches fold away), and the few loops
/// written per ISA because the compiler does not vectorize the portable form well.
pub trait Simd: Copy + Send + Sync + 'static {
    /// Fused multiply-add is a single instruction (otherwise `mul_add` is a slow libm call).
    const FMA: bool;

    /// `row::masked_lane_sums` for f32 (the lengths are whole multiples of `row::LANES`).
    #[inline(always)]
    fn masked_lane_sums_f32(x: &[f32], m: f32, e: &[f32]) -> ([f32; LANES], u64) {
        row::masked_lane_sums(x, m, e)
    }

    /// `row::masked_lane_sums` for f64.
    #[inline(always)]
    fn masked_lane_sums_f64(x: &[f64], m: f64, e: &[f64]) -> ([f64; LANES], u64) {
        row::masked_lane_sums(x, m, e)
    }

    /// Whether `exp_normal_lanes_f32` is the table form (`kernels::exp::exp_f32_table`), a
    /// lane permute per 16 values: AVX2 and AVX-512.
    const EXP_TABLE: bool = false;

    /// `exp_f32_normal` of 16 lanes (`t + lo` in [`F32_EXP_NORMAL_MIN_ARG`, 0] or NaN): with
    /// `EXP_TABLE`, by the table form.
    ///
    /// [`F32_EXP_NORMAL_MIN_ARG`]: crate::kernels::exp::F32_EXP_NORMAL_MIN_ARG
    #[inline(always)]
    fn exp_normal_lanes_f32(t: [f32; LANES], lo: [f32; LANES]) -> [f32; LANES] {
        std::array::from_fn(|i| exp::exp_f32_normal::<Self>(t[i], lo[i]))
    }

    /// Whether `exp_normal_lanes_f64` is the table form (`kernels::exp::exp_f64_table`),
    /// two-source lane permutes per 8 values: AVX-512.
    const EXP_TABLE_F64: bool = false;

    /// `exp_f64_normal` of 16 lanes, as `exp_normal_lanes_f32`: with `EXP_TABLE_F64`, by
    /// the table form.
    #[inline(always)]
    fn exp_normal_lanes_f64(t: [f64; LANES], lo: [f64; LANES]) -> [f64; LANES] {
        std::array::from_fn(|i| exp::exp_f64_normal::<Self>(t[i], lo[i]))
    }

    /// `row::Extremes::take` for f32: the lanes of a row's NaN-ignoring maximum and
    /// minimum, carried on over `x`.
    #[inline(always)]
    fn max_min_lanes_f32(x: &[f32], e: &mut row::Extremes<f32>) {
        row::max_min_lanes_portable(x, e)
    }

    /// `row::Extremes::take` for f64.
    #[inline(always)]
    fn max_min_lanes_f64(x: &[f64], e: &mut row::Extremes<f64>) {
        row::max_min_lanes_portable(x, e)
    }

    /// `row::Extremes::fold` for f32: the (maximum, minimum) of the lanes, folded in the
    /// same order as `Extremes::fold_portable` (so with the same bits, zeros' signs too).
    #[inline(always)]
    fn fold_extremes_f32(e: &row::Extremes<f32>) -> (f32, f32) {
        e.fold_portable()
    }

    /// `row::Extremes::fold` for f64.
    #[inline(always)]
    fn fold_extremes_f64(e: &row::Extremes<f64>) -> (f64, f64) {
        e.fold_portable()
    }

    /// `dst.copy_from_slice(src)`, with stores that bypass the caches where the ISA has
    /// them (AVX2, AVX-512). For results too large to stay cached: the lines of `dst` are not
    /// read first (a plain store reads each line before writing it), and the caches keep
    /// what the kernel still reads. Call `stream_fence` before the results are handed on.
    #[inline(always)]
    fn stream_copy<T: Number>(dst: &mut [T], src: &[T]) {
        dst.copy_from_slice(src)
    }

    /// Whether compares write mask registers (AVX-512), so that OR-ing two compares costs
    /// about what one does.
    const MASK_REGS: bool = false;

    /// Whether this ISA transposes tiles in registers, so that short rows take the tile path
    /// (`kernels::tile`); the portable transposes below are for tests.
    const TILES: bool = false;

    /// `tile::load` for f32.
    #[inline(always)]
    fn load_tile_f32(x: &[f32], d: usize, t: &mut Tile<f32>) {
        tile::load(x, d, t)
    }

    /// `tile::store` for f32.
    #[inline(always)]
    fn store_tile_f32(t: &Tile<f32>, d: usize, out: &mut [f32]) {
        tile::store(t, d, out)
    }

    /// `tile::load` for f64.
    #[inline(always)]
    fn load_tile_f64(x: &[f64], d: usize, t: &mut Tile<f64>) {
        tile::load(x, d, t)
    }

    /// `tile::store` for f64.
    #[inline(always)]
    fn store_tile_f64(t: &Tile<f64>, d: usize, out: &mut [f64]) {
        tile::store(t, d, out)
    }

    /// `f()` in a function of its own, compiled for this ISA, rather than inlined into the
    /// job body: for the large kernels that a job has in many variants. PERF: with every
    /// variant inlined, job bodies reached 2 MB of code each and the release build took
    /// 40-80 minutes, most of it in the optimizer on those few functions.
    ///
    /// Pass a closure marked `#[inline(always)]`: left out of line, its code would have the
    /// baseline's instructions only.
    #[inline(always)]
    fn outline<R>(f: impl FnOnce() -> R) -> R {
        outlined(f)
    }

    /// Order the streaming stores made so far before later stores (they are weakly
    /// ordered): once per task, since each fence waits for them to drain.
    #[inline(always)]
    fn stream_fence() {}
}

/// How far ahead of its reads a streaming pass asks for data (`prefetch_ahead`): one page.
/// PERF: the hardware prefetchers stop at page boundaries, and a pass that reads as fast as
/// argmax or the maximum outruns them. On one thread (interleaved A/B, release builds, on a
/// host with slower memory than the one `prefetch_next_page` was tuned on), f32
/// argmax of (8, 12, 512, 512) ran 1.76x and of (4096, 4096) 1.11x faster, logsumexp
/// 1.08x-1.13x and softmax 1.04x-1.09x on the large shapes; 1024 bytes ahead gained less,
/// 8192 no more.
pub const PREFETCH_DIST: usize = 4096;

/// Ask for the `bytes` bytes (whole 64-byte lines) `PREFETCH_DIST` past `p` to be brought
/// into the caches: a hint that never faults, so it may point past the end of the data.
/// x86_64 only; elsewhere it does nothing.
#[inline(always)]
pub fn prefetch_ahead<T>(p: *const T, bytes: usize) {
    prefetch_lines::<T0>(p.cast(), bytes);
}

/// The prefetch hints used: into every level (`_MM_HINT_T0`), or into L2 and beyond (`T1`).
const T0: i32 = 3;
const T1: i32 = 2;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(
    T0 == std::arch::x86_64::_MM_HINT_T0 && T1 == std::arch::x86_64::_MM_HINT_T1,
    "hint values"
);

/// `prefetch_ahead` with the cache level `HINT` (`T0` or `T1`).
#[inline(always)]
fn prefetch_lines<const HINT: i32>(p: *const i8, bytes: usize) {
    let p = p.wrapping_add(PREFETCH_DIST);
    let mut o = 0;
    while o < bytes {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: PREFETCHh (SSE, part of the x86_64 baseline) reads nothing and never
        // faults, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<HINT>(p.wrapping_add(o))
        };
        o += 64;
    }
}

/// Ask for the lines `PREFETCH_DIST` past `p` (as `prefetch_ahead` does, but into L2 only)
/// where they start within the first `bytes` of a page: a few lines a page, enough to have
/// the next page under way when the hardware prefetchers stop at its boundary.
///
/// PERF: argmax of long rows, one thread, on a host that streams 25-37 GB/s to one core:
/// with every line asked for into L1 it read no faster than `np.argmax`; with only the
/// page-start lines, (4096, 4096) f32 took 0.80x the time, (8, 12, 512, 512) 0.83x and
/// (32, 32000) 0.84x (interleaved, release builds). A C model of the loop on the same host
/// then showed those lines asked for into L1 still cost 5-10% against none on NumPy's
/// huge-page arrays, and into L2 nothing (2-4% faster than none on 4 KiB pages); into L2
/// the release build then took 0.78x-0.97x the time of into L1 (two interleaved runs, one
/// thread; one cell 1.03x). A slower-memory host gained from the prefetch
/// (`PREFETCH_DIST`), so it is kept.
#[inline(always)]
pub fn prefetch_next_page<T>(p: *const T, bytes: usize) {
    let ahead = p.cast::<i8>().wrapping_add(PREFETCH_DIST) as usize;
    if ahead % PAGE < bytes {
        prefetch_lines::<T1>(p.cast(), bytes);
    }
}

/// `Simd::outline` for the levels without target features of their own.
#[inline(never)]
fn outlined<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The page size the prefetchers work in.
const PAGE: usize = 4096;

/// Plain numbers: no padding, any bytes a valid value, so they may be copied as bytes.
pub trait Number: Copy + private::Sealed {}
impl Number for f32 {}
impl Number for f64 {}
mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

#[derive(Clone, Copy)]
pub struct Generic;
impl Simd for Generic {
    const FMA: bool = false;
}

/// One unit of work that runs the same code on any ISA.
pub trait Job: Sync {
    fn run<S: Simd>(&self, task: usize);
}

static SELECTED: AtomicU8 = AtomicU8::new(0);

/// The ISA in use: `SOFTMAX_RS_ISA` if set to an available level, else the best one.
pub fn selected() -> Isa {
    match SELECTED.load(Ordering::Relaxed) {
        0 => {
            let isa = std::env::var("SOFTMAX_RS_ISA")
                .ok()
                .and_then(|n| Isa::from_name(n.trim()))
                .filter(|i| i.is_available())
                .unwrap_or_else(Isa::best);
            SELECTED.store(isa as u8, Ordering::Relaxed);
            isa
        }
        n => Isa::ALL[usize::from(n) - 1],
    }
}

/// Force `isa` (tests use this to run every path). Returns false if this CPU lacks it.
pub fn select(isa: Isa) -> bool {
    if !isa.is_available() {
        return false;
    }
    SELECTED.store(isa as u8, Ordering::Relaxed);
    true
}

/// Run `job.run(task)` compiled for the selected ISA.
#[inline]
pub fn dispatch<J: Job>(job: &J, task: usize) {
    match selected() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86_64::run_avx512(job, task),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86_64::run_avx2(job, task),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => aarch64::run_neon(job, task),
        _ => job.run::<Generic>(task),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct CopyJob;

    fn copies_exactly<S: Simd, T: Number + PartialEq + std::fmt::Debug>(make: fn(usize) -> T) {
        // Every start alignment and length around the vector widths (16 and 32 bytes, 64 for
        // the stores): the head, body and tail each copied, and nothing outside written.
        let src: Vec<T> = (0..320).map(make).collect();
        let fill = make(1000);
        for start in 0..17 {
            for len in 0..200 {
                let mut dst = [fill; 320];
                S::stream_copy(&mut dst[start..start + len], &src[start..start + len]);
                S::stream_fence();
                assert_eq!(dst[start..start + len], src[start..start + len]);
                assert!(dst[..start]
                    .iter()
                    .chain(&dst[start + len..])
                    .all(|&v| v == fill));
            }
        }
    }

    impl Job for CopyJob {
        fn run<S: Simd>(&self, _task: usize) {
            copies_exactly::<S, f32>(|i| i as f32 * 0.5 - 7.0);
            copies_exactly::<S, f64>(|i| i as f64 * 0.25 - 9.0);
        }
    }

    #[test]
    fn stream_copy_is_a_copy_on_every_isa() {
        for isa in Isa::available() {
            assert!(select(isa));
            dispatch(&CopyJob, 0);
        }
    }

    #[test]
    fn prefetching_unmapped_addresses_never_faults() {
        // Page 0 and the top of the address space are never mapped: a load there would
        // crash the test, a prefetch must not.
        prefetch_ahead(std::ptr::null::<f32>(), 256);
        prefetch_ahead(std::ptr::without_provenance::<f64>(usize::MAX), 512);
        let v = [1.0f32; 16];
        prefetch_ahead(v.as_ptr(), 64);
        prefetch_next_page(std::ptr::without_provenance::<f32>(usize::MAX - 4095), 256);
        assert_eq!(v.iter().sum::<f32>(), 16.0, "a hint changes no data");
    }
}
