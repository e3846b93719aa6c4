"""Threads: the control API, SOFTMAX_RS_NUM_THREADS, bit-identical results for every thread
count, every ISA within the bounds, and the GIL released while kernels run."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import (
    ALL_OPS,
    BFLOAT16,
    THREAD_COUNTS,
    check_op,
    each_config,
    isas,
    run_everywhere,
    using_isa,
)
from softmax_rs import _core

Array = npt.NDArray[Any]


# ------------------------------------------------------------------------------------------
# The control API
# ------------------------------------------------------------------------------------------
def test_set_and_get() -> None:
    for n in (1, 3, 2, 4):
        sr.set_num_threads(n)
        assert sr.get_num_threads() == n


def test_threads_context_manager_restores() -> None:
    sr.set_num_threads(3)
    with sr.threads(1):
        assert sr.get_num_threads() == 1
        with sr.threads(2):
            assert sr.get_num_threads() == 2
        assert sr.get_num_threads() == 1
    assert sr.get_num_threads() == 3


def test_threads_context_manager_restores_on_error() -> None:
    sr.set_num_threads(2)
    with pytest.raises(RuntimeError, match="boom"), sr.threads(4):
        assert sr.get_num_threads() == 4
        raise RuntimeError("boom")
    assert sr.get_num_threads() == 2


@pytest.mark.parametrize("n", [0, -1])
def test_bad_thread_counts(n: int) -> None:
    before = sr.get_num_threads()
    with pytest.raises(ValueError, match="thread"):
        sr.set_num_threads(n)
    with pytest.raises(ValueError, match="thread"), sr.threads(n):
        pass
    assert sr.get_num_threads() == before


@pytest.mark.parametrize("n", [2.5, "2", None])
def test_thread_count_of_wrong_type(n: Any) -> None:
    with pytest.raises(TypeError):
        sr.set_num_threads(n)


def _in_subprocess(
    code: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "SOFTMAX_RS_NUM_THREADS"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("value", ["1", "3", " 2 "])
def test_env_var_read_at_import(value: str) -> None:
    p = _in_subprocess(
        "import softmax_rs as sr; print(sr.get_num_threads())", {"SOFTMAX_RS_NUM_THREADS": value}
    )
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) == int(value)


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_env_var_invalid(value: str) -> None:
    p = _in_subprocess("import softmax_rs", {"SOFTMAX_RS_NUM_THREADS": value})
    assert p.returncode != 0
    assert "ValueError" in p.stderr and (
        "SOFTMAX_RS_NUM_THREADS" in p.stderr or "thread" in p.stderr
    )


def test_env_var_only_at_import() -> None:
    code = (
        "import os, softmax_rs as sr; os.environ['SOFTMAX_RS_NUM_THREADS'] = '3';"
        "print(sr.get_num_threads())"
    )
    p = _in_subprocess(code, {"SOFTMAX_RS_NUM_THREADS": "2"})
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) == 2


def test_default_is_the_usable_cores() -> None:
    p = _in_subprocess(
        "import os, softmax_rs as sr;print(sr.get_num_threads(), len(os.sched_getaffinity(0)))"
    )
    assert p.returncode == 0, p.stderr
    got, usable = map(int, p.stdout.split())
    assert got == usable
    p = _in_subprocess(
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]});"
        "import softmax_rs as sr; print(sr.get_num_threads())"
    )
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) == 1


def test_fork_child_can_compute() -> None:
    """After a fork (with the pool started in the parent) the child still computes."""
    code = """
