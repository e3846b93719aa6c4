"""Beyond the kernels: prediction, top-k, sampling and losses built on the core kernels.

Everything here follows the package conventions (see ``API.md``): inputs are anything
``numpy.asarray`` accepts, float32/float64 compute in their own precision, float16/bfloat16
in float32 (returning their own dtype), bool/integers give float64, complex/object/string
input raises ``TypeError``, a bad axis raises ``numpy.exceptions.AxisError``.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from numpy.exceptions import AxisError

from softmax_rs import _core
from softmax_rs._core import argmax, log_softmax, logsumexp, row_stats, softmax

__all__ = [
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "log_sigmoid",
    "predict",
    "sample",
    "sampled_softmax_loss",
    "sigmoid",
    "top_k",
]

Array = npt.NDArray[Any]
Reduction = Literal["none", "mean", "sum"]

# The Rust top-k kernel (``src/bind_topk.rs``); a NumPy fallback is used without it.
_top_k_lastaxis: Any = getattr(_core, "_top_k_lastaxis", None)

# --------------------------------------------------------------------------- helpers


def _asarray(x: Any) -> Array:
    """``numpy.asarray``, or ``numpy.from_dlpack`` for DLPack-only producers."""
    if isinstance(x, np.ndarray):
        return x
    if not hasattr(x, "__array__") and hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)


def _is_bfloat16(dt: np.dtype[Any]) -> bool:
    return dt.kind == "V" and dt.name == "bfloat16"


def _check_real(dt: np.dtype[Any], what: str = "x") -> None:
    """TypeError unless ``dt`` is bool, an integer, or float16/bfloat16/float32/float64."""
    ok = dt.kind in "biu" or (dt.kind == "f" and dt.char in "efd") or _is_bfloat16(dt)
    if not ok:
        raise TypeError(f"unsupported dtype for {what}: {dt}")


def _result_dtype(dt: np.dtype[Any]) -> np.dtype[Any]:
    """The result dtype of the softmax family for input dtype ``dt``."""
    _check_real(dt)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    return dt.newbyteorder("=")


def _compute_dtype(dt: np.dtype[Any]) -> np.dtype[Any]:
    """float64 for float64/bool/ints, float32 for float32/float16/bfloat16."""
    res = _result_dtype(dt)
    return np.dtype(np.float64) if res == np.float64 else np.dtype(np.float32)


def _axis(axis: Any, ndim: int) -> int:
    """A single axis, normalised (``AxisError`` when out of range)."""
    ax = operator.index(axis)
    if not -ndim <= ax < ndim:
        raise AxisError(ax, ndim)
    return ax % ndim


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an integer, not bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _fraction(value: Any, name: str, *, low_open: bool) -> float:
    """A float in (0, 1] (``low_open``) or [0, 1]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number") from None
    if not (0.0 < v <= 1.0 if low_open else 0.0 <= v <= 1.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return v


def _temperature(temperature: Any, shape: tuple[int, ...], ax: int) -> float | Array:
    """Validate ``temperature``; return a float or a float64 array of the keepdims shape.

    An array temperature is broadcast to the reduced shape (``shape`` without ``ax``), or,
    when it has as many dimensions as the input, to the keepdims shape.
    """
    try:
        t = np.asarray(temperature, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("temperature must be a real number or array") from None
    if not bool(np.all(np.isfinite(t) & (t > 0))):
        raise ValueError("temperature must be positive and finite")
    if t.ndim == 0:
        return float(t)
    keep = (*shape[:ax], 1, *shape[ax + 1 :])
    try:
        if t.ndim == len(shape):
            return np.broadcast_to(t, keep)
        reduced = shape[:ax] + shape[ax + 1 :]
        return np.expand_dims(np.broadcast_to(t, reduced), ax)
    except ValueError:
        raise ValueError(
            f"temperature of shape {t.shape} does not broadcast to the reduced shape "
            f"{shape[:ax] + shape[ax + 1 :]} (or {keep} with the axis kept)"
        ) from None


def _scalar(r: Array) -> Any:
    return r[()] if r.ndim == 0 else r


def _check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a numpy.ndarray")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


# --------------------------------------------------------------------------- predict


def predict(logits: npt.ArrayLike, axis: int | None = -1, *, temperature: Any = 1.0) -> Any:
    """Labels and the winning probability, without building a probability array.

    ``labels = argmax(logits, axis)`` and ``confidence = softmax(logits / T)[labels]``.
    At ``T = 1`` the confidence is ``1 / sum(exp(x - max))`` from the core's fused per-row
    (max, sum-of-exp) pass, as accurate as ``softmax``; otherwise it is
    ``exp(max / T - logsumexp(logits / T))`` with the logsumexp in float64. ``axis=None``
    works on the flattened input, as ``np.argmax``. ``confidence`` has the dtype
    ``softmax`` gives, and softmax's special values (NaN rows, ``1/k`` for ``k`` entries
    at ``+inf``, NaN for a row of all ``-inf``).

    Returns
    -------
    (labels, confidence) : np.intp and float arrays (or scalars) of the reduced shape.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> labels, conf = sr.predict(np.log([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]]))
    >>> labels
    array([1, 0])
    >>> np.round(conf, 6)
    array([0.7, 0.5])
    """
    x = _asarray(logits)
    res = _result_dtype(x.dtype)
    shape = (x.size,) if axis is None else x.shape
    ax = 0 if axis is None else _axis(axis, x.ndim)
    t = _temperature(temperature, shape, ax)
    if axis is None and not isinstance(t, float):
        t = float(np.asarray(t).reshape(()))
    labels = np.asarray(argmax(x, axis=axis))
    reduced = labels.shape
    if isinstance(t, float) and t == 1.0:
        top, sumexp = (np.asarray(v) for v in row_stats(x, axis))
        with np.errstate(divide="ignore", invalid="ignore"):
            conf = np.where(top == -np.inf, np.nan, 1.0 / sumexp)
    else:
        if axis is None:
            top = np.asarray(x[np.unravel_index(int(labels), x.shape)], dtype=np.float64)
        else:
            top = np.take_along_axis(x, np.expand_dims(labels, ax), axis=ax)
            top = top.astype(np.float64)
        lse = np.asarray(
            logsumexp(x, axis=axis, keepdims=axis is not None, temperature=t, dtype=np.float64)
        )
        with np.errstate(invalid="ignore", over="ignore"):
            conf = np.exp(top / t - lse)
        at_inf = top == np.inf
        if bool(np.any(at_inf)):
            count = np.sum(x == np.inf, axis=axis, keepdims=axis is not None)
            conf = np.where(at_inf, 1.0 / np.maximum(count, 1), conf)
    return _scalar(labels), _scalar(conf.reshape(reduced).astype(res))


# --------------------------------------------------------------------------- top_k


def _top_k_numpy(a2: Array, k: int, largest: bool) -> Array:
    """Indices of the k best per row (sorted), by stable argsort (any real dtype)."""
    n = a2.shape[-1]
    if largest:
        # Stable ascending sort of the reversed row, read backwards: descending values,
        # NaN first (np.sort puts NaN last), ties in increasing original index.
        order = np.argsort(a2[:, ::-1], axis=-1, kind="stable")[:, ::-1]
        best: Array = (n - 1 - order)[:, :k]
        return best
    smallest: Array = np.argsort(a2, axis=-1, kind="stable")[:, :k]
    return smallest


def _kernel_dtype(dt: np.dtype[Any]) -> np.dtype[Any] | None:
    """The dtype the Rust kernel runs on for ``dt`` (exact conversion), or None."""
    if dt.kind == "f" and dt.char in "fd":
        return dt.newbyteorder("=")
    if (dt.kind == "f" and dt.char == "e") or _is_bfloat16(dt):
        return np.dtype(np.float32)
    if dt.kind == "b" or (dt.kind in "iu" and dt.itemsize <= 4):
        return np.dtype(np.float64)
    return None


def _top_k_impl(x: Array, k: int, ax: int, largest: bool, sorted: bool) -> tuple[Array, Array]:
    moved = np.moveaxis(x, ax, -1)
    batch, n = moved.shape[:-1], moved.shape[-1]
    if k > n:
        raise ValueError(f"k ({k}) is larger than the size of the axis ({n})")
    rows = math.prod(batch)
    kdt = _kernel_dtype(x.dtype)
    if k == 0 or rows == 0:
        vals = np.empty((*batch, k), dtype=x.dtype)
        idx = np.empty((*batch, k), dtype=np.intp)
    elif _top_k_lastaxis is not None and kdt is not None:
        a2 = np.ascontiguousarray(moved, dtype=kdt).reshape(rows, n)
        v2, i2 = _top_k_lastaxis(a2, k, bool(largest), bool(sorted))
        vals = np.asarray(v2).astype(x.dtype, copy=False).reshape((*batch, k))
        idx = np.asarray(i2, dtype=np.intp).reshape((*batch, k))
    else:
        a2 = moved.reshape(rows, n)
        i2 = _top_k_numpy(a2, k, largest)
        if not sorted:
            i2 = np.sort(i2, axis=-1)
        vals = np.take_along_axis(a2, i2, axis=-1).reshape((*batch, k))
        idx = i2.astype(np.intp, copy=False).reshape((*batch, k))
    return np.moveaxis(vals, -1, ax), np.moveaxis(idx, -1, ax)


def top_k(
    x: npt.ArrayLike,
    k: int,
    axis: int | None = -1,
    *,
    largest: bool = True,
    sorted: bool = True,
) -> tuple[Array, Array]:
    """The ``k`` largest (or smallest) values along ``axis`` and their indices.

    Ties go to the lower index; NaN ranks above ``+inf`` (the order of ``np.sort``), so
    NaNs come first with ``largest=True`` and last with ``largest=False``. With
    ``sorted=True`` the results are ordered best first; with ``sorted=False`` they are in
    increasing index order. The axis is kept, with length ``k`` (as ``torch.topk``);
    ``axis=None`` works on the flattened input. Values keep the input dtype, indices are
    ``np.intp``. Runs a single threshold-filter pass per row (Rust kernel) for float,
    bool and up-to-32-bit integer input.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> values, indices = sr.top_k(np.array([[1.0, 5.0, 3.0, 5.0]]), 2)
    >>> values
    array([[5., 5.]])
    >>> indices
    array([[1, 3]])
    >>> sr.top_k(np.array([4, 1, 3]), 2, largest=False)[1]
    array([1, 2])
    """
    a = _asarray(x)
    if a.dtype.kind not in "biuf" and not _is_bfloat16(a.dtype):
        raise TypeError(f"unsupported dtype for top_k: {a.dtype}")
    kk = _positive_int(k, "k", minimum=0)
    if axis is None:
        a = a.reshape(-1)
        ax = 0
    else:
        ax = _axis(axis, a.ndim)
    return _top_k_impl(a, kk, ax, bool(largest), bool(sorted))


# --------------------------------------------------------------------------- sample

# Below this many comparisons per row, inverse-CDF lookups are done by a vectorised count
# instead of one ``np.searchsorted`` call per row.
_VECTOR_COUNT_MAX = 2048


def _inverse_cdf(weights: Array, u: Array, *, vectorized: bool | None = None) -> Array:
    """Categorical draws: for each row of ``weights`` (>= 0, row sums > 0) and each
    uniform in ``u`` (rows x m, in [0, 1)), the index ``i`` with
    ``cdf[i-1] <= u * total < cdf[i]``; zero-weight entries are never returned.
    """
    cdf = np.cumsum(weights, axis=-1)
    total = cdf[:, -1:]
    target = np.minimum(u * total, np.nextafter(total, 0.0))
    rows, n = cdf.shape
    m = u.shape[1]
    if vectorized is None:
        vectorized = m * n <= _VECTOR_COUNT_MAX
    out = np.empty((rows, m), dtype=np.intp)
    if vectorized:
        step = max(1, (1 << 20) // max(1, m * n))
        for r0 in range(0, rows, step):
            c = cdf[r0 : r0 + step, None, :]
            t = target[r0 : r0 + step, :, None]
            out[r0 : r0 + step] = np.count_nonzero(c <= t, axis=-1)
    else:
        for r in range(rows):
            out[r] = np.searchsorted(cdf[r], target[r], side="right")
    return out


def sample(
    logits: npt.ArrayLike,
    axis: int = -1,
    *,
    temperature: Any = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    num_samples: int | None = None,
    rng: Any = None,
) -> Any:
    """Draw class indices from ``softmax(logits / temperature)`` along ``axis``.

    Filters apply in this order (as Hugging Face ``transformers`` applies its warpers):
    ``temperature``; ``top_k`` keeps the ``k`` most probable classes (ties: lower index);
    ``top_p`` keeps the smallest most-probable prefix whose mass reaches ``top_p`` of what
    is left; ``min_p`` keeps classes with probability ``>= min_p * max probability``. The
    most probable class always survives. The draw is inverse-CDF sampling on the
    unnormalised kept weights, so it never fails on probabilities that do not sum to 1.

    ``rng`` is an int seed, a ``numpy.random.Generator`` (or anything
    ``numpy.random.default_rng`` accepts) or None. All randomness comes from that
    generator and every other step is deterministic, so the same ``rng`` gives the same
    samples on any thread count. A row with a NaN, or with no mass (all ``-inf``), raises
    ``ValueError``. Returns ``np.intp`` indices of the batch shape (``axis`` removed), or
    batch shape + ``(num_samples,)`` (independent draws, with replacement).

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> logits = np.array([[0.0, 10.0, -5.0], [3.0, 0.0, 0.0]])
    >>> sr.sample(logits, top_k=1, rng=0)
    array([1, 0])
    >>> sr.sample(logits, num_samples=4, rng=np.random.default_rng(1)).shape
    (2, 4)
    """
    x = _asarray(logits)
    _check_real(x.dtype, "logits")
    ax = _axis(axis, x.ndim)
    n = x.shape[ax]
    if n == 0:
        raise ValueError("cannot sample from an empty axis")
    k = None if top_k is None else _positive_int(top_k, "top_k")
    p_top = None if top_p is None else _fraction(top_p, "top_p", low_open=True)
    p_min = None if min_p is None else _fraction(min_p, "min_p", low_open=False)
    m = 1 if num_samples is None else _positive_int(num_samples, "num_samples")
    t = _temperature(temperature, x.shape, ax)
    gen = np.random.default_rng(rng)

    moved = np.moveaxis(x, ax, -1)
    batch = moved.shape[:-1]
    tm = t if isinstance(t, float) else np.moveaxis(t, ax, -1)
    probs = np.asarray(softmax(moved, axis=-1, temperature=tm, dtype=np.float64))
    w = np.ascontiguousarray(probs.reshape(-1, n))
    rows = w.shape[0]
    if bool(np.isnan(w).any()):
        # softmax gives NaN rows for a NaN logit or for a row of all -inf (no mass)
        raise ValueError("cannot sample from a row with a NaN or with no mass (all -inf)")

    if k is not None and k < n:
        _, idx = _top_k_impl(w, k, 1, True, True)
        kept = np.zeros_like(w)
        np.put_along_axis(kept, idx, np.take_along_axis(w, idx, axis=1), axis=1)
        w = kept
    if p_top is not None and p_top < 1.0:
        order = np.argsort(-w, axis=1, kind="stable")
        sorted_w = np.take_along_axis(w, order, axis=1)
        csum = np.cumsum(sorted_w, axis=1)
        before = np.concatenate([np.zeros((rows, 1)), csum[:, :-1]], axis=1)
        keep_sorted = before < p_top * csum[:, -1:]
        keep = np.empty_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        w = np.where(keep, w, 0.0)
    if p_min is not None and p_min > 0.0:
        w = np.where(w >= p_min * np.max(w, axis=1, keepdims=True), w, 0.0)

    u = gen.random((rows, m))
    draws = _inverse_cdf(w, u)
    if num_samples is None:
        return _scalar(draws.reshape(batch))
    return draws.reshape((*batch, m))


# --------------------------------------------------------------------------- cross_entropy


def cross_entropy(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    axis: int = -1,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    temperature: Any = 1.0,
    return_grad: bool = False,
) -> Any:
    """Cross-entropy of ``softmax(logits / temperature)`` along ``axis``, as
    ``torch.nn.functional.cross_entropy`` (whose class axis is 1; here it is ``axis``).

    ``target`` is either integer class indices of the batch shape (``logits.shape``
    without ``axis``; entries equal to ``ignore_index`` are skipped) or floating class
    probabilities of ``logits.shape``. ``weight`` (shape ``(C,)``) rescales each class;
    ``label_smoothing`` mixes the target with the uniform distribution. ``reduction``:
    ``"none"`` (per-sample losses), ``"sum"``, or ``"mean"`` -- for index targets the
    weighted mean ``sum(loss) / sum(weight[target])`` over non-ignored samples (torch's
    normalisation), for probability targets the mean over the batch. ``return_grad=True``
    returns ``(loss, grad)`` with ``grad = d loss / d logits`` (for ``"none"``, of the sum
    of the losses), of ``logits``' shape. Losses are accumulated in float64 and returned
    in the result dtype of ``softmax``.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> logits = np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))
    >>> round(float(sr.cross_entropy(logits, np.array([1, 0]))), 12)  # -(log .75 + log .5)/2
    0.490414626506
    >>> loss, grad = sr.cross_entropy(logits, np.array([1, 0]), reduction="sum",
    ...                               return_grad=True)
    >>> grad
    array([[ 0.25, -0.25],
           [-0.5 ,  0.5 ]])
    """
    x = _asarray(logits)
    res = _result_dtype(x.dtype)
    comp = _compute_dtype(x.dtype)
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension (the class axis)")
    ax = _axis(axis, x.ndim)
    n_classes = x.shape[ax]
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    w: Array | None = None
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64)
        if w.shape != (n_classes,):
            raise ValueError(f"weight must have shape ({n_classes},), got {w.shape}")
    tgt = _asarray(target)
    batch = x.shape[:ax] + x.shape[ax + 1 :]
    t = _temperature(temperature, x.shape, ax)
    logp = np.asarray(log_softmax(x, axis=ax, temperature=t, dtype=comp))
    w_b = None if w is None else w.reshape((n_classes,) + (1,) * (x.ndim - 1 - ax))

    if tgt.dtype.kind in "iu":
        if tgt.shape != batch:
            raise ValueError(f"index target must have the batch shape {batch}, got {tgt.shape}")
        valid = tgt != ignore_index
        bad = valid & ((tgt < 0) | (tgt >= n_classes))
        if bool(np.any(bad)):
            raise IndexError(f"target {tgt[bad].flat[0]} is out of bounds for {n_classes} classes")
        safe = np.expand_dims(np.where(valid, tgt, 0).astype(np.intp), ax)
        logp_y = np.squeeze(np.take_along_axis(logp, safe, axis=ax), ax).astype(np.float64)
        w_y = (
            valid.astype(np.float64) if w is None else np.where(valid, w[np.squeeze(safe, ax)], 0.0)
        )
        with np.errstate(invalid="ignore"):
            per = np.where(valid, -w_y * logp_y, 0.0)
            if eps > 0.0:
                if w_b is None:
                    smooth = -np.sum(logp, axis=ax, dtype=np.float64)
                else:
                    smooth = -np.sum(logp * w_b, axis=ax, dtype=np.float64)
                per = (1.0 - eps) * per + (eps / n_classes) * np.where(valid, smooth, 0.0)
        denom = float(np.sum(w_y))
        coef_y = (1.0 - eps) * w_y
        w_sum = float(n_classes) if w is None else float(np.sum(w))
        qsum = coef_y + (eps / n_classes) * w_sum * valid
        smooth_coef: Array | None = (
            (eps / n_classes) * valid.astype(np.float64) if eps > 0.0 else None
        )
        q_full: Array | None = None
    elif tgt.dtype.kind == "f" or _is_bfloat16(tgt.dtype):
        if tgt.shape != x.shape:
            raise ValueError(
                f"probability target must have the shape of logits {x.shape}, got {tgt.shape}"
            )
        if ignore_index >= 0:
            # as torch: a class index to ignore makes no sense for probability targets
            raise ValueError("ignore_index is not supported for floating point target")
        q = tgt.astype(np.float64)
        if eps > 0.0:
            q = q * (1.0 - eps) + eps / n_classes
        if w_b is not None:
            q = q * w_b
        with np.errstate(invalid="ignore"):
            per = np.asarray(-np.sum(logp * q, axis=ax, dtype=np.float64))
        denom = float(x.size // n_classes) if n_classes else 0.0
        qsum = np.asarray(np.sum(q, axis=ax))
        q_full = q
        smooth_coef = None
        valid = np.ones(batch, dtype=bool)
        safe = None
        coef_y = None
    else:
        raise TypeError(
            "target must hold integer class indices or floating class probabilities, "
            f"got dtype {tgt.dtype}"
        )

    if reduction == "none":
        loss: Any = _scalar(per.astype(res))
        scale = 1.0
    else:
        total = float(np.sum(per))
        if reduction == "sum":
            scale = 1.0
            value = total
        else:
            scale = 1.0 / denom if denom != 0.0 else 0.0
            value = total / denom if denom != 0.0 else math.nan
        loss = np.asarray(value, dtype=np.float64).astype(res)[()]
    if not return_grad:
        return loss

    # d/dz of sum_c q_c * (-log softmax(z)_c) = (sum_c q_c) * softmax(z) - q; z = x / T.
    probs = np.asarray(softmax(x, axis=ax, temperature=t, dtype=comp))
    inv_t = 1.0 / np.asarray(t, dtype=np.float64)
    row_scale = np.expand_dims(qsum * valid, ax) * scale * inv_t
    with np.errstate(invalid="ignore"):
        grad = probs * row_scale.astype(comp)
        if q_full is not None:
            grad -= (q_full * (scale * inv_t)).astype(comp)
        else:
            assert safe is not None and coef_y is not None
            at_y = np.take_along_axis(grad, safe, axis=ax)
            at_y -= (np.expand_dims(coef_y, ax) * scale * inv_t).astype(comp)
            np.put_along_axis(grad, safe, at_y, axis=ax)
            if smooth_coef is not None:
                ws = np.ones((n_classes,) + (1,) * (x.ndim - 1 - ax)) if w_b is None else w_b
                grad -= (np.expand_dims(smooth_coef, ax) * ws * scale * inv_t).astype(comp)
        grad = np.where(np.expand_dims(valid, ax), grad, 0).astype(comp, copy=False)
    return loss, grad.astype(res, copy=False)


# --------------------------------------------------------------------------- sigmoid


def _float_like(x: Any, name: str) -> tuple[Array, np.dtype[Any], np.dtype[Any]]:
    """Input array, its result dtype and compute dtype (longdouble computes natively)."""
    a = _asarray(x)
    if a.dtype == np.longdouble and a.dtype != np.float64:
        return a, a.dtype, a.dtype
    _check_real(a.dtype, name)
    return a, _result_dtype(a.dtype), _compute_dtype(a.dtype)


def _finish(r: Array, out: Any, res: np.dtype[Any], shape: tuple[int, ...]) -> Any:
    if out is None:
        return _scalar(r.astype(res, copy=False))
    o = _check_out(out, shape, res)
    np.copyto(o, r, casting="unsafe")
    return o


def sigmoid(x: npt.ArrayLike, *, out: Any = None) -> Any:
    """The logistic function ``1 / (1 + exp(-x))``, stable for any ``|x|``.

    Uses ``1 / (1 + exp(-x))`` for ``x >= 0`` and ``exp(x) / (1 + exp(x))`` for ``x < 0``,
    so nothing overflows and small results keep full relative precision
    (``sigmoid(-1e4)`` is 0 without warnings, ``sigmoid(-80)`` is ``1.8e-35``).
    ``out`` may be ``x`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> sr.sigmoid(np.array([-1e4, 0.0, 1e4]))
    array([0. , 0.5, 1. ])
    """
    a, res, comp = _float_like(x, "x")
    ac = a.astype(comp, copy=False)
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(ac))
        r = np.where(ac >= 0, 1, e) / (1 + e)
    return _finish(r, out, res, a.shape)


def log_sigmoid(x: npt.ArrayLike, *, out: Any = None) -> Any:
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``, stable for any ``|x|``.

    ``log_sigmoid(-1e4) == -1e4`` and ``log_sigmoid(40) == -4.2e-18`` (no underflow to 0
    before it is due). ``out`` may be ``x`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> sr.log_sigmoid(np.array([-1e4, 0.0, 1e4]))
    array([-1.00000000e+04, -6.93147181e-01,  0.00000000e+00])
    """
    a, res, comp = _float_like(x, "x")
    ac = a.astype(comp, copy=False)
    with np.errstate(under="ignore"):
        r = np.minimum(ac, 0) - np.log1p(np.exp(-np.abs(ac)))
    return _finish(r, out, res, a.shape)


def binary_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    pos_weight: npt.ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> Any:
    """Sigmoid + binary cross-entropy in one stable step, as
    ``torch.nn.functional.binary_cross_entropy_with_logits``.

    ``loss = -[pos_weight * t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x))] * weight``,
    evaluated as ``pos_weight * t * softplus(-x) + (1 - t) * softplus(x)`` (two
    non-negative terms for ``t`` in [0, 1]), which is exact to rounding for ``|x|`` up to
    1e4 and beyond. ``target`` has the shape of ``logits``; ``weight`` and ``pos_weight``
    broadcast to it (``pos_weight`` usually has one entry per class, the last axis).
    ``reduction``: ``"none"``, ``"mean"`` (over all elements) or ``"sum"``.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> x = np.array([1e4, -1e4, 0.0])
    >>> sr.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0, 1.0]), reduction="none")
    array([0.        , 0.        , 0.69314718])
    """
    x = _asarray(logits)
    res = _result_dtype(x.dtype)
    comp = _compute_dtype(x.dtype)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    t_arr = _asarray(target)
    _check_real(t_arr.dtype, "target")
    if t_arr.shape != x.shape:
        raise ValueError(f"target size {t_arr.shape} must be the same as input size {x.shape}")
    xc = x.astype(comp, copy=False)
    t = t_arr.astype(comp, copy=False)
    with np.errstate(under="ignore"):
        tail = np.log1p(np.exp(-np.abs(xc)))  # softplus(+-x) = max(+-x, 0) + tail
        sp_pos = np.maximum(xc, 0) + tail
        sp_neg = np.maximum(-xc, 0) + tail
    if pos_weight is not None:
        pw = np.asarray(pos_weight, dtype=comp)
        if np.broadcast_shapes(pw.shape, x.shape) != x.shape:
            raise ValueError(f"pos_weight of shape {pw.shape} does not broadcast to {x.shape}")
        pos_term = pw * t * sp_neg
    else:
        pos_term = t * sp_neg
    loss = pos_term + (1 - t) * sp_pos
    if weight is not None:
        wt = np.asarray(weight, dtype=comp)
        if np.broadcast_shapes(wt.shape, x.shape) != x.shape:
            raise ValueError(f"weight of shape {wt.shape} does not broadcast to {x.shape}")
        loss = loss * wt
    if reduction == "none":
        return _scalar(loss.astype(res, copy=False))
    total = float(np.sum(loss, dtype=np.float64))
    if reduction == "mean":
        total = total / loss.size if loss.size else math.nan
    return np.asarray(total).astype(res)[()]


# --------------------------------------------------------------------------- sampled softmax

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _log_uniform_prob(classes: Array, range_max: int) -> Array:
    """P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1)."""
    k = classes.astype(np.float64)
    return np.log1p(1.0 / (k + 1.0)) / math.log1p(range_max)


def _expected_count(p: Array, num_sampled: int, num_tries: int) -> Array:
    """TensorFlow's expected count of a class among the candidates."""
    if num_tries == num_sampled:
        return np.asarray(p * num_sampled)
    return np.asarray(-np.expm1(num_tries * np.log1p(-p)))


def _log_uniform_candidate_sampler(
    true_classes: Array,
    num_sampled: int,
    range_max: int,
    gen: np.random.Generator,
    unique: bool = True,
) -> tuple[Array, Array, Array]:
    """``tf.random.log_uniform_candidate_sampler``: (sampled, true_expected_count,
    sampled_expected_count).

    Draws ``k = floor(exp(u * log(range_max + 1))) - 1`` (so ``P(k)`` is log-uniform).
    With ``unique=True`` draws are repeated until ``num_sampled`` distinct classes are
    found (kept in order of first appearance) and the expected counts are
    ``1 - (1 - P(k)) ** num_tries``, ``num_tries`` being the number of draws it took
    (``P(k) * num_sampled`` when there were no repeats), as TensorFlow computes them.
    """
    log_range = math.log1p(range_max)

    def draw(size: int) -> Array:
        v = np.floor(np.exp(gen.random(size) * log_range)).astype(np.int64) - 1
        return v % range_max

    if not unique:
        sampled = draw(num_sampled)
        tries = num_sampled
    else:
        if num_sampled > range_max:
            raise ValueError(
                f"num_sampled ({num_sampled}) must not exceed num_classes ({range_max}) "
                "with unique sampling"
            )
        draws = np.empty(0, dtype=np.int64)
        block = max(2 * num_sampled, 64)
        while True:
            draws = np.concatenate([draws, draw(block)])
            _, first = np.unique(draws, return_index=True)
            if first.size >= num_sampled:
                firsts = np.sort(first)[:num_sampled]
                sampled = draws[firsts]
                tries = int(firsts[-1]) + 1
                break
            block *= 2
    true_ec = _expected_count(_log_uniform_prob(true_classes, range_max), num_sampled, tries)
    sampled_ec = _expected_count(_log_uniform_prob(sampled, range_max), num_sampled, tries)
    return sampled, true_ec, sampled_ec


def sampled_softmax_loss(
    weights: npt.ArrayLike,
    biases: npt.ArrayLike,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    *,
    num_true: int = 1,
    remove_accidental_hits: bool = True,
    rng: Any = None,
) -> Array:
    """Sampled softmax training loss, as ``tf.nn.sampled_softmax_loss``.

    ``weights`` ``(num_classes, dim)``, ``biases`` ``(num_classes,)``, ``labels`` integer
    ``(batch, num_true)`` (or ``(batch,)`` when ``num_true == 1``), ``inputs``
    ``(batch, dim)``. One set of ``num_sampled`` candidate classes is drawn for the whole
    batch by the log-uniform (Zipfian) sampler ``P(k) = (log(k+2) - log(k+1)) /
    log(num_classes + 1)`` (classes should be sorted by decreasing frequency), with
    TensorFlow's default ``unique=True`` semantics: distinct candidates, expected counts
    ``1 - (1 - P(k)) ** num_tries``. Candidates that equal one of a row's true labels are
    removed from that row (``remove_accidental_hits``), the log expected counts are
    subtracted from all logits, and the loss is the softmax cross-entropy of the
    ``num_true + num_sampled`` logits with target ``1 / num_true`` on the true classes.
    Returns the per-example losses, shape ``(batch,)``. ``rng`` as in :func:`sample`.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> g = np.random.default_rng(0)
    >>> W, b = g.standard_normal((1000, 16)), np.zeros(1000)
    >>> x, y = g.standard_normal((4, 16)), np.array([3, 1, 4, 1])
    >>> sr.sampled_softmax_loss(W, b, y, x, num_sampled=64, num_classes=1000, rng=0).shape
    (4,)
    """
    W = _asarray(weights)
    bias = _asarray(biases)
    X = _asarray(inputs)
    lab = _asarray(labels)
    for arr, name in ((W, "weights"), (bias, "biases"), (X, "inputs")):
        _check_real(arr.dtype, name)
    ns = _positive_int(num_sampled, "num_sampled")
    nc = _positive_int(num_classes, "num_classes")
    nt = _positive_int(num_true, "num_true")
    if lab.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {lab.dtype}")
    if lab.ndim == 1 and nt == 1:
        lab = lab[:, None]
    if W.ndim != 2 or W.shape[0] != nc:
        raise ValueError(f"weights must have shape (num_classes={nc}, dim), got {W.shape}")
    if bias.shape != (nc,):
        raise ValueError(f"biases must have shape ({nc},), got {bias.shape}")
    if X.ndim != 2 or X.shape[1] != W.shape[1]:
        raise ValueError(f"inputs must have shape (batch, {W.shape[1]}), got {X.shape}")
    if lab.shape != (X.shape[0], nt):
        raise ValueError(f"labels must have shape ({X.shape[0]}, {nt}), got {lab.shape}")
    if bool(np.any((lab < 0) | (lab >= nc))):
        raise ValueError(f"labels must be in [0, {nc})")
    gen = np.random.default_rng(rng)
    comp = np.result_type(
        _compute_dtype(W.dtype), _compute_dtype(X.dtype), _compute_dtype(bias.dtype)
    )
    Wc, bc, Xc = (a.astype(comp, copy=False) for a in (W, bias, X))
    lab = lab.astype(np.intp)

    sampled, true_ec, sampled_ec = _log_uniform_candidate_sampler(lab, ns, nc, gen)
    true_logits = np.einsum("bd,btd->bt", Xc, Wc[lab]) + bc[lab]
    sampled_logits = Xc @ Wc[sampled].T + bc[sampled]
    if remove_accidental_hits:
        hits = np.any(lab[:, :, None] == sampled[None, None, :], axis=1)
        sampled_logits = np.where(hits, sampled_logits - _FLOAT32_MAX, sampled_logits)
    true_logits = true_logits - np.log(true_ec).astype(comp)
    sampled_logits = sampled_logits - np.log(sampled_ec).astype(comp)
    all_logits = np.concatenate([true_logits, sampled_logits], axis=1)
    lse = np.asarray(logsumexp(all_logits, axis=1, dtype=np.float64))
    loss = lse - np.mean(true_logits, axis=1, dtype=np.float64)
    return loss.astype(comp)
