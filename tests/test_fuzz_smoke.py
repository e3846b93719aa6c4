"""A short run of the fuzz target ``fuzz_softmax.py`` (issue 5).

The target decodes bytes into a call (shapes, strides, dtypes, axes, values, keywords, out)
and checks it against the oracle and the documented exceptions. Here it runs briefly from
the command line (random engine, and atheris where installed), in process under
Hypothesis (which shrinks a failing input), and against a deliberately broken core to show
that it catches wrong results. ``SOFTMAX_RS_LONG=1`` runs it longer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import _numerics as nu
import fuzz_softmax as fz
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_softmax.py")
SECONDS = 60 if nu.LONG else 4
HYPOTHESIS_EXAMPLES = 2000 if nu.LONG else 150


def _run(*args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, "--seconds", str(SECONDS), *args],
        capture_output=True,
        text=True,
        timeout=SECONDS * 5 + 120,
        cwd=cwd,
    )


def test_fuzz_random_engine_finds_nothing(tmp_path: Any) -> None:
    proc = _run(
        "--engine",
        "random",
        "--seed",
        "1",
        "--keep-going",
        "--artifacts",
        str(tmp_path),
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert "no finding" in proc.stdout
    n = int(proc.stdout.split("fuzz_softmax: ")[1].split()[0])
    assert n >= 20 * SECONDS, proc.stdout  # it really ran


def test_fuzz_atheris_engine_finds_nothing(tmp_path: Any) -> None:
    pytest.importorskip("atheris", reason="atheris (libFuzzer for Python) is not installed")
    proc = _run("--engine", "atheris", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert "Done" in proc.stderr


@settings(
    max_examples=HYPOTHESIS_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.binary(max_size=2048))
def test_fuzz_target_under_hypothesis(data: bytes) -> None:
    fz.one_input(data)


@pytest.fixture
def broken_softmax() -> Iterator[None]:
    real = fz.FUNCS["softmax"]

    def wrong(x: Any, *args: Any, **kwargs: Any) -> Any:
        r = real(x, *args, **kwargs)
        if isinstance(r, np.ndarray) and r.dtype.kind == "f" and r.size:
            r.flat[0] = r.flat[0] * 0.999 if np.isfinite(r.flat[0]) else 0.5
        return r

    fz.FUNCS["softmax"] = wrong
    try:
        yield
    finally:
        fz.FUNCS["softmax"] = real


@pytest.mark.usefixtures("broken_softmax")
def test_fuzz_target_catches_a_wrong_result() -> None:
    import random

    rng = random.Random(5)
    for _ in range(2000):
        data = rng.randbytes(256)
        try:
            fz.one_input(data)
        except fz.Finding as e:
            if str(e).startswith("softmax: "):  # a value check of softmax failed
                return
    pytest.fail("2000 inputs did not expose a softmax that is 0.1% off")


def test_fuzz_replay(tmp_path: Any) -> None:
    """Saved inputs re-run from the command line."""
    p = tmp_path / "input"
    p.write_bytes(bytes(range(200)))
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--replay", str(p)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok" in proc.stdout
