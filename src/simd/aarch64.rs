//! aarch64 trampoline: the generic kernels compiled with NEON (FMA is part of it).

use super::{Job, Simd};

#[derive(Clone, Copy)]
pub struct Neon;
impl Simd for Neon {
    const FMA: bool = true;

    #[inline(always)]
    fn outline<R>(f: impl FnOnce() -> R) -> R {
        // SAFETY: this marker is named only by `neon_body`, which runs after NEON was detected.
        unsafe { outline_neon(f) }
    }
}

#[target_feature(enable = "neon")]
#[inline(never)]
fn outline_neon<R>(f: impl FnOnce() -> R) -> R {
    f()
}

pub fn has_neon() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

#[target_feature(enable = "neon")]
fn neon_body<J: Job>(job: &J, task: usize) {
    job.run::<Neon>(task)
}

pub fn run_neon<J: Job>(job: &J, task: usize) {
    // SAFETY: NEON was detected before this level was chosen.
    unsafe { neon_body(job, task) }
}
