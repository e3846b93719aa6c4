"""The command line: ``python -m softmax_rs demo`` and ``bench``."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from softmax_rs import _bench, _demo
from softmax_rs.__main__ import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_demo_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert _demo.main() == 0
    out = capsys.readouterr().out
    assert "[0.09003057 0.66524096 0.24472847]" in out
    assert "argmax(x)      = 1" in out
    # Stability on [1000, 3000, 2000]: the naive form overflows, softmax_rs does not.
    assert "[nan nan nan]" in out
    assert "[0. 1. 0.]" in out
    assert "3000.00000000" in out


def test_main_dispatches_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "0.66524096" in capsys.readouterr().out


def test_main_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "softmax_rs", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "0.24472847" in proc.stdout


def test_bench_json_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    # The allocator setting is process-wide: recorded here, tested in a fresh process below.
    kept: list[int] = []

    def keep() -> bool:
        kept.append(1)
        return True

    monkeypatch.setattr(_bench, "keep_freed_memory", keep)
    jpath = tmp_path / "bench.json"
    ppath = tmp_path / "bench.png"
    argv = [
        "bench",
        "--quick",
        "--shapes",
        "3x10,16x7:0",
        "--ops",
        "softmax,log_softmax,logsumexp,argmax",
        "--dtypes",
        "float32,float64",
        "--threads",
        "1,2",
        "--peers",
        "numpy-out,scipy",
        "--repeats",
        "3",
        "--json",
        str(jpath),
        "--plot",
        str(ppath),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "[" in captured.err and "done" in captured.err  # the progress bar
    table = captured.out
    assert "softmax_rs µs" in table and "reference µs" in table and "vs ref" in table

    doc = json.loads(jpath.read_text())
    assert ppath.read_bytes()[:8] == PNG_MAGIC
    results = doc["results"]
    assert len(results) == 2 * 4 * 2 * 2
    assert doc["environment"]["threads"] == [1, 2]
    assert kept and doc["environment"]["malloc_keeps_freed"] is True
    seen = set()
    for r in results:
        seen.add((tuple(r["shape"]), r["axis"], r["dtype"], r["op"], r["threads"]))
        times = r["times_us"]
        assert {"softmax_rs", "reference"} <= set(times)
        assert all(t > 0 and math.isfinite(t) for t in times.values())
        assert all(r["ok"].values()), r
        assert len(r["samples_us"]["softmax_rs"]) == 3
        # The speed-ups are the ratios of the measured medians.
        assert r["speedup_vs_reference"] == pytest.approx(times["reference"] / times["softmax_rs"])
        # The copy is the bandwidth yardstick beside softmax and log_softmax, never a peer.
        has_copy = r["op"] in ("softmax", "log_softmax")
        assert ("copyto" in times) == has_copy
        if has_copy:
            assert r["times_copyto"] == pytest.approx(times["softmax_rs"] / times["copyto"])
            assert f"{r['times_copyto']:.2f}x" in table
        else:
            assert r["times_copyto"] is None
        assert "copyto" not in r["ok"]
        peers = {k: v for k, v in times.items() if k not in ("softmax_rs", "reference", "copyto")}
        if peers:
            best = min(peers, key=peers.__getitem__)
            assert r["best_peer"] == best
            assert r["speedup_vs_best_peer"] == pytest.approx(peers[best] / times["softmax_rs"])
        else:
            assert r["op"] == "argmax"
            assert r["best_peer"] is None and r["speedup_vs_best_peer"] is None
        assert r["gbps"] == pytest.approx(r["bytes"] / (times["softmax_rs"] * 1e-6) / 1e9)
        assert f"{r['speedup_vs_reference']:.2f}x" in table
    assert ((16, 7), 0, "float64", "logsumexp", 2) in seen


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's mallopt",
)
def test_bench_keeps_freed_memory_so_reference_temporaries_do_not_fault() -> None:
    # In a fresh process, as the bench command runs: the reference's temporaries of 4 MB
    # (1024, 1000) page-faulted in on every call (about 2,000 faults) with glibc's defaults.
    code = """
