"""Bad input never crashes, hangs or corrupts (issue 5).

Every function (softmax, log_softmax, logsumexp, argmax) is driven with unsupported dtypes,
0-d arrays, shapes whose results cannot be allocated, unusable ``out`` arrays, overlapping
``out``, malformed ``where`` / ``temperature`` / ``empty_rows`` / ``axis``; each must raise
the documented NumPy exception type (or give the right answer, for overlaps), leave the
input untouched and leave ``out`` untouched when it raises. The allocation failures run in a
subprocess so that a crash is reported as a failure instead of killing the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import ALL_OPS, SOFTMAX_FAMILY
from numpy.exceptions import AxisError
from numpy.lib.stride_tricks import as_strided

Array = npt.NDArray[Any]

SUBPROCESS_TIMEOUT_S = 120


def _data(shape: tuple[int, ...] = (6, 7), dtype: Any = np.float64) -> Array:
    return (np.random.default_rng(0).standard_normal(shape) * 3).astype(dtype)


def _result_shape(fn: str, shape: tuple[int, ...], axis: int = -1) -> tuple[int, ...]:
    if fn in ("softmax", "log_softmax"):
        return shape
    return tuple(n for i, n in enumerate(shape) if i != axis % len(shape))


def _out_dtype(fn: str, x: Array) -> Any:
    return np.intp if fn == "argmax" else x.dtype


# --------------------------------------------------------------------------------------
# Unsupported dtypes

BAD_DTYPES: list[Any] = [
    object,
    np.complex64,
    np.complex128,
    np.clongdouble,
    "U5",
    "S5",  # bytes
    "M8[s]",
    "m8[ns]",
    [("a", "f8"), ("b", "i4")],
    [("x", "f4")],  # structured with one float field is still structured
    "V8",
]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
@pytest.mark.parametrize("fn", list(ALL_OPS))
def test_unsupported_dtypes_raise_type_error(fn: str, dtype: Any) -> None:
    x = np.zeros((3, 4), dtype=dtype)
    before = x.tobytes()
    for kwargs in ({}, {"axis": 0}, {"axis": None}):
        with pytest.raises(TypeError):
            ALL_OPS[fn](x, **kwargs)
    # a non-contiguous view of the same, and with a (valid) out given
    with pytest.raises(TypeError):
        ALL_OPS[fn](x[:, ::2])
    out = np.zeros(_result_shape(fn, (3, 4)), dtype=np.intp if fn == "argmax" else np.float64)
    with pytest.raises(TypeError):
        ALL_OPS[fn](x, out=out)
    assert x.tobytes() == before
    assert not out.any()


@pytest.mark.parametrize("fn", list(ALL_OPS))
def test_object_like_inputs_raise_type_error(fn: str) -> None:
    for bad in (None, [object(), object()], ["a", "b"], [1 + 2j, 3j], {"a": 1}):
        with pytest.raises(TypeError):
            ALL_OPS[fn](bad)


@pytest.mark.parametrize("fn", SOFTMAX_FAMILY)
def test_unsupported_result_dtype_raises_type_error(fn: str) -> None:
    x = _data()
    for dt in (np.float16, np.int32, np.complex128, object, np.longdouble):
        with pytest.raises(TypeError):
            ALL_OPS[fn](x, dtype=dt)


# --------------------------------------------------------------------------------------
# 0-d arrays


@pytest.mark.parametrize("fn", list(ALL_OPS))
def test_zero_d_arrays(fn: str) -> None:
    x = np.array(2.5)
    for axis in (-1, 0, 1):
        with pytest.raises(AxisError):
            ALL_OPS[fn](x, axis=axis)
    with pytest.raises(AxisError):
        ALL_OPS[fn](x)  # default axis=-1
    r = ALL_OPS[fn](x, axis=None)
    want = {"softmax": 1.0, "log_softmax": 0.0, "logsumexp": 2.5, "argmax": 0}[fn]
    assert np.shape(r) == ()
    assert r == want


# --------------------------------------------------------------------------------------
# Results that cannot be allocated: MemoryError, not a crash (in a subprocess)

_HUGE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import softmax_rs as sr
    results = {}
    def attempt(name, f):
        try:
            f()
            results[name] = "no error"
        except MemoryError:
            results[name] = "MemoryError"
        except BaseException as e:
            results[name] = type(e).__name__ + ": " + str(e)[:200]
    # 2^60 float32 elements read in place (zero strides): the 4 EiB result cannot exist
    big = np.broadcast_to(np.float32(1.5), (2**40, 2**20))
    # float64 results: 2^50 elements (8 PiB), within NumPy's size limit but not the machine's
    big64 = np.broadcast_to(np.float32(1.5), (2**30, 2**20))
    for fn in ("softmax", "log_softmax", "logsumexp", "argmax"):
        f = getattr(sr, fn)
        attempt(fn, lambda: f(big))
        attempt(fn + " keepdims" if fn in ("logsumexp", "argmax") else fn + " axis=0",
                (lambda: f(big, keepdims=True)) if fn in ("logsumexp", "argmax")
                else (lambda: f(big, axis=0)))
    for fn in ("softmax", "log_softmax", "logsumexp"):
        f = getattr(sr, fn)
        # (logsumexp's float64 result of big64 would fit: 8 GiB; that of big does not)
        attempt(fn + " dtype=float64",
                lambda: f(big if fn == "logsumexp" else big64, dtype=np.float64))
        attempt(fn + " where", lambda: f(big, where=np.broadcast_to(True, big.shape)))
        attempt(fn + " temperature",
                lambda: f(big, temperature=np.broadcast_to(2.0, (2**40, 1))))
    # inputs that are converted: float16 (block by block), bool and int8 (one copy)
    attempt("softmax float16", lambda: sr.softmax(np.broadcast_to(np.float16(1), (2**40, 2**20))))
    attempt("softmax bool", lambda: sr.softmax(np.broadcast_to(True, (2**30, 2**20))))
    attempt("log_softmax int8", lambda: sr.log_softmax(np.broadcast_to(np.int8(3), (2**30, 2**20))))
    # results too big for this machine but not for NumPy's size check (512 GiB)
    attempt("softmax 512GiB", lambda: sr.softmax(
        np.broadcast_to(np.float32(0.5), (2**17, 2**20))))
    attempt("logsumexp 512GiB axis=0", lambda: sr.logsumexp(
        np.broadcast_to(np.float32(0.5), (2, 2**37)), axis=0))
    # the module still works afterwards
    results["after"] = float(sr.softmax(np.array([1.0, 1.0]))[0])
    print(json.dumps(results))
    """
)


