//! Top-k selection along the rows of a row-major matrix (pure Rust, no Python).
//!
//! Ordering is the one `np.sort` uses: `-0.0 == +0.0`, every NaN compares larger than
//! `+inf` (and all NaNs are equal). Among equal values the lower index wins, for both
//! `largest = true` and `largest = false`.
//!
//! Each float is mapped to an unsigned integer key whose unsigned order is that ordering
//! (`largest = false` uses the bitwise complement, which reverses it). A row is scanned once
//! against a threshold: only elements whose key beats the current k-th best key are pushed
//! into a small candidate buffer, which is trimmed back to k elements (linear-time selection)
//! whenever it fills up. The scan tests whole chunks against the threshold before looking at
//! single elements, so the common case (nothing in the chunk beats the threshold) is a few
//! vectorised compares per element.

use rayon::prelude::*;

/// An unsigned key type.
pub trait TopKKey: Copy + Ord + Send + Sync + core::ops::Not<Output = Self> {
    /// The largest key (that of NaN).
    fn max_key() -> Self;
}

impl TopKKey for u32 {
    #[inline(always)]
    fn max_key() -> u32 {
        u32::MAX
    }
}

impl TopKKey for u64 {
    #[inline(always)]
    fn max_key() -> u64 {
        u64::MAX
    }
}

/// A float type the top-k kernel can select from.
pub trait TopKElement: Copy + Send + Sync + PartialOrd + 'static {
    /// The unsigned key type (same width as the float).
    type Key: TopKKey;
    /// A key whose unsigned order is `np.sort`'s order of the floats.
    fn sort_key(self) -> Self::Key;
}

impl TopKElement for f32 {
    type Key = u32;
    #[inline(always)]
    fn sort_key(self) -> u32 {
        // `+ 0.0` maps -0.0 to +0.0 (round to nearest), leaving everything else unchanged.
        let bits = (self + 0.0).to_bits();
        // negative: flip all bits; non-negative: set the sign bit.
        let mask = (((bits as i32) >> 31) as u32) | 0x8000_0000;
        let key = bits ^ mask;
        if self.is_nan() {
            u32::MAX
        } else {
            key
        }
    }
}

impl TopKElement for f64 {
    type Key = u64;
    #[inline(always)]
    fn sort_key(self) -> u64 {
        let bits = (self + 0.0).to_bits();
        let mask = (((bits as i64) >> 63) as u64) | 0x8000_0000_0000_0000;
        let key = bits ^ mask;
        if self.is_nan() {
            u64::MAX
        } else {
            key
        }
    }
}

#[inline(always)]
fn key_of<T: TopKElement, const LARGEST: bool>(x: T) -> T::Key {
    if LARGEST {
        x.sort_key()
    } else {
        !x.sort_key()
    }
}

