"""Accuracy of softmax / log_softmax / logsumexp against high-precision references (issue 5).

Each battery (N(0,1), N(0,9), N(0,1e4), N(0,9)+1000, N(0,9)-1000) is drawn for rows of 10,
1000, 32000 and 128256 values (fewer rows for the long ones; ``SOFTMAX_RS_LONG=1`` for more),
on the last axis and on axis 0, and checked on every SIMD path:

- float32 inputs against a float64 reference, float64 inputs against an ``np.longdouble``
  one (mpmath where ``longdouble`` is only double), both with the shift formed exactly;
- softmax: max relative error (where the true value is a normal number) within
  ``SOFTMAX_REL_VS_SCIPY`` times SciPy's on the same inputs and within ``SOFTMAX_REL_ULP``;
- max |row sum - 1| within ``ROW_SUM_VS_SCIPY`` times SciPy's;
- log_softmax: max absolute error at most ``LOG_SOFTMAX_ABS_VS_SCIPY`` times SciPy's;
- logsumexp: relative error within ``LOGSUMEXP_REL_ULP``;
- float16 / bfloat16: every result within ``HALF_ULP`` ulp of the correctly rounded value.

Errors are in units of the dtype's eps (2^-23 for float32, 2^-52 for float64).
"""

from __future__ import annotations

import importlib
from typing import Any

import _numerics as nu
import numpy as np
import pytest
import softmax_rs as sr

# -- the bounds ---------------------------------------------------------------------------
SOFTMAX_REL_VS_SCIPY = 1.5  # softmax max rel error <= 1.5 x SciPy's
SOFTMAX_REL_ULP = 4.0  # ... and <= 4 eps
ROW_SUM_VS_SCIPY = 2.5  # max |row sum - 1| <= 2.5 x SciPy's
LOG_SOFTMAX_ABS_VS_SCIPY = 1.0  # log_softmax max abs error <= SciPy's
LOGSUMEXP_REL_ULP = 2.0  # logsumexp rel error <= 2 eps
HALF_ULP = 1  # float16 / bfloat16: within 1 ulp of the correctly rounded value
# The references must be far more accurate than the bounds they check:
REFERENCE_REL_TOL_EPS = 1e-2  # reference vs mpmath, in eps of the input dtype
# -----------------------------------------------------------------------------------------

CASES = nu.cases()
HALF_CASES = nu.cases(row_scale=0.25)


def _case_id(c: nu.Case) -> str:
    return f"{c.battery}-d{c.d}-axis{c.axis}"


def _metrics(
    funcs: tuple[Any, Any, Any], x: Any, axis: int, ref: nu.Reference, dtype: Any
) -> dict[str, float]:
    softmax, log_softmax, logsumexp = funcs
    y = softmax(x, axis=axis)
    ls = log_softmax(x, axis=axis)
    lse = logsumexp(x, axis=axis)
    for r in (y, ls, lse):
        assert np.asarray(r).dtype == np.dtype(dtype)
    return {
        "softmax_rel": nu.softmax_rel_err(y, ref.softmax, dtype),
        "row_sum": nu.row_sum_err(y, axis, dtype),
        "log_softmax_abs": nu.abs_err(ls, ref.log_softmax, dtype),
        "logsumexp_rel": nu.rel_err(lse, ref.logsumexp, dtype),
    }


scipy_special: Any = importlib.import_module("scipy.special")
SR_FUNCS = (sr.softmax, sr.log_softmax, sr.logsumexp)
SCIPY_FUNCS = (scipy_special.softmax, scipy_special.log_softmax, scipy_special.logsumexp)


