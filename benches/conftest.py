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


@pytest.fixture(scope="session", autouse=True)
def _malloc_keeps_freed_memory() -> None:
    """As the bench command: glibc keeps blocks up to 32 MiB in its heap, so that the
    temporaries of the implementations that allocate are not page-faulted in anew on every
    call (see ``softmax_rs._bench.keep_freed_memory``)."""
    from softmax_rs import _bench

    _bench.keep_freed_memory()
