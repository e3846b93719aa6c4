"""softmax_rs.special against scipy.special: values, dtypes, shapes, special values, errors.

SciPy's own test files for these functions run in ``test_special_scipy_suite.py``; this
module compares the two implementations directly over many more inputs.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.exceptions import AxisError
from softmax_rs import special

sp = pytest.importorskip("scipy.special")

Array = npt.NDArray[Any]
FUNCS = ["softmax", "log_softmax", "logsumexp"]
SPECIAL_VALUES = [-np.inf, np.inf, np.nan, 0.0, 1.0, -2.0, 1000.0]


def both(name: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """(softmax_rs result, SciPy result); SciPy's floating-point warnings are silenced."""
    ours = getattr(special, name)(*args, **kwargs)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(sp, name)(*args, **kwargs)
    return ours, theirs


def assert_same(ours: Any, theirs: Any, rtol: float = 1e-12, atol: float = 0.0) -> None:
    """Same Python type (scalar vs ndarray), dtype, shape, and values (NaN == NaN)."""
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs, strict=True):
            assert_same(o, t, rtol, atol)
        return
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    o, t = np.asarray(ours), np.asarray(theirs)
    assert o.dtype == t.dtype, (o.dtype, t.dtype)
    assert o.shape == t.shape, (o.shape, t.shape)
    if o.dtype.kind == "c":
        np.testing.assert_allclose(o.real, t.real, rtol=rtol, atol=atol, equal_nan=True)
        np.testing.assert_allclose(o.imag, t.imag, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_allclose(o, t, rtol=rtol, atol=atol, equal_nan=True)


def check(name: str, ours: Any, theirs: Any, t: float) -> None:
    """Compare with relative tolerance ``t``; log-domain results also get ``t`` absolute
    (SciPy's ``x - max - log(s)`` has an absolute, not relative, error near 0)."""
    assert_same(ours, theirs, rtol=t, atol=t * 1e-3 if name == "softmax" else t)


def tol(dtype: Any) -> float:
    dt = np.dtype(dtype)
    if dt.kind in "biu":
        return 1e-13
    if dt.kind == "c":
        dt = np.dtype(dt.char.lower()) if dt.char != "G" else np.dtype(np.longdouble)
    return float(np.finfo(dt).eps) * 64 if dt.itemsize >= 4 else 4e-3


# --------------------------------------------------------------------------- special values


@pytest.mark.parametrize("name", FUNCS)
def test_every_combination_of_special_values(name: str) -> None:
    for n in (1, 2, 3):
        for combo in itertools.product(SPECIAL_VALUES, repeat=n):
            x = np.array(combo)
            ours, theirs = both(name, x)
            assert_same(ours, theirs)


@pytest.mark.parametrize("return_sign", [False, True])
def test_logsumexp_weights_special_values(return_sign: bool) -> None:
    weights = [0.0, -0.0, 1.0, 2.0, np.inf, np.nan, -1.0]
    for n in (1, 2):
        for a in itertools.product(SPECIAL_VALUES, repeat=n):
            for b in itertools.product(weights, repeat=n):
                ours, theirs = both(
                    "logsumexp", np.array(a), b=np.array(b), return_sign=return_sign
                )
                assert_same(ours, theirs)


def test_special_values_on_rows() -> None:
    # rows with +inf, NaN, all -inf, mixed: along an axis, float32 (the Rust core path)
    x = np.array(
        [
            [np.inf, 1.0, np.inf, 0.0],
            [np.nan, 1.0, 2.0, 3.0],
            [-np.inf, -np.inf, -np.inf, -np.inf],
            [-np.inf, 1.0, 2.0, -np.inf],
            [np.inf, np.nan, 0.0, 1.0],
            [1e30, -1e30, 3e38, -3e38],
        ],
        dtype=np.float32,
    )
    for name in FUNCS:
        for axis in (0, 1, -1, None, (0, 1)):
            check(name, *both(name, x, axis=axis), 1e-6)


def test_core_paths_emit_no_warnings() -> None:
    x = np.array([[np.inf, 1.0], [np.nan, 0.0], [-np.inf, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        special.softmax(x, axis=1)
        special.log_softmax(x, axis=1)
        special.logsumexp(x, axis=1)
        special.logsumexp(x, axis=1, b=np.array([0.0, 1.0]), return_sign=True)


# --------------------------------------------------------------------------- dtypes

REAL_DTYPES = [
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.longdouble,
    np.complex64,
    np.complex128,
]


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", REAL_DTYPES)
def test_dtypes_match_scipy(name: str, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 5)) * 4).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal((3, 5)).astype(dtype)
    for axis in (None, 0, 1, (0, 1)):
        ours, theirs = both(name, x, axis=axis)
        check(name, ours, theirs, tol(np.asarray(theirs).dtype))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize(
    "dtype, result", [(np.uint8, np.float16), (np.uint16, np.float32), (np.uint64, np.float64)]
)
def test_unsigned_input_has_scipy_dtype_and_correct_values(
    name: str, dtype: Any, result: Any
) -> None:
    # SciPy computes x - max(x) in the unsigned dtype (wrap-around, NaN results); we keep
    # its result dtype but compute the right values.
    x = np.array([[1, 3, 0], [7, 7, 2]], dtype=dtype)
    ours = getattr(special, name)(x, axis=1)
    assert ours.dtype == result
    want = getattr(sp, name)(x.astype(np.float64), axis=1)
    np.testing.assert_allclose(ours, want, rtol=2e-3 if result == np.float16 else 1e-6)


def test_bfloat16() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = ml_dtypes.bfloat16
    x = np.array([[1.0, 2.0, -3.0], [0.5, 0.25, 8.0]], dtype=bf16)
    ours, theirs = both("softmax", x, axis=1)
    assert ours.dtype == theirs.dtype == bf16
    np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64), rtol=1e-2)
    ours = special.log_softmax(x, axis=1)
    assert ours.dtype == bf16
    lse = special.logsumexp(x, axis=1)  # SciPy raises here; we return bfloat16
    assert lse.dtype == bf16
    np.testing.assert_allclose(
        lse.astype(np.float64), sp.logsumexp(x.astype(np.float64), axis=1), rtol=1e-2
    )


