"""Shared test material: hypothesis profiles, an independent extended-precision reference,
accuracy checks with named ULP bounds, strided-view variants and ISA/thread sweeps.

The reference here is written from the definitions, not from ``softmax_rs.reference``: it
computes in ``np.longdouble`` (80-bit on x86-64) and uses ``log1p`` of the sum without the
maximum's term, so it is accurate to well below one float64 ulp where the bounds are checked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import ml_dtypes
import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from softmax_rs import _core

Array = npt.NDArray[Any]
Axis = int | tuple[int, ...] | None
EmptyRows = Literal["nan", "zero"] | None

# --------------------------------------------------------------------------------------------
# Hypothesis profiles: `fast` by default (the whole suite in about a minute on two cores),
# `ci` and `slow` for more examples. Pick one with HYPOTHESIS_PROFILE.
# --------------------------------------------------------------------------------------------
_COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("fast", max_examples=30, **_COMMON)
settings.register_profile("ci", max_examples=200, **_COMMON)
settings.register_profile("slow", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

# --------------------------------------------------------------------------------------------
# Bounds (in units of the eps of the dtype named), as stated in the tests' docstrings.
# --------------------------------------------------------------------------------------------
#: softmax: relative error where the exact value is a normal number of the result dtype.
SOFTMAX_ULPS = 8
#: softmax row sums: |sum - 1| <= ROW_SUM_ULPS * eps * sqrt(n).
ROW_SUM_ULPS = 8
#: log_softmax: |err| <= LOG_SOFTMAX_ULPS * eps_compute * |exact| + (narrow-result rounding).
LOG_SOFTMAX_ULPS = 8
#: logsumexp: |err| <= LOGSUMEXP_ULPS * eps_compute * (|exact| + log n) + (narrow rounding).
LOGSUMEXP_ULPS = 8
#: float16 / bfloat16 softmax: ulps away from the correctly rounded exact value.
NARROW_ULPS = 1

BFLOAT16: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
FLOAT16: np.dtype[Any] = np.dtype(np.float16)
FLOAT32: np.dtype[Any] = np.dtype(np.float32)
FLOAT64: np.dtype[Any] = np.dtype(np.float64)

NARROW_DTYPES: list[np.dtype[Any]] = [FLOAT16, BFLOAT16]
WIDE_DTYPES: list[np.dtype[Any]] = [FLOAT32, FLOAT64]
FLOAT_DTYPES: list[np.dtype[Any]] = NARROW_DTYPES + WIDE_DTYPES
INT_DTYPES: list[np.dtype[Any]] = [
    np.dtype(t)
    for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
]
BOOL_DTYPES: list[np.dtype[Any]] = [np.dtype(np.bool_)]
ALL_DTYPES: list[np.dtype[Any]] = FLOAT_DTYPES + INT_DTYPES + BOOL_DTYPES

SOFTMAX_FAMILY: dict[str, Callable[..., Any]] = {
    "softmax": sr.softmax,
    "log_softmax": sr.log_softmax,
    "logsumexp": sr.logsumexp,
}
ALL_OPS: dict[str, Callable[..., Any]] = {**SOFTMAX_FAMILY, "argmax": sr.argmax}


def is_narrow(dtype: npt.DTypeLike) -> bool:
    return np.dtype(dtype).newbyteorder("=") in NARROW_DTYPES


_ml_finfo: Any = ml_dtypes.finfo


def finfo(dtype: npt.DTypeLike) -> Any:
    d = np.dtype(dtype).newbyteorder("=")
    return _ml_finfo(d) if d == BFLOAT16 else np.finfo(d)


def eps(dtype: npt.DTypeLike) -> float:
    return float(finfo(dtype).eps)


def tiny(dtype: npt.DTypeLike) -> float:
    """The smallest positive normal number of ``dtype``."""
    return float(finfo(dtype).tiny)


def result_dtype(x_dtype: npt.DTypeLike, dtype: npt.DTypeLike | None = None) -> np.dtype[Any]:
    """API.md: float dtypes keep theirs, bool and integers give float64; ``dtype=`` wins."""
    if dtype is not None:
        return np.dtype(dtype)
    d = np.dtype(x_dtype).newbyteorder("=")
    return d if d in FLOAT_DTYPES else FLOAT64


def compute_dtype(x_dtype: npt.DTypeLike, dtype: npt.DTypeLike | None = None) -> np.dtype[Any]:
    """float16/bfloat16 compute in float32; everything else in the result dtype."""
    r = result_dtype(x_dtype, dtype)
    return FLOAT32 if r in NARROW_DTYPES else r


# --------------------------------------------------------------------------------------------
# The reference
# --------------------------------------------------------------------------------------------
def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = tuple(a + ndim if a < 0 else a for a in axes)
    assert all(0 <= a < ndim for a in out) and len(set(out)) == len(out), (axis, ndim)
    return out


def exact_values(x: npt.ArrayLike, dtype: npt.DTypeLike | None = None) -> Array:
    """The input values the result is defined on, in longdouble: converted to the compute
    dtype first (the documented conversion of integers, or ``dtype=``), then widened exactly."""
    a = np.asarray(x)
    cd = compute_dtype(a.dtype, dtype)
    with np.errstate(over="ignore"):  # float64 -> float32 may overflow to inf, as it does
        return np.asarray(a.astype(cd).astype(np.float64), dtype=np.longdouble)


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _per_row(t: Any, shape: tuple[int, ...], axes: tuple[int, ...]) -> Array:
    """A temperature as a longdouble array of the kept-dims reduced shape (it may come with
    the reduced axes kept or dropped)."""
    a = np.asarray(t, dtype=np.float64).astype(np.longdouble)
    kept = _kept_shape(shape, axes)
    if a.ndim != len(shape):
        dropped = tuple(n for i, n in enumerate(shape) if i not in axes)
        a = np.broadcast_to(a, dropped).reshape(kept)
    return np.broadcast_to(a, kept)


class Ref:
    """Exact-ish softmax, log_softmax and logsumexp of one call's arguments (longdouble)."""

    def __init__(
        self,
        x: npt.ArrayLike,
        axis: Axis = -1,
        *,
        temperature: Any = 1.0,
        where: Any = None,
        empty_rows: EmptyRows = None,
        dtype: npt.DTypeLike | None = None,
    ) -> None:
        xa = np.asarray(x)
        self.shape: tuple[int, ...] = xa.shape
        self.result_dtype = result_dtype(xa.dtype, dtype)
        self.compute_dtype = compute_dtype(xa.dtype, dtype)
        axes = normalize_axes(axis, xa.ndim)
        self.axes = axes
        keep = [i for i in range(xa.ndim) if i not in axes]
        perm = keep + list(axes)
        batch = tuple(xa.shape[i] for i in keep)
        n = int(np.prod([xa.shape[i] for i in axes], dtype=np.int64))
        self.n = n

        vals = exact_values(xa, dtype)
        w = np.ones(xa.shape, bool) if where is None else np.broadcast_to(where, xa.shape)
        t = _per_row(temperature, xa.shape, axes)
        v = vals.transpose(perm).reshape((*batch, n))
        inc = np.asarray(w).transpose(perm).reshape((*batch, n))
        tt = t.transpose(perm).reshape((*batch, 1))

        with np.errstate(all="ignore"):
            a = v / tt
            nan_row = np.any(np.isnan(a) & inc, axis=-1, keepdims=True)
            am = np.where(inc, a, -np.inf)
            am = np.where(np.isnan(am), -np.inf, am)  # NaN rows are overwritten below
            m = np.max(am, axis=-1, keepdims=True, initial=-np.inf)
            posinf = am == np.inf
            k = np.sum(posinf, axis=-1, keepdims=True)
            n_inc = np.sum(inc, axis=-1, keepdims=True)
            finite_m = np.isfinite(m)
            # (x - max) / T, not x / T - max / T: for large x the quotients round (in
            # longdouble too) before their difference cancels.
            vm = np.where(inc & ~np.isnan(v), v, -np.inf)
            vmax = np.max(vm, axis=-1, keepdims=True, initial=-np.inf)
            d = (vm - np.where(finite_m, vmax, 0)) / tt
            e = np.exp(d)
            # log1p of the sum without (the first of) the maximum's term.
            first = np.argmax(vm, axis=-1)[..., None] if n else np.zeros((*batch, 1), np.intp)
            rest = e.copy()
            if n:
                np.put_along_axis(rest, first, 0, axis=-1)
            s_rest = np.sum(rest, axis=-1, keepdims=True)
            log_s = np.log1p(s_rest)
            sm = e / (1 + s_rest)
            lsm = d - log_s
            lse = m + log_s

            inf_row = (k > 0) & ~nan_row
            sm = np.where(inf_row, np.where(posinf, 1 / np.maximum(k, 1), 0), sm)
            lsm = np.where(inf_row, np.where(posinf, -np.log(np.maximum(k, 1)), -np.inf), lsm)
            lse = np.where(inf_row, np.inf, lse)

            no_mass = (m == -np.inf) & ~nan_row
            all_excluded = no_mass & (n_inc == 0)
            all_neg_inf = no_mass & (n_inc > 0)
            if empty_rows is None:
                nan_empty, zero_empty = all_neg_inf, all_excluded
            elif empty_rows == "nan":
                nan_empty, zero_empty = no_mass, np.zeros_like(no_mass)
            else:
                assert empty_rows == "zero"
                nan_empty, zero_empty = np.zeros_like(no_mass), no_mass
            sm = np.where(zero_empty, 0, sm)
            lsm = np.where(zero_empty, -np.inf, lsm)
            sm = np.where(nan_empty | nan_row, np.nan, sm)
            lsm = np.where(nan_empty | nan_row, np.nan, lsm)
            lse = np.where(no_mass, -np.inf, lse)
            lse = np.where(nan_row, np.nan, lse)

        inv = np.argsort(perm)
        tshape = tuple(xa.shape[i] for i in perm)
        self.softmax: Array = sm.reshape(tshape).transpose(inv)
        self.log_softmax: Array = lsm.reshape(tshape).transpose(inv)
        kept = _kept_shape(xa.shape, axes)
        self.logsumexp_kept: Array = lse.reshape(kept)
        #: number of entries that take part, per row (kept dims)
        self.count: Array = n_inc.reshape(kept)

    def logsumexp(self, keepdims: bool = False) -> Array:
        if keepdims:
            return self.logsumexp_kept
        return self.logsumexp_kept.reshape(
            tuple(n for i, n in enumerate(self.shape) if i not in self.axes)
        )