import os, numpy as np, softmax_rs as sr
sr.set_num_threads(2)
x = np.random.default_rng(0).standard_normal((1000, 500)).astype(np.float32)
want = sr.softmax(x)
pid = os.fork()
if pid == 0:
    ok = np.array_equal(sr.softmax(x), want)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    p = _in_subprocess(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0"


# ------------------------------------------------------------------------------------------
# Bit-identical for every thread count; each ISA within the bounds
# ------------------------------------------------------------------------------------------
def _big_cases() -> list[tuple[str, Array, Any]]:
    rng = np.random.default_rng(42)
    f32 = (rng.standard_normal((700, 1000)) * 5).astype(np.float32)
    return [
        ("rows-f32", f32[:300], -1),
        ("rows-f64", f32[:150].astype(np.float64), -1),
        ("axis0-f32", f32[:200, :400], 0),
        ("axis0-f64", f32[:400, :200].astype(np.float64), 0),
        ("long-row-f32", f32[:1].reshape(1, -1).repeat(300, axis=1), -1),
        ("long-row-f64", f32.reshape(-1)[:200_000].astype(np.float64)[None, :], -1),
        ("one-huge-row-f32", f32.reshape(-1)[:600_000], -1),
        ("short-rows-f32", f32.reshape(-1)[:200_000].reshape(-1, 5), -1),
        ("short-rows-f64", f32.reshape(-1)[:90_000].reshape(-1, 3).astype(np.float64), -1),
        ("tuple-axis", f32[:120].reshape(120, 20, 50), (0, 2)),
        ("all-axes", f32[:100], None),
        ("transposed", f32[:100, :800].T, -1),
        ("f16-rows", f32[:200].astype(np.float16), -1),
        ("bf16-axis0", f32[:300, :300].astype(BFLOAT16), 0),
        ("int16-rows", (f32[:100] * 10).astype(np.int16), -1),
    ]


BIG = _big_cases()


@pytest.mark.parametrize(("label", "x", "axis"), BIG, ids=[c[0] for c in BIG])
def test_bit_identical_across_thread_counts_and_within_bounds(
    label: str, x: Array, axis: Any
) -> None:
    """For every ISA: thread counts 1..4 give the same bytes; each ISA's result is within the
    bounds of the reference (ISAs need not agree bit for bit with each other)."""
    assert x.size > 64 * 1024, label
    for name, f in ALL_OPS.items():
        ax = axis if name != "argmax" or isinstance(axis, int | None) else None

        def call(f: Callable[..., Any] = f, ax: Any = ax) -> bytes:
            return np.ascontiguousarray(f(x, axis=ax)).tobytes()

        results = run_everywhere(call)
        for isa in isas():
            first = results[(isa, 1)]
            for n in THREAD_COUNTS[1:]:
                assert results[(isa, n)] == first, f"{name} {label}: {isa} {n} threads differ"
            with using_isa(isa), sr.threads(2):
                check_op(name, f(x, axis=ax), x, ax)


def test_where_and_temperature_bit_identical() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 600)).astype(np.float32)
    w = rng.random((400, 600)) > 0.2
    t = rng.uniform(0.5, 2.0, (400, 1))
    for axis in (-1, 0):
        temp: Any = t if axis == -1 else rng.uniform(0.5, 2.0, 600)

        def call(axis: int = axis, temp: Any = temp) -> bytes:
            r = sr.log_softmax(x, axis=axis, where=w, temperature=temp, empty_rows="zero")
            return r.tobytes()

        results = run_everywhere(call)
        for isa in isas():
            assert len({results[(isa, n)] for n in THREAD_COUNTS}) == 1, (isa, axis)


def test_out_bit_identical_across_thread_counts() -> None:
    x = np.random.default_rng(4).standard_normal((256, 1024))
    outs: list[tuple[tuple[str, int], bytes]] = []
    for cfg in each_config():
        out = np.empty((1024, 256)).T
        sr.softmax(x, out=out)
        outs.append((cfg, np.ascontiguousarray(out).tobytes()))
    for isa in isas():
        assert len({b for (i, _n), b in outs if i == isa}) == 1


