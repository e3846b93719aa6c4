//! argmax with NumPy's rules: the first maximum wins, and the first NaN wins over everything.

use crate::kernels::row::LANES;

/// A comparable key: the integer types as they are, floats with NaN.
pub trait Key: Copy + PartialOrd + Send + Sync + 'static {
    /// Whether values can be NaN (lets the integer kernels skip the NaN tracking).
    const HAS_NAN: bool;
    fn is_nan(self) -> bool;
}

macro_rules! int_key {
    ($($t:ty),*) => {$(impl Key for $t {
        const HAS_NAN: bool = false;
        #[inline(always)]
        fn is_nan(self) -> bool { false }
    })*};
}
int_key!(u8, i8, i16, u16, i32, u32, i64, u64);

impl Key for f32 {
    const HAS_NAN: bool = true;
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}
impl Key for f64 {
    const HAS_NAN: bool = true;
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// `v` beats the current best `b`: greater, or the first NaN.
#[inline(always)]
fn beats<K: Key>(v: K, b: K) -> bool {
    v > b || (v.is_nan() && !b.is_nan())
}

/// Index of the maximum of a non-empty row.
#[inline(always)]
pub fn argmax_row<K: Key>(x: &[K]) -> usize {
    debug_assert!(!x.is_empty());
    if x.len() < 4 * LANES {
        return argmax_scalar(x);
    }
    if x.len() > u32::MAX as usize {
        return argmax_scalar(x);
    }
    // Long rows, two vector passes (PERF: each is a plain compare-and-blend loop that
    // vectorizes fully): the maximum, noting any NaN; then the first position holding it,
    // found a chunk at a time.
    let mut best = [x[0]; LANES];
    let mut nan = [false; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            best[i] = if c[i] > best[i] { c[i] } else { best[i] };
            if K::HAS_NAN {
                nan[i] |= c[i].is_nan();
            }
        }
    }
    if K::HAS_NAN && (nan.iter().any(|&n| n) || tail.iter().any(|v| v.is_nan())) {
        return x.iter().position(|v| v.is_nan()).unwrap_or(0);
    }
    let mut m = best[0];
    for &v in best.iter().chain(tail) {
        if v > m {
            m = v;
        }
    }
    for (ci, c) in x.chunks(LANES).enumerate() {
        if c.iter().fold(false, |hit, &v| hit | (v == m)) {
            return ci * LANES + c.iter().position(|&v| v == m).unwrap_or(0);
        }
    }
    0
}

fn argmax_scalar<K: Key>(x: &[K]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate().skip(1) {
        if beats(v, x[best]) {
            best = i;
        }
    }
    best
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn first_maximum_and_first_nan_win() {
        let mut x: Vec<f32> = (0..200).map(|i| ((i * 7919) % 97) as f32).collect();
        assert_eq!(argmax_row(&x), reference(&x));
        x[150] = f32::NAN;
        x[170] = f32::NAN;
        assert_eq!(argmax_row(&x), 150);
        let mut long: Vec<i64> = (0..300).map(|i| (i * 31) % 17).collect();
        assert_eq!(argmax_row(&long), reference(&long));
        long[299] = 100;
        assert_eq!(argmax_row(&long), 299);
        let mut y = vec![0.5f64; 100];
        y[0] = f64::NAN;
        assert_eq!(argmax_row(&y), 0);
        y[0] = 0.5;
        y[97] = f64::NAN;
        assert_eq!(argmax_row(&y), 97);
        let short = [1.0f64, f64::NAN, 5.0, f64::NAN];
        assert_eq!(argmax_row(&short), 1);
        let ties = [3i32, 7, 7, 1];
        assert_eq!(argmax_row(&ties), 1);
        let infs = [f32::NEG_INFINITY, f32::INFINITY, f32::INFINITY];
        assert_eq!(argmax_row(&infs), 1);
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
