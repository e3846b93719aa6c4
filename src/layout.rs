//! Array layout: which axes are reduced, how each operand steps through memory, and the
//! (outer, row) iteration space after dropping unit axes and merging contiguous ones.
//!
//! Every operand (x, out and the auxiliary arrays) shares one shape; an operand that does not
//! vary along an axis has stride 0 there. All strides are in bytes.

use crate::error::{Error, Result};

/// Most operands any operation walks in lockstep (x, out and four auxiliaries).
pub const MAX_OPS: usize = 6;

/// One axis of the iteration space: its length and each operand's byte stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dim {
    pub len: usize,
    pub strides: [isize; MAX_OPS],
}

/// The iteration space of a reduction: `outer` enumerates rows, `row` the elements of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Outer axes, slowest first; the last has the smallest |x stride|.
    pub outer: Vec<Dim>,
    /// Reduced axes, slowest first.
    pub row: Vec<Dim>,
    /// Byte offsets to add to each operand's base pointer (from flipping negative strides).
    pub offsets: [isize; MAX_OPS],
}

impl Layout {
    /// Build the layout. `dims[i]` gives axis i's length and strides, `reduce[i]` whether it
    /// is reduced. `permutable`: the reduction does not depend on element order (softmax,
    /// logsumexp), so row axes may be reordered and flipped for memory order; argmax passes
    /// false and keeps C order.
    pub fn new(dims: &[Dim], reduce: &[bool], permutable: bool) -> Layout {
        let mut offsets = [0isize; MAX_OPS];
        let mut outer: Vec<Dim> = Vec::new();
        let mut row: Vec<Dim> = Vec::new();
        for (d, &r) in dims.iter().zip(reduce) {
            if d.len == 1 {
                continue;
            }
            if r {
                row.push(*d);
            } else {
                outer.push(*d);
            }
        }
        if row.iter().chain(&outer).any(|d| d.len == 0) {
            // Empty: keep the axes as they are; nothing will be walked.
            return Layout {
                outer,
                row,
                offsets,
            };
        }
        flip_negative(&mut outer, &mut offsets);
        sort_by_stride(&mut outer);
        if permutable {
            flip_negative(&mut row, &mut offsets);
            sort_by_stride(&mut row);
        }
        Layout {
            outer: merge(outer),
            row: merge(row),
            offsets,
        }
    }

    pub fn outer_len(&self) -> usize {
        self.outer.iter().map(|d| d.len).product()
    }

    pub fn row_len(&self) -> usize {
        self.row.iter().map(|d| d.len).product()
    }

    /// Whether operand `k`, based at `ptr`, is aligned to `size` bytes at its first element
    /// and along every axis (so it can be read in place as elements of that size).
    pub fn is_aligned(&self, k: usize, ptr: *const u8, size: usize) -> bool {
        let size = size as isize;
        (ptr as usize as isize + self.offsets[k]) % size == 0
            && self
                .outer
                .iter()
                .chain(&self.row)
                .all(|dim| dim.strides[k] % size == 0)
    }

    /// The single row axis, if the rows are one strided run.
    pub fn row_run(&self) -> Option<Dim> {
        match self.row.as_slice() {
            [d] => Some(*d),
            _ => None,
        }
    }
}

fn flip_negative(dims: &mut [Dim], offsets: &mut [isize; MAX_OPS]) {
    for d in dims.iter_mut() {
        if d.strides[0] < 0 {
            for (o, s) in offsets.iter_mut().zip(d.strides.iter_mut()) {
                *o += (d.len as isize - 1) * *s;
                *s = -*s;
            }
        }
    }
}

fn sort_by_stride(dims: &mut [Dim]) {
    // Stable: ties (broadcast axes) keep their order.
    dims.sort_by_key(|d| std::cmp::Reverse(d.strides[0].unsigned_abs()));
}

/// Merge neighbours `a, b` where every operand steps over `a` as `b.len` steps of `b`.
fn merge(dims: Vec<Dim>) -> Vec<Dim> {
    let mut out: Vec<Dim> = Vec::with_capacity(dims.len());
    for d in dims {
        if let Some(last) = out.last_mut() {
            let fits = (0..MAX_OPS).all(|k| last.strides[k] == d.strides[k] * d.len as isize);
            if fits {
                last.len *= d.len;
                last.strides = d.strides;
                continue;
            }
        }
        out.push(d);
    }
    out
}

