"""The pure-NumPy baseline: softmax the way a NumPy user writes it (max-shifted).

These functions have the same signatures as the core ones and are what the benchmarks
compare against. They allocate temporaries freely, as idiomatic NumPy code does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["argmax", "log_softmax", "logsumexp", "softmax"]

Axis = int | tuple[int, ...] | None


def _prepare(x: npt.ArrayLike, temperature: Any, dtype: Any) -> npt.NDArray[np.floating[Any]]:
    a = np.asarray(x)
    if dtype is None:
        dtype = a.dtype if a.dtype.kind == "f" else np.float64
    a = a.astype(dtype, copy=False)
    if not (np.isscalar(temperature) and temperature == 1.0):
        a = a / np.asarray(temperature, dtype=a.dtype)
    return a


def _masked(a: npt.NDArray[Any], where: Any) -> npt.NDArray[Any]:
    if where is None:
        return a
    return np.where(where, a, -np.inf).astype(a.dtype, copy=False)


def softmax(
    x: npt.ArrayLike,
    axis: Axis = -1,
    *,
    temperature: Any = 1.0,
    where: Any = None,
    empty_rows: str | None = None,
    out: Any = None,
    dtype: Any = None,
) -> npt.NDArray[np.floating[Any]]:
    """exp(x - max) / sum(exp(x - max)) along ``axis``."""
    a = _masked(_prepare(x, temperature, dtype), where)
    m = np.max(a, axis=axis, keepdims=True)
    e = np.exp(a - m)
    r: npt.NDArray[np.floating[Any]] = e / np.sum(e, axis=axis, keepdims=True)
    if out is not None:
        np.copyto(out, r)
        return out  # type: ignore[no-any-return]
    return r


def log_softmax(
    x: npt.ArrayLike,
    axis: Axis = -1,
    *,
    temperature: Any = 1.0,
    where: Any = None,
    empty_rows: str | None = None,
    out: Any = None,
    dtype: Any = None,
) -> npt.NDArray[np.floating[Any]]:
    """(x - max) - log(sum(exp(x - max))) along ``axis``."""
    a = _masked(_prepare(x, temperature, dtype), where)
    m = np.max(a, axis=axis, keepdims=True)
    s = a - m
    r: npt.NDArray[np.floating[Any]] = s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    if out is not None:
        np.copyto(out, r)
        return out  # type: ignore[no-any-return]
    return r


def logsumexp(
    x: npt.ArrayLike,
    axis: Axis = -1,
    *,
    keepdims: bool = False,
    temperature: Any = 1.0,
    where: Any = None,
    out: Any = None,
    dtype: Any = None,
) -> npt.NDArray[np.floating[Any]]:
    """max + log(sum(exp(x - max))) along ``axis``."""
    a = _masked(_prepare(x, temperature, dtype), where)
    m = np.max(a, axis=axis, keepdims=True)
    r: npt.NDArray[np.floating[Any]] = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    if not keepdims:
        r = np.squeeze(r, axis=axis)
    if out is not None:
        np.copyto(out, r)
        return out  # type: ignore[no-any-return]
    return r


def argmax(
    x: npt.ArrayLike, axis: int | None = -1, *, keepdims: bool = False, out: Any = None
) -> npt.NDArray[np.intp]:
    """np.argmax, as a NumPy user calls it."""
    return np.argmax(x, axis=axis, keepdims=keepdims, out=out)  # type: ignore[no-any-return]
