"""``benches/vs_prototype.py``: its error measure, its cases, and a run against the C
prototype where the prototype's source, gcc and AVX-512 are all here."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from softmax_rs import _bench

ROOT = Path(__file__).resolve().parent.parent
# Where the speed issue's prototype sits beside a checkout; SOFTMAX_RS_PROTOTYPE overrides.
PROTOTYPE = Path(
    os.environ.get("SOFTMAX_RS_PROTOTYPE", ROOT.parent / "shared" / "c-kernel" / "softmax_proto.c")
)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vs_prototype", ROOT / "benches" / "vs_prototype.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vs = _script()


def test_error_is_relative_for_softmax_and_absolute_for_log_softmax() -> None:
    eps = float(np.finfo(np.float32).eps)
    want = np.array([0.5, 0.25, 1e-40, 0.25])
    got = np.array([0.5 * (1 + 3 * eps), 0.25, 0.0, 0.25 * (1 - eps)], dtype=np.float32)
    # 1e-40 is below float32's smallest normal: left out, not counted as an error of 1.
    assert vs.error("softmax", got, want) == pytest.approx(3.0, rel=1e-6)
    assert vs.error("logsumexp", got, want) == pytest.approx(3.0, rel=1e-6)
    logs = np.array([-1.0, -2.0 + 4 * eps], dtype=np.float32)
    assert vs.error("log_softmax", logs, np.array([-1.0, -2.0])) == pytest.approx(4.0, rel=1e-6)


def test_truth_is_wider_than_the_input() -> None:
    x = np.array([[1.0, 3.0, 2.0]], dtype=np.float32)
    assert vs.truth("softmax", x, -1).dtype == np.float64
    assert vs.truth("logsumexp", x.astype(np.float64), -1).dtype == np.longdouble


def test_cases_are_the_issue_shapes_the_prototype_has_kernels_for() -> None:
    assert ((2048, 2048), 0) in vs.SHAPES
    rows = [s for s, a in _bench.FULL_SHAPES if a == -1]
    assert [s for s, a in vs.SHAPES if a == -1] == rows
    assert all(("softmax", axis == 0) in vs.KERNELS for _, axis in vs.SHAPES)


def test_the_prototype_sees_last_axes_as_rows_and_axis_0_as_columns() -> None:
    assert vs.matrix((8, 12, 512, 512), -1) == (8 * 12 * 512, 512)
    assert vs.matrix((1, 10), -1) == (1, 10)
    assert vs.matrix((2048, 1024), 0) == (2048, 1024)


def _prototype_runs_here() -> bool:
    if not PROTOTYPE.is_file() or shutil.which("gcc") is None or sys.platform != "linux":
        return False
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " avx512f" in flags


@pytest.mark.skipif(
    not _prototype_runs_here(),
    reason="needs the prototype's source (SOFTMAX_RS_PROTOTYPE), gcc and AVX-512",
)
def test_run_against_the_prototype_prints_every_small_case() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benches" / "vs_prototype.py"),
            str(PROTOTYPE),
            "--max-elements",
            "64000",
            "--repeats",
            "1",
            "--batch",
            "0.001",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln and not ln.startswith(("#", "op "))]
    # (1, 10), (1, 1000) and (64, 1000), three ops each.
    assert len(lines) == 9, done.stdout
    for line in lines:
        ours_err, proto_err = (float(v) for v in line.split("x")[-1].split()[:2])
        assert np.isfinite(proto_err), line
        # The README's bounds (in eps) for softmax and logsumexp; log_softmax's error is
        # absolute, so it grows with the values' size.
        assert ours_err <= (4.0 if not line.startswith("log_softmax") else 64.0), line
