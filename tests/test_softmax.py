"""softmax, log_softmax and logsumexp: the seed examples, accuracy against the extended
precision reference (bounds in conftest), axes, special values, ``where``, ``empty_rows``,
``temperature`` and ``out=``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import (
    ALL_DTYPES,
    BFLOAT16,
    FLOAT16,
    FLOAT32,
    FLOAT64,
    FLOAT_DTYPES,
    SOFTMAX_FAMILY,
    THREAD_COUNTS,
    WIDE_DTYPES,
    Axis,
    EmptyRows,
    Ref,
    axes_for,
    cases,
    check_log_softmax,
    check_logsumexp,
    check_softmax,
    check_softmax_family,
    each_config,
    eps,
    normalize_axes,
    result_dtype,
    shapes,
    values,
)
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Array = npt.NDArray[Any]

FAMILY_CHECKS: dict[str, Callable[[Any, Ref], None]] = {
    "softmax": check_softmax,
    "log_softmax": check_log_softmax,
    "logsumexp": check_logsumexp,
}


def checked_everywhere(
    name: str, call: Callable[[], Any], ref: Ref, thread_counts: Sequence[int] = THREAD_COUNTS
) -> Iterator[tuple[str, int, Any]]:
    """Yield (isa, threads, result) of ``call()`` on every ISA and thread count, with both
    still in force: each result within the bounds of ``ref`` for op ``name``, and
    bit-identical to the first one of its ISA."""
    seen: dict[str, Any] = {}
    for isa, threads in each_config(thread_counts):
        got = call()
        FAMILY_CHECKS[name](got, ref)
        if isa in seen:
            assert np.array_equal(got, seen[isa], equal_nan=True), (name, isa, threads)
        seen.setdefault(isa, got)
        yield isa, threads, got


# ------------------------------------------------------------------------------------------
# The seed examples
# ------------------------------------------------------------------------------------------
def test_softmax_seed_example() -> None:
    got = sr.softmax([1, 3, 2])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [0.09003057, 0.66524096, 0.24472847], rtol=0, atol=5e-9)
    check_softmax(got, Ref([1, 3, 2]))
    check_softmax(sr.softmax([1.0, 3.0, 2.0]), Ref([1.0, 3.0, 2.0]))


def test_argmax_seed_example() -> None:
    assert int(sr.argmax([1, 3, 2])) == 1
    assert int(sr.argmax([1.0, 3.0, 2.0])) == 1


@pytest.mark.parametrize("dtype", [None, np.float32, np.float64, np.float16])
def test_softmax_large_logits_are_stable(dtype: Any) -> None:
    """[1000, 3000, 2000]: no overflow, no warning (filterwarnings=error), [0, 1, 0]."""
    x = [1000, 3000, 2000] if dtype is None else np.array([1000, 3000, 2000], dtype=dtype)
    got = sr.softmax(x)
    assert np.all(np.isfinite(got))
    np.testing.assert_array_equal(got, [0.0, 1.0, 0.0])
    assert int(sr.argmax(x)) == 1
    np.testing.assert_array_equal(sr.log_softmax(x), [-2000.0, 0.0, -1000.0])
    assert float(sr.logsumexp(x)) == 3000.0
    check_softmax(got, Ref(x))


def test_softmax_default_axis_is_last() -> None:
    x = np.arange(12.0).reshape(3, 4) % 5
    np.testing.assert_array_equal(sr.softmax(x), sr.softmax(x, axis=-1))
    check_softmax(sr.softmax(x), Ref(x, -1))
    s = sr.softmax(x).sum(axis=-1)
    np.testing.assert_allclose(s, 1.0, rtol=1e-15)
    assert not np.allclose(sr.softmax(x).sum(axis=0), 1.0)


# ------------------------------------------------------------------------------------------
# Accuracy properties
# ------------------------------------------------------------------------------------------
@given(cases())
def test_softmax_matches_reference(case: tuple[Array, Axis]) -> None:
    x, axis = case
    check_softmax(sr.softmax(x, axis=axis), Ref(x, axis))


@given(cases())
def test_log_softmax_matches_reference(case: tuple[Array, Axis]) -> None:
    x, axis = case
    check_log_softmax(sr.log_softmax(x, axis=axis), Ref(x, axis))


@given(cases(), st.booleans())
def test_logsumexp_matches_reference(case: tuple[Array, Axis], keepdims: bool) -> None:
    x, axis = case
    check_logsumexp(sr.logsumexp(x, axis=axis, keepdims=keepdims), Ref(x, axis), keepdims)


@given(cases(dtypes=FLOAT_DTYPES, specials=True))
def test_special_values_match_reference(case: tuple[Array, Axis]) -> None:
    """NaN, ±inf and ±0 anywhere, in every float dtype."""
    x, axis = case
    ref = Ref(x, axis)
    check_softmax_family(x, ref, axis=axis)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
@pytest.mark.parametrize("shift", [0.0, 1e3, 1e6, -1e6])
def test_accuracy_does_not_grow_with_distance_from_max(dtype: Any, shift: float) -> None:
    """Entries far below the maximum (down to underflow) keep the relative bound, for any
    offset of the whole row."""
    lo = -80.0 if dtype == np.float32 else -700.0
    rng = np.random.default_rng(5)
    x = (shift + np.concatenate([[0.0], rng.uniform(lo, 0, 999)])).astype(dtype)
    x = np.stack([x, x[::-1], np.roll(x, 17)])
    ref = Ref(x)
    check_softmax_family(x, ref)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
@pytest.mark.parametrize("n", [2, 3, 8, 16, 17, 32, 33, 100])
@pytest.mark.parametrize("rows", [1, 3, 40])
@pytest.mark.parametrize("axis", [-1, 0])
def test_log_softmax_winning_class_keeps_its_digits(
    dtype: Any, n: int, rows: int, axis: int
) -> None:
    """log_softmax of the maximum is -log1p(rest): relative accuracy even when it is tiny,
    on every row length and batch size (short-row, long-row and column paths)."""
    gaps = [12.0, 20.0, 40.0] if dtype == np.float32 else [20.0, 22.0, 60.0, 300.0]
    for gap in gaps:
        x = np.full((rows, n), -gap, dtype)
        x[:, 0] = 0
        x[:, -1] -= 1.5
        if axis == 0:
            x = np.ascontiguousarray(x.T)
        ref = Ref(x, axis)
        got = sr.log_softmax(x, axis=axis)
        check_log_softmax(got, ref)
        check_logsumexp(sr.logsumexp(x, axis=axis), ref)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
@pytest.mark.parametrize("n", [2, 5, 16, 31, 64])
def test_log_softmax_random_batches(dtype: Any, n: int) -> None:
    """Random batches with a clear winner per row (large spread)."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((500, n)) * 4).astype(dtype)
    x[:, 0] += 5
    ref = Ref(x)
    check_softmax_family(x, ref)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