def test_bool_input() -> None:
    x = np.array([True, False, True])
    for name in ["softmax", "log_softmax"]:
        with pytest.raises(TypeError):
            getattr(sp, name)(x)
        with pytest.raises(TypeError):
            getattr(special, name)(x)
    assert_same(*both("logsumexp", x))


@pytest.mark.parametrize("name", FUNCS)
def test_scalars_lists_and_0d(name: str) -> None:
    for x in (1000, 2.5, -np.inf, np.float32(3.0), np.array(1.5), [1, 2, 3], [[1.0], [2.0]]):
        assert_same(*both(name, x))
    assert_same(*both(name, np.arange(6.0).reshape(2, 3), axis=-1))


def test_logsumexp_0d_keepdims_and_axis() -> None:
    # SciPy promotes 0-d input to 1-d: keepdims gives shape (1,), axis=0 is valid
    assert_same(*both("logsumexp", np.float64(2.0), keepdims=True))
    assert_same(*both("logsumexp", 2.0, axis=0))
    assert_same(*both("logsumexp", 2.0, axis=-1, return_sign=True))


# --------------------------------------------------------------------------- axes & shapes


@pytest.mark.parametrize("name", FUNCS)
def test_axes(name: str) -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 4)) * 10
    for axis in (None, 0, 1, 2, -1, -3, (0, 2), (2, 0), (-1, -2), (0, 1, 2)):
        for dtype in (np.float32, np.float64):
            check(name, *both(name, x.astype(dtype), axis=axis), tol(dtype))
    if name == "logsumexp":
        for axis in (None, 1, (0, 2)):
            assert_same(*both(name, x, axis=axis, keepdims=True))


@pytest.mark.parametrize("name", FUNCS)
def test_empty_tuple_axis(name: str) -> None:
    x = np.array([[1.0, np.inf], [-np.inf, 2.0]])
    assert_same(*both(name, x, axis=()))


