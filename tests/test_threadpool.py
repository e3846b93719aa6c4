"""threadpoolctl drives softmax_rs's thread pool."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import softmax_rs as sr
from softmax_rs._threadpool import register_threadpoolctl

threadpoolctl: Any = pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def two_threads() -> Iterator[None]:
    """Start from a known count above 1, restore the user's afterwards."""
    register_threadpoolctl()
    before = sr.get_num_threads()
    sr.set_num_threads(2)
    try:
        yield
    finally:
        sr.set_num_threads(before)


def ours(info: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [lib for lib in info if lib["internal_api"] == "softmax_rs"]


def test_listed_in_threadpool_info() -> None:
    libs = ours(threadpoolctl.threadpool_info())
    assert len(libs) == 1
    (lib,) = libs
    assert lib["user_api"] == "softmax_rs"
    assert lib["num_threads"] == 2
    assert "_core" in lib["filepath"]


def test_threadpool_limits_sets_and_restores() -> None:
    with threadpoolctl.threadpool_limits(1):
        assert sr.get_num_threads() == 1
        x = np.random.default_rng(0).standard_normal((256, 1024))
        np.testing.assert_allclose(sr.softmax(x).sum(axis=-1), 1.0, rtol=1e-12)
    assert sr.get_num_threads() == 2


def test_limits_by_user_api_and_dict() -> None:
    with threadpoolctl.threadpool_limits(limits=1, user_api="softmax_rs"):
        assert sr.get_num_threads() == 1
    assert sr.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits={"softmax_rs": 1}):
        assert sr.get_num_threads() == 1
    assert sr.get_num_threads() == 2
    # Limiting BLAS only leaves softmax_rs alone.
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert sr.get_num_threads() == 2


def test_controller_api() -> None:
    controller = threadpoolctl.ThreadpoolController()
    selected = controller.select(internal_api="softmax_rs")
    assert len(selected.lib_controllers) == 1
    with selected.limit(limits=1):
        assert sr.get_num_threads() == 1
    assert sr.get_num_threads() == 2


def test_register_is_idempotent() -> None:
    register_threadpoolctl()
    register_threadpoolctl()
    assert len(ours(threadpoolctl.threadpool_info())) == 1
