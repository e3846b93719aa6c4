//! argmax with NumPy's rules: the first maximum wins, and the first NaN wins over everything.

use crate::kernels::row::LANES;
use crate::kernels::window;
use crate::simd::{prefetch_ahead, prefetch_next_page, Simd};

/// A comparable key: the integer types as they are, floats with NaN.
pub trait Key: Copy + PartialOrd + Send + Sync + 'static {
    /// Whether values can be NaN (lets the integer kernels skip the NaN tracking).
    const HAS_NAN: bool;
    /// The smallest value (-inf for floats): the fill for lanes past the end of a row.
    const LOWEST: Self;
    /// Positions within a block, as wide as `Self` so that its lanes pair with the values'.
    type Pos: Pos;
    fn is_nan(self) -> bool;
    /// The larger of two values, either one when a NaN is involved (NaNs are tracked
    /// apart). PERF: a value operation, so accumulators stay in registers.
    fn max_val(self, other: Self) -> Self;
}

/// A position within a block (< 2^32).
pub trait Pos: Copy + Ord + Default + Send + Sync + 'static {
    /// Above every position.
    const NONE: Self;
    fn of(i: usize) -> Self;
    fn plus(self, i: usize) -> Self;
    fn get(self) -> usize;
}

macro_rules! pos {
    ($($t:ty),*) => {$(impl Pos for $t {
        const NONE: Self = <$t>::MAX;
        #[inline(always)]
        fn of(i: usize) -> Self { i as $t }
        #[inline(always)]
        fn plus(self, i: usize) -> Self { self + i as $t }
        #[inline(always)]
        fn get(self) -> usize { self as usize }
    })*};
}
pos!(u32, u64);

macro_rules! int_key {
    ($($t:ty: $p:ty),*) => {$(impl Key for $t {
        const HAS_NAN: bool = false;
        const LOWEST: Self = <$t>::MIN;
        type Pos = $p;
        #[inline(always)]
        fn is_nan(self) -> bool { false }
        #[inline(always)]
        fn max_val(self, other: Self) -> Self { Ord::max(self, other) }
    })*};
}
int_key!(u8: u32, i8: u32, i16: u32, u16: u32, i32: u32, u32: u32, i64: u64, u64: u64);