@pytest.mark.parametrize("name", FUNCS)
def test_noncontiguous_input(name: str) -> None:
    x = np.random.default_rng(8).standard_normal((6, 10)).astype(np.float32)
    for view in (x.T, x[::2, ::-3], x[:, 1:7], x.astype(">f4"), x.astype(">f8")[::-1]):
        for axis in (0, 1, None):
            check(name, *both(name, view, axis=axis), 1e-5)


@pytest.mark.parametrize("name", FUNCS)
def test_bad_axis(name: str) -> None:
    x = np.ones((2, 3))
    for axis, exc in [(2, AxisError), (-3, AxisError), ((0, 0), ValueError), (1.0, TypeError)]:
        with pytest.raises(exc):
            getattr(sp, name)(x, axis=axis)
        with pytest.raises(exc):
            getattr(special, name)(x, axis=axis)


def test_empty_input() -> None:
    # softmax/log_softmax of an empty reduction: ValueError (np.max of an empty array)
    for name in ["softmax", "log_softmax"]:
        for x, axis in [(np.array([]), None), (np.zeros((0, 3)), 0)]:
            with pytest.raises(ValueError):
                getattr(sp, name)(x, axis=axis)
            with pytest.raises(ValueError):
                getattr(special, name)(x, axis=axis)
        # empty outer axis, non-empty reduction: empty result, as SciPy
        assert_same(*both(name, np.zeros((0, 3)), axis=1))
    assert_same(*both("logsumexp", np.array([])))
    assert_same(*both("logsumexp", np.array([]), return_sign=True))
    assert_same(*both("logsumexp", np.zeros((0, 3)), axis=1))
    # SciPy raises IndexError for an empty N-d array with axis=None; we give -inf
    assert special.logsumexp(np.zeros((0, 3))) == -np.inf


@pytest.mark.parametrize("name", FUNCS)
def test_unsupported_inputs_raise_like_scipy(name: str) -> None:
    for x in (np.array(["a", "b"]), "abc", np.array([1, 2], dtype=object), None):
        with pytest.raises(Exception) as theirs, np.errstate(all="ignore"):
            getattr(sp, name)(x)
        with pytest.raises(Exception) as ours:
            getattr(special, name)(x)
        # the same kind of exception (TypeError subclasses count as TypeError)
        for base in (TypeError, ValueError, AttributeError):
            if isinstance(theirs.value, base):
                assert isinstance(ours.value, base | TypeError), (x, theirs.value, ours.value)
                break


# --------------------------------------------------------------------------- logsumexp b=


def test_logsumexp_b_broadcasting_and_shapes() -> None:
    rng = np.random.default_rng(9)
    a = rng.standard_normal((4, 1, 2, 1))
    b = rng.uniform(0, 2, (3, 1, 5))
    for axis in (None, 0, (1, 3), -1):
        for keepdims in (False, True):
            assert_same(*both("logsumexp", a, axis=axis, b=b, keepdims=keepdims))
    with pytest.raises(ValueError):
        special.logsumexp(np.ones(3), b=np.ones(4))


