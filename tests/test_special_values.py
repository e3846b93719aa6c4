"""Special values exactly as API.md says, on every SIMD path, thread count and layout (issue 5).

Rows carrying the special cases (NaN, +inf, -inf, rows excluded by ``where``, ±0, subnormal
inputs and outputs, overflowing shifts) are planted among ordinary rows of one logical
(rows, d) matrix, which is then laid out several ways (last axis contiguous, short rows of
10, long rows over 65536 values, axis 0, Fortran order, negative / non-unit strides,
byte-swapped, float16, bfloat16). Every function's result is compared with an oracle that
implements the rules of API.md on top of a high-precision reference:

- a NaN in a row makes the row NaN (softmax, log_softmax, logsumexp);
- +inf entries share the mass: softmax 1/k there and 0 elsewhere, log_softmax -log k and
  -inf, logsumexp +inf;
- a row with no mass: all -inf → NaN by default, excluded by ``where`` → 0 / -inf by default,
  ``empty_rows="nan"`` / ``"zero"`` force one of the two; logsumexp -inf;
- entries excluded by ``where`` take no part (an excluded NaN or +inf changes nothing).

Exact values (0, ±inf, NaN, 1) must match exactly (softmax zeros are +0), the shared values
1/k and -log k within 1 ulp of the correctly rounded value, ordinary values within
``*_TOL_EPS`` (float16 / bfloat16: within 1 ulp of the correctly rounded value). Results
must be bit-identical for 1, 2 and 4 threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _numerics as nu
import _oracle as orc
import numpy as np
import numpy.typing as npt
import pytest
import softmax_rs as sr

Array = npt.NDArray[Any]

# -- tolerances for the ordinary (non-special) values in the planted matrices ------------
SOFTMAX_TOL_EPS = 8.0  # |y - p| <= 8 eps p + SUBNORMAL_TOL_ULPS smallest subnormals
SUBNORMAL_TOL_ULPS = 2.0  # a subnormal result may be rounded twice (exp, then the scale)
LOG_SOFTMAX_TOL_EPS = 8.0  # |y - l| <= 8 eps max(1, |l|)
LOGSUMEXP_TOL_EPS = 4.0  # |y - s| <= 4 eps max(1, |s|)
SHARED_ULP = 1  # 1/k, -log k, log k: within 1 ulp of the correctly rounded value
HALF_ULP = 1  # float16 / bfloat16 ordinary values: within 1 ulp of the correctly rounded one
TOL = orc.Tolerances(
    SOFTMAX_TOL_EPS,
    SUBNORMAL_TOL_ULPS,
    LOG_SOFTMAX_TOL_EPS,
    LOGSUMEXP_TOL_EPS,
    SHARED_ULP,
    HALF_ULP,
)
THREAD_COUNTS = (1, 2, 4)
EMPTY_ROWS = (None, "nan", "zero")
# -----------------------------------------------------------------------------------------

NAN, INF = np.nan, np.inf


# --------------------------------------------------------------------------------------
# Planted rows


@dataclass(frozen=True)
class Env:
    dtype: np.dtype[Any]
    d: int
    rng: np.random.Generator


def _normal(e: Env) -> Array:
    return e.rng.standard_normal(e.d) * 3.0


def _at(e: Env, where: str) -> int:
    return {"first": 0, "last": e.d - 1, "mid": e.d // 2}.get(where, int(e.rng.integers(e.d)))


def _put(row: Array, idx: Any, v: float) -> Array:
    row[idx] = v
    return row


def _some(e: Env, k: int) -> Array:
    return e.rng.choice(e.d, size=min(k, e.d), replace=False)


def _subnormal_outputs(e: Env) -> Array:
    # x - max in [ln(smallest subnormal) - 2, ln(smallest normal)]: results subnormal or 0.
    # (float16 / bfloat16 compute in float32: their results are rounded from float32.)
    fi = np.finfo(np.float32) if e.dtype.itemsize == 2 else np.finfo(e.dtype)
    lo = float(np.log(float(fi.smallest_subnormal))) - 2.0
    hi = float(np.log(float(fi.smallest_normal)))
    if e.dtype == nu.FLOAT16:
        lo, hi = float(np.log(2.0**-24)) - 2.0, float(np.log(2.0**-14))
    elif e.dtype == nu.BFLOAT16:
        lo, hi = float(np.log(2.0**-133)) - 2.0, float(np.log(2.0**-126))
    row = e.rng.uniform(lo, hi, e.d)
    row[_at(e, "rand")] = 0.0
    return row


def _huge(e: Env) -> Array:
    # values over the whole finite range: x - max overflows the dtype for some entries
    big = float(nu.finfo(e.dtype).max)
    row = e.rng.uniform(-1.0, 1.0, e.d) * big
    row[_at(e, "rand")] = 0.9 * big
    return row


# name -> (values, where mask or None). Values are float64, rounded to the dtype later.
PATTERNS: dict[str, Callable[[Env], tuple[Array, Array | None]]] = {
    "normal": lambda e: (_normal(e), None),
    "nan_rand": lambda e: (_put(_normal(e), _at(e, "rand"), NAN), None),
    "nan_first": lambda e: (_put(_normal(e), 0, NAN), None),
    "nan_last": lambda e: (_put(_normal(e), e.d - 1, NAN), None),
    "nan_and_inf": lambda e: (_put(_put(_normal(e), _some(e, 3), INF), _at(e, "rand"), NAN), None),
    "nan_and_neginf": lambda e: (_put(np.full(e.d, -INF), _at(e, "rand"), NAN), None),
    "inf_one": lambda e: (_put(_normal(e), _at(e, "rand"), INF), None),
    "inf_first": lambda e: (_put(_normal(e), 0, INF), None),
    "inf_last": lambda e: (_put(_normal(e), e.d - 1, INF), None),
    "inf_three": lambda e: (_put(_normal(e), _some(e, 3), INF), None),
    "inf_all": lambda e: (np.full(e.d, INF), None),
    "inf_and_neginf": lambda e: (
        _put(_put(_normal(e), _some(e, 2), -INF), _at(e, "last"), INF),
        None,
    ),
    "neginf_all": lambda e: (np.full(e.d, -INF), None),
    "neginf_some": lambda e: (_put(_normal(e), _some(e, e.d // 3), -INF), None),
    "neginf_all_but_one": lambda e: (_put(np.full(e.d, -INF), _at(e, "rand"), 1.25), None),
    "excluded_all": lambda e: (_normal(e), np.zeros(e.d, bool)),
    "excluded_some": lambda e: (_normal(e), e.rng.random(e.d) < 0.5),
    "excluded_all_but_one": lambda e: (_normal(e), _put(np.zeros(e.d), _at(e, "rand"), 1) > 0),
    "excluded_nan": lambda e: (
        _put(_normal(e), 1, NAN),
        _put(np.ones(e.d), 1, 0) > 0,
    ),
    "excluded_inf": lambda e: (_put(_normal(e), 0, INF), _put(np.ones(e.d), 0, 0) > 0),
    "excluded_and_neginf": lambda e: (
        _put(np.full(e.d, -INF), _some(e, e.d // 2), 2.0),
        _put(np.ones(e.d), _some(e, e.d), 0) > 0,  # everything excluded or -inf
    ),
    "zeros": lambda e: (np.zeros(e.d), None),
    "signed_zeros": lambda e: (np.where(e.rng.random(e.d) < 0.5, -0.0, 0.0), None),
    "neg_zero_max": lambda e: (_put(np.full(e.d, -INF), _at(e, "rand"), -0.0), None),
    "equal": lambda e: (np.full(e.d, 7.5), None),
    "subnormal_inputs": lambda e: (
        e.rng.integers(-40, 40, e.d) * float(nu.finfo(e.dtype).smallest_subnormal),
        None,
    ),
    "subnormal_among_normal": lambda e: (
        _put(_normal(e), _some(e, 4), float(nu.finfo(e.dtype).smallest_subnormal) * 3),
        None,
    ),
    "subnormal_outputs": lambda e: (_subnormal_outputs(e), None),
    "underflow_to_zero": lambda e: (
        _put(-e.rng.uniform(200, 300, e.d) * (4 if e.dtype == nu.FLOAT64 else 1), 0, 0.0),
        None,
    ),
    "huge_range": lambda e: (_huge(e), None),
}


def planted(dtype: np.dtype[Any], n: int, d: int, seed: int) -> tuple[Array, Array, Array]:
    """A (n, d) matrix of rows cycling through PATTERNS, as (values in dtype, where, names)."""
    rng = np.random.default_rng(seed)
    env = Env(dtype, d, rng)
    names = list(PATTERNS)
    x = np.empty((n, d), np.float64)
    w = np.ones((n, d), bool)
    kinds = np.empty(n, object)
    for i in range(n):
        name = names[i % len(names)] if i < len(names) or i % 3 == 0 else "normal"
        v, m = PATTERNS[name](env)
        x[i] = v
        if m is not None:
            w[i] = m
        kinds[i] = name
    with np.errstate(over="ignore"):
        xd = x.astype(dtype)
    return xd, w, kinds


# --------------------------------------------------------------------------------------
# Layouts: a logical (n, d) matrix laid out in memory, with the axis to reduce


@dataclass(frozen=True)
class Layout:
    name: str
    dtype: np.dtype[Any]
    n: int
    d: int

    def lay(self, logical: Array) -> tuple[Array, int]:
        """``logical`` (n, d) laid out; returns (array, axis)."""
        if self.name == "axis0":
            return np.ascontiguousarray(logical.T), 0
        if self.name == "fortran":
            return np.asfortranarray(logical), -1
        if self.name == "strided":
            # negative strides on both axes and every other element skipped; the skipped
            # elements are NaN so that a kernel ignoring the strides returns NaN rows.
            buf = np.full((self.n, 2 * self.d), np.nan, dtype=logical.dtype)
            if logical.dtype == np.bool_:
                buf = np.zeros((self.n, 2 * self.d), bool)
            v = buf[::-1, 1::2][:, ::-1]
            v[...] = logical
            return v, -1
        if self.name == "byteswapped" and logical.dtype != np.bool_:
            return logical.astype(logical.dtype.newbyteorder()), -1
        if self.name == "3d":
            # (2, n/2, d) reduced over the middle axis of a (2, d, n/2)-ordered buffer
            h = self.n // 2
            return np.ascontiguousarray(logical.reshape(2, h, self.d).transpose(0, 2, 1)), 1
        return logical, -1

    def back(self, result: Array, axis: int, reduced: bool) -> Array:
        """A result of the laid-out array back to the logical (n, d) / (n,) form."""
        if reduced:
            return result.reshape(self.n)
        if self.name == "axis0":
            return result.T
        if self.name == "3d":
            return result.transpose(0, 2, 1).reshape(self.n, self.d)
        return result


LAYOUTS = [
    Layout("rows", nu.FLOAT32, 80, 1000),
    Layout("rows", nu.FLOAT64, 80, 1000),
    Layout("short10", nu.FLOAT32, 8192, 10),
    Layout("short10", nu.FLOAT64, 8192, 10),
    Layout("long", nu.FLOAT32, len(PATTERNS), 66000),
    Layout("long", nu.FLOAT64, len(PATTERNS), 66000),
    Layout("axis0", nu.FLOAT32, 96, 1000),
    Layout("axis0", nu.FLOAT64, 96, 1000),
    Layout("fortran", nu.FLOAT32, 80, 1000),
    Layout("strided", nu.FLOAT32, 80, 1000),
    Layout("strided", nu.FLOAT64, 4096, 10),
    Layout("byteswapped", nu.FLOAT64, 80, 1000),
    Layout("3d", nu.FLOAT32, 96, 700),
    Layout("float16", nu.FLOAT16, 80, 1000),
    Layout("bfloat16", nu.BFLOAT16, 80, 1000),
]


def _layout_id(lay: Layout) -> str:
    return f"{lay.name}-{lay.dtype.name}-{lay.n}x{lay.d}"


def _bits(a: Array) -> bytes:
    return np.ascontiguousarray(a).tobytes()


@pytest.mark.parametrize("use_where", [False, True], ids=["no_where", "where"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=_layout_id)
def test_special_values_on_every_isa_thread_count_and_layout(
    layout: Layout, use_where: bool
) -> None:
    x2, w2, kinds = planted(layout.dtype, layout.n, layout.d, seed=layout.n + layout.d)
    if not use_where:
        w2 = np.ones_like(w2)
    x, axis = layout.lay(x2)
    w = layout.lay(w2)[0] if use_where else None
    failures: list[str] = []
    an = orc.analyse(x2, w2)
    for fn in ("softmax", "log_softmax", "logsumexp"):
        modes: tuple[str | None, ...] = EMPTY_ROWS if fn != "logsumexp" else (None,)
        for mode in modes:
            exp = orc.oracle(an, fn, mode)
            kwargs: dict[str, Any] = {"axis": axis}
            if use_where:
                kwargs["where"] = w
            if mode is not None:
                kwargs["empty_rows"] = mode
            checked: set[bytes] = set()
            for isa in nu.isas():
                first: bytes | None = None
                with nu.isa(isa):
                    for t in THREAD_COUNTS:
                        with nu.num_threads(t):
                            got = getattr(sr, fn)(x, **kwargs)
                        want_dtype = layout.dtype.newbyteorder("=")
                        if got.dtype != want_dtype:
                            failures.append(f"{fn} dtype {got.dtype}, expected {want_dtype}")
                            continue
                        res = layout.back(got, axis, fn == "logsumexp")
                        tag = f"[{isa}, {t} threads, empty_rows={mode}]"
                        bits = _bits(res)
                        if first is None:
                            first = bits
                        elif bits != first:
                            failures.append(f"{tag} {fn}: not bit-identical to 1 thread")
                        if bits in checked:
                            continue  # the same bits as a result already checked
                        checked.add(bits)
                        for msg in orc.check(res, exp, fn, layout.dtype, TOL):
                            bad_rows = set(orc.rows_in(msg))
                            names = sorted({str(kinds[r]) for r in bad_rows if r < len(kinds)})
                            failures.append(f"{tag} {msg} rows {names}")
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} failures)"


def test_oracle_and_checker_catch_deviations() -> None:
    """The checker is not vacuous: breaking one special value of each kind is reported."""
    dtype = nu.FLOAT32
    x, w, _ = planted(dtype, 64, 12, seed=1)
    an = orc.analyse(x, w)
    for fn in ("softmax", "log_softmax", "logsumexp"):
        exp = orc.oracle(an, fn, None)
        good = getattr(sr, fn)(x, where=w)
        assert orc.check(good, exp, fn, dtype, TOL) == []
        for c in (orc.NAN_C, orc.EXACT_C, orc.SHARED_C, orc.APPROX_C):
            idx = np.argwhere(exp.cat == c)
            if not len(idx):
                continue
            bad = good.copy()
            i = tuple(idx[0])
            bad[i] = 0.5 if np.isnan(bad[i]) or bad[i] != 0.5 else 0.25
            if c == orc.APPROX_C:
                bad[i] = np.nextafter(np.float32(bad[i]), np.float32(np.inf))
                bad[i] *= np.float32(1 + 1e-5)
            assert orc.check(bad, exp, fn, dtype, TOL), (fn, c)


# --------------------------------------------------------------------------------------
# Zero-length axes, 0-d arrays, argmax


EMPTY_CASES: list[tuple[tuple[int, ...], Any]] = [
    ((5, 0), -1),
    ((0, 5), -1),
    ((0, 5), 0),
    ((3, 0, 4), 1),
    ((3, 0, 4), (0, 2)),
    ((3, 0, 4), (1, 2)),
    ((0,), -1),
    ((0,), None),
    ((2, 0), None),
]


@pytest.mark.parametrize(("shape", "axis"), EMPTY_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=str)
def test_zero_length_axes(shape: tuple[int, ...], axis: Any, dtype: Any) -> None:
    x = np.zeros(shape, dtype)
    axes = tuple(range(x.ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    reduced = tuple(n for i, n in enumerate(shape) if i not in {a % x.ndim for a in axes})
    kept = tuple(1 if i in {a % x.ndim for a in axes} else n for i, n in enumerate(shape))
    for _ in nu.each_config(THREAD_COUNTS):
        for fn in ("softmax", "log_softmax"):
            for mode in EMPTY_ROWS:
                r = getattr(sr, fn)(x, axis=axis, empty_rows=mode)
                assert r.shape == shape and r.dtype == x.dtype, (fn, r.shape, r.dtype)
        lse = np.asarray(sr.logsumexp(x, axis=axis))
        assert lse.shape == reduced and lse.dtype == x.dtype
        # over a zero-length axis logsumexp is -inf (for every row there is)
        if 0 in tuple(shape[a % x.ndim] for a in axes):
            assert np.all(np.isneginf(lse)), lse
        lk = sr.logsumexp(x, axis=axis, keepdims=True)
        assert lk.shape == kept
        where = np.zeros(shape, bool)
        assert np.asarray(sr.logsumexp(x, axis=axis, where=where)).shape == reduced


@pytest.mark.parametrize(("shape", "axis"), EMPTY_CASES, ids=str)
def test_zero_length_axes_with_out(shape: tuple[int, ...], axis: Any) -> None:
    """An empty ``out`` of the right shape is accepted (NumPy gives empty arrays zero
    strides: they overlap nothing)."""
    x = np.zeros(shape, np.float32)
    for fn in ("softmax", "log_softmax"):
        out = np.ones(shape, np.float32)
        assert getattr(sr, fn)(x, axis=axis, out=out) is out
    lse = sr.logsumexp(x, axis=axis)
    out = np.zeros(np.shape(lse), np.float32)
    assert sr.logsumexp(x, axis=axis, out=out) is out
    np.testing.assert_array_equal(out, lse)


def test_logsumexp_of_zero_length_axis_is_minus_inf() -> None:
    for dtype in (np.float32, np.float64):
        assert np.isneginf(sr.logsumexp(np.zeros((0,), dtype)))
        np.testing.assert_array_equal(sr.logsumexp(np.zeros((3, 0), dtype)), [-np.inf] * 3)
        np.testing.assert_array_equal(
            sr.logsumexp(np.zeros((3, 0), dtype), keepdims=True), [[-np.inf]] * 3
        )


ZERO_D: list[tuple[float, float, float, float]] = [
    # x, softmax, log_softmax, logsumexp
    (5.0, 1.0, 0.0, 5.0),
    (-0.0, 1.0, 0.0, -0.0),
    (np.inf, 1.0, 0.0, np.inf),
    (-np.inf, np.nan, np.nan, -np.inf),
    (np.nan, np.nan, np.nan, np.nan),
    (1e-310, 1.0, 0.0, 1e-310),
]


@pytest.mark.parametrize(("v", "s", "ls", "lse"), ZERO_D, ids=str)
def test_zero_d_with_axis_none(v: float, s: float, ls: float, lse: float) -> None:
    x = np.array(v)
    for _ in nu.each_config(THREAD_COUNTS):
        np.testing.assert_array_equal(sr.softmax(x, axis=None), s)
        np.testing.assert_array_equal(sr.log_softmax(x, axis=None), ls)
        np.testing.assert_array_equal(sr.logsumexp(x, axis=None), lse)
        assert sr.softmax(x, axis=None).shape == ()
    if v == -np.inf:
        assert sr.softmax(x, axis=None, empty_rows="zero") == 0.0
        assert sr.log_softmax(x, axis=None, empty_rows="zero") == -np.inf


def test_signed_zero_rows_equal_unsigned() -> None:
    """±0 entries are the same value: the results equal those of all +0."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for d in (3, 10, 33, 1000, 70000):
            neg = np.where(rng.random((4, d)) < 0.5, -0.0, 0.0).astype(dtype)
            pos = np.zeros((4, d), dtype)
            want = nu.correctly_rounded(np.full((4, d), 1 / np.longdouble(d)), dtype)
            for cfg in nu.each_config(THREAD_COUNTS):
                for fn in ("softmax", "log_softmax", "logsumexp"):
                    a, b = getattr(sr, fn)(neg), getattr(sr, fn)(pos)
                    np.testing.assert_array_equal(a, b, err_msg=f"{fn} {cfg}")
                dist = nu.ulp_distance(sr.softmax(pos), want)
                assert dist.max() <= SHARED_ULP, (d, cfg)
                np.testing.assert_array_equal(sr.argmax(neg), np.argmax(neg, axis=-1))


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64, nu.BFLOAT16], ids=lambda d: np.dtype(d).name
)
def test_argmax_special_values_like_numpy(dtype: Any) -> None:
    rng = np.random.default_rng(5)
    for d in (10, 1000, 70000):
        x = (rng.standard_normal((40, d)) * 3).astype(dtype)
        x[1, 5] = np.nan
        x[1, 7] = np.nan
        x[2, d - 1] = np.nan
        x[3, :] = -np.inf
        x[4, [2, 9]] = np.inf
        x[5, :] = 0.0
        x[5, 3] = -0.0
        x[6, 4] = np.inf
        x[6, 8] = np.nan
        x[7, :] = np.nan
        for cfg in nu.each_config(THREAD_COUNTS):
            for axis in (-1, 0):
                np.testing.assert_array_equal(
                    sr.argmax(x, axis=axis), np.argmax(x, axis=axis), err_msg=f"{d} {cfg}"
                )
