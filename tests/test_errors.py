"""Every bad input in API.md raises NumPy's exception type with a message saying what is
wrong, and leaves ``out`` and the input alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import ALL_OPS, SOFTMAX_FAMILY
from numpy.exceptions import AxisError

Array = npt.NDArray[Any]
X = np.arange(6.0).reshape(2, 3)

FAMILY = sorted(SOFTMAX_FAMILY)
ALL = sorted(ALL_OPS)


def raises(exc: type[Exception], match: str, f: Callable[..., Any], *a: Any, **k: Any) -> None:
    x = a[0] if a and isinstance(a[0], np.ndarray) else None
    before = None if x is None else x.tobytes()
    out = k.get("out")
    out_before = out.tobytes() if isinstance(out, np.ndarray) else None
    with pytest.raises(exc, match=match) as info:
        f(*a, **k)
    assert type(info.value) is exc or issubclass(type(info.value), exc)
    if x is not None:
        assert x.tobytes() == before, "the input was written"
    if isinstance(out, np.ndarray):
        assert out.tobytes() == out_before, "out was written although the call failed"


# ------------------------------------------------------------------------------------------
# axis
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("axis", [2, -3, 100])
def test_axis_out_of_range(name: str, axis: int) -> None:
    raises(AxisError, rf"axis {axis}.*out of bounds.*dimension 2", ALL_OPS[name], X, axis=axis)


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("axis", [(0, 2), (-3,), (1, 5, 0)])
def test_tuple_axis_out_of_range(name: str, axis: tuple[int, ...]) -> None:
    raises(AxisError, r"out of bounds", SOFTMAX_FAMILY[name], X, axis=axis)


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("axis", [(0, 0), (1, -1), (0, 1, 0)])
def test_repeated_axis(name: str, axis: tuple[int, ...]) -> None:
    raises(AxisError, r"(?i)duplicate|repeated", SOFTMAX_FAMILY[name], X, axis=axis)


def test_axis_is_axis_error_and_value_and_index_error() -> None:
    """AxisError is also a ValueError and an IndexError, as NumPy's."""
    with pytest.raises(ValueError):
        sr.softmax(X, axis=5)
    with pytest.raises(IndexError):
        sr.softmax(X, axis=5)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("axis", [1.0, "0", [0]])
def test_axis_of_wrong_type(name: str, axis: Any) -> None:
    raises(TypeError, r"axis", ALL_OPS[name], X, axis=axis)


def test_argmax_tuple_axis() -> None:
    raises(TypeError, r"(?i)argmax.*(integer|int).*tuple|tuple", sr.argmax, X, axis=(0,))
    raises(TypeError, r"tuple", sr.argmax, X, axis=(0, 1))


def test_axis_on_zero_dim_input() -> None:
    for f in SOFTMAX_FAMILY.values():
        raises(AxisError, r"out of bounds.*dimension 0", f, np.array(1.0), axis=0)


# ------------------------------------------------------------------------------------------
# dtype
# ------------------------------------------------------------------------------------------
UNSUPPORTED: list[Any] = [
    np.zeros(3, np.complex64),
    np.zeros(3, np.complex128),
    np.array([1, "a", None], dtype=object),
    np.array(["a", "b"]),
    np.array([b"a", b"b"]),
    np.array(["2020-01-01"], dtype="datetime64[D]"),
    np.array([1], dtype="timedelta64[s]"),
    np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]),
    np.zeros(3, dtype="V8"),
    np.zeros(3, dtype="V2"),
]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("x", UNSUPPORTED, ids=lambda a: str(a.dtype))
def test_unsupported_dtype(name: str, x: Array) -> None:
    raises(TypeError, r"dtype", ALL_OPS[name], x)


@pytest.mark.parametrize("name", FAMILY)
def test_unsupported_python_inputs(name: str) -> None:
    f = SOFTMAX_FAMILY[name]
    raises(TypeError, r"dtype|complex", f, [1 + 2j, 3j])
    raises(TypeError, r"dtype|object|str", f, ["a", "b"])
    raises(TypeError, r"dtype|object", f, [1.0, None])


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.complex128, np.bool_, "U3"])
def test_bad_dtype_argument(name: str, dtype: Any) -> None:
    raises(TypeError, r"dtype", SOFTMAX_FAMILY[name], X, dtype=dtype)


# ------------------------------------------------------------------------------------------
# out
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.intp, np.complex128, np.bool_])
def test_out_wrong_dtype(name: str, dtype: Any) -> None:
    out = np.zeros((2, 3), dtype)
    raises(TypeError, r"out.*dtype.*float64|float64.*out", SOFTMAX_FAMILY[name], X, out=out)


def test_out_wrong_dtype_float32_input() -> None:
    x = X.astype(np.float32)
    raises(TypeError, r"out.*dtype", sr.softmax, x, out=np.zeros((2, 3)))
    raises(TypeError, r"out.*dtype", sr.logsumexp, x, out=np.zeros(2))
    raises(TypeError, r"out.*dtype", sr.softmax, x, dtype=np.float64, out=np.zeros((2, 3), "f4"))


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint64, np.float32])
def test_argmax_out_wrong_dtype(dtype: Any) -> None:
    raises(TypeError, r"out.*dtype", sr.argmax, X, out=np.zeros(2, dtype))


