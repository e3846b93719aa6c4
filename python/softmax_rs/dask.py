"""Softmax, log-softmax, logsumexp and argmax on Dask arrays.

Every block is computed by the Rust core. The softmax family runs in two reads of the
data:

1. each block yields per-row partials ``(max, sumexp)`` (``softmax_rs._core.row_stats``),
   merged in a tree reduction: ``M = max_b m_b``, ``S = sum_b s_b * exp(m_b - M)``
   (the online-softmax merge; ``+inf`` rows count their ``+inf`` entries, ``-inf`` blocks
   carry no mass, NaN propagates);
2. one ``map_blocks`` normalizes every block with its rows' ``(M, S)``
   (``softmax_rs._core.finish``).

``argmax`` merges per-block ``(value, global index)`` pairs with NumPy's rules (the first
maximum wins, the first NaN wins over everything), whatever the chunking.

The graph has O(number of chunks) tasks, results stay lazy, and no task ever holds more
than one block of the input (plus the small per-row partials). The same graphs run on the
local schedulers and on a ``dask.distributed`` cluster.

Install with ``pip install softmax_rs[dask]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import dask.array as da
import numpy as np
import numpy.typing as npt
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from softmax_rs import _core
from softmax_rs import argmax as _argmax
from softmax_rs import logsumexp as _logsumexp
from softmax_rs import softmax as _softmax

__all__ = ["argmax", "log_softmax", "logsumexp", "softmax"]

Axis = int | tuple[int, ...] | None

# Dask's graph builders are untyped: call them through Any, give results their type.
_da: Any = da

# Fields of the per-row partials carried through the tree reduction.
_MAX = "max"
_SUMEXP = "sumexp"
_VALUE = "value"
_INDEX = "index"


# --------------------------------------------------------------------------------------
# Argument handling (done eagerly, when the graph is built)
# --------------------------------------------------------------------------------------


def _as_dask(x: Any) -> da.Array:
    a = cast("da.Array", x if isinstance(x, da.Array) else _da.asarray(x))
    if any(math.isnan(n) for n in a.shape):
        raise ValueError(
            "softmax_rs.dask needs known chunk sizes; call x.compute_chunk_sizes() first"
        )
    return a


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        return (normalize_axis_index(int(axis), ndim),)
    return tuple(sorted(normalize_axis_tuple(axis, ndim)))


def _check_temperature(temperature: float) -> float:
    try:
        t = float(temperature)
    except TypeError:
        raise ValueError(
            f"softmax_rs.dask takes a scalar temperature, got {type(temperature).__name__}"
        ) from None
    if not (math.isfinite(t) and t > 0.0):
        raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
    return t


def _dtypes(x: da.Array, dtype: Any) -> tuple[da.Array, np.dtype[Any], np.dtype[Any]]:
    """Return ``(x, compute dtype, softmax result dtype)``, asking the core itself.

    Raises the core's ``TypeError`` for unsupported dtypes before any graph is built.
    """
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        x = cast("da.Array", cast("Any", x).astype(dtype))
    probe = np.zeros((1,), dtype=x.dtype)
    m, _ = _core.row_stats(probe, 0)
    result = _softmax(probe)
    return x, np.dtype(m.dtype), np.dtype(result.dtype)


def _stats_dtype(compute: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype([(_MAX, compute), (_SUMEXP, compute)])


def _empty(dtype: np.dtype[Any], ndim: int) -> npt.NDArray[Any]:
    return np.empty((0,) * ndim, dtype=dtype)


# --------------------------------------------------------------------------------------
# Block functions (module level, so that they pickle for distributed workers)
# --------------------------------------------------------------------------------------


def _scaled(xb: npt.NDArray[Any], temperature: float, compute: np.dtype[Any]) -> npt.NDArray[Any]:
    if temperature == 1.0:
        return xb
    return np.asarray(np.divide(xb, temperature, dtype=compute))


def _stats_chunk(
    xb: npt.NDArray[Any],
    axis: tuple[int, ...],
    keepdims: bool,
    *,
    temperature: float,
    compute: np.dtype[Any],
) -> npt.NDArray[Any]:
    """The per-row ``(max, sumexp)`` of one block, as one structured array."""
    m, s = _core.row_stats(_scaled(xb, temperature, compute), axis)
    out = np.empty(np.shape(m), dtype=_stats_dtype(compute))
    out[_MAX] = m
    out[_SUMEXP] = s
    return out


def _merge_stats(
    parts: npt.NDArray[Any], axis: tuple[int, ...]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Merge partials concatenated along ``axis`` into keepdims ``(M, S)``."""
    m = parts[_MAX]
    s = parts[_SUMEXP]
    big = np.max(m, axis=axis, keepdims=True, initial=-np.inf)  # NaN propagates
    with np.errstate(invalid="ignore", over="ignore"):
        # Blocks sharing the maximum weigh exactly 1; this also covers M = +inf (only
        # the +inf blocks count, each with its number of +inf entries) and M = -inf
        # (all blocks empty of mass, s = 0) where m - M would be NaN.
        w = np.where(m == big, 1.0, np.exp(m - big)).astype(m.dtype, copy=False)
        total = np.sum(s * w, axis=axis, keepdims=True, dtype=m.dtype)
    total = np.where(np.isnan(big), np.nan, total).astype(m.dtype, copy=False)
    return big, total


