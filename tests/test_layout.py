"""Strided inputs: transposed, permuted, stepped, reversed, broadcast (zero strides),
unaligned and byte-swapped views are read in place, give the reference result and are never
written."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import (
    ALL_DTYPES,
    ALL_OPS,
    FLOAT_DTYPES,
    LAYOUTS,
    SOFTMAX_FAMILY,
    Axis,
    buffer_bytes,
    cases,
    check_op,
    isas,
    layout_variants,
    snapshot,
    stepped,
    using_isa,
)
from hypothesis import given
from hypothesis import strategies as st

Array = npt.NDArray[Any]


def _argmax_axis(axis: Axis, ndim: int) -> int | None:
    return axis if isinstance(axis, int) or axis is None else axis[0]


def _argmax_defined(x: Array, axis: int | None) -> bool:
    return x.size > 0 and (axis is None or x.shape[axis] > 0)


def run_all_ops(x: Array, axis: Axis, keepdims: bool = False) -> None:
    """Each op on ``x``: the reference result, and ``x`` (its whole buffer) untouched."""
    before = buffer_bytes(x)
    view_before = snapshot(x)
    for name, f in ALL_OPS.items():
        if name == "argmax":
            ax = _argmax_axis(axis, x.ndim)
            if not _argmax_defined(x, ax):
                continue
            check_op(name, f(x, axis=ax, keepdims=keepdims), x, ax, keepdims=keepdims)
        elif name == "logsumexp":
            check_op(name, f(x, axis=axis, keepdims=keepdims), x, axis, keepdims=keepdims)
        else:
            check_op(name, f(x, axis=axis), x, axis)
        assert buffer_bytes(x) == before, f"{name} wrote to its input"
        assert snapshot(x) == view_before


@given(cases(specials=True), st.booleans())
def test_every_layout_matches_reference(case: tuple[Array, Axis], keepdims: bool) -> None:
    x, axis = case
    for _name, v in layout_variants(x):
        run_all_ops(v, axis, keepdims)


@given(cases(dtypes=FLOAT_DTYPES))
def test_every_layout_gives_the_same_values(case: tuple[Array, Axis]) -> None:
    """Views holding the same values as a contiguous array give results within the bound of
    the same reference (broadcast views excepted: they hold other values)."""
    x, axis = case
    for name, v in layout_variants(x):
        if name.startswith("broadcast"):
            continue
        assert np.array_equal(np.asarray(v, np.float64), np.asarray(x, np.float64), equal_nan=True)
        check_op("softmax", sr.softmax(v, axis=axis), x, axis)
        check_op("log_softmax", sr.log_softmax(v, axis=axis), x, axis)


@pytest.mark.parametrize("isa", isas())
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_layouts_on_every_isa(isa: str, layout: str, dtype: Any) -> None:
    """Fixed shapes covering short rows, long rows, and axis 0, on each ISA."""
    rng = np.random.default_rng(0)
    with using_isa(isa):
        for shape, axes in (
            ((9, 40), (-1, 0, None)),
            ((3, 5, 17), (1, (0, 2))),
            ((2, 1100), (-1,)),
        ):
            base = rng.standard_normal(shape) * 6
            dt = np.dtype(dtype)
            x = (
                base.astype(dt)
                if dt.kind == "f" or dt in FLOAT_DTYPES
                else ((base * 10).astype(np.int64).astype(dt) if dt.kind != "b" else base > 0)
            )
            v = LAYOUTS[layout](x)
            for axis in axes:
                run_all_ops(v, axis)


@pytest.mark.parametrize("name", sorted(SOFTMAX_FAMILY))
def test_large_transposed_and_sliced(name: str) -> None:
    """Views big enough to be split across threads (rows and columns)."""
    rng = np.random.default_rng(1)
    base = rng.standard_normal((700, 300)).astype(np.float32)
    for v, axis in (
        (base.T, -1),
        (base.T, 0),
        (base[::-2, 1::3], -1),
        (base[::3, ::-1], 0),
        (np.broadcast_to(base[:1], (500, 300)), -1),
    ):
        before = buffer_bytes(v)
        check_op(name, SOFTMAX_FAMILY[name](v, axis=axis), v, axis)
        assert buffer_bytes(v) == before


def test_where_and_temperature_as_views() -> None:
    """where= and temperature arrays may themselves be strided, broadcast or reversed."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 11))
    w = stepped(rng.random((6, 11)) > 0.3)[::-1]
    t = stepped(rng.uniform(0.5, 2, 6))[::-1]
    for where, temp in ((w, t), (w.T.T, t[:, None]), (np.broadcast_to(w[:1], w.shape), 2.0)):
        for name in ("softmax", "log_softmax", "logsumexp"):
            check_op(
                name,
                SOFTMAX_FAMILY[name](x, where=where, temperature=temp),
                x,
                where=where,
                temperature=temp,
            )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_byteswapped_out(dtype: Any) -> None:
    """A writable non-native out of the result dtype is not the result dtype: it is rejected
    or filled correctly, never silently garbled."""
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(dtype)
    out = np.zeros((4, 9), np.dtype(dtype).newbyteorder())
    try:
        r = sr.softmax(x, out=out)
    except TypeError:
        return
    assert r is out
    check_op("softmax", np.asarray(out, dtype=dtype), x)