def test_unallocatable_results_raise_memory_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _HUGE_SCRIPT],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"crashed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results.pop("after") == 0.5
    wrong = {k: v for k, v in results.items() if v != "MemoryError"}
    assert not wrong, wrong


# --------------------------------------------------------------------------------------
# Unusable out


def _zero_stride_out(shape: tuple[int, ...], dtype: Any) -> Array:
    """A *writable* array of ``shape`` whose elements alias (first axis stride 0)."""
    base = np.zeros(shape[1:] or (1,), dtype=dtype)
    strides = (0, *base.strides) if len(shape) > 1 else (0,)
    return as_strided(base, shape=shape, strides=strides)


@pytest.mark.parametrize("fn", list(ALL_OPS))
def test_out_with_zero_strides_raises_value_error(fn: str) -> None:
    x = _data((5, 6))
    shape = _result_shape(fn, x.shape)
    out = _zero_stride_out(shape, _out_dtype(fn, x))
    assert out.flags.writeable
    with pytest.raises(ValueError):
        ALL_OPS[fn](x, out=out)
    assert not np.asarray(out).any()
    if fn in ("softmax", "log_softmax"):
        # zero stride on the inner axis only
        base = np.zeros((5, 1))
        with pytest.raises(ValueError):
            ALL_OPS[fn](x, out=as_strided(base, shape=(5, 6), strides=(8, 0)))


@pytest.mark.parametrize("fn", list(ALL_OPS))
def test_read_only_out_raises_value_error(fn: str) -> None:
    x = _data()
    out = np.zeros(_result_shape(fn, x.shape), dtype=_out_dtype(fn, x))
    out.flags.writeable = False
    with pytest.raises(ValueError):
        ALL_OPS[fn](x, out=out)
    assert not out.any()
    # a read-only view of a writable array, and a broadcast view
    w = np.zeros(_result_shape(fn, x.shape), dtype=_out_dtype(fn, x))
    v = w.view()
    v.flags.writeable = False
    with pytest.raises(ValueError):
        ALL_OPS[fn](x, out=v)
    assert not w.any()


