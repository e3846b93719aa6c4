//! argmax over a [`Layout`], for every real dtype, with NumPy's results.

use crate::elem::{read, DType, Float};
use crate::kernels::argmax::{
    argmax_merge, argmax_packed, argmax_row, argmax_update, Key, PACKED_MAX,
};
use crate::kernels::tile::{self, Tile, COLS, TILE};
use crate::kernels::with_const_len;
use crate::layout::{ColumnTiles, Dim, Layout, TileAt, Walker, MAX_OPS};
use crate::parallel::{self, Slots, TASK_ELEMS};
use crate::reduce::{in_waves, Interrupted, Operand, OUT, X};
use crate::simd::{prefetch_ahead, Job, Simd};

/// Columns per tile: wide, so that memory is walked in order (see reduce/columns.rs).
const COLUMN_TILE: usize = 1024;

/// A key type read from storage.
trait Load: Key + Default {
    /// # Safety
    /// `p` points to a readable element of dtype `dt`.
    unsafe fn load(p: *const u8, dt: DType, swapped: bool) -> Self;

    /// Whether `tile_argmax` applies (the float keys).
    const TILED: bool = false;

    /// argmax of the rows of `d` (at most `TILE` rows of at most `COLS`) in `x` as a tile (see
    /// `kernels::tile`), for ISAs with `Simd::TILES`.
    #[inline(always)]
    fn tile_argmax<S: Simd, const D: usize>(
        _x: &[Self],
        _d: usize,
        _t: &mut Tile<Self>,
    ) -> [u32; TILE] {
        unreachable!("only the float keys are TILED")
    }
}

macro_rules! load_int {
    ($t:ty, $bits:ty) => {
        impl Load for $t {
            #[inline(always)]
            unsafe fn load(p: *const u8, _dt: DType, swapped: bool) -> Self {
                // SAFETY: forwarded from the caller.
                unsafe { read::<$bits>(p, swapped) as $t }
            }
        }
    };
}
load_int!(i16, u16);
load_int!(u16, u16);
load_int!(i32, u32);
load_int!(u32, u32);
load_int!(i64, u64);
load_int!(u64, u64);

impl Load for u8 {
    #[inline(always)]
    unsafe fn load(p: *const u8, dt: DType, _swapped: bool) -> Self {
        // SAFETY: forwarded from the caller. Bools compare as 0/1, whatever byte holds them.
        let v = unsafe { p.read() };
        if dt == DType::Bool {
            u8::from(v != 0)
        } else {
            v
        }
    }
}
impl Load for i8 {
    #[inline(always)]
    unsafe fn load(p: *const u8, _dt: DType, _swapped: bool) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe { p.cast::<i8>().read() }
    }
}
impl Load for f32 {
    const TILED: bool = true;
    #[inline(always)]
    fn tile_argmax<S: Simd, const D: usize>(
        x: &[Self],
        d: usize,
        t: &mut Tile<Self>,
    ) -> [u32; TILE] {
        <Self as Float>::load_tile::<S>(x, d, t);
        tile::argmax::<Self, D>(t, d)
    }
    #[inline(always)]
    unsafe fn load(p: *const u8, dt: DType, swapped: bool) -> Self {
        // SAFETY: forwarded from the caller; f16/bf16 widen exactly.
        unsafe { <f32 as Float>::load(p, dt, swapped) }
    }
}
impl Load for f64 {
    const TILED: bool = true;
    #[inline(always)]
    fn tile_argmax<S: Simd, const D: usize>(
        x: &[Self],
        d: usize,
        t: &mut Tile<Self>,
    ) -> [u32; TILE] {
        <Self as Float>::load_tile::<S>(x, d, t);
        tile::argmax::<Self, D>(t, d)
    }
    #[inline(always)]
    unsafe fn load(p: *const u8, dt: DType, swapped: bool) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe { <f64 as Float>::load(p, dt, swapped) }
    }
}

