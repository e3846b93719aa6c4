"""predict, top_k, sample, cross_entropy, sigmoid, log_sigmoid,
binary_cross_entropy_with_logits and sampled_softmax_loss (softmax_rs._extras)."""

from __future__ import annotations

import doctest
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from numpy.exceptions import AxisError
from softmax_rs import _extras
from softmax_rs._extras import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    log_sigmoid,
    predict,
    sample,
    sampled_softmax_loss,
    sigmoid,
    top_k,
)

Array = npt.NDArray[Any]


def ref_softmax(x: Array, axis: int | None = -1) -> Array:
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    r: Array = e / np.sum(e, axis=axis, keepdims=True)
    return r


def ref_log_softmax(x: Array, axis: int = -1) -> Array:
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    r: Array = x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return r


def test_public_exports() -> None:
    for name in _extras.__all__:
        assert getattr(sr, name) is getattr(_extras, name), name


@pytest.mark.parametrize("module", ["softmax_rs._extras", "softmax_rs._calibration"])
def test_docstring_examples(module: str) -> None:
    mod = __import__(module, fromlist=["_"])
    for name in mod.__all__:
        assert ">>>" in (getattr(mod, name).__doc__ or ""), f"{name} has no example"
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_docs_extras_examples() -> None:
    path = Path(__file__).resolve().parent.parent / "docs" / "extras.md"
    if not path.exists():
        pytest.skip("docs/extras.md is not in this checkout")
    result = doctest.testfile(
        str(path), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 10 and result.failed == 0


# --------------------------------------------------------------------------- predict


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_predict_matches_numpy(dtype: Any, axis: int | None) -> None:
    x = (np.random.default_rng(0).standard_normal((7, 9)) * 3).astype(dtype)
    labels, conf = predict(x, axis=axis)
    np.testing.assert_array_equal(labels, np.argmax(x, axis=axis))
    assert np.asarray(labels).dtype == np.intp
    want = np.max(ref_softmax(x, axis=axis), axis=axis)
    assert np.asarray(conf).dtype == sr.softmax(x, axis=axis).dtype
    rtol = {np.float16: 1e-3, np.float32: 1e-6}.get(dtype, 1e-13)
    np.testing.assert_allclose(np.asarray(conf, dtype=np.float64), want, rtol=rtol)


def test_predict_temperature_scalar_and_per_row() -> None:
    x = np.random.default_rng(1).standard_normal((5, 6)) * 4
    t = np.array([0.5, 1.0, 2.0, 3.0, 7.0])
    _, c1 = predict(x, temperature=2.5)
    np.testing.assert_allclose(c1, np.max(ref_softmax(x / 2.5), axis=-1), rtol=1e-13)
    for tt in (t, t[:, None]):  # reduced shape, or with the axis kept
        labels, c2 = predict(x, temperature=tt)
        np.testing.assert_allclose(c2, np.max(ref_softmax(x / t[:, None]), axis=-1), rtol=1e-13)
        np.testing.assert_array_equal(labels, np.argmax(x, axis=-1))
    _, c3 = predict(x.T, axis=0, temperature=t)
    np.testing.assert_allclose(c3, np.max(ref_softmax(x / t[:, None]), axis=-1), rtol=1e-13)
    for bad in (0.0, -1.0, np.inf, np.nan, np.array([1.0, 0.0, 1.0, 1.0, 1.0])):
        with pytest.raises(ValueError):
            predict(x, temperature=bad)
    with pytest.raises(ValueError):
        predict(x, temperature=np.ones(4))


def test_predict_special_values_are_softmax_values() -> None:
    x = np.array(
        [
            [np.inf, 0.0, np.inf, 1.0],  # two +inf share the mass: 0.5
            [np.inf, 0.0, 2.0, 1.0],  # 1.0
            [0.0, np.nan, 2.0, 1.0],  # NaN
            [-np.inf, -np.inf, -np.inf, -np.inf],  # NaN (as softmax)
            [-np.inf, 3.0, -np.inf, -np.inf],  # 1.0
            [1e4, -1e4, 0.0, 9999.0],  # large but finite
        ]
    )
    labels, conf = predict(x)
    np.testing.assert_array_equal(labels, [0, 0, 1, 0, 1, 0])
    want = np.max(np.asarray(sr.softmax(x)), axis=-1)
    want[2] = np.nan
    np.testing.assert_allclose(conf, want, rtol=1e-15)
    np.testing.assert_allclose(conf[[0, 1, 4]], [0.5, 1.0, 1.0])
    assert np.isnan(conf[3])
    np.testing.assert_allclose(conf[5], 1 / (1 + math.exp(-1)), rtol=1e-15)
    lab, c = predict(np.array([1.0, 3.0, 2.0]))
    assert int(lab) == 1 and np.ndim(c) == 0


def test_predict_builds_no_probability_array(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("predict must not call softmax")

    monkeypatch.setattr(_extras, "softmax", forbidden)
    monkeypatch.setattr(_extras, "log_softmax", forbidden)
    labels, conf = predict(np.array([[0.0, 1.0], [3.0, 1.0]]))
    np.testing.assert_array_equal(labels, [1, 0])
    np.testing.assert_allclose(conf, [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-2))], rtol=1e-15)


