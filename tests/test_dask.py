"""softmax_rs.dask against the in-memory core, on the local schedulers and a real cluster."""

from __future__ import annotations

import itertools
import logging
import resource
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
import softmax_rs.dask as sd  # noqa: E402 - only once dask is known to be importable

Array = npt.NDArray[Any]
SOFTMAX_FAMILY = ("softmax", "log_softmax", "logsumexp")


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def tolerances(dtype: np.dtype[Any]) -> dict[str, float]:
    """Merging partials reorders the sums: allow a few eps (relative and near 0)."""
    if dtype == np.float64 or dtype.kind in "biu":
        return {"rtol": 1e-12, "atol": 1e-13}
    if dtype == np.float32:
        return {"rtol": 2e-6, "atol": 2e-6}
    return {"rtol": 1e-2, "atol": 1e-2}  # float16/bfloat16 results


def expected(op: str, x: Array, axis: Any, **kw: Any) -> Array:
    return np.asarray(getattr(sr, op)(x, axis=axis, **kw))


def check(result: Any, want: Array, *, exact: bool = False) -> None:
    got = np.asarray(result)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        tol = tolerances(want.dtype)
        np.testing.assert_allclose(
            got.astype(np.float64),
            want.astype(np.float64),
            rtol=tol["rtol"],
            atol=tol["atol"],
            equal_nan=True,
        )