@pytest.mark.parametrize(
    ("name", "kw", "shape"),
    [
        ("softmax", {}, (3, 2)),
        ("softmax", {}, (6,)),
        ("softmax", {}, (2, 3, 1)),
        ("log_softmax", {}, (2, 2)),
        ("logsumexp", {}, (2, 1)),
        ("logsumexp", {"keepdims": True}, (2,)),
        ("logsumexp", {"axis": None}, (1,)),
        ("logsumexp", {"axis": 0}, (2,)),
        ("argmax", {}, (3,)),
        ("argmax", {"keepdims": True}, (2,)),
        ("argmax", {"axis": None}, (1,)),
    ],
)
def test_out_wrong_shape(name: str, kw: dict[str, Any], shape: tuple[int, ...]) -> None:
    dtype = np.intp if name == "argmax" else np.float64
    out = np.zeros(shape, dtype)
    raises(ValueError, r"out.*shape", ALL_OPS[name], X, out=out, **kw)


def _readonly(shape: tuple[int, ...], dtype: Any) -> list[Array]:
    a = np.zeros(shape, dtype)
    a.setflags(write=False)
    return [a, np.broadcast_to(np.zeros(shape[-1:] if shape else (), dtype), shape)]


@pytest.mark.parametrize("name", ALL)
def test_out_read_only(name: str) -> None:
    f = ALL_OPS[name]
    want = f(X)
    dtype = np.asarray(want).dtype
    for out in _readonly(np.shape(want), dtype):
        raises(ValueError, r"out.*(read-only|writ)", f, X, out=out)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("kind", ["list", "memoryview", "scalar", "tuple"])
def test_out_not_an_ndarray(name: str, kind: str) -> None:
    f = ALL_OPS[name]
    want = np.asarray(f(X))
    out: Any = {
        "list": want.tolist(),
        "memoryview": want.copy().data,
        "scalar": want.dtype.type(0),
        "tuple": tuple(want.tolist()),
    }[kind]
    raises(TypeError, r"out.*ndarray|ndarray.*out", f, X, out=out)


# ------------------------------------------------------------------------------------------
# temperature
# ------------------------------------------------------------------------------------------
BAD_TEMPERATURES: list[Any] = [
    0,
    0.0,
    -0.0,
    -1.0,
    np.nan,
    np.inf,
    -np.inf,
    np.array([1.0, 0.0]),
    np.array([1.0, np.nan]),
    np.array([[2.0], [-1.0]]),
    "hot",
]


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("t", BAD_TEMPERATURES, ids=repr)
def test_bad_temperature(name: str, t: Any) -> None:
    raises(ValueError, r"temperature", SOFTMAX_FAMILY[name], X, temperature=t)


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("shape", [(3,), (2, 2), (3, 1), (2, 3, 1), (4, 1, 1)])
def test_temperature_wrong_shape(name: str, shape: tuple[int, ...]) -> None:
    raises(
        ValueError,
        r"temperature.*shape|shape.*temperature",
        SOFTMAX_FAMILY[name],
        X,
        temperature=np.ones(shape),
    )


def test_temperature_wrong_shape_for_tuple_axis() -> None:
    x = np.zeros((2, 3, 4))
    raises(ValueError, r"temperature", sr.softmax, x, axis=(0, 2), temperature=np.ones(2))
    raises(ValueError, r"temperature", sr.softmax, x, axis=(0, 2), temperature=np.ones((2, 1, 4)))


# ------------------------------------------------------------------------------------------
# argmax of an empty axis, empty_rows, where
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "axis"), [((0,), -1), ((3, 0), -1), ((0, 3), 0), ((0, 3), None), ((2, 0, 2), 1)]
)
def test_argmax_of_empty_axis(shape: tuple[int, ...], axis: int | None) -> None:
    raises(ValueError, r"(?i)empty", sr.argmax, np.zeros(shape), axis=axis)
    raises(ValueError, r"(?i)empty", sr.argmax, np.zeros(shape), axis=axis, keepdims=True)


def test_argmax_of_empty_batch_is_fine() -> None:
    """An empty batch with a non-empty axis is not an error (as np.argmax)."""
    got = sr.argmax(np.zeros((3, 0)), axis=0)
    assert got.shape == (0,)
    assert got.dtype == np.intp


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("value", ["foo", "", "none", "NAN", "zeros", "Zero "])
def test_bad_empty_rows(name: str, value: str) -> None:
    raises(ValueError, r"empty_rows", SOFTMAX_FAMILY[name], X, empty_rows=value)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("value", [1, 0.0, True, ["nan"]])
def test_empty_rows_of_wrong_type(name: str, value: Any) -> None:
    """A non-string empty_rows is refused, and the message names the argument."""
    with pytest.raises((ValueError, TypeError), match=r"empty_rows"):
        SOFTMAX_FAMILY[name](X, empty_rows=value)


@pytest.mark.parametrize("name", FAMILY)
def test_where_not_broadcastable(name: str) -> None:
    raises(ValueError, r"where", SOFTMAX_FAMILY[name], X, where=np.ones(4, bool))
    raises(ValueError, r"where", SOFTMAX_FAMILY[name], X, where=np.ones((3, 3), bool))


@pytest.mark.parametrize("name", FAMILY)
def test_options_are_keyword_only(name: str) -> None:
    with pytest.raises(TypeError):
        SOFTMAX_FAMILY[name](X, -1, 2.0)
    with pytest.raises(TypeError):
        sr.argmax(X, -1, True)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ALL)
def test_unknown_keyword(name: str) -> None:
    with pytest.raises(TypeError, match=r"keyword|argument"):
        ALL_OPS[name](X, axes=0)


def test_errors_leave_state_alone() -> None:
    """A failed call does not change the thread count, nor break the next call."""
    n = sr.get_num_threads()
    for bad in ({"axis": 5}, {"temperature": -1.0}, {"out": np.zeros(3)}):
        with pytest.raises((ValueError, TypeError)):
            sr.softmax(X, **bad)
    assert sr.get_num_threads() == n
    np.testing.assert_allclose(sr.softmax(X).sum(axis=-1), 1.0, rtol=1e-15)
