"""Calibration: temperature scaling (Guo et al., 2017) and the expected calibration error.

``fit_temperature`` finds the scalar ``T > 0`` minimising the mean negative log-likelihood
of ``softmax(logits / T)``; ``calibration_error`` and ``reliability_bins`` measure how well
the confidence (the maximum probability) matches the accuracy, over equal-width bins of
[0, 1], with the definitions torchmetrics uses.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from softmax_rs._core import argmax, softmax
from softmax_rs._extras import _asarray, _axis, _check_real, _positive_int

__all__ = ["calibration_error", "fit_temperature", "reliability_bins"]

Array = npt.NDArray[Any]


# --------------------------------------------------------------------------- fit_temperature


def _labels_for(labels: Any, batch: tuple[int, ...], n_classes: int) -> Array:
    y = _asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.shape != batch:
        raise ValueError(f"labels must have the batch shape {batch}, got {y.shape}")
    if bool(np.any((y < 0) | (y >= n_classes))):
        raise ValueError(f"labels must be in [0, {n_classes})")
    return y


class _NLL:
    """Mean NLL of ``softmax(beta * x)`` as a function of ``beta = 1 / T``.

    ``g(beta)`` (derivative) is ``mean(E_p[x] - x_label)`` and ``h(beta)`` (second
    derivative) is ``mean(Var_p[x]) >= 0``: the NLL is convex in ``beta``.
    """

    def __init__(self, x: Array, y: Array) -> None:
        self.x = x
        self.x_y = x[np.arange(x.shape[0]), y]
        self.evaluations = 0

    def grad_hess(self, beta: float) -> tuple[float, float]:
        self.evaluations += 1
        p = np.asarray(softmax(self.x, axis=1, temperature=1.0 / beta, dtype=np.float64))
        ex = np.einsum("ij,ij->i", p, self.x)
        dev = self.x - ex[:, None]
        var = np.einsum("ij,ij,ij->i", p, dev, dev)
        return float(np.mean(ex - self.x_y)), float(np.mean(var))


def fit_temperature(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1) -> float:
    """The temperature ``T > 0`` minimising the mean NLL of ``softmax(logits / T)``.

    Temperature scaling (Guo et al., 2017). The NLL is convex in ``1 / T``; it is
    minimised over ``log T`` by bracketing the root of its exact derivative and then
    safeguarded Newton steps (falling back to bisection), to ~1e-13 relative. ``labels``
    are class indices of the batch shape (``logits.shape`` without ``axis``). Logits must
    be finite. Degenerate cases: ``0.0`` when every label is already a row maximum (the
    NLL keeps falling as ``T -> 0``) and ``inf`` when the NLL falls as ``T -> inf``
    (labels no better than the average logit).

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> g = np.random.default_rng(0)
    >>> y = g.integers(0, 10, 2000)
    >>> logits = g.standard_normal((2000, 10)) + 2.0 * np.eye(10)[y]
    >>> T = sr.fit_temperature(logits, y)
    >>> round(sr.fit_temperature(5.0 * logits, y) / T, 9)  # 5x the logits: 5x the T
    5.0
    """
    x = _asarray(logits)
    _check_real(x.dtype, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension (the class axis)")
    ax = _axis(axis, x.ndim)
    n_classes = x.shape[ax]
    batch = x.shape[:ax] + x.shape[ax + 1 :]
    y = _labels_for(labels, batch, n_classes).reshape(-1).astype(np.intp)
    if y.size == 0 or n_classes == 0:
        raise ValueError("fit_temperature needs at least one sample and one class")
    x2 = np.moveaxis(x, ax, -1).reshape(-1, n_classes).astype(np.float64)
    if not bool(np.all(np.isfinite(x2))):
        raise ValueError("logits must be finite")
    f = _NLL(x2, y)
    if float(np.mean(x2.mean(axis=1) - f.x_y)) >= 0.0:
        return math.inf
    if bool(np.all(f.x_y == x2.max(axis=1))):
        return 0.0

    # Bracket the root of g in s = log(beta): g(s_lo) < 0 < g(s_hi).
    s = 0.0
    g, h = f.grad_hess(1.0)
    if g == 0.0:
        return 1.0
    step = 1.0
    s_lo, s_hi = (s, math.inf) if g < 0 else (-math.inf, s)
    best = (s, g, h)
    while not (math.isfinite(s_lo) and math.isfinite(s_hi)):
        s = s + step if g < 0 else s - step
        if not -745.0 < s < 709.0:
            # The optimum is outside what float64 resolves; return the bracket edge.
            return math.exp(-s)
        g, h = f.grad_hess(math.exp(s))
        if g == 0.0:
            return math.exp(-s)
        if g < 0:
            s_lo = s
        else:
            s_hi = s
        best = (s, g, h)
        step *= 2.0

    s, g, h = best
    for _ in range(200):
        beta = math.exp(s)
        denom = g + beta * h  # d/ds of beta * g(beta)
        tol = 1e-14 * max(1.0, abs(s))
        if denom > 0:
            step = g / denom
            if abs(step) <= tol:  # Newton has converged (to rounding noise of g)
                return math.exp(-(s - step))
            s_new = s - step
        else:
            s_new = math.nan
        if not (s_lo < s_new < s_hi):
            s_new = 0.5 * (s_lo + s_hi)  # safeguard: bisect the bracket
        if s_hi - s_lo <= tol:
            s = s_new
            break
        s = s_new
        g, h = f.grad_hess(math.exp(s))
        if g == 0.0:
            break
        if g < 0:
            s_lo = s
        else:
            s_hi = s
    return math.exp(-s)


# --------------------------------------------------------------------------- calibration


def _confidence_accuracy(probs: Any, labels: Any) -> tuple[Array, Array]:
    p = _asarray(probs)
    _check_real(p.dtype, "probs")
    if p.ndim == 0:
        raise ValueError("probs must have at least one dimension (the class axis, last)")
    n_classes = p.shape[-1]
    if n_classes == 0:
        raise ValueError("probs has no classes")
    y = _labels_for(labels, p.shape[:-1], n_classes)
    dt = np.float64 if p.dtype == np.float64 or p.dtype.kind in "biu" else np.float32
    conf = np.max(p, axis=-1).astype(dt).reshape(-1)
    if conf.size == 0:
        raise ValueError("calibration needs at least one sample")
    if bool(np.any(np.isnan(conf))) or bool(np.any((conf < 0) | (conf > 1))):
        raise ValueError("probs must be probabilities in [0, 1]")
    acc = (np.asarray(argmax(p, axis=-1)) == y).reshape(-1)
    return conf, acc


def _bins(probs: Any, labels: Any, n_bins: Any) -> tuple[Array, Array, Array]:
    """Per-bin (sum of confidence, sum of accuracy, count)."""
    nb = _positive_int(n_bins, "n_bins")
    conf, acc = _confidence_accuracy(probs, labels)
    edges = np.linspace(0.0, 1.0, nb + 1, dtype=conf.dtype)
    # bins [e_i, e_{i+1}) as torch.bucketize(right=True) - 1; confidence 1.0 joins the last
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, nb - 1)
    count = np.bincount(idx, minlength=nb)
    conf_sum = np.bincount(idx, weights=conf.astype(np.float64), minlength=nb)
    acc_sum = np.bincount(idx, weights=acc.astype(np.float64), minlength=nb)
    return conf_sum, acc_sum, count


def reliability_bins(
    probs: npt.ArrayLike, labels: npt.ArrayLike, *, n_bins: int = 15
) -> tuple[Array, Array, Array]:
    """Reliability-diagram data: per equal-width bin of the confidence over [0, 1],
    the mean confidence, the accuracy and the number of samples.

    ``probs`` has the classes on its last axis; ``labels`` are class indices of
    ``probs.shape[:-1]``. The confidence of a sample is its maximum probability and it is
    correct when that is at its label (first maximum). Bins are ``[i/n, (i+1)/n)``, the
    last one closed. Empty bins have NaN confidence and accuracy.

    Returns
    -------
    (confidence, accuracy, count) : float64, float64 and int64 arrays of shape ``(n_bins,)``.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> conf, acc, count = sr.reliability_bins(probs, np.array([0, 1, 1, 0]), n_bins=2)
    >>> conf, acc, count
    (array([ nan, 0.75]), array([nan, 0.5]), array([0, 4]))
    """
    conf_sum, acc_sum, count = _bins(probs, labels, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(count > 0, conf_sum / count, np.nan)
        acc = np.where(count > 0, acc_sum / count, np.nan)
    return conf, acc, count.astype(np.int64)


def calibration_error(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_bins: int = 15,
    norm: Literal["l1", "l2", "max"] = "l1",
) -> float:
    """Expected calibration error over ``n_bins`` equal-width confidence bins.

    With ``gap_b = |accuracy_b - confidence_b|`` and ``w_b`` the fraction of samples in
    bin ``b`` (as torchmetrics): ``"l1"`` (the ECE) is ``sum_b w_b * gap_b``, ``"l2"`` is
    ``sqrt(sum_b w_b * gap_b**2)`` and ``"max"`` (the MCE) is the largest ``gap_b`` over
    non-empty bins. Inputs as :func:`reliability_bins`.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax_rs as sr
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> labels = np.array([0, 1, 1, 0])
    >>> round(sr.calibration_error(probs, labels, n_bins=2), 6)  # |0.5 - 0.75|
    0.25
    >>> round(sr.calibration_error(probs, labels, n_bins=10, norm="max"), 6)
    0.8
    """
    if norm not in ("l1", "l2", "max"):
        raise ValueError(f"norm must be 'l1', 'l2' or 'max', got {norm!r}")
    conf_sum, acc_sum, count = _bins(probs, labels, n_bins)
    full = count > 0
    gap = np.abs(acc_sum[full] - conf_sum[full]) / count[full]
    weight = count[full] / count.sum()
    if norm == "l1":
        return float(np.sum(weight * gap))
    if norm == "l2":
        return float(np.sqrt(np.sum(weight * gap**2)))
    return float(np.max(gap))