@pytest.mark.parametrize("fn", list(ALL_OPS))
def test_out_of_wrong_shape_dtype_or_type(fn: str) -> None:
    x = _data((6, 7))
    shape = _result_shape(fn, x.shape)
    dt = _out_dtype(fn, x)
    bad_shapes = [shape[::-1], (*shape, 1), (1, *shape), (), (42,)]
    if fn in ("logsumexp", "argmax"):
        bad_shapes.append((6, 1))  # the keepdims shape without keepdims
    for s in bad_shapes:
        if s == shape:
            continue
        out = np.zeros(s, dt)
        with pytest.raises(ValueError):
            ALL_OPS[fn](x, out=out)
        assert not out.any(), s
    wrong_dtypes = (
        [np.float64, np.int32, np.uint64, np.float32]
        if fn == "argmax"
        else [np.float32, np.float16, np.int64, np.complex128, np.intp]
    )
    for wdt in wrong_dtypes:
        if np.dtype(wdt) == np.dtype(dt):
            continue
        out = np.zeros(shape, wdt)
        with pytest.raises(TypeError):
            ALL_OPS[fn](x, out=out)
        assert not out.any(), wdt
    zeros = np.zeros(shape, dt)
    bads: list[Any] = [zeros.tolist(), tuple(zeros.tolist()), zeros.data, 0.0, "out"]
    for bad in bads:
        with pytest.raises(TypeError):
            ALL_OPS[fn](x, out=bad)
    # a byte-swapped out has the right values but not the result dtype: TypeError
    with pytest.raises(TypeError):
        ALL_OPS[fn](x, out=np.zeros(shape, np.dtype(dt).newbyteorder()))


def _reference_result(fn: str, x: Array, **kwargs: Any) -> Any:
    return ALL_OPS[fn](x.copy(), **kwargs)


# Results computed into a differently laid-out out may round differently (another kernel
# path): overlaps are compared within a few eps, far below any corruption.
OVERLAP_RTOL = 4 * 2.0**-52


def _close(got: Array, want: Array) -> None:
    np.testing.assert_allclose(got, want, rtol=OVERLAP_RTOL, atol=2.0**-60)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("n", [7, 40, 300])
def test_out_overlapping_x_gives_the_right_answer(fn: str, n: int) -> None:
    f = ALL_OPS[fn]
    rng = np.random.default_rng(n)
    # in place
    x = rng.standard_normal((n, n))
    want = f(x.copy())
    assert f(x, out=x) is x
    _close(x, want)
    # out shifted by one element within the same buffer
    buf = rng.standard_normal(n * n + 1)
    x = buf[:-1].reshape(n, n)
    want = f(x.copy())
    out = buf[1:].reshape(n, n)
    f(x, out=out)
    _close(out, want)
    buf = rng.standard_normal(n * n + n)
    x = buf[n:].reshape(n, n)
    want = f(x.copy())
    out = buf[:-n].reshape(n, n)  # one row earlier
    f(x, out=out)
    _close(out, want)
    # reversed, transposed (axis 0 and -1), interleaved
    makers: list[Callable[[Array], Array]] = [
        lambda a: a[::-1, ::-1],
        lambda a: a.T,
        lambda a: a[:, ::-1],
    ]
    for make in makers:
        for axis in (-1, 0):
            x = rng.standard_normal((n, n))
            want = f(x.copy(), axis=axis)
            out = make(x)
            f(x, axis=axis, out=out)
            _close(out, want)
    buf = rng.standard_normal((n, 2 * n))
    x = buf[:, ::2]
    want = f(x.copy())
    out = buf[:, 1::2]  # disjoint but interleaved: no overlap, still must be right
    f(x, out=out)
    _close(out, want)
    np.testing.assert_array_equal(buf[:, ::2], x)
    # partial overlap with where / temperature
    x = rng.standard_normal((n, n))
    w = rng.random((n, n)) < 0.7
    t = rng.uniform(0.5, 2, (n, 1))
    want = f(x.copy(), where=w, temperature=t)
    f(x, out=x, where=w, temperature=t)
    _close(x, want)