def _stats_combine(
    parts: npt.NDArray[Any], axis: tuple[int, ...], keepdims: bool
) -> npt.NDArray[Any]:
    big, total = _merge_stats(parts, axis)
    out = np.empty(big.shape, dtype=parts.dtype)
    out[_MAX] = big
    out[_SUMEXP] = total
    return out if keepdims else np.squeeze(out, axis=axis)


def _lse_block(
    stats: npt.NDArray[Any],
    *,
    axis: tuple[int, ...],
    keepdims: bool,
    result: np.dtype[Any],
) -> npt.NDArray[Any]:
    with np.errstate(divide="ignore", invalid="ignore"):
        # M = -inf, S = 0 gives -inf; M = +inf gives +inf; NaN stays NaN.
        lse = np.asarray(stats[_MAX] + np.log(stats[_SUMEXP])).astype(result, copy=False)
    return lse if keepdims else np.squeeze(lse, axis=axis)


def _finish_block(
    xb: npt.NDArray[Any],
    stats: npt.NDArray[Any],
    *,
    axis: tuple[int, ...],
    log: bool,
    temperature: float,
    compute: np.dtype[Any],
    result: np.dtype[Any],
) -> npt.NDArray[Any]:
    m = np.ascontiguousarray(stats[_MAX])
    s = np.ascontiguousarray(stats[_SUMEXP])
    r = _core.finish(_scaled(xb, temperature, compute), axis, m, s, log=log)
    return np.asarray(r).astype(result, copy=False)


def _argmax_value_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    # A dtype every value converts to exactly and compares in.
    if dtype.kind == "u":
        return np.dtype(np.uint64)
    if dtype.kind in "bi":
        return np.dtype(np.int64)
    return np.dtype(np.float64)  # float16/bfloat16/float32/float64: exact in float64


def _argmax_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype([(_VALUE, _argmax_value_dtype(dtype)), (_INDEX, np.intp)])


def _argmax_chunk(
    xb: npt.NDArray[Any],
    *,
    axis: int | None,
    partial_dtype: np.dtype[Any],
    block_info: dict[Any, Any] | None = None,
) -> npt.NDArray[Any]:
    """Per-block ``(max value, global index)``; index -1 marks a block with no entry."""
    if block_info is None or 0 not in block_info:  # meta computation
        return np.empty((0,) * xb.ndim, dtype=partial_dtype)
    info = block_info[0]
    starts = [lo for lo, _ in info["array-location"]]
    vdt = partial_dtype[_VALUE]
    if axis is None:
        out = np.empty((1,) * xb.ndim, dtype=partial_dtype)
        if xb.size == 0:
            out[_INDEX] = -1
            out[_VALUE] = 0
            return out
        flat = int(_argmax(xb, axis=None))
        local = np.unravel_index(flat, xb.shape)
        glob = tuple(int(i) + lo for i, lo in zip(local, starts, strict=True))
        out[_INDEX] = np.ravel_multi_index(glob, tuple(info["shape"])) if glob else 0
        out[_VALUE] = np.asarray(xb[local]).astype(vdt)
        return out
    shape = list(xb.shape)
    shape[axis] = 1
    out = np.empty(shape, dtype=partial_dtype)
    if xb.shape[axis] == 0:
        out[_INDEX] = -1
        out[_VALUE] = 0
        return out
    idx = np.asarray(_argmax(xb, axis=axis, keepdims=True))
    out[_VALUE] = np.take_along_axis(xb, idx, axis=axis).astype(vdt)
    out[_INDEX] = idx + starts[axis]
    return out


def _identity(parts: npt.NDArray[Any], axis: tuple[int, ...], keepdims: bool) -> npt.NDArray[Any]:
    return parts


