//! The thread pool and how work is cut into tasks.
//!
//! Work is cut into the same tasks whatever the thread count (a task's boundaries depend
//! only on the shape), and a task's result never depends on which thread ran it, so every
//! thread count gives the same bits. The one exception, column tiles (`reduce::column_tile`),
//! is cut by the thread count, but each column there is computed alone, so the bits are the
//! same there too.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::simd::{self, Job};

/// Below this many elements in a call, no thread is woken (two threads gain nothing there).
pub const PAR_MIN_ELEMS: usize = 1 << 16;
/// Roughly how many elements one task should touch: big enough to amortise scheduling.
pub const TASK_ELEMS: usize = 1 << 15;

struct Pool {
    threads: usize,
    pool: Option<Arc<ThreadPool>>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    threads: 0,
    pool: None,
});

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The configured thread count (the usable cores unless set).
pub fn num_threads() -> usize {
    let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if p.threads == 0 {
        p.threads = default_threads();
    }
    p.threads
}

/// Set the thread count; the pool is rebuilt lazily on next use.
pub fn set_num_threads(n: usize) {
    let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if p.threads != n {
        p.threads = n;
        p.pool = None;
    }
}

/// Forget the pool without joining it: after fork() its threads do not exist in the child.
pub fn forget_pool_after_fork() {
    let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = p.pool.take() {
        std::mem::forget(pool);
    }
}

fn pool() -> Option<Arc<ThreadPool>> {
    let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if p.threads == 0 {
        p.threads = default_threads();
    }
    if p.threads <= 1 {
        return None;
    }
    if p.pool.is_none() {
        p.pool = rayon::ThreadPoolBuilder::new()
            .num_threads(p.threads)
            .thread_name(|i| format!("softmax-rs-{i}"))
            .build()
            .ok()
            .map(Arc::new);
    }
    p.pool.clone()
}

/// Run tasks `range` of `job` on the selected ISA, in parallel when `elems` is large enough.
pub fn run_range<J: Job>(job: &J, range: std::ops::Range<usize>, elems: usize) {
    let pool = if elems >= PAR_MIN_ELEMS && range.len() > 1 {
        pool()
    } else {
        None
    };
    match pool {
        Some(pool) => pool.install(|| range.into_par_iter().for_each(|t| simd::dispatch(job, t))),
        None => range.for_each(|t| simd::dispatch(job, t)),
    }
}

/// Run `f` inside the pool (so Rayon iterators in it use our threads) when `elems` is large
/// enough to be worth waking them.
pub fn install<R: Send>(elems: usize, f: impl FnOnce() -> R + Send) -> R {
    match if elems >= PAR_MIN_ELEMS { pool() } else { None } {
        Some(p) => p.install(f),
        None => f(),
    }
}
