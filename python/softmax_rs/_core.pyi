"""Type stubs for the Rust extension module ``softmax_rs._core``."""

from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "_after_fork",
    "_top_k_lastaxis",
    "argmax",
    "available_isas",
    "finish",
    "get_isa",
    "get_num_threads",
    "log_softmax",
    "logsumexp",
    "row_stats",
    "set_isa",
    "set_num_threads",
    "softmax",
]

class _SupportsDLPack(Protocol):
    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any: ...

# Anything numpy.asarray accepts, or an object that only offers DLPack.
_Input = npt.ArrayLike | _SupportsDLPack
_Axis = int | tuple[int, ...] | None
_Out = npt.NDArray[Any] | None
_DType = npt.DTypeLike | None

def softmax(
    x: _Input,
    axis: _Axis = -1,
    *,
    temperature: float | npt.ArrayLike = 1.0,
    where: npt.ArrayLike | None = None,
    empty_rows: Literal["nan", "zero"] | None = None,
    out: _Out = None,
    dtype: _DType = None,
) -> npt.NDArray[Any]:
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    float32/float64 compute in their own precision; float16 and bfloat16 compute in float32
    and return their own dtype; bool and integers return float64. ``temperature`` divides
    ``x`` (a positive scalar, or one per row); ``where`` excludes entries (they get 0).

    >>> import softmax_rs as sr
    >>> sr.softmax([1.0, 3.0, 2.0]).round(8)
    array([0.09003057, 0.66524096, 0.24472847])
    """

def log_softmax(
    x: _Input,
    axis: _Axis = -1,
    *,
    temperature: float | npt.ArrayLike = 1.0,
    where: npt.ArrayLike | None = None,
    empty_rows: Literal["nan", "zero"] | None = None,
    out: _Out = None,
    dtype: _DType = None,
) -> npt.NDArray[Any]:
    """log_softmax along ``axis``: ``(x - max) - log(sum(exp(x - max)))``.

    >>> import softmax_rs as sr
    >>> sr.log_softmax([1.0, 3.0, 2.0]).round(6)
    array([-2.407606, -0.407606, -1.407606])
    """

def logsumexp(
    x: _Input,
    axis: _Axis = -1,
    *,
    keepdims: bool = False,
    temperature: float | npt.ArrayLike = 1.0,
    where: npt.ArrayLike | None = None,
    out: _Out = None,
    dtype: _DType = None,
) -> Any:
    """``log(sum(exp(x)))`` along ``axis``, computed as ``max + log(sum(exp(x - max)))``.

    >>> import softmax_rs as sr
    >>> round(float(sr.logsumexp([1.0, 3.0, 2.0])), 6)
    3.407606
    """

def argmax(
    x: _Input,
    axis: int | None = -1,
    *,
    keepdims: bool = False,
    out: npt.NDArray[np.intp] | None = None,
) -> Any:
    """Indices of the maxima along ``axis``, exactly as ``numpy.argmax``.

    >>> import softmax_rs as sr
    >>> int(sr.argmax([1.0, 3.0, 2.0]))
    1
    """

def row_stats(
    x: _Input, axis: _Axis = -1
) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]:
    """Per-row ``(max, sum(exp(x - max)))`` with the reduced axes kept: partials that merge
    across chunks."""

def finish(
    x: _Input,
    axis: _Axis,
    max: npt.ArrayLike,
    sumexp: npt.ArrayLike,
    *,
    log: bool = False,
    out: _Out = None,
) -> npt.NDArray[Any]:
    """softmax (or, with ``log=True``, log_softmax) of ``x`` from given per-row partials."""

def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels use (at least 1)."""

def get_num_threads() -> int:
    """The number of threads the kernels use."""

def get_isa() -> str:
    """The instruction set the kernels run on: "avx512", "avx2", "neon" or "generic"."""

def set_isa(name: str) -> None:
    """Force an instruction set (for tests and benchmarks); ValueError if unavailable."""

def available_isas() -> list[str]:
    """Every instruction set this CPU can run."""

def _after_fork() -> None: ...
def _top_k_lastaxis(
    x: npt.NDArray[Any], k: int, largest: bool, sorted: bool = True
) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
    """Top-k along the last axis of a 2-D C-contiguous array (values, indices)."""