def test_long_rows_are_blocked(dtype: Any) -> None:
    """Rows of 10^5 to 10^6 entries: accuracy and row sums do not degrade with n."""
    rng = np.random.default_rng(1)
    for n in (100_003, 1_000_000):
        x = rng.standard_normal((1, n)).astype(dtype)
        ref = Ref(x)
        check_softmax(sr.softmax(x), ref)
        check_logsumexp(sr.logsumexp(x), ref)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
def test_long_rows_both_routes_and_exp_variants_every_isa_and_thread_count(dtype: Any) -> None:
    """Rows over 64K entries go through the row path when there are 8 or more of them that
    fit in 512 KiB, else through superblocks; each row takes the unchecked exp when its span
    keeps every e^t normal (span 30 here) and the range-checked one otherwise (one entry far
    below the maximum). Every ISA and thread count, within the bounds and bit-identical
    across thread counts."""
    rng = np.random.default_rng(5)
    d = 70_001 if np.dtype(dtype) == FLOAT64 else 100_003
    for n in (8, 3):
        x = (rng.standard_normal((n, d)) * 5).astype(dtype)
        x[1, 17] = -2000.0  # row 1: the checked exp
        x[2, -1] = -95.0  # row 2: a subnormal term in f32, checked too
        ref = Ref(x)
        for name, fn in SOFTMAX_FAMILY.items():
            for _ in checked_everywhere(name, partial(fn, x), ref):
                pass


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
def test_long_row_softmax_fills_every_entry_of_out(dtype: Any) -> None:
    """Softmax of rows cut into superblocks leaves its terms in ``out`` and scales them
    there. An ``out`` that starts as NaN is overwritten everywhere: a superblock of only
    -inf in a finite row (no terms of its own), a row with +inf (the special pass) and the
    finite rows; in place and into a strided ``out`` (neither keeps terms) give the same bits."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((3, 70_000)) * 5).astype(dtype)
    x[0, 16_384:32_768] = -INF  # exactly superblock 1 of row 0
    x[1, 40_000] = INF
    for t in (1.0, 0.7):
        ref = Ref(x, temperature=t)
        for isa, threads in each_config():
            out = np.full_like(x, NAN)
            got = sr.softmax(x, temperature=t, out=out)
            assert got is out
            check_softmax(out, ref)
            assert (out[0, 16_384:32_768] == 0).all()
            assert out[1, 40_000] == 1 and out[1].sum() == 1
            inplace = x.copy()
            sr.softmax(inplace, temperature=t, out=inplace)
            wide = np.full((3, 2 * x.shape[1]), NAN, dtype)
            sr.softmax(x, temperature=t, out=wide[:, ::2])
            for other in (inplace, wide[:, ::2]):
                assert np.array_equal(other, out), (t, isa, threads)


#: Results of this many bytes or more are written with streaming stores (src/reduce.rs).
STREAM_MIN_BYTES = 1 << 24


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
@pytest.mark.parametrize("d", [16, 24, 40, 1500])
def test_streamed_results_match_small_calls_every_isa_and_thread_count(dtype: Any, d: int) -> None:
    """Short rows (d = 16; 24 and 40: two and three blocks of tile columns on AVX-512, the
    row path elsewhere for 40) of arrays of 16 MiB or more write their results from scratch
    with streaming stores (the window path, on ISAs without tiles, also copies its input in
    blocks); the row path (d = 1500) streams log_softmax's results in blocks of 1024 (one
    whole, one not), and softmax's not at all.
    Both must be bit-identical to the same rows computed in calls too small for that, on
    every ISA and thread count: into a new array, into an `out=` that starts off the 64-byte
    grid (the stores' head and tail), and in place. The input is left as it was."""
    dt = np.dtype(dtype)
    n = -(-STREAM_MIN_BYTES // (dt.itemsize * d))
    chunk = 1024  # rows: a multiple of the short path's 256-row blocks, far below the limit
    assert chunk * d * dt.itemsize < STREAM_MIN_BYTES
    x = (np.random.default_rng(9).standard_normal((n, d)) * 4).astype(dt)
    assert x.nbytes >= STREAM_MIN_BYTES
    x[7, 3] = -2000.0  # one row through the range-checked exp
    x0 = x.copy()
    for name in ("softmax", "log_softmax"):
        fn = SOFTMAX_FAMILY[name]
        want: dict[str, Any] = {}
        for isa, threads in each_config((1, 2)):
            if isa not in want:
                want[isa] = np.concatenate([fn(x[i : i + chunk]) for i in range(0, n, chunk)])
            w = want[isa]
            assert np.array_equal(fn(x), w), (name, isa, threads, "new array")
            buf = np.full(x.size + 1, np.nan, dt)
            out = buf[1:].reshape(x.shape)
            assert out.ctypes.data % 64 != 0
            assert fn(x, out=out) is out
            assert np.array_equal(out, w), (name, isa, threads, "offset out")
            assert np.isnan(buf[0])
            y = x.copy()
            fn(y, out=y)
            assert np.array_equal(y, w), (name, isa, threads, "in place")
            assert np.array_equal(x, x0)
    # logsumexp writes no rows: only the copy in.
    want_lse: dict[str, Any] = {}
    for isa, threads in each_config((1, 2)):
        if isa not in want_lse:
            parts = [sr.logsumexp(x[i : i + chunk]) for i in range(0, n, chunk)]
            want_lse[isa] = np.concatenate(parts)
        assert np.array_equal(sr.logsumexp(x), want_lse[isa]), (isa, threads)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
def test_rows_taken_ahead_match_single_rows_every_isa_and_thread_count(dtype: Any) -> None:
    """Rows of more than 4096 values (a task's worth in fewer than 8) go several to a task,
    each taking the maximum and minimum of the next during its exp pass. Beside rows with a
    NaN, +inf, all -inf, a value for the range-checked exp, one constant and one with its
    maximum last, every row must be bit-identical to the same row in a call of its own, on
    every ISA and thread count: into a new array, into ``out=``, and from a view whose rows
    lie apart. The input is left as it was."""
    dt = np.dtype(dtype)
    n, d = 13, 5000  # 19 blocks of 256 and a tail
    x = (np.random.default_rng(11).standard_normal((n, d)) * 4).astype(dt)
    x[2, 100] = np.nan
    x[3] = -np.inf
    x[4, 7] = np.inf
    x[6, 4999] = -2000.0
    x[8] = 1.5
    x[9, d - 1] = 50.0
    wide = np.zeros((n, d + 3), dt)
    wide[:, 1 : d + 1] = x
    view = wide[:, 1 : d + 1]
    x0 = x.copy()
    for name, fn in SOFTMAX_FAMILY.items():
        want: dict[str, Any] = {}
        for isa, threads in each_config((1, 2, 3)):
            if isa not in want:
                want[isa] = np.concatenate([fn(x[i : i + 1]) for i in range(n)])
            w = want[isa]
            assert np.array_equal(fn(x), w, equal_nan=True), (name, isa, threads)
            assert np.array_equal(fn(view), w, equal_nan=True), (name, isa, threads, "view")
            if name != "logsumexp":
                out = np.empty_like(x)
                assert fn(x, out=out) is out
                assert np.array_equal(out, w, equal_nan=True), (name, isa, threads, "out")
            assert np.array_equal(x, x0, equal_nan=True)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
def test_row_tails_after_whole_windows_every_isa(dtype: Any) -> None:
    """Rows that leave a tail of 1 to 15 values after whole vectors of 16, in the first
    block of 256 (rows of 33 to 49) and in a later one (289 to 305, 1000): the tail's terms
    come from the last whole vector, which overlaps terms already made. The maximum also
    sits in the tail, and the results keep the bounds on every ISA."""
    rng = np.random.default_rng(21)
    for n in [*range(33, 50), *range(289, 306), 1000]:
        x = (rng.standard_normal((3, n)) * 3).astype(dtype)
        x[1, -1] = x[1].max() + 1
        ref = Ref(x)
        for _isa, _threads in each_config((1,)):
            check_softmax_family(x, ref)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
def test_short_rows_of_every_length_every_isa_and_thread_count(dtype: Any) -> None:
    """Short rows laid end to end, 2 to 48 values (on AVX-512 tiles of 16 rows, with up to
    three blocks of 16 columns; elsewhere windows of 16 or 32 values, and the row path past
    32), and 49 (the row path everywhere) beside them: over 64K elements, so that the rows
    are split across threads and the last tile is partial. Beside random rows: one of ties
    only, one with a NaN, one with +inf, one of -inf only, one with a term for the
    range-checked exp, and the last with its maximum in its last column. softmax,
    log_softmax and logsumexp keep the bounds on every ISA, bit-identical on every thread
    count."""
    rng = np.random.default_rng(33)
    for d in range(2, 50):
        n = 70_000 // d + 5
        x = (rng.standard_normal((n, d)) * 4).astype(dtype)
        x[1] = x[1, 0]
        x[2, d // 2] = np.nan
        x[3, d - 1] = np.inf
        x[4] = -np.inf
        x[5, 0] = -1000.0
        x[-1, -1] = x[-1].max() + 1
        ref = Ref(x)
        for name, fn in SOFTMAX_FAMILY.items():
            for _ in checked_everywhere(name, partial(fn, x), ref):
                pass


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
@pytest.mark.parametrize("rows", [3000, 300])
def test_axis0_sums_are_blocked(dtype: Any, rows: int) -> None:
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((rows, 37)) * 3).astype(dtype)
    ref = Ref(x, 0)
    check_softmax_family(x, ref, axis=0)


#: f32 inputs of this many bytes or more take the column statistics in one read
#: (src/reduce/columns.rs).
ONE_READ_MIN_BYTES = 1 << 23


def _columns_whose_maxima_move(dtype: Any, d: int, w: int, seed: int) -> Array:
    """d rows of w >= 10 columns whose maxima and special values arrive late."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((d, w)) * 5).astype(dtype)
    x[:, 0] = np.linspace(-60, 60, d)  # a new maximum on every row
    x[:, 1] = np.linspace(60, -60, d)  # the maximum first
    x[: d // 2, 2] = -INF  # no finite value until the second half
    x[-500, 3] = INF
    x[d // 2 + 7, 4] = NAN
    x[:, 5] = -INF
    x[-1, 6] = 90.0  # the last row outgrows all the others' terms
    x[:, 7] = -200.0  # one term (e^0) and the rest underflow
    x[d // 3, 7] = 0.0
    x[::2, 8] = 2.5  # ties at the maximum throughout
    x[-1, 9] = -INF
    return x


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(53_000, 40), (3, 18_000, 40), (2048, 1100)], ids=str)
@pytest.mark.parametrize("t", [1.0, 0.3])
def test_columns_whose_maxima_move_every_isa_and_thread_count(
    dtype: Any, shape: tuple[int, ...], t: float
) -> None:
    """Over a strided axis, f32 inputs of 8 MiB or more take each column's statistics in
    one read: log_softmax and logsumexp block by block, rescaling the sums as the maximum
    grows, and merging chunks of rows (one lone tile) the same way; softmax by chunks of
    rows, each scaled by its own factor (f64, smaller inputs and softmax on stacked tiles,
    as (3, 18000, 40), find the maxima first). Maxima that grow on every row, arrive last,
    or never come (only -inf, +inf, NaN, each late) give results within the bounds,
    bit-identical across thread counts and in place."""
    d, w = shape[-2:]
    reps = int(np.prod(shape[:-2], dtype=np.int64))
    x = np.stack([_columns_whose_maxima_move(dtype, d, w, seed) for seed in range(reps)])
    x = x.reshape(shape)
    assert np.dtype(dtype) == FLOAT64 or x.nbytes >= ONE_READ_MIN_BYTES
    axis = len(shape) - 2
    ref = Ref(x, axis, temperature=t)
    for name, fn in SOFTMAX_FAMILY.items():
        call = partial(fn, x, axis=axis, temperature=t)
        for isa, threads, got in checked_everywhere(name, call, ref, (1, 3)):
            if name != "logsumexp":
                y = x.copy()
                fn(y, axis=axis, temperature=t, out=y)
                assert np.array_equal(y, got, equal_nan=True), (name, isa, threads, "in place")


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
@pytest.mark.parametrize("n", [64, 255, 1000, 5000])
@pytest.mark.parametrize("axis", [-1, 0])
def test_one_peak_over_a_flat_row(dtype: Any, n: int, axis: int) -> None:
    """[1, 0, 0, ..., 0]: n - 1 equal terms in the sum, along rows and along columns."""
    x = np.zeros((3, n), dtype)
    x[:, 0] = 1
    x[1] = x[1, ::-1]
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    ref = Ref(x, axis)
    check_softmax_family(x, ref, axis=axis)


# ------------------------------------------------------------------------------------------
# Axes
# ------------------------------------------------------------------------------------------
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
        elements=st.floats(-50, 50),
    ),
    st.data(),
)
def test_axis_spellings_agree(x: Array, data: st.DataObject) -> None:
    """An int, its negative, a permuted tuple and None name the same reduction."""
    axis = data.draw(axes_for(x.ndim))
    axes = normalize_axes(axis, x.ndim)
    spelled = data.draw(st.permutations(list(axes))).copy()
    spelled = [a - x.ndim if data.draw(st.booleans()) else a for a in spelled]
    for f in SOFTMAX_FAMILY.values():
        a, b = f(x, axis=axis), f(x, axis=tuple(spelled))
        np.testing.assert_allclose(a, b, rtol=8 * eps(np.float64), atol=0)
    if axis is None:
        np.testing.assert_array_equal(
            sr.softmax(x, axis=None), sr.softmax(x, axis=tuple(range(x.ndim)))
        )


def test_tuple_axis_is_a_joint_distribution() -> None:
    x = np.random.default_rng(3).standard_normal((3, 4, 5))
    got = sr.softmax(x, axis=(0, 2))
    np.testing.assert_allclose(got.sum(axis=(0, 2)), 1.0, rtol=1e-14)
    check_softmax(got, Ref(x, (0, 2)))
    flat = x.transpose(1, 0, 2).reshape(4, 15)
    np.testing.assert_allclose(
        got.transpose(1, 0, 2).reshape(4, 15), sr.softmax(flat, axis=-1), rtol=1e-14
    )
    lse = sr.logsumexp(x, axis=(0, 2))
    assert lse.shape == (4,)
    assert sr.logsumexp(x, axis=(0, 2), keepdims=True).shape == (1, 4, 1)
    check_logsumexp(lse, Ref(x, (0, 2)))


def test_axis_none_reduces_everything() -> None:
    x = np.random.default_rng(4).standard_normal((4, 6))
    got = sr.softmax(x, axis=None)
    assert got.shape == x.shape
    np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-14)
    lse = sr.logsumexp(x, axis=None)
    assert np.ndim(lse) == 0
    check_logsumexp(lse, Ref(x, None))
    assert sr.logsumexp(x, axis=None, keepdims=True).shape == (1, 1)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_size_one_axis(dtype: Any) -> None:
    """A one-entry row: softmax exactly 1, log_softmax exactly 0, logsumexp exactly x."""
    x = np.array([[-3.5], [0.0], [7.25], [-1e4]], dtype=dtype)
    np.testing.assert_array_equal(sr.softmax(x).astype(np.float64), 1.0)
    np.testing.assert_array_equal(sr.log_softmax(x).astype(np.float64), 0.0)
    np.testing.assert_array_equal(sr.logsumexp(x).astype(np.float64), x[:, 0].astype(np.float64))


def test_zero_dim_input_with_axis_none() -> None:
    assert float(sr.softmax(np.float64(3.0), axis=None)) == 1.0
    assert float(sr.log_softmax(np.float64(3.0), axis=None)) == 0.0
    assert float(sr.logsumexp(np.float64(3.0), axis=None)) == 3.0


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(
    ("shape", "axis"),
    [((3, 0), -1), ((0, 3), -1), ((0, 3), None), ((2, 0, 3), (0, 1)), ((0,), 0), ((4, 0), 1)],
)
def test_zero_length_axis(dtype: Any, shape: tuple[int, ...], axis: Axis) -> None:
    """A zero-length axis gives an empty result; logsumexp over no entries is -inf."""
    x = np.zeros(shape, dtype)
    for f in (sr.softmax, sr.log_softmax):
        got = f(x, axis=axis)
        assert got.shape == shape and got.dtype == result_dtype(dtype)
    ref = Ref(x, axis)
    lse = np.asarray(sr.logsumexp(x, axis=axis))
    check_logsumexp(lse, ref)
    axes = normalize_axes(axis, len(shape))
    if any(shape[a] == 0 for a in axes):
        assert np.all(lse == -np.inf)
    keep = np.asarray(sr.logsumexp(x, axis=axis, keepdims=True))
    assert keep.shape == tuple(1 if i in axes else n for i, n in enumerate(shape))


# ------------------------------------------------------------------------------------------
# Special values, one by one (API.md "Special values")
# ------------------------------------------------------------------------------------------
NAN, INF = np.nan, np.inf


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_special_value_table(dtype: Any) -> None:
    x = np.array(
        [
            [1.0, NAN, 2.0, 3.0],  # NaN anywhere: the whole row NaN
            [NAN, INF, -INF, 0.0],  # NaN beats inf
            [INF, 1.0, INF, -INF],  # +inf share the mass
            [1.0, 2.0, INF, 3.0],  # one +inf takes it all
            [-INF, -INF, -INF, -INF],  # no mass: NaN by default
            [-INF, 0.0, -INF, -INF],  # -inf entries get 0
            [-0.0, 0.0, -0.0, 0.0],  # signed zeros are equal
        ],
        dtype=dtype,
    )
    sm = sr.softmax(x).astype(np.float64)
    lsm = sr.log_softmax(x).astype(np.float64)
    lse = sr.logsumexp(x).astype(np.float64)
    assert np.isnan(sm[0]).all() and np.isnan(lsm[0]).all() and np.isnan(lse[0])
    assert np.isnan(sm[1]).all() and np.isnan(lsm[1]).all() and np.isnan(lse[1])
    np.testing.assert_array_equal(sm[2], [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(lsm[2], [-np.log(2), -INF, -np.log(2), -INF], rtol=eps(dtype))
    assert lse[2] == INF
    np.testing.assert_array_equal(sm[3], [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(lsm[3], [-INF, -INF, 0.0, -INF])
    assert lse[3] == INF
    assert np.isnan(sm[4]).all() and np.isnan(lsm[4]).all() and lse[4] == -INF
    np.testing.assert_array_equal(sm[5], [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(lsm[5], [-INF, 0.0, -INF, -INF])
    assert lse[5] == 0.0
    np.testing.assert_array_equal(sm[6], 0.25)
    np.testing.assert_allclose(lsm[6], -np.log(4), rtol=eps(dtype))
    np.testing.assert_allclose(lse[6], np.log(4), rtol=eps(dtype))
    ref = Ref(x)
    check_softmax_family(x, ref)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
def test_special_values_on_axis0_and_long_rows(dtype: Any) -> None:
    """The same rules on the column walk and on rows long enough to be split."""
    x = np.random.default_rng(6).standard_normal((5, 70_000)).astype(dtype)
    x[0, 12345] = NAN
    x[1, [7, 69_999]] = INF
    x[2] = -INF
    x[3, 40_000] = -INF
    for axis in (-1, 0):
        ref = Ref(x, axis)
        check_softmax_family(x, ref, axis=axis)
    got = sr.softmax(x)
    assert np.isnan(got[0]).all()
    assert got[1, 7] == 0.5 and got[1, 69_999] == 0.5 and got[1].sum() == 1.0
    assert np.isnan(got[2]).all()


# ------------------------------------------------------------------------------------------
# where= and empty_rows=
# ------------------------------------------------------------------------------------------
@st.composite
def masked_cases(draw: st.DrawFn) -> tuple[Array, Axis, Array]:
    dtype = draw(st.sampled_from([*FLOAT_DTYPES, np.dtype(np.int16)]))
    shape = draw(shapes())
    x = draw(values(shape, dtype, specials=dtype in FLOAT_DTYPES))
    axis = draw(axes_for(len(shape)))
    # A mask of the full shape, or one that broadcasts (1-length axes, fewer dims).
    mshape = tuple(n if draw(st.booleans()) else 1 for n in shape)
    mshape = mshape[draw(st.integers(0, len(mshape))) :]
    where = draw(hnp.arrays(np.bool_, mshape))
    return x, axis, where


@given(masked_cases(), st.sampled_from([None, "nan", "zero"]))
def test_where_matches_reference(case: tuple[Array, Axis, Array], empty_rows: EmptyRows) -> None:
    """Excluded entries take no part (a NaN or inf there is ignored): softmax 0 and
    log_softmax -inf there; logsumexp ignores them; rows with no mass follow empty_rows."""
    x, axis, where = case
    ref = Ref(x, axis, where=where, empty_rows=empty_rows)
    check_softmax(sr.softmax(x, axis=axis, where=where, empty_rows=empty_rows), ref)
    check_log_softmax(sr.log_softmax(x, axis=axis, where=where, empty_rows=empty_rows), ref)
    check_logsumexp(sr.logsumexp(x, axis=axis, where=where), ref)


def test_where_excluded_entries() -> None:
    x = np.array([[1.0, NAN, 2.0, INF], [5.0, 1.0, 3.0, 0.0]])
    w = np.array([True, False, True, False])
    sm = sr.softmax(x, where=w)
    np.testing.assert_array_equal(sm[:, [1, 3]], 0.0)
    np.testing.assert_allclose(sm[0, [0, 2]], sr.softmax([1.0, 2.0]), rtol=4e-16)
    np.testing.assert_allclose(sm[1, [0, 2]], sr.softmax([5.0, 3.0]), rtol=4e-16)
    lsm = sr.log_softmax(x, where=w)
    np.testing.assert_array_equal(lsm[:, [1, 3]], -INF)
    np.testing.assert_allclose(lsm[0, [0, 2]], sr.log_softmax([1.0, 2.0]), rtol=4e-16)
    np.testing.assert_allclose(
        sr.logsumexp(x, where=w),
        [sr.logsumexp([1.0, 2.0]), sr.logsumexp([5.0, 3.0])],
        rtol=4e-16,
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_empty_rows(dtype: Any) -> None:
    """All -inf: NaN by default; fully excluded: 0 / -inf by default; "nan" and "zero" force
    one of the two for both kinds; logsumexp of both is -inf."""
    x = np.array([[-INF, -INF, -INF], [1.0, 2.0, 3.0], [0.0, 1.0, 2.0]], dtype=dtype)
    w = np.array([[True], [False], [True]])
    f64 = np.float64
    sm = {e: sr.softmax(x, where=w, empty_rows=e).astype(f64) for e in (None, "nan", "zero")}
    lsm = {e: sr.log_softmax(x, where=w, empty_rows=e).astype(f64) for e in (None, "nan", "zero")}
    assert np.isnan(sm[None][0]).all() and np.isnan(lsm[None][0]).all()
    np.testing.assert_array_equal(sm[None][1], 0.0)
    np.testing.assert_array_equal(lsm[None][1], -INF)
    assert np.isnan(sm["nan"][:2]).all() and np.isnan(lsm["nan"][:2]).all()
    np.testing.assert_array_equal(sm["zero"][:2], 0.0)
    np.testing.assert_array_equal(lsm["zero"][:2], -INF)
    for e in (None, "nan", "zero"):  # rows with mass are unaffected
        np.testing.assert_array_equal(sm[e][2], sm[None][2])
        assert np.isfinite(sm[e][2]).all()
    np.testing.assert_array_equal(sr.logsumexp(x, where=w).astype(f64)[:2], -INF)
    # without where=, too
    np.testing.assert_array_equal(sr.softmax(x[:1], empty_rows="zero").astype(f64), 0.0)
    assert np.isnan(sr.softmax(x[:1], empty_rows="nan").astype(f64)).all()
    np.testing.assert_array_equal(sr.log_softmax(x[:1], empty_rows="zero").astype(f64), -INF)


def test_empty_rows_on_axis0() -> None:
    x = np.zeros((4, 3))
    x[:, 1] = -INF
    w = np.ones((4, 3), bool)
    w[:, 2] = False
    got = sr.softmax(x, axis=0, where=w)
    np.testing.assert_array_equal(got[:, 0], 0.25)
    assert np.isnan(got[:, 1]).all()
    np.testing.assert_array_equal(got[:, 2], 0.0)
    got = sr.softmax(x, axis=0, where=w, empty_rows="zero")
    np.testing.assert_array_equal(got[:, 1:], 0.0)


# ------------------------------------------------------------------------------------------
# temperature=
# ------------------------------------------------------------------------------------------
temperatures = st.floats(0.05, 20.0)


@given(cases(dtypes=ALL_DTYPES), temperatures)
def test_scalar_temperature(case: tuple[Array, Axis], t: float) -> None:
    """Every function computes on x / T (exactly, within the usual bounds)."""
    x, axis = case
    ref = Ref(x, axis, temperature=t)
    check_softmax(sr.softmax(x, axis=axis, temperature=t), ref)
    check_log_softmax(sr.log_softmax(x, axis=axis, temperature=t), ref)
    check_logsumexp(sr.logsumexp(x, axis=axis, temperature=t), ref)


@pytest.mark.parametrize("dtype", WIDE_DTYPES, ids=str)
def test_temperature_accuracy_far_from_max(dtype: Any) -> None:
    """softmax(x, temperature=T) keeps the bound when (x - max) / T is large: the shift and the
    division by T must not be rounded before the exponential."""
    lo = -85.0 if dtype == np.float32 else -700.0
    rng = np.random.default_rng(7)
    t = np.array([0.3, 0.7, 1.3, 2.9])[:, None]
    x = (rng.uniform(lo, 0, (4, 500)) * t).astype(dtype)
    for temp in (t, 0.7, 2.9):
        ref = Ref(x, temperature=temp)
        check_softmax(sr.softmax(x, temperature=temp), ref)
        check_log_softmax(sr.log_softmax(x, temperature=temp), ref)


@st.composite
def per_row_temperatures(draw: st.DrawFn) -> tuple[Array, Axis, Array]:
    dtypes: list[np.dtype[Any]] = [FLOAT32, FLOAT64, FLOAT16]
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(shapes(min_dims=2))
    x = draw(values(shape, dtype))
    axis = draw(st.one_of(st.integers(-len(shape), len(shape) - 1), axes_for(len(shape))))
    axes = normalize_axes(axis, len(shape))
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    dropped = tuple(n for i, n in enumerate(shape) if i not in axes)
    form = draw(st.sampled_from(["kept", "dropped", "broadcast"]))
    tshape = {
        "kept": kept,
        "dropped": dropped,
        "broadcast": tuple(1 if draw(st.booleans()) else n for n in dropped),
    }[form]
    t = draw(hnp.arrays(np.float64, tshape, elements=st.floats(0.05, 20.0)))
    return x, axis, t


@given(per_row_temperatures())
def test_per_row_temperature(case: tuple[Array, Axis, Array]) -> None:
    """One temperature per row, with the reduced axes kept or dropped (or broadcasting)."""
    x, axis, t = case
    ref = Ref(x, axis, temperature=t)
    check_softmax(sr.softmax(x, axis=axis, temperature=t), ref)
    check_log_softmax(sr.log_softmax(x, axis=axis, temperature=t), ref)
    check_logsumexp(sr.logsumexp(x, axis=axis, temperature=t), ref)
    check_logsumexp(sr.logsumexp(x, axis=axis, temperature=t, keepdims=True), ref, True)


def test_per_row_temperature_values() -> None:
    x = np.array([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0], [4.0, 0.0, 8.0]])
    t = np.array([1.0, 2.0, 0.5])
    want = np.stack([sr.softmax(x[i] / t[i]) for i in range(3)])
    np.testing.assert_allclose(sr.softmax(x, temperature=t), want, rtol=4e-16)
    np.testing.assert_allclose(sr.softmax(x, temperature=t[:, None]), want, rtol=4e-16)
    assert not np.allclose(sr.softmax(x, temperature=t[::-1]), want)
    # axis 0: one temperature per column
    np.testing.assert_allclose(sr.softmax(x.T, axis=0, temperature=t), want.T, rtol=4e-16)
    np.testing.assert_allclose(
        sr.logsumexp(x, temperature=t),
        [sr.logsumexp(x[i] / t[i]) for i in range(3)],
        rtol=4e-16,
    )


# ------------------------------------------------------------------------------------------
# out=
# ------------------------------------------------------------------------------------------
def check_family(name: str, got: Any, ref: Ref) -> None:
    if name == "softmax":
        check_softmax(got, ref)
    else:
        check_log_softmax(got, ref)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_out_is_returned_and_filled(name: str, dtype: Any) -> None:
    """out of any strides (contiguous, stepped and reversed, transposed) is filled and
    returned. (Its values need not be bit-identical to a fresh result's: the bound holds.)"""
    f = SOFTMAX_FAMILY[name]
    x = (np.random.default_rng(8).standard_normal((5, 7)) * 4).astype(dtype)
    ref = Ref(x)
    for out in (
        np.full((5, 7), np.nan, dtype),
        np.full((10, 14), np.nan, dtype)[::2, ::-2],
        np.full((7, 5), np.nan, dtype).T,
    ):
        r = f(x, out=out)
        assert r is out
        check_family(name, out, ref)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0,), (2, 0, 4)])