impl Key for f32 {
    const HAS_NAN: bool = true;
    const LOWEST: Self = f32::NEG_INFINITY;
    type Pos = u32;
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn max_val(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
}
impl Key for f64 {
    const HAS_NAN: bool = true;
    const LOWEST: Self = f64::NEG_INFINITY;
    type Pos = u64;
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn max_val(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
}

/// `v` beats the current best `b`: greater, or the first NaN.
#[inline(always)]
fn beats<K: Key>(v: K, b: K) -> bool {
    (v > b) | (v.is_nan() & !b.is_nan())
}

/// Independent maximum accumulators over a block: four registers of f32, so the loop is
/// bound by throughput, not by the latency of one compare-and-blend chain.
const ACCS: usize = 4 * LANES;
const _: () = assert!(ACCS == 64, "block_argmax folds 64 lanes");

/// Rows shorter than this take `FEW` accumulators: their loop is short, and folding 64
/// lanes cost more than the loop (rows of 100 took 1.7x (f32) and 2.3x (f64) NumPy's
/// time). Keys of 8 bytes hold 64 lanes in twice the registers, so they keep `FEW` longer.
const fn few_below<K>() -> usize {
    if size_of::<K>() > 4 {
        16 * ACCS
    } else {
        4 * ACCS
    }
}
/// One register of f32.
const FEW: usize = LANES;

/// Values per block of a long row (positions within a block fit in u32).
const BLOCK: usize = 1 << 16;

/// Index of the maximum of a non-empty row.
#[inline(always)]
pub fn argmax_row<K: Key, S: Simd>(x: &[K]) -> usize {
    debug_assert!(!x.is_empty());
    if x.len() < 2 * FEW {
        return argmax_scalar(x);
    }
    if x.len() < few_below::<K>() {
        let (_, at, nan) = block_argmax::<K, S, FEW>(x);
        return if nan { first_nan(x) } else { at };
    }
    let mut best = x[0];
    let mut best_i = 0;
    let mut start = 0;
    while start < x.len() {
        // A last block shorter than ACCS joins the one before it.
        let end = if x.len() - start < BLOCK + ACCS {
            x.len()
        } else {
            start + BLOCK
        };
        let (m, at, nan) = block_argmax::<K, S, ACCS>(&x[start..end]);
        if nan {
            // The first NaN wins, and earlier blocks held none.
            return start + first_nan(&x[start..end]);
        }
        // Strictly greater: an earlier block keeps a tie.
        if start == 0 || m > best {
            best = m;
            best_i = start + at;
        }
        start = end;
    }
    best_i
}

/// The position of the first NaN of `x` (0 if none).
#[inline(always)]
fn first_nan<K: Key>(x: &[K]) -> usize {
    // A loop, not `position` and a closure: out of line, a closure can lack the caller's
    // target features (see `tile::column_pair`).
    for (i, v) in x.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
    }
    0
}

/// The maximum of `b` (`A` values or more; any value if it holds a NaN), its first
/// position, and whether `b` holds a NaN, in one read. Each lane keeps its maximum and the
/// offset of the chunk where that maximum first appeared (strictly greater values only), so
/// the first position of the maximum is the least `offset + lane` over the lanes that hold
/// it. A ragged tail is read as one overlapping chunk, the last `A` values: its lanes see
/// positions other lanes saw already, which a position of the same value can only repeat,
/// not precede.
#[inline(always)]
fn block_argmax<K: Key, S: Simd, const A: usize>(b: &[K]) -> (K, usize, bool) {
    debug_assert!(b.len() >= A && b.len() <= BLOCK + ACCS);
    // A lane never raised above LOWEST holds LOWEST at offset 0.
    let mut acc = [K::LOWEST; A];
    let mut off = [K::Pos::default(); A];
    let mut nan = [false; A];
    let chunks = b.chunks_exact(A);
    let ragged = !chunks.remainder().is_empty();
    for (k, c) in chunks.enumerate() {
        if A == ACCS || size_of::<K>() > 4 {
            // Long rows (`prefetch_next_page` says why), and rows of 8-byte keys; rows of
            // `FEW` f32 lanes as measured. PERF: f64 rows of 300-1000 with every line asked
            // for ran 0.6x-0.8x as fast as `np.argmax`; with the page-start lines, one
            // thread, (8, 12, 512, 512) took 0.66x the time, (20000, 300) 0.62x-0.72x,
            // (1024, 1000) 0.85x, and rows of 40-100 the same.
            prefetch_next_page(c.as_ptr(), A * size_of::<K>());
        } else {
            prefetch_ahead(c.as_ptr(), A * size_of::<K>());
        }
        lane_argmax::<K, S, A>(&mut acc, &mut off, &mut nan, c, K::Pos::of(k * A));
    }
    if ragged {
        // PERF: one overlapping full chunk, not a loop over the tail by index (which puts
        // the lanes in memory, behind masked stores).
        let o = b.len() - A;
        lane_argmax::<K, S, A>(&mut acc, &mut off, &mut nan, &b[o..], K::Pos::of(o));
    }
    let mut m = acc;
    let mut w = A / 2;
    while w > 0 {
        for i in 0..w {
            m[i] = m[i].max_val(m[i + w]);
            nan[i] |= nan[i + w];
        }
        w /= 2;
    }
    let top = m[0];
    let mut at = [K::Pos::NONE; A];
    for i in 0..A {
        at[i] = if acc[i] == top {
            off[i].plus(i)
        } else {
            K::Pos::NONE
        };
    }
    let mut w = A / 2;
    while w > 0 {
        for i in 0..w {
            at[i] = at[i].min(at[i + w]);
        }
        w /= 2;
    }
    (top, at[0].get(), nan[0])
}

/// One chunk at offset `o` into the lanes: each lane that rises takes `o` as its offset.
#[inline(always)]
fn lane_argmax<K: Key, S: Simd, const A: usize>(
    acc: &mut [K; A],
    off: &mut [K::Pos; A],
    nan: &mut [bool; A],
    c: &[K],
    o: K::Pos,
) {
    let c: &[K; A] = c.try_into().expect("a full chunk");
    // PERF: three short loops, not one: each unrolls completely, so the lanes become
    // registers (one loop doing all three was vectorized over the lanes in memory).
    for i in 0..A {
        off[i] = if c[i] > acc[i] { o } else { off[i] };
    }
    for i in 0..A {
        acc[i] = acc[i].max_val(c[i]);
    }
    if K::HAS_NAN {
        if S::MASK_REGS {
            // PERF: one unordered compare per pair of lanes into a mask register: rows of
            // 1000 f32 1.4x faster. (Without mask registers, AVX2, it was 2x slower.)
            for i in 0..A / 2 {
                nan[i] |= c[i].is_nan() | c[i + A / 2].is_nan();
            }
        } else {
            for i in 0..A {
                nan[i] |= c[i].is_nan();
            }
        }
    }
}

/// Short rows: one pass, the best values kept in registers. PERF: selects, not branches
/// (where the maximum moves in random data is unpredictable), and two chains, over the
/// even and the odd positions, to halve the dependent latency per row.
#[inline(always)]
fn argmax_scalar<K: Key>(x: &[K]) -> usize {
    let mut even = (x[0], 0);
    let mut odd = (x[x.len().min(2) - 1], x.len().min(2) - 1);
    let pairs = x.chunks_exact(2);
    let last = pairs.remainder();
    for (j, p) in pairs.enumerate().skip(1) {
        even = step(even, p[0], 2 * j);
        odd = step(odd, p[1], 2 * j + 1);
    }
    if let [v] = last {
        even = step(even, *v, x.len() - 1);
    }
    // The first position wins between equal values, and between NaNs.
    let odd_first = beats(odd.0, even.0)
        || (odd.1 < even.1 && (odd.0 == even.0 || (odd.0.is_nan() && even.0.is_nan())));
    if odd_first {
        odd.1
    } else {
        even.1
    }
}

#[inline(always)]
fn step<K: Key>(best: (K, usize), v: K, i: usize) -> (K, usize) {
    let take = beats(v, best.0);
    (if take { v } else { best.0 }, if take { i } else { best.1 })
}

/// The longest row [`argmax_packed`] takes.
pub const PACKED_MAX: usize = 32;

/// argmax of each row of `d` (`1..=PACKED_MAX`) values laid end to end in `x`: `put(r, i)`
/// for row `r`. PERF: each row is read as one fixed window of 16 or 32 values from its
/// start, the lanes past the row masked to `LOWEST`, so that its maximum, NaN test and
/// position are a few vector operations with no loop over the row; only the last rows,
/// whose window would pass the end of `x`, take the scalar loop.
#[inline(always)]
pub fn argmax_packed<K: Key>(x: &[K], d: usize, put: impl FnMut(usize, usize)) {
    debug_assert!((1..=PACKED_MAX).contains(&d) && x.len().is_multiple_of(d));
    if d <= 16 {
        packed::<K, 16>(x, d, put)
    } else {
        packed::<K, 32>(x, d, put)
    }
}

#[inline(always)]
fn packed<K: Key, const W: usize>(x: &[K], d: usize, mut put: impl FnMut(usize, usize)) {
    let rows = x.len() / d;
    let windowed = window::windowed(x.len(), d, W);
    let keep = window::keep::<W>(d);
    for r in 0..windowed {
        put(r, argmax_window(window::load(x, r * d, &keep, K::LOWEST)));
    }
    for r in windowed..rows {
        put(r, argmax_scalar(&x[r * d..(r + 1) * d]));
    }
}

/// argmax of a row's window, its lanes past the row already `LOWEST`. Each lane gets a
/// key: its index for a NaN, W + its index for a value equal to the maximum, else 2W; the
/// least key (mod W) is the first NaN if there is one, else the first maximum. (PERF: a min-reduction of keys
/// vectorizes where building a bit mask lane by lane did not.)
#[inline(always)]
fn argmax_window<K: Key, const W: usize>(v: [K; W]) -> usize {
    let mut m = v;
    // Constant widths, so that the folds unroll into vector operations.
    for s in [16, 8, 4, 2, 1] {
        if s < W {
            for i in 0..s {
                // A select, one vector max: NaNs make `m` meaningless, but they have the
                // least keys.
                m[i] = if m[i] > m[i + s] { m[i] } else { m[i + s] };
            }
        }
    }
    let top = m[0];
    let mut key = [0u32; W];
    for j in 0..W {
        let nan = K::HAS_NAN && v[j].is_nan();
        let at = if v[j] == top { W + j } else { 2 * W };
        key[j] = if nan { j as u32 } else { at as u32 };
    }
    for s in [16, 8, 4, 2, 1] {
        if s < W {
            for i in 0..s {
                key[i] = key[i].min(key[i + s]);
            }
        }
    }
    key[0] as usize % W
}

/// One reduced index `i` of a column-wise argmax: update each column's best value and index.
#[inline(always)]
pub fn argmax_update<K: Key>(best: &mut [K], index: &mut [usize], row: &[K], i: usize) {
    for ((b, ix), &v) in best.iter_mut().zip(index.iter_mut()).zip(row) {
        let take = beats(v, *b);
        *b = if take { v } else { *b };
        *ix = if take { i } else { *ix };
    }
}

/// Fold a later block of rows' column-wise `(best, index)` into an earlier one's: it wins
/// only where it beats, so each column keeps its first maximum.
#[inline(always)]
pub fn argmax_merge<K: Key>(best: &mut [K], index: &mut [usize], later: &[K], at: &[usize]) {
    for (((b, ix), &v), &i) in best.iter_mut().zip(index.iter_mut()).zip(later).zip(at) {
        let take = beats(v, *b);
        *b = if take { v } else { *b };
        *ix = if take { i } else { *ix };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{dispatch, select, Isa, Job};
    use std::sync::Mutex;

    /// `argmax_row` compiled for every ISA this CPU has (paired NaN flags with mask
    /// registers, one per lane elsewhere), all required to agree.
    fn argmax_all<K: Key>(x: &[K]) -> usize {
        struct Rows<'a, K> {
            x: &'a [K],
            got: Mutex<Vec<usize>>,
        }
        impl<K: Key> Job for Rows<'_, K> {
            fn run<S: Simd>(&self, _task: usize) {
                let i = argmax_row::<K, S>(self.x);
                self.got.lock().unwrap_or_else(|e| e.into_inner()).push(i);
            }
        }
        let job = Rows {
            x,
            got: Mutex::new(Vec::new()),
        };
        for isa in Isa::available() {
            assert!(select(isa));
            dispatch(&job, 0);
        }
        let got = job.got.into_inner().unwrap_or_else(|e| e.into_inner());
        assert!(
            got.windows(2).all(|w| w[0] == w[1]),
            "ISAs disagree: {got:?}"
        );
        got[0]
    }

