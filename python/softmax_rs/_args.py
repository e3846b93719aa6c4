"""Argument helpers the Rust core calls for the slow paths (non-ndarray inputs, broadcasting
`where` and per-row temperatures, copying into an overlapping `out`). The fast path, a plain
ndarray with scalar arguments, never comes here."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def asarray(x: Any) -> npt.NDArray[Any]:
    """``x`` as an ndarray, zero-copy where the producer allows (DLPack-only objects through
    ``numpy.from_dlpack``)."""
    dlpack_only = not hasattr(x, "__array__") and not hasattr(x, "__array_interface__")
    if dlpack_only and hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    a = np.asarray(x)
    if a.dtype == object:
        raise TypeError("softmax_rs does not support arrays of dtype object")
    return a


def broadcast_where(where: Any, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """``where`` as a bool view broadcast to ``shape`` (ValueError if it does not broadcast)."""
    w = np.asarray(where)
    if w.dtype != np.bool_:
        if w.dtype.kind not in "biu":
            raise TypeError(f"where must be a boolean array, not of dtype {w.dtype}")
        w = w.astype(np.bool_)
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(
            f"where of shape {w.shape} cannot be broadcast to the input's shape {shape}"
        ) from None


def _reduced_view(
    a: npt.NDArray[Any], shape: tuple[int, ...], mask: tuple[bool, ...], what: str
) -> npt.NDArray[Any]:
    """Broadcast ``a`` to the kept-dims reduced shape. ``a`` may have the reduced axes kept
    (same ndim as the input) or dropped."""
    kept = tuple(1 if r else n for n, r in zip(shape, mask, strict=True))
    if a.ndim != len(shape):
        squeezed = tuple(n for n, r in zip(shape, mask, strict=True) if not r)
        try:
            a = np.broadcast_to(a, squeezed)
        except ValueError:
            raise ValueError(
                f"{what} of shape {a.shape} cannot be broadcast to the reduced shape {squeezed}"
            ) from None
        a = a.reshape(kept) if a.size else np.empty(kept, a.dtype)
    try:
        return np.broadcast_to(a, kept)
    except ValueError:
        raise ValueError(
            f"{what} of shape {a.shape} cannot be broadcast to the reduced shape {kept}"
        ) from None


def broadcast_temperature(
    t: Any, shape: tuple[int, ...], mask: tuple[bool, ...]
) -> npt.NDArray[np.float64] | float:
    """A per-row temperature as a float64 view of the kept-dims reduced shape, validated; a
    0-d one as a float."""
    try:
        a = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a positive number or array, got {t!r}") from None
    if not np.all(np.isfinite(a) & (a > 0)):
        raise ValueError("temperature must be positive and finite")
    if a.ndim == 0:
        return float(a)
    return _reduced_view(a, shape, mask, "temperature")


def broadcast_reduced(
    a: Any, shape: tuple[int, ...], mask: tuple[bool, ...], dtype: np.dtype[Any]
) -> npt.NDArray[Any]:
    """Per-row statistics (for ``finish``) as a view of the kept-dims reduced shape."""
    return _reduced_view(np.asarray(a, dtype=dtype), shape, mask, "statistics")


def copyto(dst: npt.NDArray[Any], src: npt.NDArray[Any]) -> None:
    """Copy a result computed aside (because ``out`` overlapped an input) into ``out``."""
    np.copyto(dst, src)