def test_predict_errors() -> None:
    with pytest.raises(AxisError):
        predict(np.ones((2, 3)), axis=2)
    with pytest.raises(TypeError):
        predict(np.ones(3, dtype=complex))
    with pytest.raises(ValueError):
        predict(np.ones((2, 0)))


def test_byte_swapped_and_strided_inputs() -> None:
    x = np.random.default_rng(6).standard_normal((5, 8)) * 3
    labels = np.arange(5) % 8
    for view in (x.astype(">f8"), x.astype(">f4")[:, ::-1], x.T.copy().T):
        native = np.ascontiguousarray(view, dtype=view.dtype.newbyteorder("="))
        # (the core may sum a byte-swapped row in another order: allow an ulp or two)
        for a, b in zip(predict(view), predict(native), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-15)
            assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_allclose(
            cross_entropy(view, labels), cross_entropy(native, labels), rtol=1e-14
        )
        np.testing.assert_array_equal(sigmoid(view), sigmoid(native))
        np.testing.assert_array_equal(sample(view, rng=1), sample(native, rng=1))


# --------------------------------------------------------------------------- top_k


def ref_top_k(x: Array, k: int, axis: int, largest: bool, sorted_: bool) -> tuple[Array, Array]:
    """np.sort order (NaN largest), ties to the lower index, by an explicit lexsort."""
    xm = np.moveaxis(np.asarray(x), axis, -1)
    batch, n = xm.shape[:-1], xm.shape[-1]
    rows = xm.reshape(-1, n)
    out = np.empty((rows.shape[0], k), dtype=np.intp)
    pos = np.arange(n)
    for r, row in enumerate(rows):
        v = row.astype(np.float64)
        nan = np.isnan(v)
        key = np.where(nan, 0.0, v)
        # largest: NaN first, then descending; smallest: ascending, NaN last
        order = np.lexsort((pos, -key, ~nan)) if largest else np.lexsort((pos, key, nan))
        sel = order[:k]
        out[r] = sel if sorted_ else np.sort(sel)
    idx = out.reshape((*batch, k))
    vals = np.take_along_axis(xm, idx, axis=-1)
    return np.moveaxis(vals, -1, axis), np.moveaxis(idx, -1, axis)


