//! The column path: reductions over a strided axis whose inner axis is contiguous.

use std::ops::Range;

use super::{
    in_waves, one_row, put_stats, Ctx, Interrupted, Kind, Scratch, OUT, STAT_M, STAT_S, X,
};
use crate::elem::Float;
use crate::kernels::shift::{self, Shift, Temp, Unit};
use crate::kernels::{column, row};
use crate::layout::{Dim, Walker, MAX_OPS};
use crate::parallel;
use crate::simd::{Job, Simd};

/// Most columns per tile on the column path. PERF: a tile reads each reduced index as one
/// contiguous run; runs with gaps between them (a tile narrower than the array) defeat the
/// hardware prefetchers, so tiles span the whole inner axis up to this width unless threads
/// need more tiles: (2048, 2048) axis 0 f32 softmax on one thread 1.5x faster than with
/// 1024-column tiles. The per-column state (about 40 bytes a column) stays in L2.
const COLUMN_TILE: usize = 4096;
/// The shortest run, in bytes, that column tiles are cut to for threads.
const COLUMN_SPLIT_MIN_BYTES: usize = 4096;

struct ColumnJob<'a, F> {
    ctx: &'a Ctx<'a, F>,
    /// Outer axes other than the inner one.
    rest: &'a [Dim],
    inner: Dim,
    tile: usize,
    tiles: usize,
}

pub(super) fn run_columns<F: Float>(
    ctx: &Ctx<'_, F>,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Interrupted> {
    let l = &ctx.req.layout;
    let inner = *l.outer.last().expect("column path has an inner axis");
    let rest = &l.outer[..l.outer.len() - 1];
    let n_rest: usize = rest.iter().map(|d| d.len).product();
    let threads = if n_rest * inner.len * ctx.d >= parallel::PAR_MIN_ELEMS {
        parallel::num_threads()
    } else {
        1
    };
    let tile = column_tile(
        inner.len,
        threads.div_ceil(n_rest),
        std::mem::size_of::<F>(),
    );
    let tiles = inner.len.div_ceil(tile);
    let job = ColumnJob {
        ctx,
        rest,
        inner,
        tile,
        tiles,
    };
    in_waves(&job, n_rest * tiles, tile * ctx.d, interrupted)
}

/// The ranges of `0..w` between the sorted positions `skip`.
fn good_runs(skip: &[usize], w: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::with_capacity(skip.len() + 1);
    let mut start = 0;
    for &j in skip.iter().chain(std::iter::once(&w)) {
        if j > start {
            runs.push(start..j);
        }
        start = j + 1;
    }
    runs
}

/// Tile width for `cols` contiguous columns of `size` bytes cut into `parts` tiles for the
/// threads: as wide as allowed (see `COLUMN_TILE`), a whole number of 64-byte lines of f32
/// where it is cut, and no narrower than `COLUMN_SPLIT_MIN_BYTES` (narrower runs made two
/// threads slower than one: (4096, 1024) axis 0 f32 softmax).
fn column_tile(cols: usize, parts: usize, size: usize) -> usize {
    cols.div_ceil(parts.max(1))
        .max(COLUMN_SPLIT_MIN_BYTES / size)
        .next_multiple_of(16)
        .min(COLUMN_TILE)
        .min(cols)
        .max(1)
}

impl<F: Float> Job for ColumnJob<'_, F> {
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        let t = self.ctx.req.temperature;
        if t == 1.0 {
            self.tile_of::<S, Unit>(task, Unit);
        } else {
            self.tile_of::<S, Temp<F>>(task, Temp::new(t));
        }
    }
}