@pytest.mark.parametrize("dtype_a", [np.int32, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("dtype_b", [np.int64, np.float32, np.float64, np.complex64])
def test_logsumexp_b_promotion(dtype_a: Any, dtype_b: Any) -> None:
    a = np.array([[2, 1, 0], [1, 3, -1]], dtype=dtype_a)
    for b in (np.array([1, 2, 3], dtype=dtype_b), np.array([1, -1, 2], dtype=dtype_b)):
        for rs in (False, True):
            ours, theirs = both("logsumexp", a, axis=1, b=b, return_sign=rs)
            dt = np.asarray(theirs[0] if rs else theirs).dtype
            assert_same(ours, theirs, rtol=tol(dt), atol=tol(dt) * 1e-3)


def test_logsumexp_python_scalar_b_keeps_float32() -> None:
    a = np.array([1.0, 2.0], dtype=np.float32)
    assert_same(*both("logsumexp", a, b=2), rtol=1e-6)
    assert_same(*both("logsumexp", a, b=np.float64(2.0)), rtol=1e-6)


def test_logsumexp_negative_weights_and_sign() -> None:
    rng = np.random.default_rng(10)
    a = rng.standard_normal((5, 7)) * 3
    b = rng.standard_normal((5, 7))
    for axis in (None, 0, 1):
        assert_same(*both("logsumexp", a, axis=axis, b=b), rtol=1e-10)
        assert_same(*both("logsumexp", a, axis=axis, b=b, return_sign=True), rtol=1e-10)
    r, s = special.logsumexp([1, 2], b=[1, -1], return_sign=True)
    assert s == -1.0 and np.isclose(r, np.log(np.e**2 - np.e))


def test_logsumexp_nonnegative_weights_use_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    original: Callable[..., Any] = vars(special)["_core_logsumexp"]

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(special, "_core_logsumexp", spy)
    a = np.linspace(-3, 3, 12).reshape(3, 4)
    b = np.array([1.0, 0.0, 2.0, 0.5])
    assert_same(*both("logsumexp", a, axis=1, b=b))
    assert len(calls) == 1 and calls[0]["where"] is not None
    assert_same(*both("logsumexp", a.astype(np.float32), axis=0), rtol=1e-6)
    assert len(calls) == 2
    # negative weights: NumPy path
    assert_same(*both("logsumexp", a, axis=1, b=-b))
    assert len(calls) == 2


def test_softmax_uses_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    original: Callable[..., Any] = vars(special)["_core_softmax"]

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(special, "_core_softmax", spy)
    for dtype in (np.float16, np.float32, np.float64, np.int64):
        special.softmax(np.arange(6).astype(dtype).reshape(2, 3), axis=1)
    assert len(calls) == 4
    special.softmax(np.arange(6).astype(np.complex128))  # NumPy path
    assert len(calls) == 4


def test_complex() -> None:
    rng = np.random.default_rng(11)
    x = rng.uniform(1, 40, (4, 6)) + 1j * rng.uniform(1, 40, (4, 6))
    for name in FUNCS:
        for axis in (None, 0, 1):
            assert_same(*both(name, x, axis=axis), rtol=1e-10, atol=1e-12)
    assert_same(*both("logsumexp", x, axis=1, return_sign=True), rtol=1e-10, atol=1e-12)
    assert_same(*both("logsumexp", x.astype(np.complex64), axis=1), rtol=1e-4, atol=1e-5)
    res = special.logsumexp(x, axis=1)
    assert np.all(np.abs(res.imag) <= np.pi)


def test_longdouble() -> None:
    x = np.array([[1.0, 2.0, 11000.0], [-5.0, 0.0, 5.0]], dtype=np.longdouble)
    for name in FUNCS:
        ours, theirs = both(name, x, axis=1)
        assert np.asarray(ours).dtype == np.longdouble
        assert_same(ours, theirs, rtol=1e-15)


def test_does_not_write_to_inputs() -> None:
    a = np.array([[5.0, np.inf], [4.0, 1.0]])
    b = np.array([[3.0, 0.0], [2.0, 1.0]])
    a0, b0 = a.copy(), b.copy()
    special.softmax(a, axis=1)
    special.log_softmax(a, axis=1)
    special.logsumexp(a, axis=1, b=b)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


# --------------------------------------------------------------------------- hypothesis

finite_or_special = st.one_of(
    st.floats(-1e4, 1e4, width=32),
    st.sampled_from([np.inf, -np.inf, np.nan]),
)


@settings(deadline=None)
@given(
    x=hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
        elements=finite_or_special,
    ),
    data=st.data(),
)
def test_hypothesis_parity(x: Array, data: st.DataObject) -> None:
    axes = data.draw(
        st.one_of(
            st.none(),
            st.integers(-x.ndim, x.ndim - 1),
            st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True).map(
                tuple
            ),
        )
    )
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12
    for name in FUNCS:
        check(name, *both(name, x, axis=axes), rtol)
    b = data.draw(
        hnp.arrays(np.float64, x.shape, elements=st.sampled_from([0.0, 0.5, 1.0, 3.0, -1.0]))
    )
    for rs in (False, True):
        check("logsumexp", *both("logsumexp", x, axis=axes, b=b, return_sign=rs), rtol)


# --------------------------------------------------------------------------- expit


EXPIT_DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.longdouble,
]


