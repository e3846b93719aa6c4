"""argmax: np.argmax's exact results on every real dtype, ties, NaN, ±inf, ±0, axis int or
None, keepdims and out=."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import (
    ALL_DTYPES,
    BFLOAT16,
    FLOAT_DTYPES,
    check_argmax,
    each_config,
    ref_argmax,
    shapes,
    values,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Array = npt.NDArray[Any]


def _as_scalar(dtype: np.dtype[Any], v: int) -> Any:
    return np.asarray(v).astype(dtype)[()]


@st.composite
def argmax_cases(draw: st.DrawFn) -> tuple[Array, int | None, bool]:
    dtype = draw(st.sampled_from(ALL_DTYPES))
    shape = draw(shapes())
    if dtype in FLOAT_DTYPES:
        x = draw(values(shape, dtype, specials=draw(st.booleans())))
    elif draw(st.booleans()):
        # few distinct values: many ties
        lo = 0 if dtype.kind in "ub" else -2
        x = draw(
            hnp.arrays(
                dtype,
                shape,
                elements=st.integers(lo, 2 if dtype.kind != "b" else 1).map(
                    partial(_as_scalar, dtype)
                ),
            )
        )
    else:
        x = draw(values(shape, dtype))
    ax = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keepdims = draw(st.booleans())
    return x, ax, keepdims


@given(argmax_cases())
def test_argmax_matches_numpy(case: tuple[Array, int | None, bool]) -> None:
    x, axis, keepdims = case
    if x.size == 0 and (axis is None or x.shape[axis] == 0):
        with pytest.raises(ValueError, match="empty"):
            sr.argmax(x, axis=axis, keepdims=keepdims)
        return
    check_argmax(sr.argmax(x, axis=axis, keepdims=keepdims), x, axis, keepdims)


@given(argmax_cases())
def test_argmax_out(case: tuple[Array, int | None, bool]) -> None:
    x, axis, keepdims = case
    if x.size == 0 and (axis is None or x.shape[axis] == 0):
        return
    want = ref_argmax(x, axis=axis, keepdims=keepdims)
    shape = np.shape(want)
    if np.size(want) == 0:
        return  # an empty out: test_softmax.test_reduction_out_empty
    # a strided, reversed out
    big = np.full(tuple(2 * n for n in shape), -7, np.intp)
    out = big[tuple(slice(None, None, -2) for _ in shape)] if shape else big
    assert sr.argmax(x, axis=axis, keepdims=keepdims, out=out) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_argmax_special_values(dtype: Any) -> None:
    nan, inf = np.nan, np.inf
    rows = [
        [1.0, nan, 3.0, nan],  # the first NaN wins over everything
        [inf, nan, 1.0, 2.0],
        [-inf, -inf, -inf, -inf],  # all equal: index 0
        [-0.0, 0.0, -0.0, 0.0],  # ±0 are equal: the first
        [0.0, -0.0, 0.0, -0.0],
        [1.0, inf, inf, 2.0],  # first maximum wins
        [2.0, 5.0, 5.0, 5.0],
        [-inf, -1e4, -inf, -1e4],
    ]
    x = np.array(rows).astype(dtype)
    got = sr.argmax(x)
    np.testing.assert_array_equal(got, [1, 1, 0, 0, 0, 1, 1, 1])
    check_argmax(got, x)
    check_argmax(sr.argmax(x, axis=0), x, 0)
    check_argmax(sr.argmax(x, axis=None), x, None)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("n", [1, 7, 16, 33, 1000, 70_001])
def test_argmax_extremes_and_ties_in_long_rows(dtype: Any, n: int) -> None:
    """The maximum (tied at two places) anywhere in rows of every length: the first wins."""
    dt = np.dtype(dtype)
    if dt in FLOAT_DTYPES:
        lo, hi = -np.inf if dt != BFLOAT16 else -3e38, 1e4
    elif dt.kind == "b":
        lo, hi = False, True
    else:
        lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
    for pos in sorted({0, n // 3, n - 1}):
        x = np.full((3, n), lo).astype(dt)
        x[:, pos] = hi
        if pos + 5 < n:
            x[:, pos + 5] = hi
        x[1] = x[1, ::-1]
        check_argmax(sr.argmax(x), x)
        check_argmax(sr.argmax(x, axis=None), x, None)
        check_argmax(sr.argmax(x.T, axis=0), x.T, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8, np.int64])
def test_argmax_short_rows_every_isa_and_thread_count(dtype: Any) -> None:
    """Short rows laid end to end are read as fixed windows that run into the next rows,
    or (AVX-512, floats, up to 32) as tiles of 16 rows, those holding a NaN (or +inf and
    -inf in one row) taking a second form: every length up to 32, with ties, NaN and ±inf
    (many tiles hold none), on every ISA and thread count (over 64K elements, so that the
    rows are split across threads)."""
    rng = np.random.default_rng(7)
    for d in range(1, 34):
        x = rng.integers(-20, 20, size=(70_000 // d + 3, d)).astype(dtype)
        if np.dtype(dtype).kind == "f":
            flat = x.reshape(-1)
            for v, every in ((np.nan, 997), (np.inf, 389), (-np.inf, 211)):
                flat[rng.integers(0, flat.size, flat.size // every)] = v
        want = np.argmax(x, axis=-1)
        for isa, n in each_config():
            got = sr.argmax(x, axis=-1)
            assert np.array_equal(got, want), (d, isa, n, np.flatnonzero(got != want)[:5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("d", [5, 16, 24, 32])
def test_argmax_short_rows_of_large_inputs_from_memory(dtype: Any, d: int) -> None:
    """Short rows of inputs of 16 MiB or more (src/argmax.rs, FROM_MEMORY_BYTES) are copied
    in blocks of about 4096 values, d not dividing the block, or read by tiles (d <= 32,
    f32 and f64) that prefetch a page ahead, past the end of the input at the last tile:
    ties, NaN and ±inf, on every ISA and thread count. The input is left as it was."""
    dt = np.dtype(dtype)
    n = -(-(1 << 24) // (dt.itemsize * d))
    rng = np.random.default_rng(13)
    x = rng.integers(0, 20, size=(n, d)).astype(dt)
    if dt.kind == "f":
        flat = x.reshape(-1)
        for v, every in ((np.nan, 9973), (np.inf, 3889), (-np.inf, 2111)):
            flat[rng.integers(0, flat.size, flat.size // every)] = v
    x0 = x.copy()
    want = np.argmax(x, axis=-1)
    for isa, threads in each_config((1, 2)):
        got = sr.argmax(x, axis=-1)
        assert np.array_equal(got, want), (d, isa, threads, np.flatnonzero(got != want)[:5])
    assert np.array_equal(x, x0, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int64])
def test_argmax_long_rows_every_isa_and_thread_count(dtype: Any) -> None:
    """Long rows, read once in blocks with a ragged tail read as an overlapping chunk: ties
    (few distinct values), NaN and ±inf anywhere, on every ISA and thread count."""
    rng = np.random.default_rng(11)
    for d in (64, 65, 127, 1000, 4097, 65_536 + 63, 65_536 + 64, 140_001):
        x = rng.integers(-50, 50, size=(max(2, 300_000 // d), d)).astype(dtype)
        if np.dtype(dtype).kind == "f":
            x[0, rng.integers(0, d, 3)] = np.nan
            x[1, rng.integers(0, d, 2)] = np.inf
            x[-1, -1] = np.nan
        else:
            x[1, -1] = np.iinfo(dtype).max
        want = np.argmax(x, axis=-1)
        for isa, n in each_config():
            got = sr.argmax(x, axis=-1)
            assert np.array_equal(got, want), (d, isa, n, np.flatnonzero(got != want)[:5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8])
def test_argmax_axis0_lone_tile_cut_into_chunks(dtype: Any) -> None:
    """Few columns over a long axis 0 are cut into chunks of rows on more than one thread
    (here 9 of 8192 rows; src/argmax.rs), merged in order: the first maximum, or the first
    NaN, wins across chunk boundaries, on every ISA and thread count."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(17)
    x = rng.integers(0, 50, size=(70_000, 8)).astype(dt)
    top = np.iinfo(dt).max if dt.kind in "iu" else 1000
    x[:, 0] = 7  # all tied: the first row
    x[[10_000, 60_000], 1] = top  # tied in two chunks
    x[69_999, 2] = top  # the last row only
    x[[8191, 8192], 3] = top  # tied across a chunk boundary
    if dt.kind == "f":
        x[20_000, 4] = np.inf
        x[[50_000, 65_000], 4] = np.nan  # NaN in later chunks beats +inf
        x[:, 5] = -np.inf
    want = np.argmax(x, axis=0)
    assert list(want[:4]) == [0, 10_000, 69_999, 8191]
    for isa, n in each_config():
        got = sr.argmax(x, axis=0)
        assert np.array_equal(got, want), (isa, n, got, want)