def _merge_argmax(parts: npt.NDArray[Any], axis: tuple[int, ...]) -> npt.NDArray[Any]:
    """Merge ``(value, index)`` candidates over ``axis`` (keepdims), NumPy's rules.

    Order-independent: the smallest global index among the NaNs if there is one, else
    among the entries equal to the maximum. (For ``axis=None`` the blocks' order is not
    the flat order, so "first block wins" would be wrong.)
    """
    keep_shape = tuple(1 if i in axis else n for i, n in enumerate(parts.shape))
    rest = [i for i in range(parts.ndim) if i not in axis]
    k = math.prod(parts.shape[i] for i in axis)
    rest_shape = tuple(parts.shape[i] for i in rest)
    flat = np.transpose(parts, rest + list(axis)).reshape((*rest_shape, k))
    v = flat[_VALUE]
    i = flat[_INDEX]
    valid = i >= 0
    big_index = np.iinfo(np.intp).max
    if v.dtype.kind == "f":
        nan = np.isnan(v) & valid
        low = -np.inf
        vv = np.where(nan, low, v)
    else:
        nan = np.zeros(v.shape, dtype=bool)
        low = np.iinfo(v.dtype).min
        vv = v
    vmax = np.max(np.where(valid, vv, low), axis=-1, keepdims=True, initial=low)
    has_nan = np.any(nan, axis=-1, keepdims=True)
    cand = valid & np.where(has_nan, nan, vv == vmax)
    key = np.where(cand, i, big_index)
    pos = np.argmin(key, axis=-1)[..., None]
    chosen = np.take_along_axis(flat, pos, axis=-1)
    chosen[_INDEX] = np.where(np.take_along_axis(cand, pos, axis=-1), chosen[_INDEX], -1)
    # Back to the keepdims layout of the input (reduced axes of length 1).
    moved = chosen.reshape(rest_shape + (1,) * len(axis))
    back = np.argsort(rest + list(axis))
    return np.transpose(moved, tuple(int(j) for j in back)).reshape(keep_shape)


def _argmax_combine(
    parts: npt.NDArray[Any], axis: tuple[int, ...], keepdims: bool
) -> npt.NDArray[Any]:
    out = _merge_argmax(parts, axis)
    return out if keepdims else np.squeeze(out, axis=axis)


def _argmax_index(
    merged: npt.NDArray[Any], *, axis: tuple[int, ...], keepdims: bool
) -> npt.NDArray[np.intp]:
    idx = np.ascontiguousarray(merged[_INDEX]).astype(np.intp, copy=False)
    return idx if keepdims else np.squeeze(idx, axis=axis)


# --------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------


def _row_stats(
    x: da.Array,
    axes: tuple[int, ...],
    temperature: float,
    compute: np.dtype[Any],
    split_every: int | None,
) -> da.Array:
    sdt = _stats_dtype(compute)
    return cast(
        "da.Array",
        _da.reduction(
            x,
            chunk=partial(_stats_chunk, temperature=temperature, compute=compute),
            combine=_stats_combine,
            aggregate=_stats_combine,
            axis=axes,
            keepdims=True,
            dtype=sdt,
            split_every=split_every,
            concatenate=True,
            meta=_empty(sdt, x.ndim),
            name="softmax_rs-row-stats",
        ),
    )


def _softmax_like(
    x: Any,
    axis: Axis,
    temperature: float,
    dtype: Any,
    split_every: int | None,
    *,
    log: bool,
) -> da.Array:
    a = _as_dask(x)
    t = _check_temperature(temperature)
    a, compute, result = _dtypes(a, dtype)
    axes = _axes(axis, a.ndim)
    if a.ndim == 0:  # a scalar: one row of one entry
        one = _softmax_like(cast("Any", a).reshape(1), 0, t, None, split_every, log=log)
        return cast("da.Array", cast("Any", one).reshape(()))
    stats = _row_stats(a, axes, t, compute, split_every)
    func = partial(_finish_block, axis=axes, log=log, temperature=t, compute=compute, result=result)
    return cast(
        "da.Array",
        _da.map_blocks(
            func,
            a,
            stats,
            dtype=result,
            meta=_empty(result, a.ndim),
            token="softmax_rs-log-softmax" if log else "softmax_rs-softmax",
        ),
    )


def softmax(
    x: Any,
    axis: Axis = -1,
    *,
    temperature: float = 1.0,
    dtype: Any = None,
    split_every: int | None = None,
) -> da.Array:
    """Softmax of a Dask array along ``axis`` (an int, a tuple of axes, or None for all).

    Lazy; the chunks may split the reduction axes. ``temperature`` is a positive scalar
    (the result is the softmax of ``x / temperature``); ``dtype`` (float32/float64)
    picks the compute and result dtype; ``split_every`` is the fan-in of the tree
    reduction of the per-row partials (Dask's default when None). Results, dtypes and
    special values are those of :func:`softmax_rs.softmax` on the computed array, within
    its error bounds.
    """
    return _softmax_like(x, axis, temperature, dtype, split_every, log=False)