impl<F: Float> ColumnJob<'_, F> {
    /// Reduced index `i` of the tile at `offs` (`w` columns) in operand `k` (X or OUT).
    #[inline(always)]
    fn row_ptr(&self, k: usize, offs: &[isize; MAX_OPS], i: usize) -> *mut F {
        let rd = self.ctx.req.layout.row[0];
        self.ctx
            .base(k, offs)
            .wrapping_offset(rd.strides[k] * i as isize)
            .cast::<F>()
    }

    #[inline(always)]
    fn tile_of<S: Simd, Sh: Shift<F>>(&self, task: usize, sh: Sh) {
        let ctx = self.ctx;
        let req = ctx.req;
        let (o, t) = (task / self.tiles, task % self.tiles);
        let j0 = t * self.tile;
        let w = self.tile.min(self.inner.len - j0);
        let mut offs = Walker::at(self.rest, o).offsets;
        for (k, off) in offs.iter_mut().enumerate() {
            *off += self.inner.strides[k] * j0 as isize;
        }
        let d = ctx.d;
        let xrow = |i: usize| -> &[F] {
            // SAFETY: the column path requires aligned, contiguous F across the inner axis.
            unsafe { std::slice::from_raw_parts(self.row_ptr(X, &offs, i), w) }
        };
        let outrow = |i: usize| -> &mut [F] {
            // SAFETY: out is aligned contiguous F across the inner axis (column path
            // condition); this task owns these w columns, and callers hold one row at a time.
            unsafe { std::slice::from_raw_parts_mut(self.row_ptr(OUT, &offs, i), w) }
        };
        let kind = req.kind;
        let mut m = vec![F::NEG_INF; w];
        let mut s_tot = vec![0.0f64; w];
        // Softmax leaves each term in out on the way and scales it there, so each exponential
        // is made once. Not in place: a column found bad by its sum is redone from x.
        let terms_in_out = kind == Kind::Softmax && !req.in_place;
        if kind.is_finish() {
            let mut co = offs;
            for j in 0..w {
                m[j] = ctx.get_stat(STAT_M, &co);
                s_tot[j] = ctx.get_stat(STAT_S, &co).to_f64();
                for (c, s) in co.iter_mut().zip(self.inner.strides) {
                    *c += s;
                }
            }
        } else {
            let mut min = vec![F::INF; w];
            for i in 0..d {
                column::max_min_update(&mut m, &mut min, xrow(i));
            }
            // Non-finite maxima use a neutral 0 here and are redone column by column below.
            let special: Vec<bool> = m.iter().map(|&v| !(v > F::NEG_INF && v < F::INF)).collect();
            let normal = (0..w).all(|j| special[j] || row::normal_range(m[j], min[j], sh));
            for (mv, &sp) in m.iter_mut().zip(&special) {
                if sp {
                    *mv = F::ZERO;
                }
            }
            let mut part = vec![F::ZERO; w];
            let mut ones = vec![F::ZERO; w];
            let mut ones_tot = vec![0.0f64; w];
            let mut s_lo = vec![0.0f64; w];
            for i in 0..d {
                let (x, p, c) = (xrow(i), &mut part, &mut ones);
                match (terms_in_out, normal) {
                    (true, true) => {
                        column::sum_update_into::<F, S, Sh, true>(p, c, x, &m, sh, outrow(i))
                    }
                    (true, false) => {
                        column::sum_update_into::<F, S, Sh, false>(p, c, x, &m, sh, outrow(i))
                    }
                    (false, true) => column::sum_update::<F, S, Sh, true>(p, c, x, &m, sh),
                    (false, false) => column::sum_update::<F, S, Sh, false>(p, c, x, &m, sh),
                }
                if (i + 1) % column::COL_FOLD == 0 || i + 1 == d {
                    column::fold_compensated(&mut s_tot, &mut s_lo, &mut part);
                    column::fold(&mut ones_tot, &mut ones);
                }
            }
            for (st, lo) in s_tot.iter_mut().zip(&s_lo) {
                *st += lo;
            }
            for ((st, &c), &sp) in s_tot.iter_mut().zip(&ones_tot).zip(&special) {
                // From here on s_tot holds sum - 1: the count and the rest stay apart until
                // log1p, as in `row::Acc::minus_one`.
                *st = if sp { f64::NAN } else { (c - 1.0) + *st };
            }
        }
        if kind.is_finish() {
            for v in s_tot.iter_mut() {
                *v -= 1.0;
            }
        }
        // Columns with no finite maximum, or NaN, are redone one by one at the end, from x:
        // the write pass covers only the runs of columns between them (in place, it would
        // overwrite their inputs).
        let bad: Vec<usize> = (0..w)
            .filter(|&j| !(m[j] > F::NEG_INF && m[j] < F::INF) || s_tot[j].is_nan())
            .collect();
        let runs = good_runs(&bad, w);
        match kind {
            Kind::LogSumExp | Kind::Stats => {
                let mut co = offs;
                for j in 0..w {
                    let acc = row::Acc {
                        hi: s_tot[j],
                        lo: 0.0,
                        count: 1.0,
                    };
                    put_stats(ctx, &co, sh.apply(m[j].to_f64()), m[j], acc);
                    for (c, s) in co.iter_mut().zip(self.inner.strides) {
                        *c += s;
                    }
                }
            }
            _ => {
                let log = kind.is_log();
                let (logs, c) = if log {
                    let sums: Vec<row::Acc> = s_tot
                        .iter()
                        .map(|&mo| row::Acc {
                            hi: mo,
                            lo: 0.0,
                            count: 1.0,
                        })
                        .collect();
                    let logs = row::log_of_sums::<F>(&sums);
                    let c: Vec<(F, F)> = m
                        .iter()
                        .zip(&logs)
                        .map(|(&mv, &ls)| shift::log_const(mv, ls))
                        .collect();
                    (logs, c)
                } else {
                    (Vec::new(), Vec::new())
                };
                let (inv_hi, inv_lo): (Vec<F>, Vec<F>) = if log {
                    (Vec::new(), Vec::new())
                } else {
                    s_tot.iter().map(|&mo| F::recip(1.0 + mo)).unzip()
                };
                let mut copy = vec![F::ZERO; if req.in_place { w } else { 0 }];
                for i in 0..d {
                    if terms_in_out {
                        let out = outrow(i);
                        for r in runs.iter().cloned() {
                            column::scale::<F, S>(
                                &mut out[r.clone()],
                                &inv_hi[r.clone()],
                                &inv_lo[r],
                            );
                        }
                        continue;
                    }
                    // In place, the row is copied before `out` (the same memory) is borrowed.
                    let xr: &[F] = if req.in_place {
                        copy.copy_from_slice(xrow(i));
                        &copy
                    } else {
                        xrow(i)
                    };
                    let out = outrow(i);
                    for r in runs.iter().cloned() {
                        let (o, x, mr) = (&mut out[r.clone()], &xr[r.clone()], &m[r.clone()]);
                        if log {
                            column::log_shift::<F, S, Sh>(o, x, mr, &logs[r.clone()], &c[r], sh);
                        } else {
                            let (ih, il) = (&inv_hi[r.clone()], &inv_lo[r]);
                            column::exp_scale::<F, S, Sh>(o, x, mr, ih, il, sh);
                        }
                    }
                }
            }
        }
        if !bad.is_empty() {
            self.redo_columns::<S, Sh>(&offs, &bad, sh);
        }
    }

    /// Redo columns `cols` of the tile at `offs` one by one on gathered copies (correct in
    /// place too: each column is read before it is written). A column's result never
    /// depends on the tile it was in.
    fn redo_columns<S: Simd, Sh: Shift<F>>(&self, offs: &[isize; MAX_OPS], cols: &[usize], sh: Sh) {
        let col = self.col_ctx();
        let mut sc = Scratch::new();
        for &j in cols {
            let mut co = *offs;
            for (c, s) in co.iter_mut().zip(self.inner.strides) {
                *c += s * j as isize;
            }
            one_row::<F, S, Sh>(&col, &co, sh, &mut sc);
        }
    }

    /// The same request seen as strided rows (no in-place views), for the scalar fallback.
    fn col_ctx(&self) -> Ctx<'_, F> {
        Ctx {
            req: self.ctx.req,
            d: self.ctx.d,
            x_direct: false,
            out_direct: false,
            large: false,
            _f: std::marker::PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_runs_are_the_gaps_between_skipped_columns() {
        assert_eq!(good_runs(&[], 5), vec![0..5]);
        assert_eq!(good_runs(&[0, 2, 3], 6), vec![1..2, 4..6]);
        assert_eq!(good_runs(&[4], 5), vec![0..4]);
        assert_eq!(good_runs(&[0, 1], 2), Vec::<Range<usize>>::new());
    }

    #[test]
    fn column_tiles_follow_threads_down_to_4_kib_runs() {
        assert_eq!(column_tile(2048, 1, 4), 2048);
        assert_eq!(column_tile(2048, 2, 4), 1024);
        assert_eq!(column_tile(2048, 4, 4), 1024);
        assert_eq!(column_tile(1024, 2, 4), 1024);
        assert_eq!(column_tile(1024, 2, 8), 512);
        assert_eq!(column_tile(20000, 1, 4), COLUMN_TILE);
        assert_eq!(column_tile(10, 3, 4), 10);
    }
}