def test_argmax_nan_in_long_row_and_axis0() -> None:
    x = np.zeros((3, 100_000), np.float32)
    x[0, 99_000] = np.nan
    x[0, 99_500] = np.inf
    x[1, 50] = np.inf
    x[2, [10, 20]] = np.nan
    np.testing.assert_array_equal(sr.argmax(x), [99_000, 50, 10])
    check_argmax(sr.argmax(np.ascontiguousarray(x.T), axis=0), np.ascontiguousarray(x.T), 0)


def test_argmax_keepdims_and_none() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    for axis in (0, 1, 2, -1, None):
        for keepdims in (False, True):
            check_argmax(sr.argmax(x, axis=axis, keepdims=keepdims), x, axis, keepdims)
    assert sr.argmax(x, axis=1, keepdims=True).shape == (3, 1, 5)
    assert sr.argmax(x, axis=None, keepdims=True).shape == (1, 1, 1)


def test_argmax_of_a_vector_is_a_scalar_like_numpy() -> None:
    """np.argmax of a 1-d input is an np.intp scalar, not a 0-d array (with the default axis
    -1 as with axis=None)."""
    v = np.array([1.0, 3.0, 2.0])
    for axis in (-1, 0, None):
        got, want = sr.argmax(v, axis=axis), np.argmax(v, axis=axis)
        assert type(got) is type(want), (axis, type(got), type(want))
        assert got == want


def test_argmax_dtype_is_intp() -> None:
    for dt in ALL_DTYPES:
        x = np.zeros((2, 3), dt)
        assert sr.argmax(x).dtype == np.intp
        assert np.asarray(sr.argmax(x, axis=None)).dtype == np.intp