def test_reductions_with_out_overlapping_x() -> None:
    rng = np.random.default_rng(1)
    for n in (7, 300):
        x = rng.standard_normal((n, n))
        want = sr.logsumexp(x.copy())
        out = x[:, 0]  # the first column of x itself
        sr.logsumexp(x, out=out)
        np.testing.assert_array_equal(out, want)
        x = rng.standard_normal((n, n))
        want = sr.logsumexp(x.copy(), axis=0)
        out = x[n // 2]  # a row of x
        sr.logsumexp(x, axis=0, out=out)
        np.testing.assert_array_equal(out, want)
        xi = rng.integers(-1000, 1000, (n, n)).astype(np.intp)
        want_i = np.argmax(xi, axis=-1)
        outi = xi[:, 1]
        sr.argmax(xi, out=outi)
        np.testing.assert_array_equal(outi, want_i)


# --------------------------------------------------------------------------------------
# where / temperature / empty_rows / axis


@pytest.mark.parametrize("fn", SOFTMAX_FAMILY)
def test_where_of_wrong_shape_raises_value_error(fn: str) -> None:
    x = _data((6, 7))
    for w in (
        [True, False],
        [[True] * 7] * 5,
        np.ones((7, 6), bool),
        np.ones((6, 7, 2), bool),
        np.ones((6, 8), bool),
    ):
        with pytest.raises(ValueError):
            ALL_OPS[fn](x, where=w)
    bad_types: list[Any] = [np.ones((6, 7)), "yes", np.ones((6, 7), complex)]
    for bw in bad_types:
        with pytest.raises((TypeError, ValueError)):
            ALL_OPS[fn](x, where=bw)


@pytest.mark.parametrize("fn", SOFTMAX_FAMILY)
def test_bad_temperature_raises_value_error(fn: str) -> None:
    x = _data((6, 7))
    scalars: list[Any] = [0.0, -0.0, -1.0, np.nan, np.inf, -np.inf, "hot", 1j, [1.0, 2.0]]
    for t in [*scalars, [[1.0] * 7] * 6]:
        with pytest.raises(ValueError):
            ALL_OPS[fn](x, temperature=t)
    for ta in (
        np.array([1.0, 2.0, 0.0, 1.0, 1.0, 1.0]),
        np.array([1.0, 2.0, -3.0, 1.0, 1.0, 1.0]),
        np.array([1.0, np.nan, 1.0, 1.0, 1.0, 1.0]),
        np.array([1.0, np.inf, 1.0, 1.0, 1.0, 1.0]),
        np.ones(7),
        np.ones((7, 1)),
        np.ones((6, 2)),
    ):
        with pytest.raises(ValueError):
            ALL_OPS[fn](x, temperature=ta)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_bad_empty_rows(fn: str) -> None:
    x = _data()
    for bad in ("bad", "", "NaN", "Zero", "none", "zero ", "nan\0"):
        with pytest.raises(ValueError):
            ALL_OPS[fn](x, empty_rows=bad)
    for bad_type in (1, b"nan", 0.0, ["nan"]):
        with pytest.raises((TypeError, ValueError)):
            ALL_OPS[fn](x, empty_rows=bad_type)


@pytest.mark.parametrize("fn", list(ALL_OPS))
def test_bad_axis_raises_axis_error(fn: str) -> None:
    x = _data((3, 4, 5))
    axis: Any
    for axis in (3, -4, 100, -(2**62), 2**62):
        with pytest.raises(AxisError):
            ALL_OPS[fn](x, axis=axis)
    if fn != "argmax":
        for axis in ((0, 0), (1, -2), (0, 1, 0), (0, 3), (-4,), (2, 5)):
            with pytest.raises(AxisError):
                ALL_OPS[fn](x, axis=axis)
    else:
        with pytest.raises(TypeError):
            ALL_OPS[fn](x, axis=(0, 1))
    bad_axes: list[Any] = [1.0, "0", [0]]
    for axis in bad_axes:
        with pytest.raises(TypeError):
            ALL_OPS[fn](x, axis=axis)
    # AxisError is also a ValueError and an IndexError, as in NumPy
    with pytest.raises(ValueError):
        ALL_OPS[fn](x, axis=7)
    with pytest.raises(IndexError):
        ALL_OPS[fn](x, axis=7)


def test_argmax_of_an_empty_axis_raises_value_error() -> None:
    for shape, axis in (((3, 0), -1), ((0, 3), 0), ((0,), None), ((2, 0, 2), 1)):
        with pytest.raises(ValueError):
            sr.argmax(np.zeros(shape), axis=axis)


def test_errors_leave_the_module_usable_and_inputs_intact() -> None:
    """After a burst of failing calls the results are unchanged and inputs untouched."""
    x = _data((64, 100))
    before = x.tobytes()
    want = {fn: ALL_OPS[fn](x) for fn in ALL_OPS}
    calls: list[Callable[[], Any]] = [
        lambda: sr.softmax(x, axis=5),
        lambda: sr.softmax(x, out=np.zeros((2, 2))),
        lambda: sr.logsumexp(x, temperature=-1),
        lambda: sr.log_softmax(x, where=np.ones(3, bool)),
        lambda: ALL_OPS["argmax"](x, out=np.zeros(64)),
        lambda: sr.softmax(x.astype(complex)),
        lambda: ALL_OPS["log_softmax"](x, empty_rows="x"),
    ]
    for _ in range(200):
        for c in calls:
            with pytest.raises((TypeError, ValueError)):
                c()
    assert x.tobytes() == before
    for fn, w in want.items():
        np.testing.assert_array_equal(ALL_OPS[fn](x), w)
