"""softmax_rs: fast, numerically stable softmax, log_softmax, logsumexp and argmax for NumPy.

>>> import softmax_rs as sr
>>> sr.softmax([1.0, 3.0, 2.0]).round(8)
array([0.09003057, 0.66524096, 0.24472847])
>>> int(sr.argmax([1.0, 3.0, 2.0]))
1
"""

from __future__ import annotations

import os

from softmax_rs import reference, special
from softmax_rs._calibration import calibration_error, fit_temperature, reliability_bins
from softmax_rs._core import (
    argmax,
    get_num_threads,
    log_softmax,
    logsumexp,
    set_num_threads,
    softmax,
)
from softmax_rs._extras import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    log_sigmoid,
    predict,
    sample,
    sampled_softmax_loss,
    sigmoid,
    top_k,
)
from softmax_rs._threadpool import register_threadpoolctl
from softmax_rs._threads import init_from_env, threads

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "argmax",
    "binary_cross_entropy_with_logits",
    "calibration_error",
    "cross_entropy",
    "fit_temperature",
    "get_num_threads",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "predict",
    "reference",
    "reliability_bins",
    "sample",
    "sampled_softmax_loss",
    "set_num_threads",
    "sigmoid",
    "softmax",
    "special",
    "threads",
    "top_k",
]

init_from_env()
register_threadpoolctl()


def _after_fork_in_child() -> None:
    from softmax_rs import _core

    _core._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
