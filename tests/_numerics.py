"""Shared numerics for the accuracy, special-value and fuzz tests (and ``accuracy_table.py``).

- the input batteries of the accuracy targets (issue 5) and their row lengths;
- high-precision references: float64 for float32/float16/bfloat16 inputs, ``np.longdouble``
  (x87 extended, 64-bit significand) for float64 inputs, and mpmath for small cases. The shift
  ``x - max`` is formed exactly (TwoSum) so the reference's own error is a few units of the
  working precision, far below the bounds being checked;
- error measures in units of the dtype's eps, and ulp distances for float16/bfloat16;
- ISA and thread-count helpers that always restore the defaults.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np
import numpy.typing as npt
import softmax_rs as sr
from softmax_rs import _core

Array = npt.NDArray[Any]

LONG = os.environ.get("SOFTMAX_RS_LONG", "") not in ("", "0")
"""``SOFTMAX_RS_LONG=1``: more rows per battery, longer fuzzing, bigger leak loops."""

BFLOAT16: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
FLOAT16: np.dtype[Any] = np.dtype(np.float16)
FLOAT32: np.dtype[Any] = np.dtype(np.float32)
FLOAT64: np.dtype[Any] = np.dtype(np.float64)

# x87 extended has eps 2^-63; where np.longdouble is only float64 (MSVC, Apple arm64) the
# float64 batteries fall back to mpmath on fewer rows.
LONGDOUBLE_IS_EXTENDED = float(np.finfo(np.longdouble).eps) <= 2.0**-63


def eps(dtype: Any) -> float:
    """The dtype's machine epsilon (2^-23 for float32, 2^-52 for float64)."""
    dt = np.dtype(dtype)
    if dt == BFLOAT16:
        return 2.0**-7
    return float(finfo(dt).eps)


def finfo(dtype: Any) -> Any:
    """``np.finfo``, also for bfloat16."""
    dt = np.dtype(dtype)
    if dt == BFLOAT16:
        return ml_dtypes.finfo(ml_dtypes.bfloat16)  # type: ignore[no-untyped-call]
    return np.finfo(dt)


def tiny(dtype: Any) -> float:
    """The dtype's smallest normal number."""
    dt = np.dtype(dtype)
    if dt == BFLOAT16:
        return float(finfo(dt).smallest_normal)
    return float(np.finfo(dt).smallest_normal)


def working_dtype(dtype: Any) -> np.dtype[Any]:
    """The precision a reference for ``dtype`` inputs is computed in."""
    return np.dtype(np.longdouble) if np.dtype(dtype) == FLOAT64 else FLOAT64


# --------------------------------------------------------------------------------------
# Batteries


def _battery(scale: float, shift: float) -> Callable[[np.random.Generator, tuple[int, ...]], Array]:
    def gen(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
        return rng.standard_normal(shape) * scale + shift

    return gen


BATTERIES: dict[str, Callable[[np.random.Generator, tuple[int, ...]], Array]] = {
    "N(0,1)": _battery(1.0, 0.0),
    "N(0,9)": _battery(3.0, 0.0),
    "N(0,1e4)": _battery(100.0, 0.0),
    "N(0,9)+1000": _battery(3.0, 1000.0),
    "N(0,9)-1000": _battery(3.0, -1000.0),
}
ROW_LENGTHS = (10, 1000, 32000, 128256)

# Rows (independent distributions) per row length: default run / SOFTMAX_RS_LONG=1.
_ROWS = {10: (2048, 16384), 1000: (96, 1024), 32000: (6, 48), 128256: (3, 16)}


def rows_for(d: int, *, scale: float = 1.0) -> int:
    """How many rows of length ``d`` a battery has (at least 2)."""
    n = _ROWS[d][1 if LONG else 0]
    return max(2, int(n * scale))


@dataclass(frozen=True)
class Case:
    """One accuracy case: a battery of ``rows`` distributions of ``d`` values on ``axis``."""

    battery: str
    d: int
    rows: int
    axis: int  # -1: each row is a contiguous last-axis row; 0: a column of a (d, rows) array

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.rows, self.d) if self.axis == -1 else (self.d, self.rows)

    def seed(self) -> int:
        names = list(BATTERIES)
        return 1000 * names.index(self.battery) + 10 * ROW_LENGTHS.index(self.d) + (self.axis + 1)

    def make(self, dtype: Any) -> Array:
        """The input, rounded to ``dtype`` (the reference uses the rounded values)."""
        rng = np.random.default_rng(self.seed())
        return BATTERIES[self.battery](rng, self.shape).astype(dtype)

    def label(self) -> str:
        return f"{self.battery} d={self.d} axis={self.axis}"