import json, resource, numpy as np
from softmax_rs import _bench, reference
applied = _bench.keep_freed_memory()
x = np.ones((1024, 1000), np.float32)
reference.softmax(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    reference.softmax(x)
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"applied": applied, "faults": (after - before) / 5}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    got = json.loads(out)
    assert got["applied"] is True
    assert got["faults"] < 50, got


def test_speedups_come_from_times() -> None:
    r = _bench.Result((4, 10), -1, "float32", "softmax", 1, bytes=320)
    r.times_s = {"softmax_rs": 2e-6, "reference": 7e-6, "scipy": 5e-6, "torch": 3e-6}
    r.ok = {"softmax_rs": True, "reference": True, "scipy": True, "torch": True}
    assert r.speedup_vs_reference == pytest.approx(3.5)
    assert r.best_peer == "torch"
    assert r.speedup_vs_best_peer == pytest.approx(1.5)
    assert r.gbps == pytest.approx(320 / 2e-6 / 1e9)
    table = _bench.format_table([r], ["scipy", "torch"])
    assert "3.50x" in table and "1.50x" in table and "torch" in table
    # A peer whose result disagreed is flagged and never the "best".
    r.ok["torch"] = False
    assert r.best_peer == "scipy"
    assert r.speedup_vs_best_peer == pytest.approx(2.5)
    assert "3.00!" in _bench.format_table([r], ["scipy", "torch"])


def test_copy_yardstick_is_a_column_not_a_peer() -> None:
    r = _bench.Result((4, 10), -1, "float32", "softmax", 1, bytes=320)
    r.times_s = {"softmax_rs": 3e-6, "reference": 7e-6, "scipy": 5e-6, "copyto": 2e-6}
    r.ok = {"softmax_rs": True, "reference": True, "scipy": True}
    assert r.best_peer == "scipy"  # the copy is faster, but not a peer
    assert r.times_copy == pytest.approx(1.5)
    table = _bench.format_table([r], ["scipy"])
    header, _, row = table.splitlines()[:3]
    assert header.split()[-4:] == ["peer", "x", "copy", "GB/s"]
    assert "copyto µs" in header and "2.00" in row and "1.50x" in row
    assert "!" not in row
    # Without a copy in the run (reductions only) the columns are left out.
    r2 = _bench.Result((4, 10), -1, "float32", "logsumexp", 1, bytes=176)
    r2.times_s = {"softmax_rs": 1e-6, "reference": 2e-6}
    r2.ok = {"softmax_rs": True, "reference": True}
    assert r2.times_copy is None
    assert "copy" not in _bench.format_table([r2], [])
    # A real copy of the input, made only for the ops whose result is input-sized.
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    impls = _bench.make_impls("log_softmax", x, -1, [])
    _, check = impls["copyto"]
    np.testing.assert_array_equal(check(), x)
    assert "copyto" not in _bench.make_impls("argmax", x, -1, [])


