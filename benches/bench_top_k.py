"""top_k against NumPy's argpartition + sort, side by side (one group per k).

pytest benches/bench_top_k.py --benchmark-group-by=group
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr

Array = npt.NDArray[Any]
X = np.random.default_rng(5).standard_normal((64, 32000)).astype(np.float32)


def numpy_top_k(a: Array, k: int) -> Array:
    """The usual NumPy recipe: argpartition, then sort the k winners."""
    part = np.argpartition(a, -k, axis=-1)[:, -k:]
    vals = np.take_along_axis(a, part, axis=-1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    return np.take_along_axis(part, order, axis=-1)


@pytest.mark.parametrize("k", [1, 16, 64])
@pytest.mark.parametrize("impl", ["softmax_rs", "numpy"])
def test_top_k(benchmark: Any, impl: str, k: int) -> None:
    benchmark.group = f"top_k (64, 32000) float32 k={k}"
    with sr.threads(1):
        if impl == "softmax_rs":
            _, idx = benchmark(sr.top_k, X, k)
        else:
            idx = benchmark(numpy_top_k, X, k)
    # Both must find the same winners (no ties in random normals).
    np.testing.assert_array_equal(idx, numpy_top_k(X, k))