/// A checked argmax request: X (any real dtype) and OUT (intp, stride 0 over the row).
pub struct ArgRequest {
    pub layout: Layout,
    pub x: Operand,
    pub out: *mut u8,
}

// SAFETY: plain addresses of arrays the binding keeps alive; tasks write disjoint outputs.
unsafe impl Sync for ArgRequest {}

/// Run the request, polling `interrupted` between waves of work.
pub fn run(req: &ArgRequest, interrupted: &mut dyn FnMut() -> bool) -> Result<(), Interrupted> {
    match req.x.dtype {
        DType::Bool | DType::U8 => run_typed::<u8>(req, interrupted),
        DType::I8 => run_typed::<i8>(req, interrupted),
        DType::I16 => run_typed::<i16>(req, interrupted),
        DType::U16 => run_typed::<u16>(req, interrupted),
        DType::I32 => run_typed::<i32>(req, interrupted),
        DType::U32 => run_typed::<u32>(req, interrupted),
        DType::I64 => run_typed::<i64>(req, interrupted),
        DType::U64 => run_typed::<u64>(req, interrupted),
        DType::F16 | DType::BF16 | DType::F32 => run_typed::<f32>(req, interrupted),
        DType::F64 => run_typed::<f64>(req, interrupted),
    }
}

struct Ctx<'a> {
    req: &'a ArgRequest,
    d: usize,
    /// Rows are native, aligned, contiguous `K` (read in place).
    direct: bool,
    /// Also short and laid end to end in one outer dimension: see `argmax_packed`.
    packed: bool,
    /// Packed, and large enough to come from memory (see `FROM_MEMORY_BYTES`): copied in,
    /// or read by tiles a page ahead.
    from_memory: bool,
}

impl Ctx<'_> {
    #[inline(always)]
    fn base(&self, k: usize, offs: &[isize; MAX_OPS]) -> *mut u8 {
        let p = if k == X { self.req.x.ptr } else { self.req.out };
        p.wrapping_offset(self.req.layout.offsets[k] + offs[k])
    }

    #[inline(always)]
    fn put(&self, offs: &[isize; MAX_OPS], i: usize) {
        // SAFETY: OUT is a writable intp array with one element per outer position.
        unsafe {
            self.base(OUT, offs)
                .cast::<isize>()
                .write_unaligned(i as isize)
        }
    }

    /// Store each column's index of tile `t`.
    fn put_indices(&self, t: &TileAt, index: &[usize]) {
        for (co, &i) in t.columns().zip(index) {
            self.put(&co, i);
        }
    }
}