def run_op(op: str, d: Any, axis: Any, **kw: Any) -> Any:
    fn: Callable[..., Any] = getattr(sd, op)
    return fn(d, axis=axis, **kw)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A real cluster: two worker processes, one thread each (started once). Its dashboard
    takes a free local port: with None it took 8787, and where that was in use (a second
    test run, a user's cluster) distributed's warning failed every test here."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="2GiB",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    )
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def compute(arr: Any, scheduler: str, client: Any | None = None) -> Array:
    if scheduler == "distributed":
        assert client is not None
        return np.asarray(client.compute(arr).result())
    return np.asarray(arr.compute(scheduler=scheduler))


RNG = np.random.default_rng(20240607)
X2 = RNG.standard_normal((13, 29)) * 8
X4 = RNG.standard_normal((3, 5, 7, 9)) * 8

CASES_2D = [
    # (chunks, axis): chunked along the axis, across it, both, single block
    ((13, 8), -1),
    ((4, 29), -1),
    ((5, 7), -1),
    ((5, 7), 0),
    ((13, 29), 1),
    ((4, 6), None),
    ((4, 6), (0, 1)),
    (((2, 0, 11), (10, 0, 19)), -1),  # zero-length chunks
]
CASES_4D = [
    ((2, 3, 4, 5), -1),
    ((2, 3, 4, 5), 0),
    ((3, 2, 7, 4), (1, 3)),
    ((1, 5, 3, 9), (0, 2)),
    ((2, 2, 2, 2), None),
    ((3, 5, 7, 2), (-1, -3)),
]


# --------------------------------------------------------------------------------------
# Values against the in-memory core
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", SOFTMAX_FAMILY)
@pytest.mark.parametrize(("chunks", "axis"), CASES_2D)
def test_family_2d(op: str, chunks: Any, axis: Any) -> None:
    d = da.from_array(X2, chunks=chunks)
    check(compute(run_op(op, d, axis), "threads"), expected(op, X2, axis))


@pytest.mark.parametrize("op", SOFTMAX_FAMILY)
@pytest.mark.parametrize(("chunks", "axis"), CASES_4D)
def test_family_4d(op: str, chunks: Any, axis: Any) -> None:
    d = da.from_array(X4, chunks=chunks)
    check(compute(run_op(op, d, axis), "sync"), expected(op, X4, axis))


@pytest.mark.parametrize("axis", [-1, 0, (0, 2), None])
def test_logsumexp_keepdims(axis: Any) -> None:
    d = da.from_array(X4, chunks=(2, 2, 3, 4))
    got = compute(sd.logsumexp(d, axis=axis, keepdims=True), "threads")
    check(got, expected("logsumexp", X4, axis, keepdims=True))


@pytest.mark.parametrize(
    "dtype", ["float16", "float32", "float64", "int32", "uint8", "bool", "bfloat16"]
)
@pytest.mark.parametrize("op", SOFTMAX_FAMILY)
def test_family_dtypes(op: str, dtype: str) -> None:
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        dt = np.dtype(ml_dtypes.bfloat16)
    else:
        dt = np.dtype(dtype)
    if dt.kind in "biu":
        x = RNG.integers(0, 10, (6, 40)).astype(dt)
    else:
        x = (RNG.standard_normal((6, 40)) * 4).astype(dt)
    d = da.from_array(x, chunks=(4, 16))
    lazy = run_op(op, d, -1)
    want = expected(op, x, -1)
    assert lazy.dtype == want.dtype
    check(compute(lazy, "threads"), want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_argument(dtype: str) -> None:
    x = RNG.standard_normal((5, 33)).astype(np.float32)
    d = da.from_array(x, chunks=(5, 10))
    got = compute(sd.softmax(d, dtype=dtype), "sync")
    check(got, expected("softmax", x, -1, dtype=np.dtype(dtype)))


@pytest.mark.parametrize("op", SOFTMAX_FAMILY)
@pytest.mark.parametrize("temperature", [0.25, 3.0])
def test_temperature(op: str, temperature: float) -> None:
    d = da.from_array(X2, chunks=(5, 7))
    got = compute(run_op(op, d, -1, temperature=temperature), "threads")
    check(got, expected(op, X2, -1, temperature=temperature))


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_temperature(temperature: float) -> None:
    with pytest.raises(ValueError, match="temperature"):
        sd.softmax(da.ones((2, 3)), temperature=temperature)


def special_rows() -> Array:
    inf, nan = np.inf, np.nan
    rows = np.array(
        [
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            [nan, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],  # NaN in the first chunk
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, nan],  # NaN in the last chunk
            [1.0, inf, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],  # one +inf
            [1.0, inf, 3.0, 4.0, 5.0, inf, inf, 8.0],  # +inf in two chunks: 1/3 each
            [inf, inf, inf, inf, inf, inf, inf, inf],
            [-inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],  # no mass
            [-inf, -inf, -inf, -inf, 1.0, 2.0, -inf, -inf],  # whole -inf chunks
            [-inf, -inf, -inf, -inf, -inf, -inf, -inf, 0.5],
            [nan, inf, -inf, 1.0, inf, -inf, nan, 2.0],
            [inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
            [-1e30, 1e30, -1e30, 1e30, 0.0, 0.0, 0.0, 1e30],  # huge, finite
        ]
    )
    return rows


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", SOFTMAX_FAMILY)
@pytest.mark.parametrize("chunks", [(12, 8), (3, 2), (5, 3), (12, 1)])
def test_special_values(op: str, dtype: str, chunks: tuple[int, int]) -> None:
    x = special_rows().astype(dtype)
    d = da.from_array(x, chunks=chunks)
    with np.errstate(all="ignore"):
        want = expected(op, x, -1)
    check(compute(run_op(op, d, -1), "threads"), want)
    # Along axis 0 too: the special rows become special columns.
    with np.errstate(all="ignore"):
        want0 = expected(op, x.T, 0)
    d0 = da.from_array(np.ascontiguousarray(x.T), chunks=chunks[::-1])
    check(compute(run_op(op, d0, 0), "sync"), want0)


def test_zero_length_axis() -> None:
    x = np.zeros((3, 0))
    d = da.from_array(x, chunks=(2, 1))
    for op in ("softmax", "log_softmax"):
        got = compute(run_op(op, d, -1), "sync")
        assert got.shape == (3, 0)
    np.testing.assert_array_equal(compute(sd.logsumexp(d), "sync"), np.full(3, -np.inf))


@pytest.mark.parametrize("op", SOFTMAX_FAMILY)
def test_scalar_and_empty_axis_tuple(op: str) -> None:
    scalar = np.float64(3.0)
    for axis in (None, ()):
        got = compute(run_op(op, da.asarray(scalar), axis), "sync")
        check(got, expected(op, np.asarray(scalar), axis))
    with pytest.raises(np.exceptions.AxisError):
        run_op(op, da.asarray(scalar), -1)
    # axis=(): every entry is its own distribution.
    d = da.from_array(X2, chunks=(5, 7))
    check(compute(run_op(op, d, ()), "sync"), expected(op, X2, ()))


def test_numpy_input_accepted() -> None:
    got = sd.softmax(X2, axis=0)
    assert isinstance(got, da.Array)
    check(compute(got, "sync"), expected("softmax", X2, 0))


def test_errors() -> None:
    d = da.ones((2, 3), chunks=(1, 2))
    with pytest.raises(np.exceptions.AxisError):
        sd.softmax(d, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        sd.logsumexp(d, axis=(0, -3))
    with pytest.raises(ValueError):
        sd.softmax(d, axis=(0, 0))
    with pytest.raises(TypeError):
        sd.softmax(da.ones((2, 3), dtype=complex))
    with pytest.raises(TypeError):
        sd.softmax(d, dtype=np.int32)
    unknown = d[d[:, 0] > 0]  # unknown chunk sizes
    with pytest.raises(ValueError, match="chunk"):
        sd.softmax(unknown)


def test_split_every_deep_tree() -> None:
    # Many chunks along the axis, fan-in 2: several levels of combine.
    x = RNG.standard_normal((4, 301)) * 20
    d = da.from_array(x, chunks=(2, 9))
    for op in SOFTMAX_FAMILY:
        check(compute(run_op(op, d, -1, split_every=2), "threads"), expected(op, x, -1))


@st.composite
def chunked_rows(draw: st.DrawFn) -> tuple[Array, tuple[tuple[int, ...], ...], int]:
    """A small 2-D array with special values and random (possibly empty) chunks."""
    rows = draw(st.integers(1, 5))
    cols = draw(st.integers(1, 12))
    pool = [np.nan, np.inf, -np.inf, 0.0, 1.0, -3.5, 700.0, -700.0, 1e-300]
    values = draw(
        st.lists(
            st.one_of(st.sampled_from(pool), st.floats(-50, 50)),
            min_size=rows * cols,
            max_size=rows * cols,
        )
    )
    x = np.array(values, dtype=np.float64).reshape(rows, cols)

    def split(n: int) -> tuple[int, ...]:
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
        edges = [0, *cuts, n]
        return tuple(b - a for a, b in itertools.pairwise(edges))

    return x, (split(rows), split(cols)), draw(st.sampled_from([-1, 0]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=chunked_rows(), op=st.sampled_from([*SOFTMAX_FAMILY, "argmax"]))
def test_merge_property(case: tuple[Array, Any, int], op: str) -> None:
    """Any chunking (empty chunks included) gives the in-memory result."""
    x, chunks, axis = case
    d = da.from_array(x, chunks=chunks)
    with np.errstate(all="ignore"):
        got = compute(run_op(op, d, axis), "sync")
        if op == "argmax":
            check(got, np.asarray(np.argmax(x, axis=axis)), exact=True)
        else:
            check(got, expected(op, x, axis))


# --------------------------------------------------------------------------------------
# argmax
# --------------------------------------------------------------------------------------


def argmax_inputs() -> list[Any]:
    rng = np.random.default_rng(7)
    ties = rng.integers(0, 3, (9, 14)).astype(np.int64)  # many ties across chunks
    f = rng.integers(0, 4, (9, 14)).astype(np.float64)
    f[rng.random(f.shape) < 0.08] = np.nan  # NaNs in several chunks of a row
    f[2, :] = -np.inf
    f[3, :] = np.inf
    f[4, 5] = np.inf
    f[4, 11] = np.nan
    return [
        pytest.param(ties, id="int64"),
        pytest.param(ties.astype(np.uint8), id="uint8"),
        pytest.param(ties > 1, id="bool"),
        pytest.param(f, id="float64"),
        pytest.param(f.astype(np.float32), id="float32"),
        pytest.param(f.astype(np.float16), id="float16"),
        pytest.param(np.full((9, 14), np.iinfo(np.int8).min, np.int8), id="int8-min"),
    ]


@pytest.mark.parametrize("x", argmax_inputs())
@pytest.mark.parametrize("chunks", [(4, 5), (9, 3), (2, 14), ((3, 0, 6), (5, 0, 9))])
@pytest.mark.parametrize("axis", [-1, 0, None])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax(x: Array, chunks: Any, axis: Any, keepdims: bool) -> None:
    d = da.from_array(x, chunks=chunks)
    lazy = sd.argmax(d, axis=axis, keepdims=keepdims)
    want = np.argmax(x, axis=axis, keepdims=keepdims)
    assert lazy.dtype == np.intp
    got = compute(lazy, "threads")
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, sr.argmax(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("axis", [0, 1, 2, -1, None])
def test_argmax_4d(axis: Any) -> None:
    x = np.random.default_rng(3).integers(0, 5, (3, 5, 7, 9)).astype(np.float32)
    d = da.from_array(x, chunks=(2, 3, 4, 5))
    np.testing.assert_array_equal(
        compute(sd.argmax(d, axis=axis, split_every=2), "sync"),
        np.argmax(x, axis=axis),
    )


def test_argmax_bfloat16() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.random.default_rng(4).integers(0, 4, (6, 20)).astype(ml_dtypes.bfloat16)
    d = da.from_array(x, chunks=(4, 7))
    for axis in (-1, 0, None):
        np.testing.assert_array_equal(
            compute(sd.argmax(d, axis=axis), "sync"), sr.argmax(x, axis=axis)
        )


def test_argmax_scalar() -> None:
    scalar = da.asarray(np.float32(2.5))
    assert compute(sd.argmax(scalar, axis=None), "sync").shape == ()
    assert int(compute(sd.argmax(scalar, axis=None, keepdims=True), "sync")) == 0
    with pytest.raises(np.exceptions.AxisError):
        sd.argmax(scalar, axis=0)


def test_argmax_errors() -> None:
    with pytest.raises(ValueError):
        sd.argmax(da.ones((3, 0)), axis=1)
    with pytest.raises(ValueError):
        sd.argmax(da.ones((0, 3)), axis=None)
    assert compute(sd.argmax(da.ones((0, 3)), axis=1), "sync").shape == (0,)
    with pytest.raises(TypeError):
        sd.argmax(da.ones((3, 3)), axis=(0, 1))  # type: ignore[arg-type]
    with pytest.raises(np.exceptions.AxisError):
        sd.argmax(da.ones((3, 3)), axis=2)


# --------------------------------------------------------------------------------------
# Graph shape and laziness
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [*SOFTMAX_FAMILY, "argmax"])
def test_graph_size_linear_in_chunks(op: str) -> None:
    sizes = []
    for n in (2, 8, 32):
        d = da.ones((8 * n, 8 * n), chunks=(8, 8))  # n * n blocks
        nblocks = n * n
        lazy = run_op(op, d, -1)
        ntasks = len(dict(lazy.__dask_graph__()))
        assert ntasks <= 4 * nblocks + 16, (n, ntasks)
        sizes.append(ntasks / nblocks)
    # O(chunks): tasks per block do not grow with the number of blocks.
    assert sizes[-1] <= sizes[0] + 0.5


def test_lazy_and_two_reads() -> None:
    calls: list[tuple[int, ...]] = []

    def make(block_id: tuple[int, ...] | None = None) -> Array:
        assert block_id is not None
        calls.append(block_id)
        rng = np.random.default_rng(sum(block_id))
        return rng.standard_normal((4, 5))

    d = da.map_blocks(make, chunks=((4,) * 3, (5,) * 4), meta=np.empty((0, 0)))
    lazy = sd.softmax(d, axis=-1)
    assert calls == []  # building the graph computes nothing
    out = compute(lazy, "sync")
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-12)
    assert len(calls) == 12  # each block produced once, read by both passes


# --------------------------------------------------------------------------------------
# A real dask.distributed cluster
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [*SOFTMAX_FAMILY, "argmax"])
@pytest.mark.parametrize(
    ("x", "chunks", "axis"),
    [
        (X2, (5, 7), -1),
        (X2, (13, 6), -1),
        (X2, (4, 29), 0),
        (X4, (2, 3, 4, 5), (1, 3)),
        (X4, (2, 3, 4, 5), None),
    ],
    ids=["2d-both", "2d-along", "2d-axis0", "4d-tuple", "4d-all"],
)
def test_distributed(client: Any, op: str, x: Array, chunks: Any, axis: Any) -> None:
    if op == "argmax" and isinstance(axis, tuple):
        axis = axis[-1]
    d = da.from_array(x, chunks=chunks)
    got = compute(run_op(op, d, axis), "distributed", client)
    if op == "argmax":
        check(got, np.asarray(np.argmax(x, axis=axis)), exact=True)
    else:
        check(got, expected(op, x, axis))


def test_distributed_special_values(client: Any) -> None:
    x = special_rows()
    d = da.from_array(x, chunks=(5, 3))
    with np.errstate(all="ignore"):
        for op in SOFTMAX_FAMILY:
            check(compute(run_op(op, d, -1), "distributed", client), expected(op, x, -1))
    np.testing.assert_array_equal(
        compute(sd.argmax(d, axis=None), "distributed", client), np.argmax(x)
    )


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)


@pytest.mark.skipif(sys.platform == "win32", reason="resource module")
def test_distributed_4gib_bounded_memory(client: Any) -> None:
    """logsumexp of a lazily generated 4 GiB float32 array, 64 MiB chunks, two chunks
    along the axis: every worker's peak RSS stays far below the array's size."""
    rows, cols = 16384, 65536  # 2**30 float32 = 4 GiB
    x = da.random.default_rng(42).random((rows, cols), dtype=np.float32, chunks=(512, 32768))
    assert x.nbytes == 4 * 2**30
    assert x.numblocks == (32, 2)
    lse = sd.logsumexp(x, axis=1)
    got = client.compute(lse).result()
    assert got.shape == (rows,)
    assert got.dtype == np.float32
    # U(0, 1) rows: logsumexp ~ log(n) + log(e - 1).
    np.testing.assert_allclose(got, np.log(cols) + np.log(np.expm1(1.0)), atol=0.02)
    # Exact rows, recomputed in memory from the same lazily generated blocks.
    head = np.asarray(client.compute(x[:3]).result())
    check(got[:3], np.asarray(sr.logsumexp(head, axis=1)))
    peaks = client.run(_peak_rss_bytes)
    assert len(peaks) == 2
    for peak in peaks.values():
        # Observed: ~150 MiB (interpreter + a few 64 MiB blocks) against a 4 GiB array.
        assert peak < 512 * 2**20, f"worker peak RSS {peak / 2**20:.0f} MiB"
