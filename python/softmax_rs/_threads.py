"""Thread-count control: ``threads(n)`` and the ``SOFTMAX_RS_NUM_THREADS`` variable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from softmax_rs._core import get_num_threads, set_num_threads

ENV_VAR = "SOFTMAX_RS_NUM_THREADS"


def init_from_env() -> None:
    """Apply ``SOFTMAX_RS_NUM_THREADS`` if set (read once, at import)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a positive integer, got {value!r}") from None
    set_num_threads(n)


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Use ``n`` threads inside the ``with`` block, then restore the previous count.

    >>> import softmax_rs as sr
    >>> with sr.threads(1):
    ...     sr.get_num_threads()
    1
    """
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)
