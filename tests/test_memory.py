"""The input is read in place: never written (every op, option and layout), and a strided
input costs no copy (peak memory measured in a fresh subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr
from conftest import (
    ALL_OPS,
    FLOAT_DTYPES,
    Axis,
    Ref,
    buffer_bytes,
    cases,
    check_softmax,
    layout_variants,
    result_dtype,
    snapshot,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Array = npt.NDArray[Any]

#: the most a call on a ~200 MiB strided input with out= may add to the peak RSS
MAX_GROWTH_MIB = 16


# ------------------------------------------------------------------------------------------
# The input is never written
# ------------------------------------------------------------------------------------------
@st.composite
def calls(draw: st.DrawFn) -> tuple[Array, str, dict[str, Any]]:
    x, axis = draw(cases(specials=True))
    name = draw(st.sampled_from(sorted(ALL_OPS)))
    kw: dict[str, Any] = {}
    if name == "argmax":
        axis = axis if isinstance(axis, int) or axis is None else axis[0]
        if axis is not None and x.shape[axis] == 0:
            axis = None
        if x.size == 0:  # argmax of nothing raises (test_errors)
            x, axis = np.zeros((1,), x.dtype), None
        kw["keepdims"] = draw(st.booleans())
    else:
        if draw(st.booleans()):
            kw["where"] = draw(hnp.arrays(np.bool_, x.shape))
        if draw(st.booleans()):
            kw["temperature"] = draw(st.floats(0.1, 10))
        if name != "logsumexp":
            kw["empty_rows"] = draw(st.sampled_from([None, "nan", "zero"]))
        else:
            kw["keepdims"] = draw(st.booleans())
        if draw(st.booleans()):
            kw["dtype"] = draw(st.sampled_from([np.float32, np.float64]))
    kw["axis"] = axis
    return x, name, kw


@given(calls(), st.booleans())
def test_input_never_written(call: tuple[Array, str, dict[str, Any]], with_out: bool) -> None:
    """Byte for byte, whole buffers (padding of strided views included), for every layout."""
    x, name, kw = call
    f = ALL_OPS[name]
    for _layout, v in layout_variants(x):
        before, view_before = buffer_bytes(v), snapshot(v)
        result = f(v, **kw)
        if with_out and np.size(result):  # (an empty out: test_softmax.test_out_empty)
            want = np.asarray(result)
            out = np.zeros(want.shape, want.dtype)
            assert f(v, out=out, **kw) is out
        assert buffer_bytes(v) == before, f"{name} wrote to a {_layout} input"
        assert snapshot(v) == view_before


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_input_never_written_large(dtype: Any) -> None:
    """Inputs big enough for the threaded paths, as views with padding around them."""
    rng = np.random.default_rng(0)
    base = (rng.standard_normal((520, 530)) * 5).astype(dtype)
    for v in (base[5:-5, 10:-10].T, base[::-2, ::3], base[1:-1, 1:-1]):
        before = buffer_bytes(v)
        for name, f in ALL_OPS.items():
            for axis in (-1, 0):
                f(v, axis=axis)
            assert buffer_bytes(v) == before, name


def test_out_does_not_alias_the_input() -> None:
    """A fresh result never shares memory with the input, even for 1-element rows."""
    x = np.ones((5, 1))
    for name in ("softmax", "log_softmax"):
        r = ALL_OPS[name](x)
        assert not np.shares_memory(r, x)
        np.testing.assert_array_equal(x, 1.0)


@given(cases(dtypes=FLOAT_DTYPES))
def test_in_place_leaves_other_views_consistent(case: tuple[Array, Axis]) -> None:
    """out=x writes only x's elements: the padding around a strided x is untouched."""
    x, axis = case
    buf = np.full(tuple(2 * n + 1 for n in x.shape), 7, x.dtype)
    view = buf[tuple(slice(1, None, 2) for _ in x.shape)]
    view[...] = x
    ref = Ref(x, axis)
    pad = buf.copy()
    pad[tuple(slice(1, None, 2) for _ in x.shape)] = 0
    assert result_dtype(x.dtype) == x.dtype
    if x.size:
        assert sr.softmax(view, axis=axis, out=view) is view
    check_softmax(view, ref)
    after = buf.copy()
    after[tuple(slice(1, None, 2) for _ in x.shape)] = 0
    assert after.tobytes() == pad.tobytes(), "out=x wrote outside x"


# ------------------------------------------------------------------------------------------
# No copy of a strided input: peak RSS in a fresh process
# ------------------------------------------------------------------------------------------
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import softmax_rs as sr

    def hwm_mib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def reset():
        # Linux >= 4.0: writing 5 resets the peak RSS to the current RSS.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return hwm_mib()

    def growth(fn):
        before = reset()
        fn()
        return hwm_mib() - before

    rng = np.random.default_rng(0)
    x = rng.standard_normal((7000, 7500), dtype=np.float32)     # 200 MiB
    t = x.T                                                      # transposed view
    out_c = np.ones(t.shape, np.float32)                         # touched: resident
    out_t = np.ones(x.shape, np.float32).T
    small = np.ones(7500, np.float32)
    idx = np.ones(7500, np.intp)
    half = x[:2000]
    swapped = half.astype(half.dtype.newbyteorder())             # 57 MiB, byte-swapped
    out_h = np.ones(half.shape, np.float32)
    raw = np.zeros(half.nbytes + 1, np.uint8)[1:]
    unaligned = raw.view(np.float32).reshape(half.shape)         # 57 MiB, unaligned
    unaligned[...] = half
    x16 = x[:, :4000].astype(np.float16)                         # 53 MiB float16
    out16 = np.ones(x16.shape[::-1], np.float16)

    cases = {
        "control: a copy of the transposed view": lambda: np.ascontiguousarray(t),
        "softmax(x.T, out=C-order)": lambda: sr.softmax(t, out=out_c),
        "softmax(x.T, out=x-shaped.T)": lambda: sr.softmax(t, out=out_t),
        "log_softmax(x.T, axis=0, out=)": lambda: sr.log_softmax(t, axis=0, out=out_t),
        "softmax(x[:, ::-2], out=)": lambda: sr.softmax(x[:, ::-2], out=out_c.T[:, :3750]),
        "logsumexp(x.T)": lambda: sr.logsumexp(t, out=small),
        "argmax(x.T)": lambda: sr.argmax(t, out=idx),
        "softmax(byteswapped, out=)": lambda: sr.softmax(swapped, out=out_h),
        "softmax(unaligned.T, out=)": lambda: sr.softmax(unaligned.T, out=out_h.T),
        "softmax(float16.T, out=)": lambda: sr.softmax(x16.T, out=out16),
        "softmax(broadcast row, out=)": lambda: sr.softmax(
            np.broadcast_to(x[:1], x.shape), out=out_t.T
        ),
    }
    result = {name: growth(fn) for name, fn in cases.items()}
    json.dump(result, sys.stdout)
    """
)


def test_strided_input_is_not_copied() -> None:
    p = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300, check=False
    )
    assert p.returncode == 0, p.stderr
    growth: dict[str, float] = json.loads(p.stdout)
    control = growth.pop("control: a copy of the transposed view")
    assert control > 150, f"the measurement does not see a 200 MiB copy: {control:.1f} MiB"
    too_big = {k: round(v, 1) for k, v in growth.items() if v >= MAX_GROWTH_MIB}
    assert not too_big, f"peak RSS grew by (MiB): {too_big}"