def _violations(ours: dict[str, float], theirs: dict[str, float]) -> list[str]:
    bad = []
    if not ours["softmax_rel"] <= SOFTMAX_REL_VS_SCIPY * theirs["softmax_rel"]:
        bad.append(
            f"softmax rel error {ours['softmax_rel']:.3f} eps > {SOFTMAX_REL_VS_SCIPY} x "
            f"SciPy's {theirs['softmax_rel']:.3f} eps"
        )
    if not ours["softmax_rel"] <= SOFTMAX_REL_ULP:
        bad.append(f"softmax rel error {ours['softmax_rel']:.3f} eps > {SOFTMAX_REL_ULP} eps")
    if not ours["row_sum"] <= ROW_SUM_VS_SCIPY * theirs["row_sum"]:
        bad.append(
            f"|row sum - 1| {ours['row_sum']:.3f} eps > {ROW_SUM_VS_SCIPY} x SciPy's "
            f"{theirs['row_sum']:.3f} eps"
        )
    if not ours["log_softmax_abs"] <= LOG_SOFTMAX_ABS_VS_SCIPY * theirs["log_softmax_abs"]:
        bad.append(
            f"log_softmax abs error {ours['log_softmax_abs']:.3f} eps > "
            f"{LOG_SOFTMAX_ABS_VS_SCIPY} x SciPy's {theirs['log_softmax_abs']:.3f} eps"
        )
    if not ours["logsumexp_rel"] <= LOGSUMEXP_REL_ULP:
        bad.append(f"logsumexp rel error {ours['logsumexp_rel']:.3f} eps > {LOGSUMEXP_REL_ULP} eps")
    return bad


def _reference_for(x: Any, case: nu.Case) -> tuple[Any, nu.Reference]:
    """The reference; where longdouble is not extended (float64 inputs), mpmath on a few
    rows of the case."""
    if x.dtype == np.float64 and not nu.LONGDOUBLE_IS_EXTENDED:
        x = x[:2] if case.axis == -1 else x[:, :2]
        return x, nu.mp_reference(x, case.axis)
    return x, nu.reference(x, case.axis)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_accuracy_against_reference_and_scipy(dtype: Any, case: nu.Case) -> None:
    x, ref = _reference_for(case.make(dtype), case)
    theirs = _metrics(SCIPY_FUNCS, x, case.axis, ref, dtype)
    failures = []
    for name in nu.isas():
        with nu.isa(name):
            ours = _metrics(SR_FUNCS, x, case.axis, ref, dtype)
        failures += [f"[{name}] {v}" for v in _violations(ours, theirs)]
    assert not failures, f"{np.dtype(dtype).name} {case.label()}:\n" + "\n".join(failures)


SINGLE_ROW_CASES = [
    nu.Case(b, d, nu.rows_for(d, scale=scale), -1)
    for b in nu.BATTERIES
    for d, scale in ((10, 0.25), (1000, 0.25))
]


