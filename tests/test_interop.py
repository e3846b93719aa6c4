"""Array interop: anything numpy.asarray accepts, and DLPack-only producers.

Each input kind must give exactly the ndarray result, and be read where it lies (no copy
of the input) wherever the producer exposes its buffer.
"""

from __future__ import annotations

import array
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import ALL_OPS

Array = npt.NDArray[Any]


def data(shape: tuple[int, ...] = (6, 50), dtype: Any = np.float32) -> Array:
    return (np.random.default_rng(11).standard_normal(shape) * 5).astype(dtype)


class ArrayLike:
    """Only ``__array__`` (the NumPy 2 signature)."""

    def __init__(self, a: Array) -> None:
        self._a = a
        self.calls = 0

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Array:
        self.calls += 1
        if dtype is not None and np.dtype(dtype) != self._a.dtype:
            if copy is False:
                raise ValueError("a copy would be needed")
            return self._a.astype(dtype)
        return self._a.copy() if copy else self._a


class DLPackOnly:
    """Only ``__dlpack__`` / ``__dlpack_device__``, delegating to a producer.

    ``numpy.asarray`` would make a 0-d object array of it: the core must go through
    ``numpy.from_dlpack``.
    """

    def __init__(self, a: Any) -> None:
        self._a = a
        self.calls: list[dict[str, Any]] = []

    def __dlpack__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        device: tuple[int, int] = self._a.__dlpack_device__()
        return device


def result_out(op: str, x: Array) -> Array:
    """A preallocated ``out`` for ``op`` on ``x``."""
    like = ALL_OPS[op](x)
    return np.empty_like(np.asarray(like))


def peak_traced_bytes(fn: Callable[[], object]) -> int:
    """Peak of the memory NumPy (and Python) allocate while ``fn`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


def assert_same(got: Any, want: Any) -> None:
    got_a = np.asarray(got)
    want_a = np.asarray(want)
    assert got_a.dtype == want_a.dtype
    assert got_a.shape == want_a.shape
    np.testing.assert_array_equal(got_a, want_a)


# --------------------------------------------------------------------------------------
# Python-level producers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
def test_list_and_tuple(op: str) -> None:
    x = data((3, 7), np.float64)
    assert_same(ALL_OPS[op](x.tolist()), ALL_OPS[op](x))
    assert_same(ALL_OPS[op](tuple(map(tuple, x.tolist()))), ALL_OPS[op](x))


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_memoryview(op: str, dtype: Any) -> None:
    x = data(dtype=dtype)
    assert isinstance(x.data, memoryview)
    assert_same(ALL_OPS[op](x.data), ALL_OPS[op](x))


@pytest.mark.parametrize("op", ALL_OPS)
def test_array_module_buffer(op: str) -> None:
    values = data((40,), np.float64)
    buf = array.array("d", values.tolist())
    assert_same(ALL_OPS[op](buf), ALL_OPS[op](values))
    assert_same(ALL_OPS[op](memoryview(buf)), ALL_OPS[op](values))


@pytest.mark.parametrize("op", ALL_OPS)
def test_dunder_array(op: str) -> None:
    x = data()
    wrapped = ArrayLike(x)
    assert_same(ALL_OPS[op](wrapped), ALL_OPS[op](x))
    assert wrapped.calls >= 1


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dlpack_only(op: str, dtype: Any) -> None:
    x = data(dtype=dtype)
    wrapped = DLPackOnly(x)
    assert not hasattr(wrapped, "__array__")
    assert_same(ALL_OPS[op](wrapped), ALL_OPS[op](x))
    assert wrapped.calls, "the core did not ask for a DLPack capsule"
    # A read-only consumer: it must never demand a copy.
    assert all(c.get("copy") is not True for c in wrapped.calls)


def test_dlpack_only_strided() -> None:
    base = data((8, 60), np.float64)
    view = base[::2, ::-3]  # DLPack carries strides, negative ones included
    assert_same(sr.softmax(DLPackOnly(view)), sr.softmax(view))
    assert_same(sr.argmax(DLPackOnly(view), axis=0), np.argmax(view, axis=0))


def test_dlpack_only_out_in_place() -> None:
    """``out`` may be the producer's own buffer (in place through DLPack)."""
    x = data((5, 33), np.float64)
    want = sr.softmax(x.copy())
    wrapped = DLPackOnly(x)
    got = sr.softmax(wrapped, out=x)
    assert got is x
    np.testing.assert_allclose(x, want, rtol=1e-15, atol=0)


