"""threadpoolctl support: ``threadpool_limits(n)`` also limits softmax_rs's thread pool.

threadpoolctl finds thread pools by walking the shared libraries loaded in the process
and matching their file names. softmax_rs's pool lives in its extension module
(``softmax_rs/_core.*.so`` / ``.pyd``); the controller accepts that file only (other
packages' ``_core`` modules are skipped) and drives ``softmax_rs.get_num_threads`` /
``set_num_threads``, so the limit applies process-wide, as for OpenBLAS.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["register_threadpoolctl"]

_registered = False


def _core_path() -> str:
    from softmax_rs import _core

    return os.path.normcase(os.path.realpath(_core.__file__ or ""))


def register_threadpoolctl() -> None:
    """Register the softmax_rs controller with threadpoolctl, if it is importable.

    Idempotent; a no-op without threadpoolctl. Called from ``softmax_rs/__init__.py``.
    """
    global _registered
    if _registered:
        return
    try:
        import threadpoolctl  # type: ignore[import-untyped]
    except ImportError:
        return
    controller = _make_controller_class(threadpoolctl)
    if controller is None:
        return
    threadpoolctl.register(controller)
    _registered = True


def _make_controller_class(threadpoolctl: Any) -> type[Any] | None:
    base = getattr(threadpoolctl, "LibController", None)
    if base is None or not hasattr(threadpoolctl, "register"):  # threadpoolctl < 3.2
        return None

    class SoftmaxRsController(base):  # type: ignore[misc,valid-type]
        """threadpoolctl controller for softmax_rs's Rayon pool."""

        user_api = "softmax_rs"
        internal_api = "softmax_rs"
        filename_prefixes = ("_core",)

        def get_version(self) -> str | None:
            # Called first, from __init__: an OSError here makes threadpoolctl skip
            # a library that merely shares the "_core" prefix.
            filepath = os.path.normcase(os.path.realpath(self.filepath or ""))
            if filepath != _core_path():
                raise OSError(f"{self.filepath} is not softmax_rs's extension module")
            from importlib.metadata import PackageNotFoundError, version

            try:
                return version("softmax_rs")
            except PackageNotFoundError:
                return None

        def get_num_threads(self) -> int:
            import softmax_rs

            return int(softmax_rs.get_num_threads())

        def set_num_threads(self, num_threads: int) -> None:
            import softmax_rs

            softmax_rs.set_num_threads(int(num_threads))

    return SoftmaxRsController