    fn reference<K: Key>(x: &[K]) -> usize {
        if let Some(p) = x.iter().position(|v| v.is_nan()) {
            return p;
        }
        let mut best = 0;
        for (i, &v) in x.iter().enumerate() {
            if v > x[best] {
                best = i;
            }
        }
        best
    }

    #[test]
    fn merged_blocks_keep_the_first_maximum_or_nan() {
        let mut best = [1.0f32, 5.0, f32::NAN, 2.0];
        let mut index = [0, 1, 2, 3];
        let later = [1.0f32, 6.0, f32::NAN, f32::NAN];
        argmax_merge(&mut best, &mut index, &later, &[10, 11, 12, 13]);
        assert_eq!(index, [0, 11, 2, 13]);
    }

    #[test]
    fn first_maximum_and_first_nan_win() {
        let mut x: Vec<f32> = (0..200).map(|i| ((i * 7919) % 97) as f32).collect();
        assert_eq!(argmax_all(&x), reference(&x));
        x[150] = f32::NAN;
        x[170] = f32::NAN;
        assert_eq!(argmax_all(&x), 150);
        let mut long: Vec<i64> = (0..300).map(|i| (i * 31) % 17).collect();
        assert_eq!(argmax_all(&long), reference(&long));
        long[299] = 100;
        assert_eq!(argmax_all(&long), 299);
        let mut y = vec![0.5f64; 100];
        y[0] = f64::NAN;
        assert_eq!(argmax_all(&y), 0);
        y[0] = 0.5;
        y[97] = f64::NAN;
        assert_eq!(argmax_all(&y), 97);
        let short = [1.0f64, f64::NAN, 5.0, f64::NAN];
        assert_eq!(argmax_all(&short), 1);
        let ties = [3i32, 7, 7, 1];
        assert_eq!(argmax_all(&ties), 1);
        let infs = [f32::NEG_INFINITY, f32::INFINITY, f32::INFINITY];
        assert_eq!(argmax_all(&infs), 1);
    }

