"""pytest-benchmark suite: one group per (op, shape, axis, dtype, threads).

In each group sit softmax_rs (fresh result and preallocated ``out=``), the NumPy
``reference``, a tuned NumPy variant with preallocated buffers (``numpy-out``), SciPy,
PyTorch / JAX where importable, and for softmax and log_softmax ``np.copyto`` of the input
(the memory-bandwidth yardstick, ``_bench.COPY``), so ``--benchmark-group-by=group`` shows
them side by side::

    pytest benches/bench_softmax.py --benchmark-group-by=group --benchmark-sort=mean
    pytest benches/bench_softmax.py --benchmark-disable     # smoke run, small shapes

The implementations are the ones ``python -m softmax_rs bench`` measures
(``softmax_rs._bench.make_impls``). No timing is asserted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from softmax_rs import _bench

Array = npt.NDArray[Any]

SHAPES: list[tuple[tuple[int, ...], int]] = list(_bench.FULL_SHAPES)
QUICK_SHAPES: list[tuple[tuple[int, ...], int]] = [
    ((1, 10), -1),
    ((1, 1000), -1),
    ((64, 1000), -1),
    ((256, 256), 0),
]
OPS = _bench.OPS
DTYPES = _bench.DTYPES
PEERS = _bench.available_peers(_bench.PEERS)
IMPLS = ("softmax_rs", "softmax_rs-alloc", "reference", *PEERS, _bench.COPY)
ALL_THREADS = int(sr.get_num_threads())
THREADS = (1, ALL_THREADS) if ALL_THREADS > 1 else (1,)


def quick_mode(config: pytest.Config) -> bool:
    """Small shapes only: with --bench-quick, or a --benchmark-disable smoke run."""
    if config.getoption("--bench-full", default=False):
        return False
    disabled = bool(config.getoption("benchmark_disable", default=False))
    return bool(config.getoption("--bench-quick", default=False)) or disabled


def _shape_id(shape: tuple[int, ...], axis: int) -> str:
    return "x".join(map(str, shape)) + ("" if axis == -1 else f"-axis{axis}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    shapes = QUICK_SHAPES if quick_mode(metafunc.config) else SHAPES
    params = []
    # Shape and dtype outermost, so each input is generated once.
    for shape, axis in shapes:
        for dtype in DTYPES:
            for op in OPS:
                for threads in THREADS:
                    for impl in IMPLS:
                        if op == "argmax" and impl in ("numpy-out", "scipy"):
                            continue  # np.argmax is the reference; SciPy has none
                        if impl == _bench.COPY and op not in _bench.COPY_OPS:
                            continue  # a copy moves softmax's bytes, not a reduction's
                        case = (op, shape, axis, dtype, threads, impl)
                        ident = f"{op}-{_shape_id(shape, axis)}-{dtype}-{threads}T-{impl}"
                        params.append(pytest.param(case, id=ident))
    metafunc.parametrize("case", params)


@functools.lru_cache(maxsize=1)
def _input(shape: tuple[int, ...], dtype: str) -> Array:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32) * np.float32(4.0)
    return x.astype(dtype, copy=False)


def test_bench(
    benchmark: Any,
    case: tuple[str, tuple[int, ...], int, str, int, str],
) -> None:
    op, shape, axis, dtype, threads, impl = case
    x = _input(shape, dtype)
    benchmark.group = f"{op} {_shape_id(shape, axis)} {dtype} {threads}T"
    benchmark.extra_info.update(
        {"op": op, "shape": list(shape), "axis": axis, "dtype": dtype, "threads": threads}
    )
    if impl == "softmax_rs-alloc":
        fn: Callable[..., Any] = getattr(sr, op)
        call: Callable[[], object] = functools.partial(fn, x, axis)
        check = call
    else:
        name = "softmax_rs" if impl == "softmax_rs" else impl
        impls = _bench.make_impls(op, x, axis, [p for p in PEERS if p == name])
        call, check = impls[name]
    want = np.asarray(getattr(sr.reference, op)(x, axis))
    # Every implementation on the same cores (JAX's pool cannot be sized): see _bench.
    with _bench.at_threads(threads):
        got = np.asarray(check())  # warm-up (JIT compile) and a sanity check
        assert got.shape == want.shape
        benchmark(call)