fn run_typed<K: Load>(
    req: &ArgRequest,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Interrupted> {
    let l = &req.layout;
    let n = l.outer_len();
    let d = l.row_len();
    if n == 0 || d == 0 {
        return Ok(());
    }
    let size = std::mem::size_of::<K>() as isize;
    let native = req.x.dtype.itemsize() == size as usize
        && !req.x.swapped
        && req.x.dtype != DType::Bool
        && matches!(
            req.x.dtype,
            DType::I8
                | DType::U8
                | DType::I16
                | DType::U16
                | DType::I32
                | DType::U32
                | DType::I64
                | DType::U64
                | DType::F32
                | DType::F64
        );
    let aligned = l.is_aligned(X, req.x.ptr, size as usize);
    let run1 = l.row_run();
    let direct = native && aligned && run1.is_some_and(|r| r.strides[X] == size);
    let packed = direct
        && d <= PACKED_MAX
        && matches!(l.outer.as_slice(), [o] if o.strides[X] == d as isize * size);
    let from_memory = packed && n * d * size as usize >= FROM_MEMORY_BYTES;
    let ctx = Ctx {
        req,
        d,
        direct,
        packed,
        from_memory,
    };
    if let (Some(r), Some(inner), true) = (run1, l.outer.last(), native && aligned) {
        if r.strides[X] != size && inner.strides[X] == size {
            let rest = &l.outer[..l.outer.len() - 1];
            let tiles = ColumnTiles::new(rest, *inner, COLUMN_TILE.min(inner.len));
            // A lone tile over a long axis is cut into chunks of rows instead, for threads
            // (only then: one thread ran (100000, 64) up to 10% slower in chunks). The
            // first maxima are exact, so the cut may depend on the thread count.
            let threaded = d * tiles.tile >= parallel::PAR_MIN_ELEMS && parallel::num_threads() > 1;
            let rows = if tiles.count() == 1 && threaded {
                parallel::chunk_rows(d, tiles.tile, 1)
            } else {
                d
            };
            let chunks = d.div_ceil(rows);
            let parts = Slots::new(if chunks > 1 { chunks } else { 0 });
            let job = ColumnJob::<K> {
                ctx: &ctx,
                tiles,
                row: r,
                rows,
                parts: (chunks > 1).then_some(&parts),
            };
            in_waves(&job, tiles.count() * chunks, tiles.tile * rows, interrupted)?;
            if chunks > 1 {
                let mut parts = parts.into_results();
                let mut first = parts.next().expect("two chunks or more");
                for later in parts {
                    argmax_merge(&mut first.best, &mut first.index, &later.best, &later.index);
                }
                ctx.put_indices(&tiles.at(0), &first.index);
            }
            return Ok(());
        }
    }
    let rows_per_task = (TASK_ELEMS / d).clamp(1, n);
    let job = RowsJob::<K> {
        ctx: &ctx,
        rows_per_task,
        _k: Default::default(),
    };
    in_waves(
        &job,
        n.div_ceil(rows_per_task),
        rows_per_task * d,
        interrupted,
    )
}

/// Packed rows of inputs of at least this many bytes come from memory: they are copied in
/// blocks of about `COPY_ELEMS` values before they are searched, or read by tiles that ask
/// for the data a page ahead. PERF: the flat copy keeps many more lines in flight than the
/// per-row window loops: (1000000, 16) f32 took 6.4 ms instead of 11.8. Smaller inputs are
/// mostly cached, where the copy, or the prefetch, only costs.
const FROM_MEMORY_BYTES: usize = 1 << 24;
const COPY_ELEMS: usize = 4096;

/// argmax of packed rows of `d <= COLS` values as tiles. PERF: common class counts get their
/// own unrolled copy, as softmax's short rows do.
#[inline(always)]
fn tiled_d<K: Load, S: Simd>(
    ctx: &Ctx<'_>,
    x: &[K],
    d: usize,
    offs: [isize; MAX_OPS],
    step: isize,
) {
    with_const_len!(d, [2, 4, 8, 10, 16, 32], D => tiled::<K, S, D>(ctx, x, d, offs, step))
}

/// argmax of the packed rows of `d` values in `x`, a tile at a time: row `r`'s result goes
/// to output offset `offs[OUT] + r * step`.
#[inline(always)]
fn tiled<K: Load, S: Simd, const D: usize>(
    ctx: &Ctx<'_>,
    x: &[K],
    d: usize,
    mut offs: [isize; MAX_OPS],
    step: isize,
) {
    let mut t: Tile<K> = [[K::default(); TILE]; COLS];
    for xc in x.chunks(TILE * d) {
        if ctx.from_memory {
            // PERF: as the long rows do (see `PREFETCH_DIST`).
            prefetch_ahead(xc.as_ptr(), size_of_val(xc));
        }
        let idx = K::tile_argmax::<S, D>(xc, d, &mut t);
        for &i in idx.iter().take(xc.len() / d) {
            ctx.put(&offs, i as usize);
            offs[OUT] += step;
        }
    }
}

struct RowsJob<'a, K> {
    ctx: &'a Ctx<'a>,
    rows_per_task: usize,
    _k: std::marker::PhantomData<K>,
}

