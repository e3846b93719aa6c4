"""softmax_rs: fast, numerically stable softmax, log_softmax, logsumexp and argmax for NumPy.

>>> import softmax_rs as sr
>>> sr.softmax([1.0, 3.0, 2.0]).round(8)
array([0.09003057, 0.66524096, 0.24472847])
>>> int(sr.argmax([1.0, 3.0, 2.0]))
1
"""

from __future__ import annotations

import os

from softmax_rs import reference
from softmax_rs._core import (
    argmax,
    get_num_threads,
    log_softmax,
    logsumexp,
    set_num_threads,
    softmax,
)
from softmax_rs._threads import init_from_env, threads

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "argmax",
    "get_num_threads",
    "log_softmax",
    "logsumexp",
    "reference",
    "set_num_threads",
    "softmax",
    "threads",
]

init_from_env()


def _after_fork_in_child() -> None:
    from softmax_rs import _core

    _core._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
