"""Options for the pytest-benchmark suite.

``pytest benches/bench_softmax.py`` runs every shape; with ``--benchmark-disable`` (the
CI smoke run: each benchmark body runs once, untimed) or ``--bench-quick`` only the small
shapes run, so the smoke run takes seconds. ``--bench-full`` forces every shape.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("softmax_rs benchmarks")
    group.addoption(
        "--bench-quick",
        action="store_true",
        default=False,
        help="small shapes only (the default with --benchmark-disable)",
    )
    group.addoption(
        "--bench-full",
        action="store_true",
        default=False,
        help="every shape, even with --benchmark-disable",
    )
