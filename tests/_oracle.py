"""An oracle for the softmax family following API.md, and a checker of results against it.

Shared by ``test_special_values.py`` and the fuzz target. Rows are the last axis of a 2-D
(rows, d) matrix with an inclusion mask ``w`` (``where``); the values are those of the input
dtype (optionally divided by a per-row temperature), the reference is computed in the
working precision of ``_numerics`` (float64 for float32 / half inputs, longdouble for
float64). Each expected element gets a category:

- ``NAN_C``: must be NaN;
- ``EXACT_C``: must equal the value exactly (0, ±inf, 1, ...);
- ``SHARED_C``: 1/k, -log k: within ``Tolerances.shared_ulp`` of the correctly rounded value;
- ``APPROX_C``: an ordinary value, within the tolerances (half dtypes: ``half_ulp`` ulp of the
  correctly rounded value);
- ``EITHER_C``: a row with no mass made of excluded and -inf entries, whose default API.md
  leaves open: all NaN or all 0 / -inf.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import _numerics as nu
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

NAN_C, EXACT_C, SHARED_C, APPROX_C, EITHER_C = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Tolerances:
    softmax_eps: float = 8.0  # |y - p| <= softmax_eps eps p + subnormal_ulps smallest subnormals
    subnormal_ulps: float = 2.0  # a subnormal result may be rounded twice (exp, then the scale)
    log_softmax_eps: float = 8.0  # |y - l| <= log_softmax_eps eps max(1, |l|)
    logsumexp_eps: float = 4.0  # |y - s| <= logsumexp_eps eps max(1, |s|)
    shared_ulp: int = 1
    half_ulp: int = 1


@dataclass
class Expected:
    value: Array  # working precision; NaN where NaN is expected
    cat: Array  # per element: NAN_C, EXACT_C, SHARED_C, APPROX_C, EITHER_C
    scale: Array | None = None  # per-element conditioning factor of the tolerance (or None)


@dataclass
class Analysis:
    """The row classification and high-precision reference of a (rows, d) matrix."""

    a: Array  # the input (divided by the temperature) in the working precision
    dtype: np.dtype[Any]  # the result dtype
    nan_row: Array
    pinf: Array
    k: Array  # number of included +inf per row
    live: Array  # included finite entries
    excluded_all: Array
    pure_neginf: Array  # every entry -inf
    mixed: Array  # some entries excluded, the others -inf
    empty: Array
    finite_rows: Array
    m: Array
    ref: nu.Reference | None
    scale: Array | None  # 1 + |x/T - max| where a temperature applies, else None


def analyse(
    x: Array, w: Array, *, dtype: Any = None, temperature: Array | float | None = None
) -> Analysis:
    """Classify the rows of the 2-D ``x`` (values of the input, any real dtype) under the
    mask ``w``; ``dtype`` is the result dtype (default: ``x``'s), ``temperature`` a scalar or
    one value per row."""
    rdt = np.dtype(dtype) if dtype is not None else x.dtype
    wp = nu.working_dtype(rdt)
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.asarray(x).astype(wp)
    scaled = temperature is not None and not (np.ndim(temperature) == 0 and temperature == 1)
    if temperature is not None and scaled:
        t = (
            np.asarray(temperature, dtype=wp).reshape(-1, 1)
            if np.ndim(temperature)
            else temperature
        )
        with np.errstate(over="ignore", invalid="ignore"):
            a = a / t
    nan_row = (np.isnan(a) & w).any(axis=1)
    pinf = np.isposinf(a) & w
    k = pinf.sum(axis=1)
    live = w & np.isfinite(a)
    excluded_all = ~w.any(axis=1)
    neginf_all = w.any(axis=1) & ~(w & ~np.isneginf(a)).any(axis=1)
    empty = ~live.any(axis=1) & (k == 0) & ~nan_row
    finite_rows = ~nan_row & (k == 0) & ~empty
    # the reference on the live entries of the rows with finite mass
    safe = np.where(live, a, -np.inf)
    m = np.where(finite_rows, safe.max(axis=1, initial=-np.inf), 0)
    with np.errstate(over="ignore", invalid="ignore"):
        fr = finite_rows
        ref = nu.reference(a[fr], -1, wp, live=live[fr]) if fr.any() else None
        scale = 1 + np.abs(np.where(live, a - m[:, None], 0)) if scaled else None
    return Analysis(
        a,
        rdt,
        nan_row,
        pinf,
        k,
        live,
        np.asarray(excluded_all),
        np.asarray(neginf_all & w.all(axis=1)),
        np.asarray(neginf_all & ~w.all(axis=1)),
        empty,
        finite_rows,
        m,
        ref,
        scale,
    )


def oracle(an: Analysis, fn: str, empty_rows: str | None) -> Expected:
    """What API.md says ``fn`` gives for the rows of an analysed matrix."""
    a, nan_row, pinf, k, live = an.a, an.nan_row, an.pinf, an.k, an.live
    excluded_all, pure_neginf, mixed, empty = an.excluded_all, an.pure_neginf, an.mixed, an.empty
    finite_rows, m, ref = an.finite_rows, an.m, an.ref
    wp = a.dtype
    n, d = a.shape

    if fn == "logsumexp":
        val = np.full(n, np.nan, wp)
        cat = np.full(n, NAN_C)
        val[k > 0] = np.inf
        cat[(k > 0) & ~nan_row] = EXACT_C
        val[empty] = -np.inf
        cat[empty] = EXACT_C
        if ref is not None:
            val[finite_rows] = ref.logsumexp
            cat[finite_rows] = APPROX_C
        val[nan_row] = np.nan
        cat[nan_row] = NAN_C
        return Expected(val, cat)

    zero = 0.0 if fn == "softmax" else -np.inf
    val = np.full((n, d), np.nan, wp)
    cat = np.full((n, d), NAN_C)
    # +inf rows: the mass shared equally by the +inf entries
    ir = (k > 0) & ~nan_row
    kk = np.maximum(k, 1)[:, None].astype(wp)
    shared = (1 / kk) if fn == "softmax" else -np.log(kk)
    val[ir] = np.where(pinf[ir], np.broadcast_to(shared[ir], (int(ir.sum()), d)), zero)
    cat[ir] = np.where(pinf[ir] & (k[ir] > 1)[:, None], SHARED_C, EXACT_C)
    # rows without mass
    for rows, kind in ((excluded_all, "zero"), (pure_neginf, "nan")):
        sel = rows & empty
        mode = empty_rows or kind
        val[sel] = zero if mode == "zero" else np.nan
        cat[sel] = EXACT_C if mode == "zero" else NAN_C
    sel = mixed & empty
    if empty_rows is None:
        cat[sel] = EITHER_C
    else:
        val[sel] = zero if empty_rows == "zero" else np.nan
        cat[sel] = EXACT_C if empty_rows == "zero" else NAN_C
    # finite rows
    if ref is not None:
        r = ref.softmax if fn == "softmax" else ref.log_softmax
        lv = live[finite_rows]
        val[finite_rows] = np.where(lv, r, zero)
        c = np.where(lv, APPROX_C, EXACT_C)
        # a single live entry: exactly 1 (softmax) / 0 (log_softmax), the others 0 / -inf
        single = lv.sum(axis=1) == 1
        c[single] = EXACT_C
        one = 1.0 if fn == "softmax" else 0.0
        val[np.flatnonzero(finite_rows)[single]] = np.where(lv[single], one, zero)
        # rows of equal live values: 1/n, -log n (the only rounding is that of 1/n, log n)
        eq = np.all(np.where(lv, a[finite_rows] == m[finite_rows][:, None], True), axis=1)
        eq &= ~single
        c[eq] = np.where(lv[eq], SHARED_C, EXACT_C)
        cat[finite_rows] = c
    return Expected(val, cat, an.scale)


def check(
    got: Array, exp: Expected, fn: str, dtype: Any, tol: Tolerances | None = None
) -> list[str]:
    """The discrepancies between ``got`` and the oracle, as messages (empty: all good)."""
    tol = tol or Tolerances()
    dtype = np.dtype(dtype)
    got = np.asarray(got)
    if got.shape != exp.value.shape:
        return [f"{fn}: shape {got.shape}, expected {exp.value.shape}"]
    shape = got.shape
    gflat = got.reshape(-1)
    vflat = exp.value.reshape(-1)
    cflat = exp.cat.reshape(-1)
    sflat = exp.scale.reshape(-1) if exp.scale is not None else None
    wp = vflat.dtype
    half = dtype.itemsize == 2
    msgs: list[str] = []

    def sub(c: int) -> tuple[Array, Array, Array, Array]:
        idx = np.flatnonzero(cflat == c)
        raw = gflat[idx]
        g = raw.astype(np.float32 if half else dtype).astype(wp)
        return idx, raw, g, vflat[idx]

    def report(idx: Array, bad: Array, what: str) -> None:
        if bad.any():
            first = idx[np.flatnonzero(bad)[:3]]
            where = ", ".join(
                f"{tuple(int(i) for i in np.unravel_index(f, shape))}: "
                f"got {gflat[f]!r} want {vflat[f]!r}"
                for f in first
            )
            msgs.append(f"{fn}: {int(bad.sum())} {what} ({where})")

    idx, _, g, v = sub(NAN_C)
    report(idx, ~np.isnan(g), "entries should be NaN")
    idx, _, g, v = sub(EXACT_C)
    report(idx, ~((g == v) | (np.isnan(g) & np.isnan(v))), "entries should be exact")
    idx, raw, g, v = sub(SHARED_C)
    if idx.size:
        want = nu.correctly_rounded(v, dtype)
        report(idx, nu.ulp_distance(raw, want) > tol.shared_ulp, "shared values off by > 1 ulp")
    idx, raw, g, v = sub(APPROX_C)
    scale = sflat[idx] if sflat is not None else 1.0
    if idx.size and half and sflat is None:
        want = nu.correctly_rounded(v, dtype)
        report(idx, nu.ulp_distance(raw, want) > tol.half_ulp, "values off by > 1 ulp")
    elif idx.size:
        e = nu.eps(dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(g - v)
            if fn == "softmax":
                tiny_sub = float(nu.finfo(dtype).smallest_subnormal)
                t = tol.softmax_eps * e * v * scale + tol.subnormal_ulps * tiny_sub
                if half:  # plus the final rounding to the half dtype
                    t = t + np.abs(v) * e / 2 + tiny_sub
            elif fn == "log_softmax":
                t = tol.log_softmax_eps * e * np.maximum(1, np.abs(v)) * scale
            else:
                t = tol.logsumexp_eps * e * np.maximum(1, np.abs(v))
            bad = ~(err <= t)
            # a true value beyond the dtype's range (huge_range) must give the overflow
            vd = v.astype(dtype)
        bad &= ~(np.isinf(vd) & (raw == vd))
        report(idx, bad, "values outside the tolerance")
    eith = exp.cat == EITHER_C
    if eith.any():
        g2 = got.reshape(len(eith), -1)
        zero = 0.0 if fn == "softmax" else -np.inf
        for r in np.flatnonzero(eith.reshape(len(eith), -1).any(axis=1)):
            gr = g2[r].astype(np.float64)
            if not (np.isnan(gr).all() or (gr == zero).all()):
                msgs.append(f"{fn}: row {r} (-inf and excluded) is neither all NaN nor all {zero}")
    if fn == "softmax":
        gf = gflat.astype(np.float32) if half else gflat
        neg = np.flatnonzero(~np.isnan(gf) & np.signbit(gf))
        report(neg, np.ones(neg.size, bool), "softmax results have the sign bit set")
    return msgs


def rows_in(msg: str) -> list[int]:
    """Row numbers of the indices a :func:`check` message reports ('(r, c): ...')."""
    return [int(r) for r in re.findall(r"\((\d+)[,)]", msg)]