def test_column_tiles_cut_by_thread_count_give_the_same_bits() -> None:
    """Non-last axes cut their columns into tiles by the thread count (one tile of all 2000
    columns on one thread, 1024 and 976 on more), so each column must come out the same
    whichever tile it lands in: also beside columns with NaN, +inf or no mass, which are
    redone alone, and in place, where their inputs must survive the tile's write pass.
    (60 rows: too few to be cut into chunks of rows instead, as the next test's are.)"""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((60, 2000)) * 4).astype(np.float32)
    # All in the first tile, so that on two threads and more the second has none.
    x[7, 3] = np.nan
    x[:, 200] = -np.inf
    x[[2, 9], 300] = np.inf
    x[5, 500] = np.nan
    x[:, 1500] += 1000.0
    before = x.copy()
    softmax_fam = {n: ALL_OPS[n] for n in ("softmax", "log_softmax", "logsumexp")}
    for name, f in softmax_fam.items():

        def call(f: Callable[..., Any] = f) -> bytes:
            return np.ascontiguousarray(f(x, axis=0)).tobytes()

        results = run_everywhere(call)
        for isa in isas():
            first = results[(isa, 1)]
            assert {results[(isa, n)] for n in THREAD_COUNTS} == {first}, (name, isa)
            got = np.frombuffer(first, np.float32)
            if name == "logsumexp":
                assert np.isnan(got[[3, 500]]).all() and got[300] == np.inf
                assert got[200] == -np.inf
                clean = got[800:1600]
            else:
                got = got.reshape(x.shape)
                assert np.isnan(got[:, [3, 200, 500]]).all()
                want_inf = 0.5 if name == "softmax" else np.float32(-np.log(2.0))
                assert (got[[2, 9], 300] == want_inf).all()
                clean = got[:, 800:1600]
            check_op(name, clean, x[:, 800:1600], 0)
        assert np.array_equal(x, before, equal_nan=True)
        if name == "logsumexp":
            continue
        for isa, n in each_config():
            y = x.copy()
            r = f(y, axis=0, out=y)
            assert r is y
            assert y.tobytes() == results[(isa, n)], (name, isa, n, "in place")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_chunks_of_rows_give_the_same_bits(dtype: type) -> None:
    """A lone tile of few columns over a long axis is cut into chunks of rows (here 3: rows
    0-1375, 1376-2751 and 2752-3999), fixed by the shape, whose statistics are merged in
    order between passes: every thread count gives the same bits, within the reference's
    bounds, with NaN, +inf and no mass in different chunks, a column whose maximum is in the
    last chunk only, in place, at a temperature, and from given (max, sumexp)."""
    rng = np.random.default_rng(12)
    x: Array = (rng.standard_normal((4000, 48)) * 4).astype(dtype)
    x[100, 3] = np.nan  # first chunk
    x[3000, 11] = np.nan  # last chunk
    x[:, 7] = -np.inf
    x[[2000, 3900], 9] = np.inf  # middle and last chunks
    x[:, 20] += 1000.0
    x[:1376, 30] = -np.inf  # no mass in the first chunk
    x[3999, 31] = 60.0  # the maximum in the last row
    bad = [3, 7, 9, 11]
    clean = [j for j in range(48) if j not in bad]
    before = x.copy()
    for name in ("softmax", "log_softmax", "logsumexp"):
        f = ALL_OPS[name]
        for temp in (1.0, 0.7):

            def call(f: Callable[..., Any] = f, temp: float = temp) -> bytes:
                return np.ascontiguousarray(f(x, axis=0, temperature=temp)).tobytes()

            results = run_everywhere(call)
            for isa in isas():
                first = results[(isa, 1)]
                assert {results[(isa, n)] for n in THREAD_COUNTS} == {first}, (name, isa)
                got: Array = np.frombuffer(first, dtype)
                if name == "logsumexp":
                    assert np.isnan(got[[3, 11]]).all() and got[9] == np.inf
                    assert got[7] == -np.inf
                    check_op(name, got[clean], x[:, clean], 0, temperature=temp)
                    continue
                got = got.reshape(x.shape)
                assert np.isnan(got[:, [3, 7, 11]]).all()
                want_inf = 0.5 if name == "softmax" else dtype(-np.log(2.0))
                assert (got[[2000, 3900], 9] == want_inf).all()
                check_op(name, got[:, clean], x[:, clean], 0, temperature=temp)
                for n in THREAD_COUNTS:
                    with using_isa(isa), sr.threads(n):
                        y = x.copy()
                        assert f(y, axis=0, temperature=temp, out=y) is y
                    assert y.tobytes() == first, (name, isa, n, temp, "in place")
        assert np.array_equal(x, before, equal_nan=True)
    for log in (False, True):

        def finish(log: bool = log) -> bytes:
            m, s = _core.row_stats(x, 0)
            return np.ascontiguousarray(_core.finish(x, 0, m, s, log=log)).tobytes()

        results = run_everywhere(finish)
        # The stats come rounded to the dtype, so the results are checked against the
        # direct ones: within a few ulps (and, for log_softmax, one of 0).
        f = ALL_OPS["log_softmax" if log else "softmax"]
        eps = float(np.finfo(dtype).eps)
        for isa in isas():
            first = results[(isa, 1)]
            assert {results[(isa, n)] for n in THREAD_COUNTS} == {first}, (log, isa)
            fin: Array = np.frombuffer(first, dtype).reshape(x.shape)
            with using_isa(isa):
                direct = f(x, axis=0)
            atol = eps if log else 0.0
            np.testing.assert_allclose(fin[:, clean], direct[:, clean], 8 * eps, atol)
            assert np.isnan(fin[:, [3, 7, 11]]).all()


