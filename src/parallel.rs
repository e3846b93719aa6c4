//! The thread pool and how work is cut into tasks.
//!
//! Work is cut into the same tasks whatever the thread count (a task's boundaries depend
//! only on the shape), and a task's result never depends on which thread ran it, so every
//! thread count gives the same bits. Two exceptions are cut by the thread count and give
//! the same results anyway: column tiles (`reduce::columns::column_tile`), where each column
//! is computed alone, and argmax's chunks of rows along axis 0, whose first maxima are exact.
//!
//! A parallel call runs on the calling thread plus helpers on the pool. Each takes tasks one
//! at a time from the front of its own contiguous share of them, then from the back of the
//! others' (`for_each_shared`).

use std::any::Any;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::ThreadPool;

use crate::simd::{self, Job};

/// Below this many elements in a call, no thread is woken (two threads gain nothing there).
pub const PAR_MIN_ELEMS: usize = 1 << 16;
/// Roughly how many elements one task should touch: big enough to amortise scheduling.
pub const TASK_ELEMS: usize = 1 << 15;

/// A reduction axis cut into chunks of rows (where its tile alone would leave threads idle)
/// gets chunks of at least this many elements...
const CHUNK_MIN_ELEMS: usize = 1 << 16;
/// ...and at least this many rows, so that each chunk's per-column state stays small beside
/// its data...
const CHUNK_MIN_ROWS: usize = 128;
/// ...and at most this many chunks, which bounds the state kept between passes and the
/// serial work of merging it. PERF: with 32 chunks of 64 rows, their merge (3.1%) and the
/// page faults on their statistics (2.3%) took 5% of (2048, 2048) f32 axis 0 softmax on one
/// thread in a profile.
const MAX_CHUNKS: usize = 16;

/// Rows per chunk for `w` columns over `d` reduced indices (one chunk when this is `d` or
/// more), a multiple of `multiple`. From the shape alone.
pub fn chunk_rows(d: usize, w: usize, multiple: usize) -> usize {
    CHUNK_MIN_ELEMS
        .div_ceil(w.max(1))
        .max(CHUNK_MIN_ROWS)
        .max(d.div_ceil(MAX_CHUNKS))
        .next_multiple_of(multiple)
}

/// One result per task, each stored by the task that made it and taken in task order
/// afterwards (chunks of a reduction, merged in order).
pub struct Slots<T>(Vec<Mutex<Option<T>>>);

impl<T> Slots<T> {
    pub fn new(n: usize) -> Slots<T> {
        Slots((0..n).map(|_| Mutex::new(None)).collect())
    }

    /// Store task `i`'s result.
    pub fn put(&self, i: usize, v: T) {
        *self.0[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }

    /// The results in task order. Panics where a task stored none.
    pub fn into_results(self) -> impl Iterator<Item = T> {
        self.0.into_iter().map(|s| {
            s.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every task stored its result")
        })
    }
}

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
pub fn run_range<J: Job>(job: &J, range: Range<usize>, elems: usize) {
    let pool = if elems >= PAR_MIN_ELEMS && range.len() > 1 {
        pool()
    } else {
        None
    };
    match pool {
        Some(pool) => {
            let helpers = pool.current_num_threads().min(range.len()) - 1;
            for_each_shared(&pool, helpers, range, &|t| simd::dispatch(job, t));
        }
        None => range.for_each(|t| simd::dispatch(job, t)),
    }
}

/// One thread's share of a parallel loop: tasks `front..back`, packed in one word so that
/// its owner (taking them from the front) and threads that have run out of their own
/// (taking them from the back) claim each task once.
#[repr(align(64))]
struct Share(AtomicU64);

impl Share {
    fn new(tasks: Range<usize>) -> Share {
        let (f, b) = (tasks.start as u64, tasks.end as u64);
        assert!(b <= u64::from(u32::MAX), "too many tasks");
        Share(AtomicU64::new(f << 32 | b))
    }

    fn claim(&self, from_back: bool) -> Option<usize> {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let (f, b) = (cur >> 32, cur & u64::from(u32::MAX));
            if f >= b {
                return None;
            }
            let (next, t) = if from_back {
                (f << 32 | (b - 1), b - 1)
            } else {
                ((f + 1) << 32 | b, f)
            };
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(t as usize),
                Err(now) => cur = now,
            }
        }
    }
}

/// One parallel loop: the tasks cut into one contiguous share per thread.
struct Loop {
    shares: Vec<Share>,
    /// Tasks claimed and not yet finished, plus those not yet claimed.
    left: AtomicUsize,
    /// The loop body with its lifetime erased: see `work` for why it is alive when used.
    body: *const (dyn Fn(usize) + Sync + 'static),
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `body` points to a `Sync` closure, and it is only called while `for_each_shared`,
// which owns it, waits for `left` to reach 0.
unsafe impl Send for Loop {}
// SAFETY: as above; every other field is itself `Sync`.
unsafe impl Sync for Loop {}

/// Run share `me` of `l` from the front, then the others' remaining tasks from the back,
/// until none is left to claim.
fn work(l: &Loop, me: usize) {
    let n = l.shares.len();
    for k in 0..n {
        let share = &l.shares[(me + k) % n];
        while let Some(t) = share.claim(k > 0) {
            // SAFETY: task `t` is claimed and unfinished, so `left > 0` and the caller of
            // `for_each_shared` is still waiting in it: the closure it borrowed is alive.
            let body = unsafe { &*l.body };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| body(t))) {
                let mut slot = l.panic.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(p);
            }
            l.left.fetch_sub(1, Ordering::Release);
        }
    }
}