/// `Less` when `a` ranks before `b`: larger key first, then lower index.
#[inline(always)]
fn rank<K: Ord>(a: &(K, usize), b: &(K, usize)) -> core::cmp::Ordering {
    b.0.cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Keep the `k` best candidates of `buf` (unordered); `k` must be `>= 1` and `< buf.len()`.
#[inline]
fn trim<K: Ord + Copy>(buf: &mut Vec<(K, usize)>, k: usize) -> K {
    buf.select_nth_unstable_by(k - 1, rank);
    buf.truncate(k);
    buf[k - 1].0
}

/// Capacity of the candidate buffer for a given `k`.
///
/// A trim costs O(capacity) and happens every `capacity - k` accepted candidates; a small
/// capacity keeps the threshold fresh (fewer candidates get through the filter).
#[inline]
pub fn buffer_capacity(k: usize) -> usize {
    2 * k + 64
}

const CHUNK: usize = 16;

/// A cheap float pre-filter: `true` for every element that may beat the threshold value
/// `t` (a superset of the exact key test; NaN is let through and decided by the keys).
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // deliberately true for NaN
fn may_beat<T: TopKElement, const LARGEST: bool>(x: T, t: T) -> bool {
    if LARGEST {
        !(x <= t)
    } else {
        !(x >= t)
    }
}

fn scan_row<T: TopKElement, const LARGEST: bool>(
    row: &[T],
    k: usize,
    buf: &mut Vec<(T::Key, usize)>,
) {
    let cap = buffer_capacity(k);
    buf.clear();
    let head = row.len().min(cap);
    buf.extend(
        row[..head]
            .iter()
            .enumerate()
            .map(|(i, &x)| (key_of::<T, LARGEST>(x), i)),
    );
    if head == row.len() {
        return;
    }
    // The buffer is full (head == cap > k): from now on an element must beat the k-th best.
    let mut thr = trim(buf, k);
    let mut thr_val = row[buf[k - 1].1];
    let mut base = head;
    let rest = &row[head..];
    let mut chunks = rest.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        if LARGEST && thr == T::Key::max_key() {
            return; // k NaNs found: nothing later can rank above them
        }
        let mut any = false;
        for &x in chunk {
            any |= may_beat::<T, LARGEST>(x, thr_val);
        }
        if any {
            for (j, &x) in chunk.iter().enumerate() {
                let key = key_of::<T, LARGEST>(x);
                if key > thr {
                    buf.push((key, base + j));
                    if buf.len() == cap {
                        thr = trim(buf, k);
                        thr_val = row[buf[k - 1].1];
                    }
                }
            }
        }
        base += CHUNK;
    }
    for (j, &x) in chunks.remainder().iter().enumerate() {
        let key = key_of::<T, LARGEST>(x);
        if key > thr {
            buf.push((key, base + j));
            if buf.len() == cap {
                thr = trim(buf, k);
            }
        }
    }
}

/// Top-k of one row into `vals`/`idx` (both of length `k`, `1 <= k <= row.len()`).
///
/// `buf` is scratch space, reused between rows.
pub fn top_k_row<T: TopKElement>(
    row: &[T],
    k: usize,
    largest: bool,
    sorted: bool,
    buf: &mut Vec<(T::Key, usize)>,
    vals: &mut [T],
    idx: &mut [isize],
) {
    debug_assert!(k >= 1 && k <= row.len());
    debug_assert!(vals.len() == k && idx.len() == k);
    if largest {
        scan_row::<T, true>(row, k, buf);
    } else {
        scan_row::<T, false>(row, k, buf);
    }
    if buf.len() > k {
        trim(buf, k);
    }
    if sorted {
        buf.sort_unstable_by(rank);
    } else {
        buf.sort_unstable_by_key(|&(_, i)| i);
    }
    for ((v, ix), &(_, i)) in vals.iter_mut().zip(idx.iter_mut()).zip(buf.iter()) {
        *v = row[i];
        // A slice index always fits in isize.
        *ix = i as isize;
    }
}

