//! argmax with NumPy's rules: the first maximum wins, and the first NaN wins over everything.

use crate::kernels::row::LANES;

/// A comparable key: the integer types as they are, floats with NaN.
pub trait Key: Copy + PartialOrd + Send + Sync + 'static {
    fn is_nan(self) -> bool;
}

macro_rules! int_key {
    ($($t:ty),*) => {$(impl Key for $t {
        #[inline(always)]
        fn is_nan(self) -> bool { false }
    })*};
}
int_key!(u8, i8, i16, u16, i32, u32, i64, u64);

impl Key for f32 {
    #[inline(always)]
    fn is_nan(self) -> bool {
        self != self
    }
}
impl Key for f64 {
    #[inline(always)]
    fn is_nan(self) -> bool {
        self != self
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
        let mut best = 0;
        for (i, &v) in x.iter().enumerate().skip(1) {
            if beats(v, x[best]) {
                best = i;
            }
        }
        return best;
    }
    // Long rows: a vector pass for the maximum (and whether any NaN is present), then a scan
    // for its first position, which stops early.
    let mut acc = [x[0]; LANES];
    let mut nan = [false; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
            nan[i] |= c[i].is_nan();
        }
    }
    if nan.iter().any(|&b| b) || tail.iter().any(|v| v.is_nan()) {
        return x.iter().position(|v| v.is_nan()).unwrap_or(0);
    }
    let mut m = acc[0];
    for &v in acc.iter().chain(tail) {
        if v > m {
            m = v;
        }
    }
    x.iter().position(|&v| v == m).unwrap_or(0)
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
        let short = [1.0f64, f64::NAN, 5.0, f64::NAN];
        assert_eq!(argmax_row(&short), 1);
        let ties = [3i32, 7, 7, 1];
        assert_eq!(argmax_row(&ties), 1);
        let infs = [f32::NEG_INFINITY, f32::INFINITY, f32::INFINITY];
        assert_eq!(argmax_row(&infs), 1);
    }

    #[test]
    fn column_update_matches_rows() {
        let rows = [[1.0f32, 5.0, f32::NAN], [3.0, 5.0, 1.0], [2.0, 9.0, f32::NAN]];
        let mut best = rows[0];
        let mut idx = [0usize; 3];
        for (i, r) in rows.iter().enumerate().skip(1) {
            argmax_update(&mut best, &mut idx, r, i);
        }
        assert_eq!(idx, [1, 2, 0]);
    }
}