@pytest.mark.parametrize("name", ["expit", "log_expit"])
@pytest.mark.parametrize("dtype", EXPIT_DTYPES)
def test_expit_dtypes_and_values(name: str, dtype: Any) -> None:
    x = np.array([-800, -100, -30, -3, -1, 0, 1, 3, 30, 100, 800]).astype(dtype)
    ours, theirs = both(name, x)
    rt = 4 * float(np.finfo(np.asarray(theirs).dtype).eps)
    assert_same(ours, theirs, rtol=rt, atol=1e-300)


@pytest.mark.parametrize("name", ["expit", "log_expit"])
def test_expit_special_values_and_scalars(name: str) -> None:
    x = np.array([-np.inf, np.inf, np.nan, -0.0, 0.0, -1e4, 1e4, 710.0, -710.0])
    assert_same(*both(name, x), rtol=1e-15)
    assert_same(*both(name, x.astype(np.float32)), rtol=1e-6)
    for s in (0.5, 3, np.float32(2.0), np.array(-1.0), True):
        assert_same(*both(name, s), rtol=1e-15)
    assert_same(*both(name, [[1.0, 2.0]]), rtol=1e-15)
    assert_same(*both(name, np.zeros((0, 3))))


@pytest.mark.parametrize("name", ["expit", "log_expit"])
def test_expit_ufunc_keywords(name: str) -> None:
    x = np.linspace(-5, 5, 6)
    ours_f, theirs_f = getattr(special, name), getattr(sp, name)
    # out= (positional and keyword), returns out
    o1, o2 = np.empty(6), np.empty(6)
    assert ours_f(x, o1) is o1
    theirs_f(x, o2)
    np.testing.assert_allclose(o1, o2, rtol=1e-15)
    o1 = np.empty(6, dtype=np.float32)
    assert ours_f(x, out=o1) is o1
    np.testing.assert_allclose(o1, theirs_f(x).astype(np.float32), rtol=1e-6)
    # out broadcasting: input broadcast to a larger out
    o1, o2 = np.empty((2, 6)), np.empty((2, 6))
    ours_f(x, out=o1)
    theirs_f(x, out=o2)
    np.testing.assert_allclose(o1, o2, rtol=1e-15)
    with pytest.raises(ValueError):
        ours_f(x, out=np.empty(5))
    with pytest.raises(ValueError):
        theirs_f(x, out=np.empty(5))
    # casting: float64 result into an int out is refused under same_kind
    with pytest.raises(TypeError):
        ours_f(x, out=np.empty(6, dtype=np.int64))
    with pytest.raises(TypeError):
        theirs_f(x, out=np.empty(6, dtype=np.int64))
    # where= (NumPy's semantics; SciPy 1.17's own masked loop writes the wrong elements)
    mask = np.array([True, False] * 3)
    o1 = np.full(6, 7.0)
    assert ours_f(x, out=o1, where=mask) is o1
    np.testing.assert_allclose(o1, np.where(mask, theirs_f(x), 7.0), rtol=1e-15)
    assert np.all(o1[~mask] == 7.0)
    # dtype=
    assert_same(ours_f(x, dtype=np.float32), theirs_f(x, dtype=np.float32), rtol=1e-6)
    with pytest.raises(TypeError):
        theirs_f(x, dtype=np.float16)
    with pytest.raises(TypeError):
        ours_f(x, dtype=np.float16)


@pytest.mark.parametrize("name", ["expit", "log_expit"])
def test_expit_rejects_like_scipy(name: str) -> None:
    for x in (np.array([1 + 1j]), np.array(["a"]), np.array([1.0], dtype=object), None):
        with pytest.raises(TypeError):
            getattr(sp, name)(x)
        with pytest.raises(TypeError):
            getattr(special, name)(x)


def test_log_expit_is_accurate_in_the_tails() -> None:
    x = np.array([-10000.0, -750.0, -500.0, -35.0])
    np.testing.assert_array_equal(special.log_expit(x), x)
    # log_expit(x) = -log1p(exp(-x)) ~ -exp(-x) for large x: no underflow to 0 early
    np.testing.assert_allclose(special.log_expit(np.array([40.0])), [-np.exp(-40.0)], rtol=1e-15)