def ref_argmax(x: npt.ArrayLike, axis: int | None = -1, keepdims: bool = False) -> Any:
    """np.argmax, through float32 for bfloat16 (an exact, order-preserving widening)."""
    a = np.asarray(x)
    if a.dtype.newbyteorder("=") == BFLOAT16:
        a = a.astype(np.float32)
    return np.argmax(a, axis=axis, keepdims=keepdims)


# --------------------------------------------------------------------------------------------
# Accuracy checks
# --------------------------------------------------------------------------------------------
def _as_ld(a: npt.ArrayLike) -> Array:
    return np.asarray(np.asarray(a).astype(np.float64), dtype=np.longdouble)


def ordered_bits(a: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Map 16-bit floats to integers whose difference counts ulps (±0 both map to 0)."""
    b = np.ascontiguousarray(a).view(np.uint16).astype(np.int64)
    return np.where(b & 0x8000, -(b & 0x7FFF), b)


def _rounded(ref: Array, dtype: np.dtype[Any]) -> Array:
    with np.errstate(all="ignore"):
        return np.asarray(ref.astype(np.float64)).astype(dtype)


def _check_specials(got: Array, ref: Array, rd: np.dtype[Any], what: str) -> npt.NDArray[np.bool_]:
    """NaN and ±inf of the exact value (rounded to the result dtype, so an overflow of the
    result counts as inf) must be reproduced exactly. Returns the mask of positions left for
    the numeric bound."""
    g = _as_ld(got)
    rounded = _as_ld(_rounded(ref, rd))
    bad = np.isnan(rounded) != np.isnan(g)
    assert not bad.any(), (
        f"{what}: NaN pattern differs at {np.argwhere(bad)[:5].tolist()}: "
        f"got {g[bad][:5]}, expected {ref[bad][:5]}"
    )
    for inf in (np.inf, -np.inf):
        bad = (rounded == inf) != (g == inf)
        assert not bad.any(), (
            f"{what}: {inf} pattern differs at {np.argwhere(bad)[:5].tolist()}: "
            f"got {g[bad][:5]}, expected {ref[bad][:5]}"
        )
    numeric: npt.NDArray[np.bool_] = np.isfinite(rounded)
    return numeric


def _absdiff(g: Array, exact: Array, numeric: npt.NDArray[np.bool_]) -> Array:
    """|g - exact| where both are meant to be finite (0 elsewhere)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(numeric, np.abs(np.where(numeric, g, 0) - np.where(numeric, exact, 0)), 0)


def _fail(what: str, bad: npt.NDArray[np.bool_], got: Array, ref: Array, bound: Any) -> str:
    idx = np.argwhere(bad)[:5]
    rows = []
    for i in idx:
        t = tuple(int(j) for j in i)
        b = bound[t] if np.ndim(bound) else bound
        rows.append(f"at {t}: got {got[t]!r}, exact {float(ref[t])!r}, bound {float(b):.3g}")
    return f"{what}: {int(bad.sum())} value(s) out of bounds; " + "; ".join(rows)


def check_softmax(got: Any, ref: Ref, what: str = "softmax") -> None:
    """softmax within SOFTMAX_ULPS (relative, where the exact value is normal in the result
    dtype; absolute `tiny` below), float16/bfloat16 within NARROW_ULPS of the correctly rounded
    exact value, and each row summing to 1 within ROW_SUM_ULPS * eps * sqrt(n)."""
    assert isinstance(got, np.ndarray), type(got)
    rd = ref.result_dtype
    assert got.dtype == rd, f"{what}: dtype {got.dtype}, expected {rd}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    exact = ref.softmax
    numeric = _check_specials(got, exact, rd, what)
    g = _as_ld(got)
    zero = exact == 0
    assert np.all(g[zero & numeric] == 0), f"{what}: nonzero where the exact value is 0"
    assert np.all((g[numeric] >= 0) & (g[numeric] <= 1)), f"{what}: value outside [0, 1]"
    normal = numeric & (exact >= tiny(rd))
    if is_narrow(rd):
        dist = np.abs(ordered_bits(got) - ordered_bits(_rounded(exact, rd)))
        bad = normal & (dist > NARROW_ULPS)
        assert not bad.any(), _fail(f"{what} ({rd}, ulps)", bad, got, exact, NARROW_ULPS)
    else:
        bound = SOFTMAX_ULPS * eps(rd) * exact
        bad = normal & (_absdiff(g, exact, numeric) > bound)
        assert not bad.any(), _fail(f"{what} ({rd})", bad, got, exact, bound)
    sub = numeric & ~normal
    bad = sub & (_absdiff(g, exact, numeric) > tiny(rd))
    assert not bad.any(), _fail(f"{what} ({rd}, below normal)", bad, got, exact, tiny(rd))
    # Row sums, over the rows with mass.
    if ref.n:
        axes = ref.axes
        has_mass = np.all(np.isfinite(exact), axis=axes) & (
            np.sum(exact, axis=axes, dtype=np.longdouble) > 0.5
        )
        sums = np.sum(g, axis=axes)
        count = np.maximum(ref.count.reshape(sums.shape), 1)
        bound_s = ROW_SUM_ULPS * eps(rd) * np.sqrt(count.astype(np.float64))
        bad_s = has_mass & ~(np.abs(sums - 1) <= bound_s)
        assert not bad_s.any(), f"{what}: row sums {sums[bad_s][:5]} off 1 by more than bound"


def _narrow_term(ref: Ref, exact: Array) -> Array:
    """Rounding a float32 result to a narrow result dtype: at most one ulp of it."""
    rd = ref.result_dtype
    if not is_narrow(rd):
        return np.zeros_like(exact)
    return eps(rd) * np.abs(exact)


def check_log_softmax(got: Any, ref: Ref, what: str = "log_softmax") -> None:
    """|err| <= LOG_SOFTMAX_ULPS * eps_c * |exact| + eps_r * |exact| (narrow results only)
    + tiny_r: relative accuracy also on the winning class, where the value is near 0."""
    assert isinstance(got, np.ndarray), type(got)
    rd = ref.result_dtype
    assert got.dtype == rd, f"{what}: dtype {got.dtype}, expected {rd}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    exact = ref.log_softmax
    numeric = _check_specials(got, exact, rd, what)
    g = _as_ld(got)
    assert np.all(g[numeric] <= 0), f"{what}: positive value"
    bound = (
        LOG_SOFTMAX_ULPS * eps(ref.compute_dtype) * np.abs(exact)
        + _narrow_term(ref, exact)
        + tiny(rd)
    )
    bad = numeric & ~(_absdiff(g, exact, numeric) <= bound)
    assert not bad.any(), _fail(f"{what} ({rd})", bad, got, exact, bound)


def check_logsumexp(got: Any, ref: Ref, keepdims: bool = False, what: str = "logsumexp") -> None:
    """|err| <= LOGSUMEXP_ULPS * eps_c * (|exact| + log n) + eps_r * |exact| (narrow) + tiny_r,
    n the number of entries taking part in the row."""
    rd = ref.result_dtype
    exact = ref.logsumexp(keepdims)
    ga = np.asarray(got)
    assert ga.dtype == rd, f"{what}: dtype {ga.dtype}, expected {rd}"
    assert ga.shape == exact.shape, f"{what}: shape {ga.shape}, expected {exact.shape}"
    if exact.ndim == 0:
        assert isinstance(got, np.generic | np.ndarray), type(got)
    else:
        assert isinstance(got, np.ndarray), type(got)
    numeric = _check_specials(ga, exact, rd, what)
    g = _as_ld(ga)
    count = np.maximum(ref.count.reshape(exact.shape), 1).astype(np.float64)
    bound = (
        LOGSUMEXP_ULPS * eps(ref.compute_dtype) * (np.abs(exact) + np.log(count))
        + _narrow_term(ref, exact)
        + tiny(rd)
    )
    bad = numeric & ~(_absdiff(g, exact, numeric) <= bound)
    assert not bad.any(), _fail(f"{what} ({rd})", bad, ga, exact, bound)


def check_softmax_family(x: Array, ref: Ref, **kw: Any) -> None:
    """softmax, log_softmax and logsumexp of ``x``, each called with the same keywords
    (``axis``, ``dtype``), against ``ref``."""
    check_softmax(sr.softmax(x, **kw), ref)
    check_log_softmax(sr.log_softmax(x, **kw), ref)
    check_logsumexp(sr.logsumexp(x, **kw), ref)


def check_argmax(got: Any, x: npt.ArrayLike, axis: int | None = -1, keepdims: bool = False) -> None:
    """Exactly np.argmax: values, shape and dtype np.intp."""
    expected = ref_argmax(x, axis=axis, keepdims=keepdims)
    assert np.shape(got) == np.shape(expected), (np.shape(got), np.shape(expected))
    assert np.asarray(got).dtype == np.intp, np.asarray(got).dtype
    assert np.array_equal(got, expected), (got, expected)


def check_op(name: str, got: Any, x: npt.ArrayLike, axis: Any = -1, **kw: Any) -> None:
    """Check one softmax-family or argmax result against the reference."""
    if name == "argmax":
        check_argmax(got, x, axis=axis, keepdims=kw.get("keepdims", False))
        return
    keepdims = kw.pop("keepdims", False)
    ref = Ref(x, axis, **kw)
    if name == "softmax":
        check_softmax(got, ref)
    elif name == "log_softmax":
        check_log_softmax(got, ref)
    else:
        check_logsumexp(got, ref, keepdims=keepdims)


# --------------------------------------------------------------------------------------------
# Strided-view variants: arrays with the same values as ``a`` laid out differently
# --------------------------------------------------------------------------------------------
def _fill_value(dtype: np.dtype[Any]) -> Any:
    """What padding holds: NaN for floats (a kernel reading it poisons the row), the maximum
    for integers (it would win argmax), True for bool."""
    if dtype.kind == "f" or dtype == BFLOAT16:
        return np.nan
    if dtype.kind == "b":
        return True
    return np.iinfo(dtype).max


def stepped(a: Array, step: int = 2, offset: int = 1) -> Array:
    """``a`` as a view with a step in every axis, inside a buffer padded with poison."""
    buf = np.full(tuple(n * step + offset for n in a.shape), _fill_value(a.dtype), dtype=a.dtype)
    view = buf[tuple(slice(offset, offset + n * step, step) for n in a.shape)]
    view[...] = a
    return view


def reversed_strides(a: Array) -> Array:
    """``a`` as a view with negative strides in every axis."""
    flipped = np.ascontiguousarray(np.flip(a))
    return np.flip(flipped)


def transposed_storage(a: Array) -> Array:
    """``a`` as the transpose of a C-contiguous array (F-order strides, axes reversed)."""
    return np.ascontiguousarray(a.T).T


def permuted_storage(a: Array) -> Array:
    """``a`` stored with its axes in a rotated order (a non-trivial transposition)."""
    if a.ndim < 2:
        return a.copy()
    order = [*range(1, a.ndim), 0]
    back = np.argsort(order)
    return np.ascontiguousarray(a.transpose(order)).transpose(back)


def unaligned(a: Array) -> Array:
    """``a`` copied into a buffer one byte off its natural alignment."""
    raw = np.zeros(a.size * a.dtype.itemsize + 1, np.uint8)
    view = raw[1:].view(a.dtype).reshape(a.shape)
    view[...] = a
    return view


def byteswapped(a: Array) -> Array:
    """``a`` with the same values in non-native byte order."""
    return a.astype(a.dtype.newbyteorder())


def broadcast(a: Array) -> Array:
    """A zero-stride view (other values than ``a``'s): the first entry of every axis but the
    first, broadcast to ``a``'s shape; a 1-d ``a`` becomes its first entry repeated."""
    if a.size == 0:
        return np.broadcast_to(a, a.shape)
    if a.ndim == 1:
        return np.broadcast_to(a[:1], a.shape)
    return np.broadcast_to(a[(slice(None), *(slice(0, 1) for _ in a.shape[1:]))], a.shape)


def broadcast_inner(a: Array) -> Array:
    """A zero stride on axis 0 only: every outer slice is the first one."""
    return np.broadcast_to(a[:1], a.shape) if a.shape and a.shape[0] else a


LAYOUTS: dict[str, Callable[[Array], Array]] = {
    "contiguous": lambda a: np.ascontiguousarray(a).copy(),
    "transposed": transposed_storage,
    "permuted": permuted_storage,
    "stepped": stepped,
    "stepped3": lambda a: stepped(a, 3, 2),
    "reversed": reversed_strides,
    "reversed_stepped": lambda a: np.flip(stepped(np.flip(a))),
    "unaligned": unaligned,
    "byteswapped": byteswapped,
    "broadcast": broadcast,
    "broadcast_axis0": broadcast_inner,
}


def layout_variants(a: Array) -> Iterator[tuple[str, Array]]:
    """Every layout of ``a`` (skipping those that are no-ops for 1-byte dtypes)."""
    for name, make in LAYOUTS.items():
        if a.dtype.itemsize == 1 and name in ("unaligned", "byteswapped"):
            continue
        v = make(a)
        if name == "unaligned" and a.size:
            assert not v.flags.aligned
        if name == "byteswapped" and a.dtype.itemsize > 1:
            assert not v.dtype.isnative
        yield name, v


def snapshot(a: Array) -> tuple[bytes, tuple[int, ...], tuple[int, ...]]:
    """The bytes (element by element, in logical order), strides and shape of ``a``."""
    return (np.array(a, copy=True).tobytes(), a.strides, a.shape)


def buffer_bytes(a: Array) -> bytes:
    """Every byte of the memory ``a`` views (its base buffer, padding included)."""
    base = a
    while isinstance(base.base, np.ndarray):
        base = base.base
    return np.array(base, copy=True).tobytes()


# --------------------------------------------------------------------------------------------
# ISAs and thread counts
# --------------------------------------------------------------------------------------------
THREAD_COUNTS = (1, 2, 3, 4)


def isas() -> list[str]:
    names: list[str] = list(_core.available_isas())
    assert "generic" in names, names
    return names


@contextlib.contextmanager
def using_isa(name: str) -> Iterator[None]:
    before = _core.get_isa()
    _core.set_isa(name)
    try:
        assert _core.get_isa() == name
        yield
    finally:
        _core.set_isa(before)


def each_config(
    thread_counts: Sequence[int] = THREAD_COUNTS,
) -> Iterator[tuple[str, int]]:
    """Yield (isa, n_threads) for every available ISA and thread count, with both in force
    while the body runs; both are restored afterwards."""
    for isa in isas():
        with using_isa(isa):
            for n in thread_counts:
                with sr.threads(n):
                    assert sr.get_num_threads() == n
                    yield isa, n


def run_everywhere(
    fn: Callable[[], Any], thread_counts: Sequence[int] = THREAD_COUNTS
) -> dict[tuple[str, int], Any]:
    """``fn()`` under every ISA and thread count."""
    return {cfg: fn() for cfg in each_config(thread_counts)}


@pytest.fixture(autouse=True)
def _restore_isa_and_threads() -> Iterator[None]:
    """No test leaks a forced ISA or thread count into the next one."""
    isa, n = _core.get_isa(), sr.get_num_threads()
    yield
    _core.set_isa(isa)
    sr.set_num_threads(n)


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------
#: special-value codes for `with_specials`
_SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0)


