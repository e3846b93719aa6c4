//! x86_64 trampolines: the generic kernels compiled with AVX2+FMA or AVX-512 enabled.

use super::{Job, Simd};

#[derive(Clone, Copy)]
pub struct Avx2;
impl Simd for Avx2 {
    const FMA: bool = true;
}

#[derive(Clone, Copy)]
pub struct Avx512;
impl Simd for Avx512 {
    const FMA: bool = true;
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