def test_out_empty(name: str, shape: tuple[int, ...]) -> None:
    """An empty out (NumPy gives it zero strides) is a valid out."""
    f = SOFTMAX_FAMILY[name]
    x = np.zeros(shape)
    out = np.empty(shape)
    assert f(x, out=out) is out


@pytest.mark.parametrize("name", ["logsumexp", "argmax"])
@pytest.mark.parametrize(
    ("shape", "axis", "keepdims"),
    [((1, 8, 0), 0, False), ((2, 0, 3), -1, False), ((0, 3), -1, True), ((3, 0), 0, True)],
)
def test_reduction_out_empty(name: str, shape: tuple[int, ...], axis: int, keepdims: bool) -> None:
    """An empty out of a reduction (here with zero strides) is a valid out."""
    f = sr.argmax if name == "argmax" else sr.logsumexp
    x = np.zeros(shape)
    want = np.asarray(f(x, axis=axis, keepdims=keepdims))
    out = np.empty(want.shape, want.dtype)
    assert f(x, axis=axis, keepdims=keepdims, out=out) is out


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0, None, (0, 1)])
def test_out_is_x_in_place(name: str, axis: Axis) -> None:
    f = SOFTMAX_FAMILY[name]
    x = np.random.default_rng(9).standard_normal((6, 9, 4))
    ref = Ref(x.copy(), axis)
    r = f(x, axis=axis, out=x)
    assert r is x
    check_family(name, x, ref)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize(
    "make_out",
    [
        pytest.param(lambda b: (b[:-1], b[1:]), id="shifted-by-one"),
        pytest.param(lambda b: (b[1:], b[:-1]), id="shifted-back"),
        pytest.param(lambda b: (b[:-1], b[:-1][::-1]), id="reversed"),
        pytest.param(
            lambda b: (b[: (len(b) - 1) // 2 * 2 : 2], b[1::2][: (len(b) - 1) // 2]),
            id="interleaved",
        ),
    ],
)
def test_out_overlapping_x(name: str, make_out: Any) -> None:
    """Any overlap of out with x still gives the result of the original x."""
    f = SOFTMAX_FAMILY[name]
    for n in (7, 40, 70_001):
        buf = np.random.default_rng(n).standard_normal(n + 1)
        x, out = make_out(buf)
        x2, out2 = x.reshape(1, -1), out.reshape(1, -1)
        ref = Ref(x2.copy())
        r = f(x2, out=out2)
        assert r is out2
        check_family(name, out2, ref)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_out_is_transpose_of_x(name: str, axis: int) -> None:
    """out = x.T: same memory, elements permuted."""
    f = SOFTMAX_FAMILY[name]
    x = np.random.default_rng(10).standard_normal((33, 33))
    ref = Ref(x.copy(), axis)
    out = x.T
    assert f(x, axis=axis, out=out) is out
    check_family(name, out, ref)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_out(dtype: Any, keepdims: bool) -> None:
    x = (np.random.default_rng(11).standard_normal((4, 6, 5)) * 3).astype(dtype)
    for axis in (-1, 1, (0, 2)):
        want = sr.logsumexp(x, axis=axis, keepdims=keepdims)
        out = np.full(np.shape(want), np.nan, dtype)
        assert sr.logsumexp(x, axis=axis, keepdims=keepdims, out=out) is out
        np.testing.assert_array_equal(out.astype(np.float64), np.asarray(want, np.float64))
        check_logsumexp(out, Ref(x, axis), keepdims)
    out0 = np.full((), np.nan, dtype)
    assert sr.logsumexp(x, axis=None, out=out0) is out0
    check_logsumexp(out0, Ref(x, None))


@pytest.mark.parametrize("dtype", [FLOAT32, FLOAT64], ids=str)
def test_logsumexp_of_many_rows_is_each_rows_own(dtype: Any) -> None:
    """Long rows take their logs in batches of 16: 53 rows (batches cut anywhere by the
    thread's share), beside rows of non-finite values, each get the bits of the row alone,
    within the bound, on every ISA and thread count."""
    x = (np.random.default_rng(5).standard_normal((53, 100)) * 4).astype(dtype)
    x[5, 3], x[16], x[17, 50], x[30, 7] = np.inf, -np.inf, np.nan, 1e3
    x[41] = x[40]
    for _isa, _threads in each_config():
        got = sr.logsumexp(x, axis=-1)
        alone = np.array([sr.logsumexp(row) for row in x], dtype)
        np.testing.assert_array_equal(got, alone)
        check_logsumexp(got, Ref(x, -1))


def test_logsumexp_out_strided_and_overlapping() -> None:
    x = np.random.default_rng(12).standard_normal((8, 16))
    want = sr.logsumexp(x)
    big = np.full(24, np.nan)
    out = big[::-3]
    assert sr.logsumexp(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    # out is the first column of x itself
    xx = x.copy()
    col = xx[:, 0]
    assert sr.logsumexp(xx, out=col) is col
    check_logsumexp(col, Ref(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_with_dtype(dtype: Any) -> None:
    x = np.random.default_rng(13).standard_normal((3, 5)).astype(np.float16)
    out = np.empty((3, 5), dtype)
    assert sr.softmax(x, dtype=dtype, out=out) is out
    check_softmax(out, Ref(x, dtype=dtype))


def test_out_with_where_and_temperature() -> None:
    x = np.random.default_rng(14).standard_normal((6, 10))
    w = np.random.default_rng(15).random((6, 10)) > 0.3
    t = np.linspace(0.5, 3, 6)
    out = np.empty((10, 6)).T
    ref = Ref(x, where=w, temperature=t, empty_rows="zero")
    r = sr.softmax(x, where=w, temperature=t, empty_rows="zero", out=out)
    assert r is out
    check_softmax(out, ref)


@given(cases(dtypes=ALL_DTYPES), st.sampled_from(["softmax", "log_softmax"]))
def test_out_of_any_layout(case: tuple[Array, Axis], name: str) -> None:
    """A transposed out for any input (empty ones: test_out_empty)."""
    x, axis = case
    assume(x.size > 0)
    f = SOFTMAX_FAMILY[name]
    ref = Ref(x, axis)
    out = np.full(x.shape[::-1], np.nan, ref.result_dtype).T
    assert f(x, axis=axis, out=out) is out
    check_family(name, out, ref)


@st.composite
def overlapping(draw: st.DrawFn) -> tuple[Array, Array, Array, Axis]:
    """x and out as views of one buffer, overlapping in any way (out's own elements
    distinct)."""
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(1, 40))
    n = rows * cols
    step = draw(st.integers(1, 3))
    size = n * step + draw(st.integers(0, n))
    buf = (np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(size) * 5).astype(
        dtype
    )
    xo = draw(st.integers(0, size - (n - 1) * step - 1))
    x = buf[xo : xo + (n - 1) * step + 1 : step].reshape(rows, cols)
    oo = draw(st.integers(0, size - n))
    out = buf[oo : oo + n].reshape(rows, cols)
    if draw(st.booleans()):
        x = x[::-1, ::-1]
    if draw(st.booleans()):
        out = out[::-1]
    axis = draw(st.sampled_from([-1, 0, None]))
    return buf, x, out, axis


@given(overlapping(), st.sampled_from(["softmax", "log_softmax"]))
def test_out_overlapping_any_way(case: tuple[Array, Array, Array, Axis], name: str) -> None:
    _buf, x, out, axis = case
    ref = Ref(x.copy(), axis)
    assert SOFTMAX_FAMILY[name](x, axis=axis, out=out) is out
    check_family(name, out, ref)


@given(overlapping(), st.booleans())
def test_logsumexp_out_overlapping(case: tuple[Array, Array, Array, Axis], keepdims: bool) -> None:
    buf, x, _out, axis = case
    ref = Ref(x.copy(), axis)
    shape = np.shape(ref.logsumexp(keepdims))
    k = int(np.prod(shape))
    out = buf[-k:][::-1].reshape(shape) if k else buf[:0].reshape(shape)
    assert np.shares_memory(out, buf) or k == 0
    got = sr.logsumexp(x, axis=axis, keepdims=keepdims, out=out)
    assert got is out
    check_logsumexp(out, ref, keepdims)


# ------------------------------------------------------------------------------------------
# The checks themselves bite
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_checks_reject_wrong_results(dtype: Any) -> None:
    """The bounds used above are tight enough to catch a result a few ulps (or one narrow ulp)
    too far, a NaN or a wrong zero."""
    x = (np.random.default_rng(0).standard_normal((4, 50)) * 3).astype(dtype)
    ref = Ref(x)
    good = sr.softmax(x)
    check_softmax(good, ref)
    e = eps(dtype)
    factor = 1 + (3 * e if dtype in (FLOAT16, np.dtype(BFLOAT16)) else 12 * e)
    bad = (good.astype(np.float64) * factor).astype(dtype)
    with pytest.raises(AssertionError):
        check_softmax(bad, ref)
    bad = good.copy()
    bad[1, 3] = np.nan
    with pytest.raises(AssertionError, match="NaN"):
        check_softmax(bad, ref)
    lsm = sr.log_softmax(x)
    check_log_softmax(lsm, ref)
    with pytest.raises(AssertionError):
        check_log_softmax((lsm.astype(np.float64) * factor).astype(dtype), ref)
    lse = sr.logsumexp(x)
    check_logsumexp(lse, ref)
    with pytest.raises(AssertionError):
        check_logsumexp((lse.astype(np.float64) * (1 + 40 * e)).astype(dtype), ref)
    with pytest.raises(AssertionError, match="dtype"):
        check_softmax(good.astype(np.float64) if dtype != np.float64 else good.astype("f4"), ref)