@st.composite
def shapes(draw: st.DrawFn, min_dims: int = 1, max_dims: int = 3, max_side: int = 5) -> Any:
    """Small shapes with 0- and 1-length axes, sometimes one long axis (SIMD tails, blocks)."""
    shape: list[int] = list(
        draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side))
    )
    long_axis: bool = draw(st.booleans())
    if shape and long_axis:
        i = draw(st.integers(0, len(shape) - 1))
        shape[i] = draw(st.sampled_from([8, 15, 16, 17, 31, 32, 33, 64, 100, 257]))
    return tuple(shape)


def axes_for(ndim: int) -> st.SearchStrategy[Axis]:
    """int (also negative), tuple of distinct axes in any order (also negative), or None."""
    ints = st.integers(-ndim, ndim - 1)
    tuples = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
        lambda ax: st.tuples(*[st.sampled_from([a, a - ndim]) for a in ax])
    )
    return st.one_of(ints, tuples, st.none())


@st.composite
def float_values(
    draw: st.DrawFn, shape: tuple[int, ...], dtype: np.dtype[Any], specials: bool = False
) -> Array:
    """Values of ``dtype``: uniform-ish over a drawn scale, or small integers (ties)."""
    big = {FLOAT16: 1.5e4, BFLOAT16: 5e37, FLOAT32: 5e37, FLOAT64: 1e307}[dtype]
    kind = draw(st.sampled_from(["unit", "scaled", "ties", "wide"]))
    if kind == "ties":
        base = draw(hnp.arrays(np.float64, shape, elements=st.integers(-3, 3).map(float)))
    else:
        base = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1, 1)))
        scale = {
            "unit": 1.0,
            "scaled": draw(st.sampled_from([4.0, 30.0, 100.0, 1e3])),
            "wide": big,
        }[kind]
        base = base * scale
    if specials:
        codes = draw(hnp.arrays(np.int8, shape, elements=st.integers(0, 12)))
        for c, v in enumerate(_SPECIALS, start=1):
            base[codes == c] = v
    with np.errstate(over="ignore"):
        return np.asarray(base.astype(dtype))


def values(
    shape: tuple[int, ...], dtype: np.dtype[Any], specials: bool = False
) -> st.SearchStrategy[Array]:
    if dtype in FLOAT_DTYPES:
        return float_values(shape, dtype, specials)
    return hnp.arrays(dtype, shape)


@st.composite
def cases(
    draw: st.DrawFn,
    dtypes: Sequence[np.dtype[Any]] = tuple(ALL_DTYPES),
    specials: bool = False,
    max_dims: int = 3,
) -> tuple[Array, Axis]:
    """(x, axis) for the softmax family."""
    dtype = draw(st.sampled_from(list(dtypes)))
    shape = draw(shapes(max_dims=max_dims))
    x = draw(values(shape, dtype, specials))
    axis = draw(axes_for(len(shape)))
    return x, axis