def log_softmax(
    x: Any,
    axis: Axis = -1,
    *,
    temperature: float = 1.0,
    dtype: Any = None,
    split_every: int | None = None,
) -> da.Array:
    """Log-softmax of a Dask array; arguments as :func:`softmax`."""
    return _softmax_like(x, axis, temperature, dtype, split_every, log=True)


def logsumexp(
    x: Any,
    axis: Axis = -1,
    *,
    keepdims: bool = False,
    temperature: float = 1.0,
    dtype: Any = None,
    split_every: int | None = None,
) -> da.Array:
    """``log(sum(exp(x)))`` of a Dask array over ``axis``; arguments as :func:`softmax`.

    One read of the data: the per-row ``(max, sumexp)`` partials are merged in a tree and
    the last merge returns ``max + log(sumexp)``.
    """
    a = _as_dask(x)
    t = _check_temperature(temperature)
    a, compute, _ = _dtypes(a, dtype)
    result = np.dtype(_logsumexp(np.zeros((1,), dtype=a.dtype)).dtype)
    axes = _axes(axis, a.ndim)
    if a.ndim == 0:  # a scalar: one row of one entry
        one = logsumexp(cast("Any", a).reshape(1), 0, temperature=t, split_every=split_every)
        return cast("da.Array", cast("Any", one).reshape(()))
    stats = _row_stats(a, axes, t, compute, split_every)
    return cast(
        "da.Array",
        _da.map_blocks(
            partial(_lse_block, axis=axes, keepdims=keepdims, result=result),
            stats,
            drop_axis=() if keepdims else axes,
            dtype=result,
            meta=_empty(result, a.ndim if keepdims else a.ndim - len(axes)),
            token="softmax_rs-logsumexp",
        ),
    )


def argmax(
    x: Any,
    axis: int | None = -1,
    *,
    keepdims: bool = False,
    split_every: int | None = None,
) -> da.Array:
    """Indices of the maxima of a Dask array along ``axis`` (an int, or None: flattened).

    Exactly ``numpy.argmax``'s result for every real dtype and any chunking: the first
    maximum wins and the first NaN wins over everything. Raises ``ValueError`` for an
    empty reduction (eagerly), ``AxisError`` for a bad axis, ``TypeError`` for a tuple
    axis or an unsupported dtype.
    """
    a = _as_dask(x)
    if isinstance(axis, Sequence) or not (axis is None or isinstance(axis, (int, np.integer))):
        raise TypeError(f"argmax takes an int or None as axis, got {axis!r}")
    _argmax(np.zeros((1,), dtype=a.dtype))  # TypeError for unsupported dtypes
    if a.ndim == 0:  # a scalar: index 0 (AxisError for an int axis, as NumPy)
        if axis is not None:
            normalize_axis_index(int(axis), 0)
        one = argmax(cast("Any", a).reshape(1), None, split_every=split_every)
        return cast("da.Array", cast("Any", one).reshape(()))
    if axis is None:
        red: tuple[int, ...] = tuple(range(a.ndim))
        if a.size == 0:
            raise ValueError("attempt to get argmax of an empty sequence")
        ax: int | None = None
    else:
        ax = normalize_axis_index(int(axis), a.ndim)
        red = (ax,)
        if a.shape[ax] == 0:
            raise ValueError("attempt to get argmax of an empty sequence")
    pdt = _argmax_dtype(a.dtype)
    chunks = tuple((1,) * len(c) if i in red else c for i, c in enumerate(a.chunks))
    parts = _da.map_blocks(
        partial(_argmax_chunk, axis=ax, partial_dtype=pdt),
        a,
        chunks=chunks,
        dtype=pdt,
        meta=_empty(pdt, a.ndim),
        token="softmax_rs-argmax-chunk",
    )
    merged = _da.reduction(
        parts,
        chunk=_identity,
        combine=_argmax_combine,
        aggregate=_argmax_combine,
        axis=red,
        keepdims=True,
        dtype=pdt,
        split_every=split_every,
        concatenate=True,
        meta=_empty(pdt, a.ndim),
        name="softmax_rs-argmax-merge",
    )
    return cast(
        "da.Array",
        _da.map_blocks(
            partial(_argmax_index, axis=red, keepdims=keepdims),
            merged,
            drop_axis=() if keepdims else red,
            dtype=np.intp,
            meta=_empty(np.dtype(np.intp), a.ndim if keepdims else a.ndim - len(red)),
            token="softmax_rs-argmax",
        ),
    )
