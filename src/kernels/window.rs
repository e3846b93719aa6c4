//! Short rows laid end to end, each read as one fixed window of `W` values from its start.
//!
//! PERF: the lanes past the row are masked off, so a row's maximum, sum or position is a
//! few vector operations. Loops over the `d` values of each row were instead vectorized
//! across rows, with a gather or scatter per value. Writes that run past a row are
//! overwritten by the rows after it, which the callers handle later; the last rows, whose
//! window would pass the end of the buffer, take the callers' scalar loops.

/// How many of the `len / d` rows of a buffer of `len` have a whole window of `w` values
/// from their start inside it.
#[inline(always)]
pub fn windowed(len: usize, d: usize, w: usize) -> usize {
    if len >= w {
        ((len - w) / d + 1).min(len / d)
    } else {
        0
    }
}

/// The lanes of a window that belong to its row (`j < d`). PERF: opaque to the optimizer,
/// which would otherwise split the lane loops at `d` (an induction-variable test) into
/// scalar code.
#[inline(always)]
pub fn keep<const W: usize>(d: usize) -> [bool; W] {
    std::hint::black_box(std::array::from_fn(|j| j < d))
}

/// The window of `W` values at `x[start..]`, the lanes not in `keep` replaced by `fill`.
#[inline(always)]
pub fn load<T: Copy, const W: usize>(x: &[T], start: usize, keep: &[bool; W], fill: T) -> [T; W] {
    let w: &[T; W] = x[start..start + W].try_into().expect("a full window");
    let mut v = *w;
    for j in 0..W {
        // Loaded before the select: a select between a load and a constant became a branch.
        let a = v[j];
        v[j] = if keep[j] { a } else { fill };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_stay_inside_the_buffer() {
        // 5 rows of 3: windows of 4 start at 0, 3, 6, 9 (9 + 4 <= 15), not 12.
        assert_eq!(windowed(15, 3, 4), 4);
        assert_eq!(windowed(16, 16, 16), 1);
        assert_eq!(windowed(10, 10, 16), 0);
        assert_eq!(windowed(64, 1, 16), 49);
        let x: Vec<i32> = (0..8).collect();
        assert_eq!(load(&x, 2, &keep::<4>(3), -1), [2, 3, 4, -1]);
    }
}