# ------------------------------------------------------------------------------------------
# The GIL
# ------------------------------------------------------------------------------------------
def _stamps_in_first_half(fn: Callable[[], Any], calls: int = 5) -> list[tuple[float, int]]:
    """Run ``fn`` ``calls`` times while a Python thread counts, time-stamping its progress;
    per call, (duration, counter stamps in the first half of the call, its first few switch
    intervals left out).

    With the GIL held through a call the counter can only run before the call really starts
    (for at most about one switch interval after the start time was read) and after it has
    returned (the second half), so the measured part is empty."""
    stamps: list[float] = []
    stop = threading.Event()
    # A short switch interval keeps the probe meaningful on fast machines, where a call
    # lasts only tens of milliseconds.
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    skip = 2 * sys.getswitchinterval()

    def count() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            if n % 64 == 0:
                stamps.append(time.perf_counter())

    th = threading.Thread(target=count, daemon=True)
    windows = []
    th.start()
    try:
        time.sleep(0.02)
        for _ in range(calls):
            t0 = time.perf_counter()
            fn()
            windows.append((t0, time.perf_counter()))
    finally:
        stop.set()
        th.join()
        sys.setswitchinterval(old_interval)
    st = np.array(stamps)
    for t0, t1 in windows:
        assert t1 - t0 > 2.5 * skip, f"a call took {t1 - t0:.4f} s: too short to tell"
    return [(t1 - t0, int(np.sum((st > t0 + skip) & (st < (t0 + t1) / 2)))) for t0, t1 in windows]


def test_gil_probe_detects_a_held_gil() -> None:
    """The probe itself: a call known to hold the GIL (a backtracking regex) shows nothing."""
    pattern = re.compile("a*b")
    s = "a" * 6000
    result = _stamps_in_first_half(functools.partial(pattern.search, s), calls=3)
    assert all(n == 0 for _, n in result), result


def test_gil_released_during_kernels() -> None:
    """A Python thread keeps counting while softmax of 20M elements runs."""
    x = np.random.default_rng(5).standard_normal((20_000, 1000)).astype(np.float32)
    out = np.empty_like(x)
    sr.softmax(x, out=out)  # warm up: pages, pool
    with sr.threads(1):
        result = _stamps_in_first_half(lambda: sr.softmax(x, out=out))
    moved = sum(n > 0 for _, n in result)
    assert moved >= 4, f"(duration, counter steps in the first half) per call: {result}"
    with sr.threads(2):
        result = _stamps_in_first_half(lambda: sr.log_softmax(x, axis=0, out=out))
    assert sum(n > 0 for _, n in result) >= 4, result