/// Inputs smaller than this many elements in total stay on the calling thread.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// Top-k along every row of the row-major `data` (rows of length `n`).
///
/// `vals` and `idx` are row-major `rows x k`. Requires `k <= n` and
/// `data.len() == rows * n`, `vals.len() == idx.len() == rows * k`.
///
/// Rows are spread over threads only when called from inside a Rayon pool (e.g. within
/// `ThreadPool::install`), so the caller decides which pool (and how many threads) is used;
/// called from any other thread it runs serially. The result does not depend on the
/// number of threads.
pub fn top_k_rows<T: TopKElement>(
    data: &[T],
    n: usize,
    k: usize,
    largest: bool,
    sorted: bool,
    vals: &mut [T],
    idx: &mut [isize],
) {
    assert!(k <= n, "k must not exceed the row length");
    if k == 0 || n == 0 {
        return;
    }
    let rows = data.len() / n;
    assert_eq!(data.len(), rows * n);
    assert_eq!(vals.len(), rows * k);
    assert_eq!(idx.len(), rows * k);
    let cap = buffer_capacity(k);
    if rows > 1 && data.len() >= PARALLEL_MIN_ELEMENTS && rayon::current_thread_index().is_some() {
        data.par_chunks(n)
            .zip(vals.par_chunks_mut(k))
            .zip(idx.par_chunks_mut(k))
            .for_each_init(
                || Vec::with_capacity(cap),
                |buf, ((row, v), ix)| top_k_row(row, k, largest, sorted, buf, v, ix),
            );
    } else {
        let mut buf = Vec::with_capacity(cap.min(n));
        for ((row, v), ix) in data
            .chunks_exact(n)
            .zip(vals.chunks_exact_mut(k))
            .zip(idx.chunks_exact_mut(k))
        {
            top_k_row(row, k, largest, sorted, &mut buf, v, ix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_nan<T: PartialOrd>(a: T) -> bool {
        a.partial_cmp(&a).is_none()
    }

    /// Simple reference: a stable sort of all indices by the ordering, then the first k.
    fn reference<T: TopKElement + PartialOrd>(
        row: &[T],
        k: usize,
        largest: bool,
        sorted: bool,
    ) -> Vec<usize> {
        let mut order: Vec<usize> = (0..row.len()).collect();
        // np.sort ordering with NaN last; stable so ties keep index order.
        let less = |a: T, b: T| -> bool {
            let (an, bn) = (is_nan(a), is_nan(b));
            if an || bn {
                return !an && bn;
            }
            a < b
        };
        order.sort_by(|&i, &j| {
            let (a, b) = (row[i], row[j]);
            let (first, second) = if largest { (b, a) } else { (a, b) };
            if less(first, second) {
                core::cmp::Ordering::Less
            } else if less(second, first) {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        });
        order.truncate(k);
        if !sorted {
            order.sort_unstable();
        }
        order
    }

    fn run<T: TopKElement + PartialOrd + core::fmt::Debug>(
        row: &[T],
        k: usize,
        largest: bool,
        sorted: bool,
    ) -> Vec<usize> {
        let mut vals = vec![row[0]; k];
        let mut idx = vec![0isize; k];
        let mut buf = Vec::new();
        top_k_row(row, k, largest, sorted, &mut buf, &mut vals, &mut idx);
        for (v, &i) in vals.iter().zip(idx.iter()) {
            let r = row[i as usize];
            assert!(r == *v || (is_nan(r) && is_nan(*v)));
        }
        idx.iter().map(|&i| i as usize).collect()
    }

    /// A small deterministic generator (xorshift) so the tests need no extra crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_row_f64(rng: &mut Rng, n: usize, distinct: u64) -> Vec<f64> {
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            -f64::NAN,
        ];
        (0..n)
            .map(|_| {
                if rng.below(10) == 0 {
                    specials[rng.below(specials.len() as u64) as usize]
                } else {
                    rng.below(distinct) as f64 - (distinct / 2) as f64
                }
            })
            .collect()
    }

    #[test]
    fn keys_order_like_np_sort() {
        let xs = [
            f32::NEG_INFINITY,
            -1e30,
            -1.0,
            -f32::MIN_POSITIVE,
            -1e-45,
            0.0,
            1e-45,
            1.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(w[0].sort_key() < w[1].sort_key(), "{:?}", w);
        }
        assert_eq!((-0.0f32).sort_key(), 0.0f32.sort_key());
        assert_eq!(f32::NAN.sort_key(), (-f32::NAN).sort_key());
        assert!(f32::NAN.sort_key() > f32::INFINITY.sort_key());
        assert_eq!((-0.0f64).sort_key(), 0.0f64.sort_key());
        assert!(f64::NAN.sort_key() > f64::INFINITY.sort_key());
        assert!((-1.0f64).sort_key() < (-0.5f64).sort_key());
    }

    #[test]
    fn matches_reference_random_f64() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for trial in 0..400 {
            let n = 1 + rng.below(if trial % 4 == 0 { 2000 } else { 70 }) as usize;
            let distinct = [3u64, 10, 1000, 1 << 40][trial % 4];
            let row = random_row_f64(&mut rng, n, distinct);
            let k = 1 + rng.below(n as u64) as usize;
            for &largest in &[true, false] {
                for &sorted in &[true, false] {
                    assert_eq!(
                        run(&row, k, largest, sorted),
                        reference(&row, k, largest, sorted),
                        "n={n} k={k} largest={largest} sorted={sorted}"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_reference_random_f32_long_rows() {
        let mut rng = Rng(12345);
        for trial in 0..40 {
            let n = 300 + rng.below(5000) as usize;
            let row: Vec<f32> = random_row_f64(&mut rng, n, [7u64, 100_000][trial % 2])
                .into_iter()
                .map(|x| x as f32)
                .collect();
            for &k in &[1usize, 5, 64, 300] {
                for &largest in &[true, false] {
                    assert_eq!(
                        run(&row, k, largest, true),
                        reference(&row, k, largest, true)
                    );
                }
            }
        }
    }

    #[test]
    fn adversarial_orders() {
        // Ascending input makes every element beat the threshold: exercises repeated trims.
        let n = 5000;
        let asc: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let desc: Vec<f64> = asc.iter().rev().copied().collect();
        let equal = vec![1.5f64; n];
        for row in [&asc, &desc, &equal] {
            for &k in &[1usize, 2, 64, 257, n] {
                for &largest in &[true, false] {
                    assert_eq!(run(row, k, largest, true), reference(row, k, largest, true));
                }
            }
        }
        // all equal: ties go to the lowest indices
        assert_eq!(run(&equal, 3, true, true), vec![0, 1, 2]);
        assert_eq!(run(&equal, 3, false, true), vec![0, 1, 2]);
    }

    #[test]
    fn nan_is_largest() {
        let row = [1.0f32, f32::NAN, 3.0, f32::NAN, f32::INFINITY];
        assert_eq!(run(&row, 3, true, true), vec![1, 3, 4]);
        assert_eq!(run(&row, 3, false, true), vec![0, 2, 4]);
        assert_eq!(run(&row, 5, false, true), vec![0, 2, 4, 1, 3]);
        // signed zeros tie: lower index first
        let z = [0.0f64, -0.0, 0.0];
        assert_eq!(run(&z, 2, true, true), vec![0, 1]);
        assert_eq!(run(&z, 2, false, true), vec![0, 1]);
    }

    #[test]
    fn nan_thresholds() {
        // the k-th best is NaN after the first trim: largest stops early, smallest goes on
        let mut row = vec![f32::NAN; 400];
        row.extend((0..1000).map(|i| (i % 97) as f32));
        row.push(f32::NAN);
        for &k in &[1usize, 3, 50, 400, 401, 450] {
            for &largest in &[true, false] {
                assert_eq!(
                    run(&row, k, largest, true),
                    reference(&row, k, largest, true),
                    "k={k} largest={largest}"
                );
            }
        }
    }

    #[test]
    fn rows_parallel_equal_serial() {
        let mut rng = Rng(77);
        let n = 1000;
        let rows = 300; // 300k elements: takes the parallel path
        let data: Vec<f64> = random_row_f64(&mut rng, n * rows, 50);
        let k = 10;
        let mut vals = vec![0.0; rows * k];
        let mut idx = vec![0isize; rows * k];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("thread pool");
        pool.install(|| top_k_rows(&data, n, k, true, true, &mut vals, &mut idx));
        let mut serial_vals = vec![0.0; rows * k];
        let mut serial_idx = vec![0isize; rows * k];
        top_k_rows(&data, n, k, true, true, &mut serial_vals, &mut serial_idx);
        assert_eq!(idx, serial_idx);
        for r in 0..rows {
            let want = reference(&data[r * n..(r + 1) * n], k, true, true);
            let got: Vec<usize> = idx[r * k..(r + 1) * k]
                .iter()
                .map(|&i| i as usize)
                .collect();
            assert_eq!(got, want, "row {r}");
        }
        // k == 0 and empty rows are no-ops
        top_k_rows::<f64>(&data, n, 0, true, true, &mut [], &mut []);
        top_k_rows::<f64>(&[], 0, 0, true, true, &mut [], &mut []);
    }
}