/// Run `body(t)` for every `t` in `range`: the calling thread works through the tasks and
/// `helpers` jobs on `pool` join it as soon as their threads wake.
///
/// PERF: the caller never waits for a sleeping worker to wake, only for tasks already
/// running; a helper that wakes late finds no task left and returns. With `install` (the
/// caller blocked while the workers ran every task), a parked vCPU on a VM made two threads
/// slower than one: (1024, 1000) f32 softmax, back to back, 683 µs on 2 threads vs 470 µs
/// on 1; now 229 µs. Each thread starts on a contiguous share, so that its tasks are
/// neighbours in memory: two threads on (1000000, 16) f32 logsumexp 1.2x faster than with
/// one shared counter, which interleaved them (softmax level).
fn for_each_shared(
    pool: &ThreadPool,
    helpers: usize,
    range: Range<usize>,
    body: &(dyn Fn(usize) + Sync),
) {
    // SAFETY: only the lifetime changes; `work` dereferences it only while this call waits.
    let body: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(body) };
    let n = helpers + 1;
    let (start, len) = (range.start, range.len());
    let l = Arc::new(Loop {
        shares: (0..n)
            .map(|i| Share::new(start + len * i / n..start + len * (i + 1) / n))
            .collect(),
        left: AtomicUsize::new(len),
        body,
        panic: Mutex::new(None),
    });
    for me in 1..n {
        let l = Arc::clone(&l);
        pool.spawn(move || work(&l, me));
    }
    work(&l, 0);
    // The tasks still running are the helpers' last ones: short, so spin, then yield.
    let mut spins = 0u32;
    while l.left.load(Ordering::Acquire) != 0 {
        if spins < 1 << 10 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
    let panicked = l.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(p) = panicked {
        resume_unwind(p);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool")
    }

    #[test]
    fn every_task_runs_once() {
        for threads in [1, 2, 3, 5] {
            let pool = pool(threads);
            for (start, end) in [(0, 0), (0, 1), (3, 4), (0, 7), (5, 300), (0, 10_000)] {
                let runs: Vec<AtomicUsize> = (0..end).map(|_| AtomicUsize::new(0)).collect();
                for helpers in 0..threads {
                    for_each_shared(&pool, helpers, start..end, &|t| {
                        runs[t].fetch_add(1, Ordering::Relaxed);
                    });
                }
                for (t, r) in runs.iter().enumerate() {
                    let want = if t >= start { threads } else { 0 };
                    assert_eq!(
                        r.load(Ordering::Relaxed),
                        want,
                        "task {t} of {start}..{end}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_share_gives_each_task_once_from_either_end() {
        let s = Share::new(3..9);
        let order = [false, true, true, false, false, true, false, true];
        let got: Vec<Option<usize>> = order.iter().map(|&back| s.claim(back)).collect();
        let want = [3, 8, 7, 4, 5, 6].map(Some);
        assert_eq!(got[..6], want);
        assert_eq!(got[6..], [None, None]);
        assert_eq!(Share::new(5..5).claim(false), None);
    }

    #[test]
    fn waits_for_the_helpers_tasks() {
        // Slow tasks: the caller runs out of tasks to claim long before the helpers finish.
        let pool = pool(3);
        let done: Vec<AtomicUsize> = (0..12).map(|_| AtomicUsize::new(0)).collect();
        for_each_shared(&pool, 2, 0..12, &|t| {
            std::thread::sleep(std::time::Duration::from_millis(2 + (t % 3) as u64));
            done[t].store(t + 1, Ordering::Relaxed);
        });
        let got: Vec<usize> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
        assert_eq!(got, (1..=12).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_after_the_others() {
        let pool = pool(2);
        let finished = AtomicUsize::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            for_each_shared(&pool, 1, 0..64, &|t| {
                if t == 5 {
                    panic!("task 5");
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        let msg = caught.expect_err("the panic propagates");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"task 5"));
        assert_eq!(finished.load(Ordering::Relaxed), 63);
        // The pool still works.
        let n = AtomicUsize::new(0);
        for_each_shared(&pool, 1, 0..10, &|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn chunks_of_rows_follow_the_shape() {
        assert_eq!(chunk_rows(4000, 48, 16), 1376); // 65536 / 48 = 1366 rows, to 16
        assert_eq!(chunk_rows(2048, 2048, 16), 128); // at least 128 rows
        assert_eq!(chunk_rows(1_000_000, 16, 16), 62512); // at most 16 chunks
        assert_eq!(chunk_rows(100_000, 1024, 1), 6250);
        assert!(chunk_rows(120, 2000, 16) >= 120); // one chunk
    }

    #[test]
    fn slots_give_results_in_task_order() {
        let s = Slots::new(3);
        let pool = pool(2);
        for_each_shared(&pool, 1, 0..3, &|t| s.put(t, t * 10));
        assert_eq!(s.into_results().collect::<Vec<_>>(), vec![0, 10, 20]);
        let missing = Slots::<u8>::new(2);
        missing.put(0, 1);
        let r = catch_unwind(AssertUnwindSafe(|| missing.into_results().count()));
        assert!(
            r.is_err(),
            "a task without a result is a bug, not a silent gap"
        );
    }
}
