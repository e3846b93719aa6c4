"""SciPy's own tests for these functions, run against ``softmax_rs.special``.

The test modules ``scipy/special/tests/test_logsumexp.py`` (logsumexp, softmax,
log_softmax) and the expit/log_expit classes of ``test_logit.py`` are read from the installed
SciPy, their ``from scipy.special import ...`` lines are pointed at ``softmax_rs.special``,
and the resulting test classes are collected here, run with NumPy as the array namespace.
SciPy's array-API test machinery (the ``xp`` fixture and ``make_xp_test_case``) is replaced by
NumPy-only stand-ins. Skipped when SciPy is not installed.
"""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

import numpy as np
import pytest
import softmax_rs.special

array_namespace = pytest.importorskip("scipy._lib._array_api").array_namespace


@pytest.fixture
def xp() -> Any:
    return array_namespace(np.empty(0))


@pytest.fixture
def devices() -> list[Any]:
    return [None]


def _load(name: str, replace: dict[str, str]) -> dict[str, Any]:
    spec = importlib.util.find_spec("scipy.special")
    assert spec is not None and spec.origin is not None
    path = pathlib.Path(spec.origin).parent / "tests" / name
    if not path.exists():  # pragma: no cover - SciPy installed without its tests
        pytest.skip(f"{path} not installed", allow_module_level=True)
    src = path.read_text()
    for old, new in replace.items():
        assert old in src, f"SciPy's {name} changed: {old!r} not found"
        src = src.replace(old, new)
    namespace: dict[str, Any] = {
        "__name__": f"scipy_suite_{name[:-3]}",
        "_noop_case": lambda *funcs, **kw: lambda obj: obj,
    }
    exec(compile(src, str(path), "exec"), namespace)
    return namespace


_lse = _load(
    "test_logsumexp.py",
    {
        "from scipy.special import log_softmax, logsumexp, softmax": (
            "from softmax_rs.special import log_softmax, logsumexp, softmax"
        ),
        "@make_xp_test_case(": "@_noop_case(",
        '@pytest.mark.xfail_xp_backends("array_api_strict"': '@_noop_case("array_api_strict"',
        "it.product(": "list(it.product(",
        "repeat=2)": "repeat=2))",
    },
)
_logit = _load(
    "test_logit.py",
    {
        "from scipy.special import logit, expit, log_expit": (
            "from scipy.special import logit\nfrom softmax_rs.special import expit, log_expit"
        ),
    },
)

TestLogSumExp = _lse["TestLogSumExp"]
TestSoftmax = _lse["TestSoftmax"]
TestLogSoftmax = _lse["TestLogSoftmax"]
TestExpit = _logit["TestExpit"]
TestLogExpit = _logit["TestLogExpit"]


def test_suite_really_uses_softmax_rs() -> None:
    # guard against the replacement silently testing SciPy itself
    assert _lse["logsumexp"] is softmax_rs.special.logsumexp
    assert _lse["softmax"] is softmax_rs.special.softmax
    assert _lse["log_softmax"] is softmax_rs.special.log_softmax
    assert _logit["expit"] is softmax_rs.special.expit
    assert _logit["log_expit"] is softmax_rs.special.log_expit
