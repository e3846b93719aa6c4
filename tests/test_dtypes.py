"""The dtype policy: float32/float64 in their own precision, float16/bfloat16 computed in
float32 and returned in their own dtype, bool and integers to float64, ``dtype=`` picks the
result and compute dtype. Accuracy per dtype against the reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import (
    ALL_DTYPES,
    BFLOAT16,
    FLOAT_DTYPES,
    INT_DTYPES,
    NARROW_DTYPES,
    SOFTMAX_FAMILY,
    Axis,
    Ref,
    cases,
    check_softmax,
    check_softmax_family,
    result_dtype,
)
from hypothesis import given
from hypothesis import strategies as st

Array = npt.NDArray[Any]

EXPECTED_RESULT = {str(d): (d if d in FLOAT_DTYPES else np.dtype(np.float64)) for d in ALL_DTYPES}


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(SOFTMAX_FAMILY))
def test_result_dtype(dtype: np.dtype[Any], name: str) -> None:
    f = SOFTMAX_FAMILY[name]
    x = np.array([[0, 1, 1], [1, 0, 0]]).astype(dtype)
    want = EXPECTED_RESULT[str(dtype)]
    assert f(x).dtype == want
    assert np.asarray(f(x, axis=None)).dtype == want
    for d in (np.float32, np.float64):
        assert f(x, dtype=d).dtype == d
        assert f(x, dtype=np.dtype(d).name).dtype == d


def test_python_inputs_give_float64() -> None:
    assert sr.softmax([1, 2]).dtype == np.float64
    assert sr.softmax([1.0, 2.0]).dtype == np.float64
    assert sr.softmax([True, False]).dtype == np.float64
    assert np.asarray(sr.logsumexp([1, 2])).dtype == np.float64


def test_bool_values() -> None:
    e = np.e
    np.testing.assert_allclose(sr.softmax([True, False]), [e / (1 + e), 1 / (1 + e)], rtol=4e-16)
    np.testing.assert_array_equal(sr.softmax(np.ones((2, 4), bool)), 0.25)


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=str)
def test_integer_extremes(dtype: np.dtype[Any]) -> None:
    """The full range of every integer dtype (converted to float64 once)."""
    info = np.iinfo(dtype)
    x = np.array(
        [
            [info.min, info.max, 0, 1],
            [info.max, info.max - 1, info.max, 0],
            [info.min, info.min, info.min + 1, info.min],
        ],
        dtype=dtype,
    )
    for axis in (-1, 0, None):
        ref = Ref(x, axis)
        check_softmax_family(x, ref, axis=axis)


@given(cases(dtypes=ALL_DTYPES), st.sampled_from([np.float32, np.float64]))
def test_dtype_argument_picks_compute_dtype(case: tuple[Array, Axis], dtype: Any) -> None:
    """dtype= converts the input to it and computes there (so float64 -> float32 rounds the
    input first; float32 -> float64 gains precision)."""
    x, axis = case
    ref = Ref(x, axis, dtype=dtype)
    check_softmax_family(x, ref, axis=axis, dtype=dtype)


def test_dtype_float64_is_more_accurate_than_float32() -> None:
    """dtype=float64 on float32 input really computes in float64."""
    x = np.random.default_rng(0).standard_normal((4, 1000)).astype(np.float32) * 10
    ref = Ref(x, dtype=np.float64)
    got = sr.softmax(x, dtype=np.float64)
    check_softmax(got, ref)
    rel = np.max(np.abs(got - ref.softmax.astype(np.float64)) / ref.softmax.astype(np.float64))
    assert rel < 1e-13
    # and the float32 result differs from it by float32 rounding
    assert np.max(np.abs(sr.softmax(x) - got) / got) > 1e-9


@given(cases(dtypes=NARROW_DTYPES, specials=True))
def test_narrow_dtypes_within_one_ulp(case: tuple[Array, Axis]) -> None:
    """float16 and bfloat16 results within one ulp of the correctly rounded exact value."""
    x, axis = case
    ref = Ref(x, axis)
    check_softmax_family(x, ref, axis=axis)


@pytest.mark.parametrize("dtype", NARROW_DTYPES, ids=str)
@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((3, 5000), -1),
        ((1, 300_000), -1),
        ((5000, 3), 0),
        ((40, 9), -1),
        ((9, 40), 0),
        ((64, 65, 3), (0, 1)),
    ],
)
def test_narrow_dtypes_large(dtype: np.dtype[Any], shape: tuple[int, ...], axis: Axis) -> None:
    """Rows and columns long enough to span several conversion blocks."""
    x = (np.random.default_rng(1).standard_normal(shape) * 8).astype(dtype)
    ref = Ref(x, axis)
    check_softmax_family(x, ref, axis=axis)


@pytest.mark.parametrize("dtype", NARROW_DTYPES, ids=str)
def test_narrow_accumulates_in_float32(dtype: np.dtype[Any]) -> None:
    """A long flat row: summing in the narrow dtype would be far off (each term is below
    half an ulp of the running sum); float32 accumulation gets 1/n right."""
    n = 100_000
    x = np.zeros((1, n), dtype)
    got = sr.softmax(x)
    assert got.dtype == dtype
    want = np.asarray(1.0 / n).astype(dtype)
    np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64))
    lse = sr.logsumexp(x)
    np.testing.assert_allclose(
        lse.astype(np.float64),
        np.log(n),
        rtol=float(np.finfo(np.float16).eps if dtype != BFLOAT16 else 2**-7),
    )


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_result_is_new_and_native(dtype: np.dtype[Any]) -> None:
    x = np.array([[3, 1, 2], [0, 1, 1]]).astype(dtype)
    got = sr.softmax(x.T, axis=0)
    assert got.dtype.isnative
    assert got.dtype == result_dtype(dtype)
    assert not np.shares_memory(got, x)