impl<K: Load> Job for RowsJob<'_, K> {
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        let ctx = self.ctx;
        let n = ctx.req.layout.outer_len();
        let start = task * self.rows_per_task;
        let end = (start + self.rows_per_task).min(n);
        if ctx.packed {
            let outer = ctx.req.layout.outer[0];
            let mut offs = [0isize; MAX_OPS];
            for (o, s) in offs.iter_mut().zip(outer.strides) {
                *o = s * start as isize;
            }
            // SAFETY: packed means rows start..end are (end - start) * d aligned,
            // contiguous elements of K.
            let x = unsafe {
                std::slice::from_raw_parts(ctx.base(X, &offs).cast::<K>(), (end - start) * ctx.d)
            };
            let d = ctx.d;
            if K::TILED && S::TILES && d <= COLS {
                tiled_d::<K, S>(ctx, x, d, offs, outer.strides[OUT]);
                return;
            }
            let rows = if ctx.from_memory {
                (COPY_ELEMS / d).max(1)
            } else {
                end - start
            };
            let mut copy: Vec<K> = Vec::new();
            for (c, xc) in x.chunks(rows * d).enumerate() {
                let xc = if ctx.from_memory {
                    copy.clear();
                    copy.extend_from_slice(xc);
                    &copy
                } else {
                    xc
                };
                argmax_packed(xc, d, |r, i| {
                    let mut o = offs;
                    o[OUT] += outer.strides[OUT] * (c * rows + r) as isize;
                    ctx.put(&o, i);
                });
            }
            return;
        }
        let mut buf: Vec<K> = Vec::new();
        let mut w = Walker::at(&ctx.req.layout.outer, start);
        for _ in start..end {
            let offs = w.offsets;
            let xb = ctx.base(X, &offs);
            let i = if ctx.direct {
                // SAFETY: direct means d aligned contiguous elements of K.
                argmax_row::<K, S>(unsafe { std::slice::from_raw_parts(xb.cast::<K>(), ctx.d) })
            } else {
                buf.clear();
                let mut rw = Walker::at(&ctx.req.layout.row, 0);
                for _ in 0..ctx.d {
                    // SAFETY: the walker stays within the row.
                    buf.push(unsafe {
                        K::load(
                            xb.wrapping_offset(rw.offsets[X]),
                            ctx.req.x.dtype,
                            ctx.req.x.swapped,
                        )
                    });
                    rw.advance();
                }
                argmax_row::<K, S>(&buf)
            };
            ctx.put(&offs, i);
            w.advance();
        }
    }
}

struct ColumnJob<'a, K> {
    ctx: &'a Ctx<'a>,
    tiles: ColumnTiles<'a>,
    row: Dim,
    /// Rows per task: all of them, or a chunk of a lone tile, whose result goes to `parts`.
    rows: usize,
    parts: Option<&'a Slots<Best<K>>>,
}

/// Each column's first maximum and its index over some rows.
struct Best<K> {
    best: Vec<K>,
    index: Vec<usize>,
}

impl<K: Load> Job for ColumnJob<'_, K> {
    #[inline(always)]
    fn run<S: Simd>(&self, task: usize) {
        let ctx = self.ctx;
        let chunks = ctx.d.div_ceil(self.rows);
        let (tile_task, c) = (task / chunks, task % chunks);
        let t = self.tiles.at(tile_task);
        let w = t.w;
        let xrow = |i: usize| -> &[K] {
            let p = ctx
                .base(X, &t.offs)
                .wrapping_offset(self.row.strides[X] * i as isize);
            // SAFETY: native aligned K, contiguous across the inner axis.
            unsafe { std::slice::from_raw_parts(p.cast::<K>(), w) }
        };
        let rows = c * self.rows..((c + 1) * self.rows).min(ctx.d);
        let mut best: Vec<K> = xrow(rows.start).to_vec();
        let mut index = vec![rows.start; w];
        for i in rows.start + 1..rows.end {
            argmax_update(&mut best, &mut index, xrow(i), i);
        }
        match self.parts {
            Some(parts) => parts.put(c, Best { best, index }),
            None => ctx.put_indices(&t, &index),
        }
    }
}