def cases(*, row_scale: float = 1.0) -> list[Case]:
    return [
        Case(b, d, rows_for(d, scale=row_scale), axis)
        for b in BATTERIES
        for d in ROW_LENGTHS
        for axis in (-1, 0)
    ]


# --------------------------------------------------------------------------------------
# References


@dataclass
class Reference:
    """softmax / log_softmax (the input's shape) and logsumexp (the axis removed), in the
    working precision."""

    softmax: Array
    log_softmax: Array
    logsumexp: Array


def reference(x: Array, axis: int, wp: Any = None, live: Array | None = None) -> Reference:
    """High-precision softmax family of finite ``x`` along ``axis``.

    Computed in ``wp`` (default: :func:`working_dtype`): the shift ``x - max`` is split into
    its rounded value and the exact rounding error (TwoSum), which is carried into the
    exponential; sums are NumPy's pairwise sums over a contiguous last axis. Entries where
    the mask ``live`` is False take no part (softmax 0, log_softmax -inf); every row needs a
    live entry.
    """
    wpd = np.dtype(wp) if wp is not None else working_dtype(x.dtype)
    a = np.ascontiguousarray(np.moveaxis(np.asarray(x), axis, -1).astype(wpd))
    lv = None if live is None else np.ascontiguousarray(np.moveaxis(live, axis, -1))
    m = (a if lv is None else np.where(lv, a, -np.inf)).max(axis=-1, keepdims=True)
    if lv is not None:
        a = np.where(lv, a, m)  # finite stand-ins, zeroed below
    nm = -m
    s = a + nm
    bp = s - a
    err = (a - (s - bp)) + (nm - bp)  # exact: a - m == s + err
    e = np.exp(s) * (1 + err)
    if lv is not None:
        e[~lv] = 0
    # The first maximum contributes exactly 1: sum the rest on its own, so that
    # log(total) = log1p(rest) keeps its digits when the rest is tiny.
    first = np.argmax(a if lv is None else np.where(lv, a, -np.inf), axis=-1)[..., None]
    np.put_along_axis(e, first, 0, axis=-1)
    rest = e.sum(axis=-1, keepdims=True)
    np.put_along_axis(e, first, 1, axis=-1)
    total = 1 + rest
    log_total = np.log1p(rest)
    sm = e / total
    ls = (s - log_total) + err
    if lv is not None:
        ls[~lv] = -np.inf
    lse = (m + log_total)[..., 0]
    return Reference(np.moveaxis(sm, -1, axis), np.moveaxis(ls, -1, axis), lse)


def mp_reference(x: Array, axis: int, dps: int = 40) -> Reference:
    """The same with mpmath at ``dps`` digits (small inputs only), returned as float64
    arrays of the exact values rounded once (and as Python-float-exact logsumexp)."""
    mpmath: Any = importlib.import_module("mpmath")
    a = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    sm = np.empty(a.shape, np.float64)
    ls = np.empty(a.shape, np.float64)
    lse = np.empty(a.shape[:-1], np.float64)
    with mpmath.workdps(dps):
        for idx in np.ndindex(*a.shape[:-1]):
            row = [mpmath.mpf(float(v)) for v in a[idx]]
            m = max(row)
            total = mpmath.fsum(mpmath.exp(v - m) for v in row)
            lt = mpmath.log(total)
            sm[idx] = [float(mpmath.exp(v - m) / total) for v in row]
            ls[idx] = [float(v - m - lt) for v in row]
            lse[idx] = float(m + lt)
    return Reference(np.moveaxis(sm, -1, axis), np.moveaxis(ls, -1, axis), lse)


# --------------------------------------------------------------------------------------
# Error measures (all in units of eps of the result's dtype unless said otherwise)


def softmax_rel_err(y: Array, ref: Array, dtype: Any) -> float:
    """Max relative error where the true value is a normal number of ``dtype``, in eps."""
    r = np.asarray(ref)
    mask = r >= tiny(dtype)
    if not mask.any():
        return 0.0
    yy = np.asarray(y).astype(r.dtype)
    return float(np.max(np.abs(yy[mask] - r[mask]) / r[mask])) / eps(dtype)


def row_sum_err(y: Array, axis: int, dtype: Any) -> float:
    """Max |sum(row) - 1| (summed in the working precision), in eps."""
    wp = working_dtype(dtype)
    s = np.asarray(y).astype(wp).sum(axis=axis)
    return float(np.max(np.abs(s - 1))) / eps(dtype)