@pytest.mark.parametrize("case", SINGLE_ROW_CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_accuracy_of_one_dimensional_calls(dtype: Any, case: nu.Case) -> None:
    """The same bounds for each row passed on its own as a 1-D array (the single-row path
    rather than the batched short-row kernels)."""
    x, ref = _reference_for(case.make(dtype), case)
    theirs = _metrics(SCIPY_FUNCS, x, -1, ref, dtype)

    def rowwise(f: Any) -> Any:
        def g(a: Any, axis: int) -> Any:
            return np.stack([f(row) for row in a])

        return g

    funcs = (rowwise(sr.softmax), rowwise(sr.log_softmax), rowwise(sr.logsumexp))
    failures = []
    for name in nu.isas():
        with nu.isa(name):
            ours = _metrics(funcs, x, -1, ref, dtype)
        failures += [f"[{name}] {v}" for v in _violations(ours, theirs)]
    assert not failures, f"{np.dtype(dtype).name} {case.label()}, row by row:\n" + "\n".join(
        failures
    )


@pytest.mark.parametrize("case", HALF_CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", [nu.FLOAT16, nu.BFLOAT16], ids=["float16", "bfloat16"])
def test_half_precision_within_one_ulp_of_correctly_rounded(dtype: Any, case: nu.Case) -> None:
    x = case.make(dtype)
    ref = nu.reference(x.astype(np.float64), case.axis, np.float64)
    expected = {
        "softmax": nu.correctly_rounded(ref.softmax, dtype),
        "log_softmax": nu.correctly_rounded(ref.log_softmax, dtype),
        "logsumexp": nu.correctly_rounded(ref.logsumexp, dtype),
    }
    failures = []
    for name in nu.isas():
        with nu.isa(name):
            for fn, want in expected.items():
                got = getattr(sr, fn)(x, axis=case.axis)
                assert got.dtype == dtype, (fn, got.dtype)
                dist = nu.ulp_distance(got, want)
                worst = int(np.argmax(dist))
                if dist.flat[worst] > HALF_ULP:
                    failures.append(
                        f"[{name}] {fn}: {int(dist.flat[worst])} ulp at flat index {worst}: "
                        f"got {got.flat[worst]!r}, correctly rounded {want.flat[worst]!r} "
                        f"(exact {float(np.asarray(ref.__dict__[fn]).flat[worst])!r})"
                    )
    assert not failures, f"{dtype.name} {case.label()}:\n" + "\n".join(failures)


def _mp(v: Any) -> Any:
    """An exact mpmath value of a float64 / longdouble number."""
    mpmath: Any = importlib.import_module("mpmath")

    hi = float(v)
    lo = float(np.longdouble(v) - np.longdouble(hi))
    return mpmath.mpf(hi) + mpmath.mpf(lo)


@pytest.mark.parametrize("battery", list(nu.BATTERIES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_reference_is_far_more_accurate_than_the_bounds(dtype: Any, battery: str) -> None:
    """The references themselves, against 50-digit mpmath on a few rows of each battery."""
    mpmath: Any = importlib.import_module("mpmath")

    rng = np.random.default_rng(7)
    x = nu.BATTERIES[battery](rng, (3, 40)).astype(dtype)
    tol = REFERENCE_REL_TOL_EPS * nu.eps(dtype)
    for axis in (-1, 0):
        ref = nu.reference(x, axis)
        xa = np.moveaxis(x, axis, -1)
        sm = np.moveaxis(ref.softmax, axis, -1)
        ls = np.moveaxis(ref.log_softmax, axis, -1)
        with mpmath.workdps(50):
            for i in range(xa.shape[0]):
                row = [mpmath.mpf(float(v)) for v in xa[i]]
                m = max(row)
                total = mpmath.fsum(mpmath.exp(v - m) for v in row)
                lse = m + mpmath.log(total)
                assert abs(_mp(ref.logsumexp[i]) - lse) <= tol * abs(lse)
                for j, v in enumerate(row):
                    p = mpmath.exp(v - lse)
                    assert abs(_mp(sm[i, j]) - p) <= tol * p, (i, j)
                    assert abs(_mp(ls[i, j]) - (v - lse)) <= tol * max(1, abs(v - lse)), (i, j)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_error_does_not_grow_with_distance_from_the_max(dtype: Any) -> None:
    """API.md: the shift is formed exactly, so the error of softmax does not depend on
    ``|x - max|``: a value far below the max is as accurate as one near it."""
    lim = 80.0 if dtype == np.float32 else 700.0
    rng = np.random.default_rng(3)
    x = np.concatenate([[0.0], -rng.uniform(0, lim, 4095)]).astype(dtype)
    x = np.tile(x, (4, 1)) + np.array([[0.0], [0.37], [1e3], [-1e3]]).astype(dtype)
    ref = nu.reference(x, -1)
    for name in nu.isas():
        with nu.isa(name):
            err = nu.softmax_rel_err(sr.softmax(x), ref.softmax, dtype)
        assert err <= SOFTMAX_REL_ULP, f"[{name}] {err:.3f} eps"


def test_metrics_detect_an_error_of_one_part_in_a_million() -> None:
    """The measures are not vacuous: a perturbed result is caught by each of them."""
    case = nu.Case("N(0,1)", 1000, 8, -1)
    x = case.make(np.float32)
    ref = nu.reference(x, -1)
    good = _metrics(SR_FUNCS, x, -1, ref, np.float32)

    def bad_softmax(a: Any, axis: int) -> Any:
        return (sr.softmax(a, axis=axis) * np.float32(1 + 1e-6)).astype(np.float32)

    def bad_log_softmax(a: Any, axis: int) -> Any:
        return sr.log_softmax(a, axis=axis) + np.float32(1e-5)

    def bad_logsumexp(a: Any, axis: int) -> Any:
        return sr.logsumexp(a, axis=axis) * np.float32(1 + 1e-6)

    bad = _metrics((bad_softmax, bad_log_softmax, bad_logsumexp), x, -1, ref, np.float32)
    assert _violations(good, good) == []
    assert len(_violations(bad, good)) == 5, _violations(bad, good)