    #[test]
    fn short_rows_every_position() {
        // Each length below the vector path, the maximum, a tie and NaNs at each position.
        for n in 1..ACCS {
            let base: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32).collect();
            assert_eq!(argmax_all(&base), reference(&base), "n={n}");
            for p in 0..n {
                let mut x = base.clone();
                x[p] = 100.0;
                assert_eq!(argmax_all(&x), p, "n={n} max at {p}");
                let mut t = vec![1.0f64; n];
                t[p] = 2.0;
                if p + 1 < n {
                    t[n - 1] = 2.0;
                }
                assert_eq!(argmax_all(&t), p, "n={n} tie after {p}");
                x[p] = f32::NAN;
                if p + 1 < n {
                    x[n - 1] = f32::NAN;
                }
                assert_eq!(argmax_all(&x), p, "n={n} NaN at {p}");
                let ints: Vec<u8> = (0..n).map(|i| u8::from(i == p)).collect();
                assert_eq!(argmax_all(&ints), p, "n={n} u8");
            }
        }
    }

    #[test]
    fn packed_rows_every_length_and_position() {
        // Rows end to end, so each window also reads the rows after it (which must not
        // count), and the last rows take the scalar loop.
        fn check<K: Key + std::fmt::Debug>(x: &[K], d: usize, what: &str) {
            let mut got = vec![usize::MAX; x.len() / d];
            argmax_packed(x, d, |r, i| got[r] = i);
            let want: Vec<usize> = x.chunks_exact(d).map(reference).collect();
            assert_eq!(got, want, "d={d} {what}");
        }
        for d in 1..=PACKED_MAX {
            for rows in [1, 2, 3, 40] {
                let n = rows * d;
                let base: Vec<f32> = (0..n).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
                check(&base, d, "plain");
                for p in 0..d {
                    // Each row gets a maximum, a later tie, and a NaN, at position p.
                    let mut x = base.clone();
                    let mut y = base.clone();
                    for r in 0..rows {
                        x[r * d + p] = 50.0 + r as f32;
                        x[r * d + d - 1] = 50.0 + r as f32;
                        // A larger value in the next row must not leak into this one.
                        y[r * d + p] = if r % 2 == 0 { f32::NAN } else { 1e9 };
                    }
                    check(&x, d, "tie");
                    check(&y, d, "nan or next-row max");
                    let f: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
                    check(&f, d, "f64");
                    let ints: Vec<i16> = x.iter().map(|&v| v as i16).collect();
                    check(&ints, d, "i16");
                }
                check(&vec![f32::NEG_INFINITY; n], d, "-inf");
                check(&vec![i64::MIN; n], d, "i64::MIN");
                check(&vec![f32::NAN; n], d, "all NaN");
            }
        }
    }

    #[test]
    fn every_position_around_the_chunks() {
        // The maximum at each position of rows around multiples of the chunk and the lane
        // count thresholds, with a tie in the same lane of the next chunk, one just before
        // it, and then a NaN at the mirrored position.
        for n in [
            FEW,
            2 * FEW + 3,
            ACCS,
            2 * ACCS - 1,
            2 * ACCS + 1,
            4 * ACCS - 1,
            4 * ACCS,
            5 * ACCS - 2,
            16 * ACCS - 1,
            16 * ACCS,
        ] {
            let base: Vec<f32> = (0..n).map(|i| ((i * 7919) % 101) as f32).collect();
            for p in 0..n {
                let mut x = base.clone();
                x[p] = 500.0;
                assert_eq!(argmax_all(&x), p, "n={n} max at {p}");
                if p + ACCS < n {
                    x[p + ACCS] = 500.0;
                    assert_eq!(argmax_all(&x), p, "n={n} tie a chunk after {p}");
                }
                let at = if p > 0 {
                    x[p - 1] = 500.0;
                    p - 1
                } else {
                    p
                };
                assert_eq!(argmax_all(&x), at, "n={n} tie before {p}");
                let f: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                assert_eq!(argmax_all(&f), at, "n={n} f64 tie before {p}");
                let ints: Vec<i64> = x.iter().map(|&v| v as i64).collect();
                assert_eq!(argmax_all(&ints), at, "n={n} i64");
                x[n - 1 - p] = f32::NAN;
                assert_eq!(argmax_all(&x), n - 1 - p, "n={n} NaN at {}", n - 1 - p);
            }
        }
    }

    #[test]
    fn long_rows_across_blocks() {
        // Rows of several blocks, with the maximum, its ties and NaNs placed around the
        // block and accumulator boundaries.
        for n in [
            ACCS,
            ACCS + 1,
            2 * ACCS - 1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            BLOCK + ACCS,
            2 * BLOCK + ACCS - 1,
            3 * BLOCK + 17,
        ] {
            let base: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1009) as f32).collect();
            assert_eq!(argmax_all(&base), reference(&base), "n={n}");
            for &p in &[
                0,
                1,
                ACCS - 1,
                ACCS,
                BLOCK - 1,
                BLOCK,
                BLOCK + 5,
                n - ACCS,
                n - 2,
                n - 1,
            ] {
                if p >= n {
                    continue;
                }
                let mut x = base.clone();
                x[p] = 5000.0;
                assert_eq!(argmax_all(&x), p, "n={n} max at {p}");
                x[n - 1] = 5000.0; // a later tie loses
                assert_eq!(argmax_all(&x), p, "n={n} tie after {p}");
                x[p] = f32::NAN;
                assert_eq!(argmax_all(&x), p, "n={n} NaN at {p}");
                let ints: Vec<i16> = x
                    .iter()
                    .map(|&v| if v.is_nan() { 7000 } else { v as i16 })
                    .collect();
                assert_eq!(argmax_all(&ints), reference(&ints), "n={n} i16");
            }
            let down: Vec<f64> = (0..n).map(|i| -(i as f64)).collect();
            assert_eq!(argmax_all(&down), 0);
            let up: Vec<f64> = (0..n).map(|i| i as f64).collect();
            assert_eq!(argmax_all(&up), n - 1);
            let flat = vec![f32::NEG_INFINITY; n];
            assert_eq!(argmax_all(&flat), 0);
            let mut low = vec![i32::MIN; n];
            assert_eq!(argmax_all(&low), 0);
            low[n - 1] = i32::MIN + 1;
            assert_eq!(argmax_all(&low), n - 1);
        }
    }

    #[test]
    fn column_update_matches_rows() {
        let rows = [
            [1.0f32, 5.0, f32::NAN],
            [3.0, 5.0, 1.0],
            [2.0, 9.0, f32::NAN],
        ];
        let mut best = rows[0];
        let mut idx = [0usize; 3];
        for (i, r) in rows.iter().enumerate().skip(1) {
            argmax_update(&mut best, &mut idx, r, i);
        }
        assert_eq!(idx, [1, 2, 0]);
    }
}
