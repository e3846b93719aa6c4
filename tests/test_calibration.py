"""fit_temperature, calibration_error and reliability_bins (softmax_rs._calibration)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from numpy.exceptions import AxisError
from softmax_rs._calibration import calibration_error, fit_temperature, reliability_bins

Array = npt.NDArray[Any]


def mean_nll(logits: Array, labels: Array, t: float) -> float:
    """Mean NLL of softmax(logits / t), float64, straightforward NumPy."""
    z = logits / t
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def dataset(n: int = 3000, c: int = 10, scale: float = 1.0, seed: int = 0) -> tuple[Array, Array]:
    """Logits whose labels are drawn from softmax(logits): calibrated at T = 1 / scale."""
    g = np.random.default_rng(seed)
    base = g.standard_normal((n, c)) * 1.5
    p = np.exp(base - base.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (p.cumsum(1) > g.random((n, 1))).argmax(1)
    return base * scale, labels


# --------------------------------------------------------------------------- fit_temperature


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_fit_temperature_reaches_the_optimum(scale: float) -> None:
    x, y = dataset(scale=scale)
    t = fit_temperature(x, y)
    # the derivative of the NLL in T vanishes (central differences, relative step)
    h = 1e-5 * t
    slope = (mean_nll(x, y, t + h) - mean_nll(x, y, t - h)) / (2 * h)
    assert abs(slope) * t < 1e-8
    # and it is the minimiser found independently, within 1e-6 relative
    optimize = pytest.importorskip("scipy.optimize")
    res = optimize.minimize_scalar(
        lambda s: mean_nll(x, y, math.exp(s)), bracket=(-3.0, 3.0), method="brent", tol=1e-12
    )
    assert abs(t - math.exp(res.x)) <= 1e-6 * t
    # the data were generated calibrated at T = scale
    assert abs(t / scale - 1) < 0.1
    assert mean_nll(x, y, t) <= min(mean_nll(x, y, t * 1.001), mean_nll(x, y, t / 1.001))


def test_fit_temperature_scales_with_the_logits_and_axis() -> None:
    x, y = dataset(n=500, seed=1)
    t = fit_temperature(x, y)
    assert fit_temperature(3.0 * x, y) == pytest.approx(3.0 * t, rel=1e-9)
    assert fit_temperature(x + 5.0, y) == pytest.approx(t, rel=1e-9)  # shift-invariant
    assert fit_temperature(x.T, y, axis=0) == pytest.approx(t, rel=1e-12)
    assert fit_temperature(x.astype(np.float32), y) == pytest.approx(t, rel=1e-5)
    x3 = x.reshape(5, 100, 10)
    assert fit_temperature(x3, y.reshape(5, 100)) == pytest.approx(t, rel=1e-12)


def test_fit_temperature_degenerate_cases() -> None:
    y = np.array([0, 1, 2, 1])
    separable = np.eye(3)[y] * 5.0  # every label is the unique row maximum
    assert fit_temperature(separable, y) == 0.0
    inverted = -separable  # every label is the row minimum: uniform is best
    assert fit_temperature(inverted, y) == math.inf


def test_fit_temperature_errors() -> None:
    x, y = dataset(n=20)
    with pytest.raises(ValueError):
        fit_temperature(x, y[:-1])
    with pytest.raises(ValueError):
        fit_temperature(x, y + 10)
    with pytest.raises(TypeError):
        fit_temperature(x, y.astype(float))
    with pytest.raises(ValueError):
        fit_temperature(np.where(x > 1, np.nan, x), y)
    with pytest.raises(AxisError):
        fit_temperature(x, y, axis=2)
    with pytest.raises(TypeError):
        fit_temperature(x.astype(complex), y)
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, np.int64))


def softmax_np(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    r: Array = e / e.sum(axis=-1, keepdims=True)
    return r


def test_temperature_scaling_lowers_the_ece_of_overconfident_logits() -> None:
    x, y = dataset(n=5000, scale=1.0, seed=2)
    over = 3.0 * x  # deliberately overconfident
    before = calibration_error(softmax_np(over), y)
    t = fit_temperature(over, y)
    after = calibration_error(softmax_np(over / t), y)
    assert t > 2.0
    assert before > 0.1
    assert after < before / 4
    assert after < 0.03


# --------------------------------------------------------------------------- calibration_error


def ref_bins(probs: Array, labels: Array, n_bins: int) -> tuple[Array, Array, Array]:
    """Sample by sample: bin i holds confidences in [i/n, (i+1)/n) (the last also 1.0)."""
    conf_sum, acc_sum, count = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins, np.int64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for p, y in zip(probs, labels, strict=True):
        c = float(np.max(p))
        b = n_bins - 1
        for i in range(n_bins):
            if edges[i] <= c < edges[i + 1]:
                b = i
                break
        conf_sum[b] += c
        acc_sum[b] += float(np.argmax(p) == y)
        count[b] += 1
    return conf_sum, acc_sum, count


@pytest.mark.parametrize("n_bins", [1, 5, 15, 40])
def test_calibration_error_matches_reference(n_bins: int) -> None:
    x, y = dataset(n=700, c=5, scale=2.0, seed=4)
    p = softmax_np(x)
    p[:10] = np.eye(5)[y[:10]]  # confidence exactly 1.0 (joins the last bin)
    conf_sum, acc_sum, count = ref_bins(p, y, n_bins)
    full = count > 0
    gap = np.abs(acc_sum[full] - conf_sum[full]) / count[full]
    w = count[full] / count.sum()
    assert calibration_error(p, y, n_bins=n_bins) == pytest.approx(np.sum(w * gap), rel=1e-12)
    assert calibration_error(p, y, n_bins=n_bins, norm="l2") == pytest.approx(
        math.sqrt(np.sum(w * gap**2)), rel=1e-12
    )
    assert calibration_error(p, y, n_bins=n_bins, norm="max") == pytest.approx(
        np.max(gap), rel=1e-12
    )
    conf, acc, cnt = reliability_bins(p, y, n_bins=n_bins)
    np.testing.assert_array_equal(cnt, count)
    assert cnt.dtype == np.int64 and conf.shape == acc.shape == (n_bins,)
    np.testing.assert_allclose(conf[full], conf_sum[full] / count[full], rtol=1e-12)
    np.testing.assert_allclose(acc[full], acc_sum[full] / count[full], rtol=1e-12)
    assert np.all(np.isnan(conf[~full])) and np.all(np.isnan(acc[~full]))


def test_calibration_error_small_example() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 0])
    # one bin [0.5, 1]: accuracy 0.5, mean confidence 0.75
    assert calibration_error(probs, labels, n_bins=2) == pytest.approx(0.25)
    # ten bins: gaps 0.1 (0.9 right), 0.8 (0.8 wrong), 0.3 (0.7 right), 0.6 (0.6 wrong)
    assert calibration_error(probs, labels, n_bins=10) == pytest.approx(1.8 / 4)
    assert calibration_error(probs, labels, n_bins=10, norm="l2") == pytest.approx(
        math.sqrt((0.01 + 0.64 + 0.09 + 0.36) / 4)
    )
    assert calibration_error(probs, labels, n_bins=10, norm="max") == pytest.approx(0.8)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert calibration_error(perfect, np.array([0, 1])) == 0.0


def test_calibration_accepts_batches_and_float32() -> None:
    x, y = dataset(n=600, c=4, seed=5)
    p = softmax_np(x)
    e = calibration_error(p, y)
    assert calibration_error(p.reshape(20, 30, 4), y.reshape(20, 30)) == pytest.approx(e)
    assert calibration_error(p.astype(np.float32), y) == pytest.approx(e, rel=1e-5)


def test_calibration_errors() -> None:
    p = np.full((4, 2), 0.5)
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError):
        calibration_error(p, y, norm="l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        calibration_error(p, y, n_bins=0)
    with pytest.raises(TypeError):
        calibration_error(p, y, n_bins=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        calibration_error(p * 3, y)
    with pytest.raises(ValueError):
        calibration_error(p, y[:3])
    with pytest.raises(ValueError):
        reliability_bins(p, y + 2)
    with pytest.raises(ValueError):
        reliability_bins(np.zeros((0, 2)), np.zeros(0, np.int64))
    with pytest.raises(TypeError):
        reliability_bins(p.astype(complex), y)