@pytest.mark.parametrize(
    "bad",
    [
        ["--shapes", "0x3"],
        ["--shapes", "4x4:2"],
        ["--ops", "softmax,nope"],
        ["--threads", "0"],
        ["--dtypes", "float16"],
    ],
)
def test_bench_bad_arguments(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _bench.main(bad)
    assert exc.value.code == 2


def test_parse_shape() -> None:
    assert _bench._parse_shape("64x1000") == ((64, 1000), -1)
    assert _bench._parse_shape("2048x2048:0") == ((2048, 2048), 0)
    assert _bench._parse_shape("8x12x512x512") == ((8, 12, 512, 512), -1)


def _one_case_settings(x: np.ndarray, axis: int, op: str) -> _bench.Settings:
    """Quick settings for `measure_case` on `x` at one thread, against numpy-out."""
    return _bench.Settings(
        shapes=((x.shape, axis),),
        ops=(op,),
        dtypes=(str(x.dtype),),
        threads=(1,),
        peers=("numpy-out",),
        repeats=3,
        batch_s=0.002,
        budget_s=0.25,
        quick=True,
    )


@pytest.mark.parametrize("cold", [False, True])
def test_bench_times_large_inputs_one_cold_call_per_sample(
    monkeypatch: pytest.MonkeyPatch, cold: bool
) -> None:
    x = np.random.default_rng(0).standard_normal((1000, 10)).astype(np.float32)
    flushes: list[int] = []
    monkeypatch.setattr(_bench, "_flush_caches", lambda: flushes.append(1))
    monkeypatch.setattr(_bench, "COLD_MIN_BYTES", x.nbytes if cold else x.nbytes + 1)
    r = _bench.measure_case("softmax", x, -1, 1, _one_case_settings(x, -1, "softmax"))
    rounds = len(r.samples_s["softmax_rs"])
    assert rounds == 3
    if cold:
        # Every sample of every implementation: one call, right after a flush.
        assert set(r.calls_per_sample.values()) == {1}
        assert len(flushes) == rounds * len(r.samples_s)
    else:
        assert flushes == [] and max(r.calls_per_sample.values()) > 1


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_bench_checks_results_against_the_reference_in_float64(op: str) -> None:
    # Axis 0 of 65536 rows: a term of 1, then terms of 0.75 ulp(1), each of which the
    # float32 reference's running sum rounds up to a whole ulp (1.9e-3 off in the end).
    x = np.full((1 << 16, 2), np.log(0.75 * 2.0**-23), np.float32)
    x[0] = 0.0
    r = _bench.measure_case(op, x, 0, 1, _one_case_settings(x, 0, op))
    # softmax_rs is right; the float32 NumPy forms, the reference among them, are not.
    assert r.ok == {"softmax_rs": True, "reference": False, "numpy-out": False}
    assert r.bytes == x.nbytes + (x.nbytes if op != "logsumexp" else 2 * x.itemsize)
    assert "!" in _bench.format_table([r], ["numpy-out"]).splitlines()[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU affinity is Linux's")
def test_bench_runs_each_case_at_its_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import softmax_rs as sr

    class FakeTorch:
        """Stands for PyTorch, which may not be installed: records its thread count."""

        def __init__(self) -> None:
            self.n = 7

        def get_num_threads(self) -> int:
            return self.n

        def set_num_threads(self, n: int) -> None:
            self.n = n

    torch = FakeTorch()
    monkeypatch.setitem(sys.modules, "torch", torch)
    allowed = os.sched_getaffinity(0)
    before = sr.get_num_threads()
    with _bench.at_threads(1):
        assert sr.get_num_threads() == 1
        assert torch.n == 1
        assert len(os.sched_getaffinity(0)) == 1
    assert sr.get_num_threads() == before
    assert torch.n == 7
    assert os.sched_getaffinity(0) == allowed
    # Restored on an error as well.
    with pytest.raises(RuntimeError), _bench.at_threads(1):
        raise RuntimeError
    assert (sr.get_num_threads(), torch.n) == (before, 7)
    assert os.sched_getaffinity(0) == allowed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU affinity is Linux's")
def test_bench_pins_every_thread_to_the_case_cores() -> None:
    allowed = os.sched_getaffinity(0)
    go = threading.Event()
    ids: list[int] = []

    def wait() -> None:
        ids.append(threading.get_native_id())
        go.wait()

    # A thread that exists before the pin (as a peer's thread pool does).
    first = threading.Thread(target=wait)
    first.start()
    later = threading.Thread(target=wait)
    try:
        while len(ids) < 1:
            time.sleep(0.001)
        with _bench.pinned_to_cores(1) as pinned:
            assert pinned == (len(allowed) > 1)
            want = {min(allowed)} if pinned else allowed
            assert os.sched_getaffinity(0) == want
            assert os.sched_getaffinity(ids[0]) == want
            # A thread started inside the block inherits the pin ...
            later.start()
            while len(ids) < 2:
                time.sleep(0.001)
            assert os.sched_getaffinity(ids[1]) == want
        # ... and every thread has the whole set back afterwards.
        for tid in (threading.get_native_id(), *ids):
            assert os.sched_getaffinity(tid) == allowed
        with _bench.pinned_to_cores(len(allowed)) as pinned:
            assert not pinned and os.sched_getaffinity(0) == allowed
    finally:
        go.set()
        first.join()
        if later.ident is not None:  # started
            later.join()