def with_ties_and_nans(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> Array:
    g = np.random.default_rng(seed)
    x = g.integers(-20, 20, shape).astype(np.float64)
    if np.dtype(dtype).kind == "f" or np.dtype(dtype).name == "bfloat16":
        flat = x.reshape(-1)
        flat[g.random(flat.size) < 0.05] = np.nan
        flat[g.random(flat.size) < 0.03] = np.inf
        flat[g.random(flat.size) < 0.03] = -np.inf
        flat[g.random(flat.size) < 0.05] = -0.0
    return x.astype(dtype)


def assert_top_k_equal(got: tuple[Array, Array], want: tuple[Array, Array]) -> None:
    gv, gi = got
    wv, wi = want
    assert gi.dtype == np.intp and gv.dtype == wv.dtype
    np.testing.assert_array_equal(gi, wi)
    np.testing.assert_array_equal(gv, wv)  # NaN == NaN here


def test_top_k_kernel_is_wired() -> None:
    assert _extras._top_k_lastaxis is not None, "softmax_rs._core._top_k_lastaxis missing"


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.float16, np.int8, np.int32, np.int64, np.uint16, bool]
)
def test_top_k_matches_reference(dtype: Any) -> None:
    x = with_ties_and_nans((4, 5, 37), dtype)
    for axis in (0, 1, 2, -1):
        n = x.shape[axis]
        for k in sorted({0, 1, 2, n // 2, n}):
            for largest in (True, False):
                for sorted_ in (True, False):
                    got = top_k(x, k, axis, largest=largest, sorted=sorted_)
                    assert_top_k_equal(got, ref_top_k(x, k, axis, largest, sorted_))


def test_top_k_bfloat16() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = with_ties_and_nans((6, 50), ml_dtypes.bfloat16)
    for largest in (True, False):
        v, i = top_k(x, 7, largest=largest)
        assert v.dtype == x.dtype
        _, wi = ref_top_k(x.astype(np.float32), 7, -1, largest, True)
        np.testing.assert_array_equal(i, wi)


def test_top_k_long_rows_and_orders() -> None:
    g = np.random.default_rng(4)
    x = g.standard_normal((3, 40000)).astype(np.float32)
    x[1] = np.sort(x[1])  # ascending: every element beats the running threshold
    x[2] = 1.5  # all equal: lowest indices win
    for k in (1, 10, 64, 300):
        for largest in (True, False):
            assert_top_k_equal(top_k(x, k, largest=largest), ref_top_k(x, k, -1, largest, True))
    np.testing.assert_array_equal(top_k(x, 5)[1][2], np.arange(5))


def test_top_k_views_and_byte_order() -> None:
    x = with_ties_and_nans((30, 40), np.float64, seed=2)
    for view in (x.T, x[::-2, 3:], x[:, ::-1], np.broadcast_to(x[0], (5, 40))):
        assert_top_k_equal(top_k(view, 6), ref_top_k(view, 6, -1, True, True))
    big = x.astype(">f4")
    assert_top_k_equal(top_k(big, 6), ref_top_k(big, 6, -1, True, True))
    x0 = x.copy()
    top_k(x, 3)
    np.testing.assert_array_equal(x, x0)


def test_top_k_axis_none_and_lists() -> None:
    x = with_ties_and_nans((3, 4), np.float64, seed=3)
    v, i = top_k(x, 5, axis=None)
    wv, wi = ref_top_k(x.reshape(-1), 5, 0, True, True)
    np.testing.assert_array_equal(i, wi)
    np.testing.assert_array_equal(v, wv)
    v, i = top_k([3, 1, 2], 2)
    np.testing.assert_array_equal(v, [3, 2])
    np.testing.assert_array_equal(i, [0, 2])


def test_top_k_same_on_any_thread_count() -> None:
    x = with_ties_and_nans((300, 2000), np.float32, seed=7)
    with sr.threads(1):
        v1, i1 = top_k(x, 20)
    with sr.threads(3):
        v3, i3 = top_k(x, 20)
    np.testing.assert_array_equal(i1, i3)
    np.testing.assert_array_equal(v1, v3)
    assert_top_k_equal((v3, i3), ref_top_k(x, 20, -1, True, True))


def test_top_k_errors() -> None:
    x = np.ones((2, 3))
    with pytest.raises(ValueError):
        top_k(x, 4)
    with pytest.raises(ValueError):
        top_k(x, -1)
    with pytest.raises(TypeError):
        top_k(x, 1.5)  # type: ignore[arg-type]
    with pytest.raises(AxisError):
        top_k(x, 1, axis=2)
    with pytest.raises(TypeError):
        top_k(x.astype(complex), 1)


# --------------------------------------------------------------------------- sample


def chi2_pvalue(counts: Array, probs: Array) -> float:
    stats = pytest.importorskip("scipy.stats")
    keep = probs > 0
    assert counts[~keep].sum() == 0, "a zero-probability class was drawn"
    expected = probs[keep] / probs[keep].sum() * counts.sum()
    return float(stats.chisquare(counts[keep], expected).pvalue)


LOGITS = np.array([1.0, 2.0, 0.5, -1.0, 3.0, 0.0])


def test_sample_frequencies_pass_chi_square() -> None:
    n = 60000
    draws = sample(LOGITS, num_samples=n, rng=1234)
    assert draws.shape == (n,) and draws.dtype == np.intp
    assert chi2_pvalue(np.bincount(draws, minlength=6), ref_softmax(LOGITS)) > 1e-3
    # many rows, one draw each (the vectorised lookup)
    rows = np.tile(LOGITS, (n, 1))
    draws = sample(rows, rng=99)
    assert draws.shape == (n,)
    assert chi2_pvalue(np.bincount(draws, minlength=6), ref_softmax(LOGITS)) > 1e-3


def test_sample_chi_square_detects_a_wrong_distribution() -> None:
    # the same test must reject draws from a different distribution (test sensitivity)
    draws = sample(LOGITS * 1.1, num_samples=60000, rng=1234)
    assert chi2_pvalue(np.bincount(draws, minlength=6), ref_softmax(LOGITS)) < 1e-6


def test_sample_temperature_and_filters() -> None:
    n = 40000
    p = ref_softmax(LOGITS)
    d = sample(LOGITS, temperature=2.0, num_samples=n, rng=5)
    assert chi2_pvalue(np.bincount(d, minlength=6), ref_softmax(LOGITS / 2.0)) > 1e-3
    # top_k: the 3 largest (classes 4, 1, 0), renormalised
    d = sample(LOGITS, top_k=3, num_samples=n, rng=6)
    q = np.where(np.isin(np.arange(6), [4, 1, 0]), p, 0)
    assert chi2_pvalue(np.bincount(d, minlength=6), q) > 1e-3
    # top_p: the smallest prefix (by probability) whose mass reaches top_p
    order = np.argsort(-p)
    before = np.cumsum(p[order]) - p[order]
    keep = np.zeros(6, bool)
    keep[order[before < 0.8]] = True
    d = sample(LOGITS, top_p=0.8, num_samples=n, rng=7)
    assert chi2_pvalue(np.bincount(d, minlength=6), np.where(keep, p, 0)) > 1e-3
    # min_p: classes with p >= min_p * max p
    d = sample(LOGITS, min_p=0.2, num_samples=n, rng=8)
    assert chi2_pvalue(np.bincount(d, minlength=6), np.where(p >= 0.2 * p.max(), p, 0)) > 1e-3
    # all together, in the order temperature -> top_k -> top_p -> min_p
    pt = ref_softmax(LOGITS / 1.5)
    q = np.where(np.isin(np.arange(6), np.argsort(-pt)[:4]), pt, 0)
    q = q / q.sum()
    o = np.argsort(-q, kind="stable")
    keep = np.zeros(6, bool)
    keep[o[(np.cumsum(q[o]) - q[o]) < 0.9]] = True
    q = np.where(keep, q, 0)
    q = np.where(q >= 0.3 * q.max(), q, 0)
    d = sample(LOGITS, temperature=1.5, top_k=4, top_p=0.9, min_p=0.3, num_samples=n, rng=9)
    assert chi2_pvalue(np.bincount(d, minlength=6), q) > 1e-3


def test_sample_greedy_limits() -> None:
    x = np.random.default_rng(3).standard_normal((50, 20))
    np.testing.assert_array_equal(sample(x, top_k=1, rng=0), np.argmax(x, axis=-1))
    np.testing.assert_array_equal(sample(x, top_p=1e-9, rng=0), np.argmax(x, axis=-1))
    np.testing.assert_array_equal(sample(x, min_p=1.0, rng=0), np.argmax(x, axis=-1))
    # +inf logits share the mass, -inf are never drawn
    y = np.array([[np.inf, 0.0, np.inf, -np.inf]])
    d = sample(y, num_samples=2000, rng=1)
    assert set(np.unique(d)) == {0, 2}


def test_sample_reproducible_and_thread_independent() -> None:
    x = np.random.default_rng(0).standard_normal((300, 1000)).astype(np.float32)
    a = sample(x, rng=42, num_samples=3, top_p=0.9)
    b = sample(x, rng=np.random.default_rng(42), num_samples=3, top_p=0.9)
    np.testing.assert_array_equal(a, b)
    with sr.threads(1):
        c = sample(x, rng=42, num_samples=3, top_p=0.9)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, sample(x, rng=43, num_samples=3, top_p=0.9))
    g = np.random.default_rng(7)
    first, second = sample(x, rng=g), sample(x, rng=g)  # a Generator advances
    assert not np.array_equal(first, second)


def test_sample_never_fails_on_unnormalised_probabilities() -> None:
    # huge and float16 logits: probabilities rounded in low precision still sample
    x = np.random.default_rng(1).standard_normal((20, 3000)) * 300
    for dtype in (np.float16, np.float32, np.float64):
        d = sample(x.astype(dtype), num_samples=5, rng=0, top_p=0.95)
        assert d.shape == (20, 5) and d.min() >= 0 and d.max() < 3000


def test_sample_shapes_and_axis() -> None:
    x = np.random.default_rng(2).standard_normal((4, 6, 3))
    assert sample(x, rng=0).shape == (4, 6)
    assert sample(x, axis=1, rng=0).shape == (4, 3)
    assert sample(x, axis=0, num_samples=7, rng=0).shape == (6, 3, 7)
    assert np.ndim(sample(LOGITS, rng=0)) == 0
    # axis=1 samples from the same distribution as moving that axis last
    np.testing.assert_array_equal(sample(x, axis=1, rng=3), sample(np.moveaxis(x, 1, -1), rng=3))


def test_sample_errors() -> None:
    with pytest.raises(ValueError):
        sample(np.array([0.0, np.nan]), rng=0)
    with pytest.raises(ValueError):
        sample(np.array([-np.inf, -np.inf]), rng=0)
    with pytest.raises(ValueError):
        sample(np.ones((2, 0)), rng=0)
    with pytest.raises(AxisError):
        sample(np.ones((2, 3)), axis=2)
    for kw in ({"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}, {"min_p": -0.1}, {"num_samples": 0}):
        with pytest.raises(ValueError):
            sample(LOGITS, rng=0, **kw)
    with pytest.raises(TypeError):
        sample(LOGITS, top_k=2.5, rng=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sample(LOGITS, temperature=0.0, rng=0)
    with pytest.raises(TypeError):
        sample(LOGITS.astype(complex), rng=0)


def test_inverse_cdf_strategies_agree_and_skip_zero_weights() -> None:
    g = np.random.default_rng(0)
    w = g.random((40, 30))
    w[w < 0.4] = 0.0
    w[:, 0] = 0.0
    w[:, -1] = 0.0
    w[3] = 0.0
    w[3, 7] = 1e-300
    u = g.random((40, 9))
    u[0, 0] = 0.0
    u[1, 0] = np.nextafter(1.0, 0.0)
    a = _extras._inverse_cdf(w, u, vectorized=True)
    b = _extras._inverse_cdf(w, u, vectorized=False)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.take_along_axis(w, a, axis=1) > 0)
    assert np.all(a[3] == 7)


# --------------------------------------------------------------------------- cross_entropy


def ref_cross_entropy(
    x: Array,
    target: Array,
    axis: int,
    weight: Array | None,
    ignore_index: int,
    eps: float,
    reduction: str,
) -> Any:
    """torch.nn.functional.cross_entropy semantics, sample by sample, in float64."""
    xm = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    n_classes = xm.shape[-1]
    rows = xm.reshape(-1, n_classes)
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    losses = np.zeros(rows.shape[0])
    tgt = np.asarray(target)
    if tgt.dtype.kind in "iu":
        labels = tgt.reshape(-1)
        denom = 0.0
        for i, (row, y) in enumerate(zip(rows, labels, strict=True)):
            if y == ignore_index:
                continue
            lp = ref_log_softmax(row)
            nll = -w[y] * lp[y]
            smooth = -float(np.sum(w * lp))
            losses[i] = (1 - eps) * nll + eps / n_classes * smooth
            denom += w[y]
    else:
        probs = np.moveaxis(tgt.astype(np.float64), axis, -1).reshape(-1, n_classes)
        for i, (row, q) in enumerate(zip(rows, probs, strict=True)):
            q = q * (1 - eps) + eps / n_classes
            losses[i] = -float(np.sum(w * q * ref_log_softmax(row)))
        denom = float(rows.shape[0])
    if reduction == "none":
        return losses.reshape(xm.shape[:-1])
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / denom


CE_CASES: list[dict[str, Any]] = [
    {},
    {"weight": "w"},
    {"ignore_index": 2},
    {"label_smoothing": 0.2},
    {"weight": "w", "ignore_index": 1, "label_smoothing": 0.1},
    {"weight": "w", "label_smoothing": 0.3},
]


def ce_targets(kw: dict[str, Any], labels: Array, probs: Array) -> tuple[Array, ...]:
    # torch rejects a (non-negative) ignore_index with probability targets
    return (labels,) if kw.get("ignore_index", -100) >= 0 else (labels, probs)


def ce_inputs(axis: int, seed: int = 0) -> tuple[Array, Array, Array, Array]:
    g = np.random.default_rng(seed)
    shape = [6, 4, 3]  # class axis of length 5 inserted at `axis`
    shape.insert(axis % 4, 5)
    x = g.standard_normal(shape) * 2
    batch = tuple(s for i, s in enumerate(shape) if i != axis % 4)
    labels = g.integers(0, 5, batch)
    probs = ref_softmax(g.standard_normal(shape) * 2, axis=axis)
    w = g.uniform(0.2, 2.0, 5)
    return x, labels, probs, w


@pytest.mark.parametrize("axis", [-1, 1, 0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", range(len(CE_CASES)))
def test_cross_entropy_matches_reference(axis: int, reduction: Any, case: int) -> None:
    x, labels, probs, w = ce_inputs(axis)
    kw: dict[str, Any] = dict(CE_CASES[case])
    if kw.get("weight") == "w":
        kw["weight"] = w
    args = (
        kw.get("weight"),
        kw.get("ignore_index", -100),
        kw.get("label_smoothing", 0.0),
        reduction,
    )
    for target in ce_targets(kw, labels, probs):
        got = cross_entropy(x, target, axis, reduction=reduction, **kw)
        want = ref_cross_entropy(x, target, axis, *args)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert np.shape(got) == np.shape(want)
        got32 = cross_entropy(x.astype(np.float32), target, axis, reduction=reduction, **kw)
        assert np.asarray(got32).dtype == np.float32
        np.testing.assert_allclose(got32, want, rtol=2e-5, atol=1e-6)


def test_cross_entropy_torch_parity() -> None:
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, labels, probs, w = ce_inputs(1, seed=3)  # torch's class axis is 1
    labels = labels.copy()
    labels[0, 0, 0] = 2
    for kw in CE_CASES:
        kwargs: dict[str, Any] = dict(kw)
        tkw: dict[str, Any] = dict(kw)
        if kw.get("weight") == "w":
            kwargs["weight"] = w
            tkw["weight"] = torch.tensor(w)
        reductions: tuple[Any, ...] = ("none", "mean", "sum")
        for reduction in reductions:
            for target in ce_targets(kw, labels, probs):
                xt = torch.tensor(x, requires_grad=True)
                want = F.cross_entropy(xt, torch.tensor(target), reduction=reduction, **tkw)
                want.sum().backward()
                got, grad = cross_entropy(
                    x, target, 1, reduction=reduction, return_grad=True, **kwargs
                )
                np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10)
                np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", range(len(CE_CASES)))
def test_cross_entropy_gradient_finite_differences(axis: int, reduction: Any, case: int) -> None:
    x, labels, _, w = ce_inputs(axis, seed=1)
    x = x[:2] if axis == -1 else x[:, :2]
    labels = labels[:2]
    probs = ref_softmax(np.random.default_rng(2).standard_normal(x.shape), axis=axis)
    kw: dict[str, Any] = dict(CE_CASES[case])
    if kw.get("weight") == "w":
        kw["weight"] = w
    temperature = 1.7
    for target in ce_targets(kw, labels, probs):

        def total(z: Array, target: Array = target) -> float:
            v = cross_entropy(z, target, axis, reduction=reduction, temperature=temperature, **kw)
            return float(np.sum(v))

        _, grad = cross_entropy(
            x, target, axis, reduction=reduction, temperature=temperature, return_grad=True, **kw
        )
        assert grad.shape == x.shape and grad.dtype == np.float64
        h = 1e-6
        fd = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = h
            fd[i] = (total(x + e) - total(x - e)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_cross_entropy_temperature_and_dtypes() -> None:
    x, labels, _, _ = ce_inputs(-1, seed=4)
    t = 2.5
    np.testing.assert_allclose(
        cross_entropy(x, labels, temperature=t), cross_entropy(x / t, labels), rtol=1e-13
    )
    tt = np.random.default_rng(0).uniform(0.5, 3, x.shape[:-1])
    np.testing.assert_allclose(
        cross_entropy(x, labels, temperature=tt, reduction="none"),
        cross_entropy(x / tt[..., None], labels, reduction="none"),
        rtol=1e-13,
    )
    loss16 = cross_entropy(x.astype(np.float16), labels)
    assert np.asarray(loss16).dtype == np.float16
    np.testing.assert_allclose(float(loss16), cross_entropy(x, labels), rtol=5e-3)
    loss_int = cross_entropy(np.round(x * 3).astype(np.int64), labels)
    assert np.asarray(loss_int).dtype == np.float64
    _, g32 = cross_entropy(x.astype(np.float32), labels, return_grad=True)
    assert g32.dtype == np.float32


def test_cross_entropy_edge_cases() -> None:
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    # every sample ignored: mean is NaN (torch), sum 0, gradient 0
    all_ignored = np.array([-100, -100])
    assert np.isnan(cross_entropy(x, all_ignored))
    loss, grad = cross_entropy(x, all_ignored, reduction="sum", return_grad=True)
    assert loss == 0 and np.all(grad == 0)
    # a single sample: logits (C,), target ()
    np.testing.assert_allclose(
        cross_entropy(np.array([1.0, 2.0, 3.0]), np.array(2)), -ref_log_softmax(x[0])[2]
    )
    # -inf logit at the target: infinite loss
    assert cross_entropy(np.array([[-np.inf, 0.0]]), np.array([0])) == np.inf


def test_cross_entropy_errors() -> None:
    x = np.zeros((4, 3))
    with pytest.raises(IndexError):
        cross_entropy(x, np.array([0, 1, 3, 0]))
    with pytest.raises(IndexError):
        cross_entropy(x, np.array([0, -1, 2, 0]))
    with pytest.raises(ValueError):
        cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        cross_entropy(x, np.zeros((4, 2)))
    with pytest.raises(ValueError):
        cross_entropy(x, np.array([0, 1, 2, 0]), reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cross_entropy(x, np.array([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(ValueError):
        cross_entropy(x, np.array([0, 1, 2, 0]), weight=np.ones(4))
    with pytest.raises(TypeError):
        cross_entropy(x, np.array([0, 1, 2, 0]).astype(complex))
    with pytest.raises(TypeError):
        cross_entropy(x.astype(complex), np.array([0, 1, 2, 0]))
    with pytest.raises(AxisError):
        cross_entropy(x, np.array([0, 1, 2, 0]), axis=2)
    with pytest.raises(ValueError):
        cross_entropy(x, np.full((4, 3), 1 / 3), ignore_index=1)


# --------------------------------------------------------------------------- sigmoid


def test_sigmoid_and_log_sigmoid_values() -> None:
    x = np.concatenate([np.linspace(-50, 50, 201), [-745, -700, 700, 745, -1e4, 1e4]])
    lx = x.astype(np.longdouble)  # extended-precision reference
    want = (1 / (1 + np.exp(-lx))).astype(np.float64)
    np.testing.assert_allclose(sigmoid(x), want, rtol=4e-16, atol=0)
    want_log = np.where(lx < 0, lx - np.log1p(np.exp(lx)), -np.log1p(np.exp(-lx)))
    np.testing.assert_allclose(log_sigmoid(x), want_log.astype(np.float64), rtol=4e-16, atol=0)
    x32 = x.astype(np.float32)
    assert sigmoid(x32).dtype == np.float32 and log_sigmoid(x32).dtype == np.float32
    want32 = sigmoid(x32.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(sigmoid(x32), want32, rtol=3e-7, atol=2e-45)
    want32 = log_sigmoid(x32.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(log_sigmoid(x32), want32, rtol=3e-7, atol=2e-45)


def test_sigmoid_stable_at_1e4() -> None:
    x = np.array([-1e4, -1e3, 1e3, 1e4, -np.inf, np.inf, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, ls = sigmoid(x), log_sigmoid(x)
        s32 = sigmoid(x.astype(np.float32))
    np.testing.assert_array_equal(s, [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, np.nan])
    np.testing.assert_array_equal(ls, [-1e4, -1e3, 0.0, 0.0, -np.inf, 0.0, np.nan])
    np.testing.assert_array_equal(s32, s.astype(np.float32))
    # tiny results keep full relative precision
    np.testing.assert_allclose(sigmoid(np.array([-80.0])), [math.exp(-80)], rtol=1e-15)
    np.testing.assert_allclose(log_sigmoid(np.array([40.0])), [-math.exp(-40)], rtol=1e-15)


def test_sigmoid_out_and_dtypes() -> None:
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    want = sigmoid(x)
    out = np.empty((4, 3)).T  # non-contiguous out
    assert sigmoid(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    y = x.copy()
    assert log_sigmoid(y, out=y) is y  # in place
    np.testing.assert_array_equal(y, log_sigmoid(x))
    with pytest.raises(TypeError):
        sigmoid(x, out=np.empty((3, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        sigmoid(x, out=np.empty((4, 3)))
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        sigmoid(x, out=ro)
    assert sigmoid(np.arange(3)).dtype == np.float64
    assert sigmoid(np.ones(3, np.float16)).dtype == np.float16
    assert np.ndim(sigmoid(0.0)) == 0 and float(sigmoid(0.0)) == 0.5
    with pytest.raises(TypeError):
        sigmoid(np.ones(2, complex))


# --------------------------------------------------------------------------- BCE with logits


def ref_bce(x: Array, t: Array, weight: Any, pos_weight: Any) -> Array:
    """torch's formula ``(1 - t) x - lw log sigmoid(x)`` in extended precision."""
    lx, lt = x.astype(np.longdouble), t.astype(np.longdouble)
    ls = np.where(lx < 0, lx - np.log1p(np.exp(lx)), -np.log1p(np.exp(-lx)))
    lw = 1 if pos_weight is None else (np.asarray(pos_weight, np.longdouble) - 1) * lt + 1
    loss = (1 - lt) * lx - lw * ls
    if weight is not None:
        loss = loss * np.asarray(weight, np.longdouble)
    return loss.astype(np.float64)


def test_bce_with_logits_matches_reference() -> None:
    g = np.random.default_rng(0)
    x = g.standard_normal((8, 5)) * 6
    t = g.random((8, 5))
    t[:3] = np.round(t[:3])
    w = g.uniform(0.1, 2, (8, 1))
    pw = g.uniform(0.5, 4, 5)
    for weight in (None, w):
        for pos_weight in (None, pw):
            want = ref_bce(x, t, weight, pos_weight)
            got = binary_cross_entropy_with_logits(
                x, t, weight=weight, pos_weight=pos_weight, reduction="none"
            )
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
            for red, f in (("mean", np.mean), ("sum", np.sum)):
                got_r = binary_cross_entropy_with_logits(
                    x,
                    t,
                    weight=weight,
                    pos_weight=pos_weight,
                    reduction=red,  # type: ignore[arg-type]
                )
                np.testing.assert_allclose(got_r, f(want), rtol=1e-13)


def test_bce_with_logits_stable_at_1e4() -> None:
    x = np.array([1e4, -1e4, 1e4, -1e4, -40.0, 40.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = binary_cross_entropy_with_logits(x, t, reduction="none")
        got_pw = binary_cross_entropy_with_logits(x, t, pos_weight=3.0, reduction="none")
        got32 = binary_cross_entropy_with_logits(x.astype(np.float32), t, reduction="none")
    np.testing.assert_allclose(got[:4], [0.0, 0.0, 1e4, 1e4], rtol=1e-15)
    np.testing.assert_allclose(got[4:], [math.exp(-40)] * 2, rtol=1e-14)  # log1p(e^-40)
    np.testing.assert_allclose(got_pw[:4], [0.0, 0.0, 1e4, 3e4], rtol=1e-15)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32[:4], [0.0, 0.0, 1e4, 1e4], rtol=1e-7)


def test_bce_with_logits_torch_parity() -> None:
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(1)
    x, t = g.standard_normal((6, 4)) * 5, g.random((6, 4))
    w, pw = g.random((6, 1)), g.uniform(0.5, 3, 4)
    reductions: tuple[Any, ...] = ("none", "mean", "sum")
    for red in reductions:
        want = torch.nn.functional.binary_cross_entropy_with_logits(
            torch.tensor(x),
            torch.tensor(t),
            weight=torch.tensor(w),
            pos_weight=torch.tensor(pw),
            reduction=red,
        )
        got = binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=red)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)


def test_bce_with_logits_errors() -> None:
    x = np.zeros((2, 3))
    with pytest.raises(ValueError):
        binary_cross_entropy_with_logits(x, np.zeros((2, 2)))
    with pytest.raises(ValueError):
        binary_cross_entropy_with_logits(x, x, weight=np.ones(4))
    with pytest.raises(ValueError):
        binary_cross_entropy_with_logits(x, x, pos_weight=np.ones((3, 3)))
    with pytest.raises(ValueError):
        binary_cross_entropy_with_logits(x, x, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        binary_cross_entropy_with_logits(x.astype(complex), x)


# --------------------------------------------------------------------------- sampled softmax


def test_log_uniform_sampler_distribution() -> None:
    g = np.random.default_rng(0)
    R = 20
    sampled, _, sampled_ec = _extras._log_uniform_candidate_sampler(
        np.zeros((1, 1), np.intp), 50000, R, g, unique=False
    )
    k = np.arange(R)
    p = (np.log(k + 2) - np.log(k + 1)) / np.log(R + 1)
    assert abs(p.sum() - 1) < 1e-12
    assert chi2_pvalue(np.bincount(sampled, minlength=R), p) > 1e-3
    np.testing.assert_allclose(sampled_ec, p[sampled] * 50000, rtol=1e-12)


def test_log_uniform_sampler_unique() -> None:
    g = np.random.default_rng(1)
    labels = np.array([[0, 5], [7, 1]])
    sampled, true_ec, sampled_ec = _extras._log_uniform_candidate_sampler(labels, 30, 100, g)
    assert sampled.shape == (30,) and len(set(sampled.tolist())) == 30
    assert sampled.min() >= 0 and sampled.max() < 100
    assert true_ec.shape == (2, 2)
    # expected counts are 1 - (1 - p)^num_tries for one num_tries >= num_sampled
    p = np.log1p(1 / (sampled + 1.0)) / np.log(101)
    tries = np.log1p(-sampled_ec) / np.log1p(-p)
    np.testing.assert_allclose(tries, tries[0], rtol=1e-9)
    assert round(tries[0]) >= 30
    pt = np.log1p(1 / (labels + 1.0)) / np.log(101)
    np.testing.assert_allclose(true_ec, -np.expm1(tries[0] * np.log1p(-pt)), rtol=1e-9)
    with pytest.raises(ValueError):
        _extras._log_uniform_candidate_sampler(labels, 101, 100, g)


def sampled_problem(
    num_classes: int = 50, batch: int = 64, dim: int = 8, num_true: int = 1, seed: int = 0
) -> tuple[Array, Array, Array, Array]:
    g = np.random.default_rng(seed)
    W = g.standard_normal((num_classes, dim))
    b = g.standard_normal(num_classes) * 0.1
    X = g.standard_normal((batch, dim))
    labels = np.stack(
        [g.choice(num_classes, num_true, replace=False) for _ in range(batch)]
    ).astype(np.int64)
    return W, b, labels, X


@pytest.mark.parametrize("num_true", [1, 2])
@pytest.mark.parametrize("remove", [True, False])
def test_sampled_softmax_loss_definition(num_true: int, remove: bool) -> None:
    W, b, labels, X = sampled_problem(num_true=num_true)
    got = sampled_softmax_loss(
        W, b, labels, X, 10, 50, num_true=num_true, remove_accidental_hits=remove, rng=5
    )
    sampled, true_ec, sampled_ec = _extras._log_uniform_candidate_sampler(
        labels, 10, 50, np.random.default_rng(5)
    )
    want = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        true_logits = [
            X[i] @ W[c] + b[c] - math.log(true_ec[i, j]) for j, c in enumerate(labels[i])
        ]
        samp_logits = []
        for s, c in enumerate(sampled):
            z = X[i] @ W[c] + b[c] - math.log(sampled_ec[s])
            if remove and c in labels[i]:
                z = -np.inf
            samp_logits.append(z)
        lsm = ref_log_softmax(np.array(true_logits + samp_logits))
        want[i] = -np.mean(lsm[:num_true])  # target 1/num_true on the true classes
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.shape == (X.shape[0],)


def test_sampled_softmax_loss_approaches_full_cross_entropy() -> None:
    W, b, labels, X = sampled_problem(num_classes=40, batch=256, seed=3)
    full = cross_entropy(X @ W.T + b, labels[:, 0])
    close = np.mean(sampled_softmax_loss(W, b, labels, X, 40, 40, rng=0))
    assert abs(close - full) / full < 0.01, (close, full)
    few = np.mean(sampled_softmax_loss(W, b, labels, X, 5, 40, rng=0))
    assert abs(few - full) > abs(close - full)


def test_sampled_softmax_loss_reproducible_and_float32() -> None:
    W, b, labels, X = sampled_problem()
    a = sampled_softmax_loss(W, b, labels, X, 12, 50, rng=1)
    np.testing.assert_array_equal(a, sampled_softmax_loss(W, b, labels, X, 12, 50, rng=1))
    assert not np.array_equal(a, sampled_softmax_loss(W, b, labels, X, 12, 50, rng=2))
    a32 = sampled_softmax_loss(
        W.astype(np.float32),
        b.astype(np.float32),
        labels[:, 0],
        X.astype(np.float32),
        12,
        50,
        rng=1,
    )
    assert a32.dtype == np.float32
    np.testing.assert_allclose(a32, a, rtol=1e-4)


def test_sampled_softmax_loss_errors() -> None:
    W, b, labels, X = sampled_problem()
    with pytest.raises(ValueError):
        sampled_softmax_loss(W, b, labels, X, 51, 50, rng=0)
    with pytest.raises(ValueError):
        sampled_softmax_loss(W, b, labels, X, 5, 49, rng=0)
    with pytest.raises(ValueError):
        sampled_softmax_loss(W, b, labels + 50, X, 5, 50, rng=0)
    with pytest.raises(ValueError):
        sampled_softmax_loss(W, b, labels, X[:, :3], 5, 50, rng=0)
    with pytest.raises(ValueError):
        sampled_softmax_loss(W, b, labels, X, 5, 50, num_true=2, rng=0)
    with pytest.raises(TypeError):
        sampled_softmax_loss(W, b, labels.astype(float), X, 5, 50, rng=0)
    with pytest.raises(ValueError):
        sampled_softmax_loss(W, b, labels, X, 0, 50, rng=0)