# --------------------------------------------------------------------------------------
# No copy of the input (the out= path allocates nothing input-sized)
# --------------------------------------------------------------------------------------

BIG = (512, 2048)  # 8 MiB in float64


def producers() -> list[Any]:
    return [
        pytest.param(lambda a: a, id="ndarray"),
        pytest.param(lambda a: a.data, id="memoryview"),
        pytest.param(ArrayLike, id="__array__"),
        pytest.param(DLPackOnly, id="__dlpack__"),
    ]


@pytest.mark.parametrize("make", producers())
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp", "argmax"])
def test_no_input_copy(make: Callable[[Array], Any], op: str) -> None:
    x = data(BIG, np.float64)
    wrapped = make(x)
    out = result_out(op, x)
    fn = ALL_OPS[op]
    fn(wrapped, out=out)  # warm up (first-call allocations, caches)
    peak = peak_traced_bytes(lambda: fn(wrapped, out=out))
    assert peak < x.nbytes // 4, f"{peak} bytes allocated for a {x.nbytes}-byte input"
    assert_same(out, fn(x))


def test_out_shares_memory_with_producer_buffer() -> None:
    """``out=`` given as a view of a producer's buffer is written in place."""
    x = data((4, 25), np.float64)
    target = np.zeros((8, 25))
    out = target[::2]
    got = sr.log_softmax(x.data, out=out)
    assert got is out
    assert np.shares_memory(got, target)
    # A strided out= may take another kernel path: equal within a few ulps.
    np.testing.assert_allclose(target[::2], sr.log_softmax(x), rtol=4e-16, atol=0)
    assert not target[1::2].any()


# --------------------------------------------------------------------------------------
# Third-party producers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_cpu_tensor(op: str, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    x = data(dtype=dtype)
    t = torch.from_numpy(x.copy())
    assert_same(ALL_OPS[op](t), ALL_OPS[op](x))
    # Non-contiguous tensor views are read through their strides.
    assert_same(ALL_OPS[op](t.T), ALL_OPS[op](x.T))
    # out= as a NumPy view of a torch tensor: the tensor holds the result.
    res = torch.from_numpy(result_out(op, x))
    got = ALL_OPS[op](t, out=res.numpy())
    assert np.shares_memory(got, res.numpy())
    assert_same(res.numpy(), ALL_OPS[op](x))


def test_torch_no_input_copy() -> None:
    torch = pytest.importorskip("torch")
    x = data(BIG, np.float64)
    t = torch.from_numpy(x)
    out = np.empty_like(x)
    sr.softmax(t, out=out)
    peak = peak_traced_bytes(lambda: sr.softmax(t, out=out))
    assert peak < x.nbytes // 4
    assert_same(out, sr.softmax(x))


def test_torch_bfloat16_and_float16() -> None:
    torch = pytest.importorskip("torch")
    x = data((4, 30), np.float32)
    t16 = torch.from_numpy(x).to(torch.float16)
    assert_same(sr.softmax(t16), sr.softmax(t16.numpy()))
    assert_same(sr.argmax(t16, axis=0), np.argmax(t16.numpy(), axis=0))


@pytest.mark.parametrize("op", ALL_OPS)
def test_jax_cpu_array(op: str) -> None:
    jnp = pytest.importorskip("jax.numpy")
    x = data(dtype=np.float32)
    j = jnp.asarray(x)
    assert_same(ALL_OPS[op](j), ALL_OPS[op](x))
    # JAX materializes the transpose: compare with the same (contiguous) layout.
    assert_same(ALL_OPS[op](j.T), ALL_OPS[op](np.ascontiguousarray(x.T)))


def test_jax_zero_copy_where_producer_allows() -> None:
    jax = pytest.importorskip("jax")
    x = data(BIG, np.float32)
    j = jax.device_put(x)
    view = np.asarray(j)
    if view.ctypes.data != j.unsafe_buffer_pointer():
        pytest.skip("this JAX build copies on export")
    out = np.empty_like(x)
    sr.softmax(j, out=out)
    peak = peak_traced_bytes(lambda: sr.softmax(j, out=out))
    assert peak < x.nbytes // 4
    assert_same(out, sr.softmax(x))


def test_jax_dlpack() -> None:
    jax = pytest.importorskip("jax")
    x = data(dtype=np.float32)
    j = jax.device_put(x)
    wrapped = DLPackOnly(j)
    assert_same(sr.softmax(wrapped), sr.softmax(x))
    assert_same(sr.argmax(wrapped, axis=0), np.argmax(x, axis=0))