def abs_err(y: Array, ref: Array, dtype: Any) -> float:
    """Max absolute error (finite true values), in eps."""
    r = np.asarray(ref)
    mask = np.isfinite(r)
    yy = np.asarray(y).astype(r.dtype)
    with np.errstate(invalid="ignore"):
        d = np.abs(yy[mask] - r[mask])
    if d.size and np.isnan(d).any():
        return float("inf")
    return float(np.max(d, initial=0.0)) / eps(dtype)


def rel_err(y: Array, ref: Array, dtype: Any) -> float:
    """Max relative error (finite non-zero true values), in eps."""
    r = np.asarray(ref)
    mask = np.isfinite(r) & (r != 0)
    yy = np.asarray(y).astype(r.dtype)
    with np.errstate(invalid="ignore"):
        d = np.abs(yy[mask] - r[mask]) / np.abs(r[mask])
    if d.size and np.isnan(d).any():
        return float("inf")
    return float(np.max(d, initial=0.0)) / eps(dtype)


# --------------------------------------------------------------------------------------
# Half precision: ordinals, correct rounding


_SIGNED: dict[int, type[np.signedinteger[Any]]] = {2: np.int16, 4: np.int32, 8: np.int64}
_SIGNED_MAX = {2: 2**15 - 1, 4: 2**31 - 1, 8: 2**63 - 1}


def ordinal(a: Array) -> Array:
    """Integers ordered like the floats, consecutive floats differing by 1 (±0 → 0)."""
    a = np.asarray(a)
    it = _SIGNED[a.dtype.itemsize]
    b = np.ascontiguousarray(a).view(it).astype(np.int64)
    mag = b & _SIGNED_MAX[a.dtype.itemsize]
    r: Array = np.where(b < 0, -mag, mag)
    return r


def from_ordinal(o: Array, dtype: Any) -> Array:
    """The inverse of :func:`ordinal` (-0 is not produced)."""
    dt = np.dtype(dtype)
    it = _SIGNED[dt.itemsize]
    o = np.asarray(o, dtype=np.int64)
    if dt.itemsize == 8:
        bits = np.where(o < 0, (-o) | np.int64(-(2**63)), o)
    else:
        top = 1 << (8 * dt.itemsize - 1)
        bits = np.where(o < 0, (-o) | top, o)
        bits = np.where(bits >= top, bits - 2 * top, bits)
    r: Array = bits.astype(it).view(dt)
    return r


def correctly_rounded(v: Array, dtype: Any) -> Array:
    """``v`` (float64 or longdouble) rounded to nearest ``dtype`` value (nearest of the
    conversion's result and its two neighbours, so a double-rounding conversion is fixed)."""
    v = np.asarray(v)
    with np.errstate(invalid="ignore", over="ignore"):
        c = v.astype(np.float64).astype(dtype)
        o = ordinal(c)
        best = c
        best_d = np.abs(c.astype(v.dtype) - v)
        for k in (-1, 1):
            cand = from_ordinal(o + k, dtype)
            d = np.abs(cand.astype(v.dtype) - v)
            better = np.isfinite(c) & np.isfinite(cand) & (d < best_d)
            best = np.where(better, cand, best)
            best_d = np.where(better, d, best_d)
    return best.astype(dtype)


def ulp_distance(y: Array, expected: Array) -> Array:
    """Ulp distance between arrays of the same dtype (NaN vs NaN is 0, NaN vs number huge)."""
    y = np.asarray(y)
    expected = np.asarray(expected)
    d = np.abs(ordinal(y) - ordinal(expected))
    yn = np.isnan(y.astype(np.float32) if y.dtype.itemsize == 2 else y)
    en = np.isnan(expected.astype(np.float32) if expected.dtype.itemsize == 2 else expected)
    d = np.where(yn & en, 0, d)
    return np.where(yn ^ en, np.iinfo(np.int64).max, d)


# --------------------------------------------------------------------------------------
# Dispatch helpers


def isas() -> list[str]:
    return list(_core.available_isas())


@contextmanager
def isa(name: str) -> Iterator[None]:
    """Force one SIMD path, restoring the previous one afterwards."""
    before = _core.get_isa()
    _core.set_isa(name)
    try:
        yield
    finally:
        _core.set_isa(before)


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    with sr.threads(n):
        yield


def each_config(thread_counts: tuple[int, ...] = (1, 2, 4)) -> Iterator[tuple[str, int]]:
    """Run the loop body under every SIMD path and thread count (restored afterwards)."""
    for name in isas():
        with isa(name):
            for n in thread_counts:
                with num_threads(n):
                    yield name, n