/// Normalise `axis` entries against `ndim` like NumPy: negative counts from the end,
/// out of range or repeated raises AxisError. Returns a mask of reduced axes.
pub fn axis_mask(axes: &[i64], ndim: usize) -> Result<Vec<bool>> {
    let mut mask = vec![false; ndim];
    for &a in axes {
        let n = ndim as i64;
        if a < -n || a >= n {
            return Err(Error::Axis(format!(
                "axis {a} is out of bounds for array of dimension {ndim}"
            )));
        }
        let i = if a < 0 { a + n } else { a } as usize;
        if mask[i] {
            return Err(Error::Axis("duplicate value in 'axis'".into()));
        }
        mask[i] = true;
    }
    Ok(mask)
}

/// A position in a walk over `dims`: each operand's byte offset from its base.
#[derive(Debug, Clone)]
pub struct Walker<'a> {
    dims: &'a [Dim],
    index: Vec<usize>,
    pub offsets: [isize; MAX_OPS],
}

impl<'a> Walker<'a> {
    /// Start at flat (C-order) position `flat` of `dims`.
    pub fn at(dims: &'a [Dim], mut flat: usize) -> Walker<'a> {
        let mut index = vec![0; dims.len()];
        let mut offsets = [0isize; MAX_OPS];
        for (k, d) in dims.iter().enumerate().rev() {
            let i = flat % d.len.max(1);
            flat /= d.len.max(1);
            index[k] = i;
            for (o, s) in offsets.iter_mut().zip(d.strides) {
                *o += i as isize * s;
            }
        }
        Walker {
            dims,
            index,
            offsets,
        }
    }

    /// Step to the next position (wrapping at the end).
    #[inline]
    pub fn advance(&mut self) {
        for k in (0..self.dims.len()).rev() {
            let d = &self.dims[k];
            self.index[k] += 1;
            for (o, s) in self.offsets.iter_mut().zip(d.strides) {
                *o += s;
            }
            if self.index[k] < d.len {
                return;
            }
            for (o, s) in self.offsets.iter_mut().zip(d.strides) {
                *o -= s * d.len as isize;
            }
            self.index[k] = 0;
        }
    }
}

/// The column paths' tasks: tiles of up to `tile` columns across the contiguous inner axis
/// `inner`, for every index of the other outer axes `rest`, numbered tile-fastest.
#[derive(Debug, Clone, Copy)]
pub struct ColumnTiles<'a> {
    rest: &'a [Dim],
    inner: Dim,
    pub tile: usize,
    /// Tiles per index of `rest`.
    tiles: usize,
}

impl<'a> ColumnTiles<'a> {
    pub fn new(rest: &'a [Dim], inner: Dim, tile: usize) -> ColumnTiles<'a> {
        ColumnTiles {
            rest,
            inner,
            tile,
            tiles: inner.len.div_ceil(tile),
        }
    }

    /// How many tiles there are.
    pub fn count(&self) -> usize {
        self.rest.iter().map(|d| d.len).product::<usize>() * self.tiles
    }

    /// Where tile `task` lies.
    pub fn at(&self, task: usize) -> TileAt {
        let (o, t) = (task / self.tiles, task % self.tiles);
        let j0 = t * self.tile;
        let mut offs = Walker::at(self.rest, o).offsets;
        for (off, s) in offs.iter_mut().zip(self.inner.strides) {
            *off += s * j0 as isize;
        }
        TileAt {
            offs,
            w: self.tile.min(self.inner.len - j0),
            step: self.inner.strides,
        }
    }
}

/// Where one column tile lies: each operand's offset of its first column (at reduced index
/// 0), its width, and the step from one column to the next.
#[derive(Debug, Clone, Copy)]
pub struct TileAt {
    pub offs: [isize; MAX_OPS],
    pub w: usize,
    step: [isize; MAX_OPS],
}

impl TileAt {
    /// The offsets of column `j`.
    pub fn column(&self, j: usize) -> [isize; MAX_OPS] {
        let mut co = self.offs;
        for (c, s) in co.iter_mut().zip(self.step) {
            *c += s * j as isize;
        }
        co
    }

    /// The offsets of each column, in order.
    pub fn columns(&self) -> impl Iterator<Item = [isize; MAX_OPS]> + '_ {
        (0..self.w).map(|j| self.column(j))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dim(len: usize, sx: isize, so: isize) -> Dim {
        let mut strides = [0; MAX_OPS];
        strides[0] = sx;
        strides[1] = so;
        Dim { len, strides }
    }

    #[test]
    fn contiguous_rows_merge_into_one_run() {
        // (2, 3, 4) f32 C-contiguous, reduce the last two axes.
        let dims = [dim(2, 48, 48), dim(3, 16, 16), dim(4, 4, 4)];
        let l = Layout::new(&dims, &[false, true, true], true);
        assert_eq!(l.row, vec![dim(12, 4, 4)]);
        assert_eq!(l.outer, vec![dim(2, 48, 48)]);
    }

    #[test]
    fn transposed_axis_none_is_one_contiguous_run() {
        // x.T of a (3, 4) f32 array: shape (4, 3), strides (4, 16).
        let dims = [dim(4, 4, 4), dim(3, 16, 16)];
        let l = Layout::new(&dims, &[true, true], true);
        assert_eq!(l.row, vec![dim(12, 4, 4)]);
    }

    #[test]
    fn alignment_covers_base_offset_and_every_stride() {
        let buf = [0u64; 8];
        let base = buf.as_ptr().cast::<u8>();
        let dims = [dim(2, 24, 8), dim(3, 8, 4)];
        let l = Layout::new(&dims, &[false, true], true);
        assert!(l.is_aligned(0, base, 8));
        assert!(!l.is_aligned(1, base, 8), "a 4-byte stride");
        assert!(l.is_aligned(1, base, 4));
        assert!(
            !l.is_aligned(0, base.wrapping_add(4), 8),
            "a misaligned base"
        );
        // A flipped axis moves the first element by the offset, which must be aligned too.
        let flipped = Layout::new(&[dim(3, -8, -8)], &[true], true);
        assert!(flipped.is_aligned(0, base.wrapping_add(16), 8));
        assert!(!flipped.is_aligned(0, base.wrapping_add(20), 8));
    }

    #[test]
    fn argmax_rows_keep_c_order() {
        let dims = [dim(4, 4, 0), dim(3, 16, 0)];
        let l = Layout::new(&dims, &[true, true], false);
        assert_eq!(l.row.len(), 2);
        assert_eq!(l.row[0].len, 4);
    }

    #[test]
    fn negative_strides_flip_with_offset() {
        let dims = [dim(5, -4, -4), dim(3, 20, 20)];
        let l = Layout::new(&dims, &[false, true], true);
        assert_eq!(l.offsets[0], -16);
        assert_eq!(l.outer, vec![dim(5, 4, 4)]);
    }

    #[test]
    fn walker_visits_c_order() {
        let dims = [dim(2, 100, 0), dim(3, 10, 0)];
        let mut w = Walker::at(&dims, 2);
        let mut seen = vec![w.offsets[0]];
        for _ in 0..3 {
            w.advance();
            seen.push(w.offsets[0]);
        }
        assert_eq!(seen, vec![20, 100, 110, 120]);
    }

    #[test]
    fn axis_mask_rejects_bad_axes() {
        assert_eq!(axis_mask(&[-1], 3).unwrap(), vec![false, false, true]);
        assert!(matches!(axis_mask(&[3], 3), Err(Error::Axis(_))));
        assert!(matches!(axis_mask(&[0, -3], 3), Err(Error::Axis(_))));
    }

    #[test]
    fn column_tiles_number_tiles_fastest() {
        // (2, 5, 10) f32 with axis 1 reduced: rest (2,), inner 10 columns, tiles of 4.
        let (rest, inner) = ([dim(2, 200, 40)], dim(10, 4, 4));
        let t = ColumnTiles::new(&rest, inner, 4);
        assert_eq!((t.tiles, t.count()), (3, 6));
        let at = t.at(5); // outer index 1, third tile: columns 8..10
        assert_eq!((at.offs[0], at.offs[1], at.w), (232, 72, 2));
        let cols: Vec<isize> = at.columns().map(|c| c[0]).collect();
        assert_eq!(cols, vec![232, 236]);
        assert_eq!(t.at(1).column(3)[1], 16 + 12);
    }
}
