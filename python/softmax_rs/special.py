"""SciPy drop-in: ``from softmax_rs import special`` replaces ``from scipy import special``.

:func:`softmax`, :func:`log_softmax`, :func:`logsumexp`, :func:`expit` and :func:`log_expit`
have the signatures, defaults (``axis=None``: over all axes), result dtypes, shapes, special
values and exception types of ``scipy.special`` 1.17. Real float16/float32/float64/bfloat16
and integer input run on the Rust core; everything else SciPy accepts (complex, longdouble,
``b=`` with negative weights, ``axis=()``, object arrays, ...) goes through a plain NumPy
path that follows SciPy's algorithm. SciPy itself is not needed.

Known, deliberate differences (SciPy's results there are artefacts, not specifications):

- integer ``softmax``/``log_softmax`` compute ``x - max(x)`` without integer wrap-around
  (SciPy computes it in the integer dtype, so unsigned input gives NaN); the result dtype
  is still SciPy's (``int8 -> float16``, ``int16 -> float32``, wider -> float64);
- float16 and bfloat16 are computed in float32 (more accurate than SciPy's float16);
- ``logsumexp`` accepts bfloat16 and empty multi-dimensional input (SciPy raises there).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.exceptions import AxisError

from softmax_rs._core import log_softmax as _core_log_softmax
from softmax_rs._core import logsumexp as _core_logsumexp
from softmax_rs._core import softmax as _core_softmax

__all__ = ["expit", "log_expit", "log_softmax", "logsumexp", "softmax"]

Axis = int | tuple[int, ...] | None


# --------------------------------------------------------------------------- helpers


def _normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """Axes as NumPy reductions accept them: int, tuple of ints or None (all axes)."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    out: list[int] = []
    for item in items:
        ax = operator.index(item)
        if not -ndim <= ax < ndim:
            raise AxisError(ax, ndim)
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(out)


def _is_core_float(dt: np.dtype[Any]) -> bool:
    # any byte order; not longdouble (even where it is 8 bytes wide)
    return (dt.kind == "f" and dt.char in "efd") or (dt.kind == "V" and dt.name == "bfloat16")


def _core_axis(axes: tuple[int, ...]) -> int | tuple[int, ...]:
    return axes[0] if len(axes) == 1 else axes


def _scalarize(r: Any) -> Any:
    """NumPy's convention: a 0-d result is returned as a NumPy scalar."""
    if isinstance(r, np.ndarray) and r.ndim == 0:
        return r[()]
    return r


# --------------------------------------------------------------------------- softmax


def _np_softmax(a: npt.NDArray[Any], axis: Axis) -> Any:
    """SciPy's algorithm, in NumPy (complex, longdouble, bool, 0-d, empty, axis=())."""
    shift = np.max(a, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        e = np.exp(a - shift)
        return e / np.sum(e, axis=axis, keepdims=True)


def _np_log_softmax(a: npt.NDArray[Any], axis: Axis) -> Any:
    shift = np.max(a, axis=axis, keepdims=True)
    if shift.ndim > 0:
        shift[~np.isfinite(shift)] = 0
    elif not np.isfinite(shift):
        shift = 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        tmp = a - shift
        s = np.log(np.sum(np.exp(tmp), axis=axis, keepdims=True))
        return tmp - s


def _int_result_dtype(dt: np.dtype[Any]) -> np.dtype[Any]:
    """The float dtype ``np.exp`` gives for an integer dtype (SciPy's result dtype)."""
    return np.exp(np.zeros(0, dtype=dt)).dtype


def _core_path_ok(a: npt.NDArray[Any], axes: tuple[int, ...]) -> bool:
    kind = a.dtype.kind
    return (kind in "iu" or _is_core_float(a.dtype)) and a.ndim > 0 and a.size > 0 and len(axes) > 0


def _posinf_rows(a: npt.NDArray[Any], axes: tuple[int, ...]) -> npt.NDArray[np.bool_] | None:
    """Rows (keepdims) whose maximum is +inf, or None if there are none."""
    if a.dtype.kind in "iu":
        return None
    rows = np.max(a, axis=axes, keepdims=True) == np.inf
    return rows if bool(np.any(rows)) else None


def softmax(x: npt.ArrayLike, axis: Axis = None) -> Any:
    r"""Compute the softmax function, as ``scipy.special.softmax``.

    ``exp(x) / sum(exp(x))`` over ``axis`` (an int, a tuple of ints, or None: the whole
    array), computed without overflow. The result has the shape of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_rs import special
    >>> special.softmax(np.array([1000.0, 0.0, 0.0]))
    array([1., 0., 0.])
    >>> special.softmax(np.log([[1.0, 3.0], [1.0, 1.0]]), axis=1)
    array([[0.25, 0.75],
           [0.5 , 0.5 ]])
    """
    a = np.asarray(x)
    if not (a.dtype.kind in "iu" or _is_core_float(a.dtype)):
        return _np_softmax(a, axis)
    axes = _normalize_axes(axis, a.ndim)
    if not _core_path_ok(a, axes):
        return _np_softmax(a, axis)
    r = _core_softmax(a, axis=_core_axis(axes))
    if a.dtype.kind in "iu":
        return r.astype(_int_result_dtype(a.dtype), copy=False)
    rows = _posinf_rows(a, axes)
    if rows is not None:
        # SciPy: inf - inf is NaN, so a row holding +inf is NaN throughout.
        r[np.broadcast_to(rows, r.shape)] = np.nan
    return r


def log_softmax(x: npt.ArrayLike, axis: Axis = None) -> Any:
    r"""Compute the logarithm of the softmax function, as ``scipy.special.log_softmax``.

    ``x - log(sum(exp(x)))`` over ``axis`` (an int, a tuple of ints, or None: the whole
    array), accurate where ``np.log(softmax(x))`` would underflow.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_rs import special
    >>> special.log_softmax(np.array([1000.0, 1.0]))
    array([   0., -999.])
    >>> float(special.log_softmax(2.5))
    0.0
    """
    a = np.asarray(x)
    if not (a.dtype.kind in "iu" or _is_core_float(a.dtype)):
        return _np_log_softmax(a, axis)
    axes = _normalize_axes(axis, a.ndim)
    if not _core_path_ok(a, axes):
        return _np_log_softmax(a, axis)
    r = _core_log_softmax(a, axis=_core_axis(axes))
    if a.dtype.kind in "iu":
        return r.astype(_int_result_dtype(a.dtype), copy=False)
    rows = _posinf_rows(a, axes)
    if rows is not None:
        # SciPy: the +inf entries of such a row are inf - inf = NaN, the others -inf.
        r[np.broadcast_to(rows, r.shape) & (a == np.inf)] = np.nan
    return r


# --------------------------------------------------------------------------- logsumexp


def _promote(a: Any, b: Any) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """SciPy's promotion: result_type(a, b, 1.0), then broadcast a and b together."""
    if a is None:
        raise TypeError("logsumexp() argument 'a' must be array-like, not None")
    args = [np.asarray(v) if np.iterable(v) else v for v in (a, b)]
    dtype = np.result_type(*[v for v in args if v is not None], 1.0)
    aa = np.asarray(args[0], dtype=dtype)
    if b is None:
        return aa, None
    bb = np.asarray(args[1], dtype=dtype)
    if aa.shape != bb.shape:
        try:
            shape = np.broadcast_shapes(aa.shape, bb.shape)
        except ValueError as e:
            raise ValueError("Array shapes are incompatible for broadcasting.") from e
        aa = np.broadcast_to(aa, shape)
        bb = np.broadcast_to(bb, shape)
    return aa, bb


def _wrap_radians(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Angles into (-pi, pi], keeping the relative precision of small ones."""
    wrapped = -((np.pi - x) % (2 * np.pi) - np.pi)
    return np.where(np.abs(x) < np.pi, x, wrapped)


def _as_complex_part(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return x.astype(np.complex64 if x.dtype == np.float32 else np.complex128)


def _max_real_part(
    a: npt.NDArray[Any], axes: tuple[int, ...]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """The maximum (by real part) and a mask of the element(s) taken as the maximum.

    Real input: every element equal to the maximum. Complex input: one element (the last
    in C order) among those with the largest real part.
    """
    if a.dtype.kind != "c":
        top = np.max(a, axis=axes, keepdims=True)
        return top, a == top
    re = np.real(a)
    mask = re == np.max(re, axis=axes, keepdims=True)
    pos = np.where(mask, np.arange(a.size).reshape(a.shape), -1)
    mask = pos == np.max(pos, axis=axes, keepdims=True)
    top = np.sum(np.where(mask, a, 0), axis=axes, keepdims=True, dtype=a.dtype)
    return top, mask


def _np_logsumexp(
    a: npt.NDArray[Any],
    b: npt.NDArray[Any] | None,
    axes: tuple[int, ...],
    return_sign: bool,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """SciPy's algorithm (keepdims shapes): max term split off, log1p of the rest."""
    real = a.dtype.kind != "c"
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Direct evaluation, used where the stable one is not finite (IEEE/C99 limits).
        direct = np.sum(np.exp(a) if b is None else b * np.exp(a), axis=axes, keepdims=True)
        sgn_direct = np.sign(direct) if return_sign else None
        out_direct = np.log(np.abs(direct) if return_sign else direct)

        if b is not None:
            # a zero weight removes its term, even an infinite or NaN one
            a = np.where(b == 0, -np.inf, a)
        top, is_top = _max_real_part(a, axes)
        rest = np.where(is_top, -np.inf, a)
        top_w = is_top.astype(a.dtype) if b is None else b * is_top
        m = np.sum(top_w, axis=axes, keepdims=True, dtype=a.dtype)
        terms = np.exp(rest - top) if b is None else b * np.exp(rest - top)
        s = np.sum(terms, axis=axes, keepdims=True, dtype=terms.dtype)
        s = np.where(s == 0, s, s / m)
        sgn = np.sign(s + 1) * np.sign(m)
        if real:
            s = np.where(s < -1, -s - 2, s)
            m = np.abs(m)
        else:
            sgn = sgn * np.exp(np.imag(top) * 1.0j)
        out = np.log1p(s) + np.log(m) + top
        if return_sign:
            out = np.real(out)
        elif real:
            out = np.where(sgn < 0, np.nan, out)
    finite = np.isfinite(out)
    result: npt.NDArray[Any] = np.where(finite, out, out_direct)
    if return_sign:
        assert sgn_direct is not None
        sign: npt.NDArray[Any] = np.where(finite, sgn, sgn_direct)
        return result, sign
    return result, None


def logsumexp(
    a: npt.ArrayLike,
    axis: Axis = None,
    b: npt.ArrayLike | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
) -> Any:
    """Compute the log of the sum of exponentials of input elements.

    As ``scipy.special.logsumexp``: ``log(sum(b * exp(a)))`` over ``axis`` (an int, a
    tuple of ints, or None: all elements), without overflow. ``b`` (broadcast against
    ``a``) may be negative; then ``return_sign=True`` returns ``(log|sum|, sign)`` and
    ``return_sign=False`` gives NaN where the sum is negative. Integer input gives float64.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_rs import special
    >>> float(special.logsumexp(np.array([1000.0, 1000.0])))  # 1000 + log(2)
    1000.6931471805599
    >>> round(float(special.logsumexp([0.0, 0.0], b=[3.0, 1.0])), 12)  # log(4)
    1.38629436112
    >>> r, sign = special.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> float(sign)
    -1.0
    """
    aa, bb = _promote(a, b)
    aa = np.atleast_1d(aa)
    if bb is not None:
        bb = np.atleast_1d(bb)
    axes = _normalize_axes(axis, aa.ndim)
    dtype = aa.dtype
    sgn: npt.NDArray[Any] | None
    if aa.size == 0:
        shape = tuple(1 if i in axes else n for i, n in enumerate(aa.shape))
        out = np.full(shape, -np.inf, dtype=dtype)
        sgn = np.sign(out)
    elif _is_core_float(dtype) and len(axes) > 0 and (bb is None or not bool(np.any(bb < 0))):
        out, sgn = _lse_core(aa, bb, axes, return_sign)
    else:
        out, sgn = _np_logsumexp(aa, bb, axes, return_sign)
    if dtype.kind == "c":
        if return_sign and sgn is not None:
            sgn = np.real(sgn) + _as_complex_part(_wrap_radians(np.imag(sgn))) * 1j
        else:
            out = np.real(out) + _as_complex_part(_wrap_radians(np.imag(out))) * 1j
    if not keepdims:
        out = np.squeeze(out, axis=axes)
        if sgn is not None:
            sgn = np.squeeze(sgn, axis=axes)
    if return_sign:
        return _scalarize(out), _scalarize(sgn)
    return _scalarize(out)


def _lse_core(
    a: npt.NDArray[Any],
    b: npt.NDArray[Any] | None,
    axes: tuple[int, ...],
    return_sign: bool,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """Real input with no (or non-negative) weights, on the Rust core (keepdims shapes).

    With weights, ``log(sum(b * exp(a)))`` is the logsumexp of ``a + log(b)`` over the
    entries with ``b != 0``. Like SciPy, a result that is not finite is replaced by the
    direct ``log(sum(b * exp(a)))`` (so e.g. ``0 * inf`` gives NaN there).
    """
    dtype = a.dtype
    narrow = dtype != np.float32 and dtype != np.float64  # float16 / bfloat16
    compute = np.dtype(np.float32) if narrow else dtype
    ax = _core_axis(axes)
    if b is None:
        out = np.asarray(_core_logsumexp(a, axis=ax, keepdims=True, dtype=compute))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            shifted = np.add(a, np.log(b, dtype=compute), dtype=compute)
        keep = b != 0
        where = None if bool(np.all(keep)) else keep
        out = np.asarray(
            _core_logsumexp(shifted, axis=ax, keepdims=True, where=where, dtype=compute)
        )
    finite = np.isfinite(out)
    sgn: npt.NDArray[Any] | None = None
    if b is not None and not bool(np.all(finite)):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            direct = np.sum(b * np.exp(a), axis=axes, keepdims=True, dtype=compute)
            out = np.where(finite, out, np.log(direct))
        if return_sign:
            sgn = np.where(finite, np.ones_like(out), np.sign(direct))
    elif return_sign:
        # No weights, or weights >= 0: the sum is >= 0 (sign 1, or 0 for an empty sum).
        one = np.ones((), dtype=compute)
        sgn = np.where(np.isnan(out), np.nan, np.where(out == -np.inf, 0, one))
    out = out.astype(dtype, copy=False)
    if sgn is not None:
        sgn = sgn.astype(dtype, copy=False)
    return out, sgn


# --------------------------------------------------------------------------- expit


_LOOPS = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.longdouble))


def _loop_dtype(name: str, a: npt.NDArray[Any], dtype: Any, casting: Any) -> np.dtype[Any]:
    """The inner-loop dtype NumPy picks for SciPy's ufunc (loops d->d, f->f, g->g)."""
    if dtype is not None:
        want: np.dtype[Any] = np.dtype(dtype)
        if want not in _LOOPS:
            raise TypeError(
                f"No loop matching the specified signature and casting was found for ufunc {name}"
            )
        if not np.can_cast(a.dtype, want, casting=casting):
            raise TypeError(
                f"Cannot cast ufunc '{name}' input from {a.dtype!r} to {want!r} "
                f"with casting rule {casting!r}"
            )
        return want
    if a.dtype in _LOOPS:
        return a.dtype
    if a.dtype.kind in "biuf" or a.dtype.name == "bfloat16":
        for loop in _LOOPS:
            if np.can_cast(a.dtype, loop, casting="safe"):
                return loop
    raise TypeError(
        f"ufunc '{name}' not supported for the input types, and the inputs could not be "
        f"safely coerced to any supported types according to the casting rule ''safe''"
    )


def _ufunc_like(
    name: str,
    kernel: Any,
    x: Any,
    out: Any,
    where: Any,
    casting: Any,
    order: Any,
    dtype: Any,
) -> Any:
    if isinstance(out, tuple):
        if len(out) != 1:
            raise ValueError(f"The 'out' tuple must have exactly one entry for {name}")
        out = out[0]
    if out is not None and not isinstance(out, np.ndarray):
        raise TypeError("return arrays must be of ArrayType")
    a = np.asarray(x)
    loop = _loop_dtype(name, a, dtype, casting)
    with np.errstate(over="ignore", under="ignore"):
        r = kernel(a.astype(loop, copy=False))
    if out is None:
        if where is True:
            if order in ("C", "F") and r.ndim > 1:
                r = np.asarray(r, order=order)
            return _scalarize(r)
        shape = np.broadcast_shapes(r.shape, np.shape(where))
        res = np.empty(shape, dtype=loop, order="F" if order == "F" else "C")
        np.copyto(res, r, where=where)
        return res
    if out.shape != np.broadcast_shapes(out.shape, r.shape):
        raise ValueError(
            f"non-broadcastable output operand with shape {out.shape} doesn't match "
            f"the broadcast shape {np.broadcast_shapes(out.shape, r.shape)}"
        )
    if not np.can_cast(loop, out.dtype, casting=casting):
        raise TypeError(
            f"Cannot cast ufunc '{name}' output from {loop!r} to {out.dtype!r} with "
            f"casting rule {casting!r}"
        )
    np.copyto(out, r, casting="unsafe", where=where)
    return out


def _expit_kernel(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    one = np.ones((), dtype=a.dtype)
    r: npt.NDArray[Any] = one / (one + np.exp(-a))
    return r


def _log_expit_kernel(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    neg = a < 0
    e = np.exp(np.where(neg, a, -a))  # exp(-|x|), never overflows
    l1p = np.log1p(e)
    return np.where(neg, a - l1p, -l1p)


def expit(
    x: npt.ArrayLike,
    /,
    out: Any = None,
    *,
    where: Any = True,
    casting: Any = "same_kind",
    order: Any = "K",
    dtype: Any = None,
    subok: bool = True,
) -> Any:
    """The logistic sigmoid ``1 / (1 + exp(-x))``, as the ufunc ``scipy.special.expit``.

    Result dtype as SciPy's loops (float64, float32, longdouble): float32 and longdouble
    keep their dtype, everything else real (bool, ints, float16) gives float64; complex
    raises TypeError. ``out``, ``where``, ``casting``, ``order`` and ``dtype`` behave as
    for a NumPy ufunc.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_rs import special
    >>> special.expit(np.array([-np.inf, 0.0, np.inf]))
    array([0. , 0.5, 1. ])
    >>> special.expit(np.float32(0.0)).dtype
    dtype('float32')
    """
    return _ufunc_like("expit", _expit_kernel, x, out, where, casting, order, dtype)


def log_expit(
    x: npt.ArrayLike,
    /,
    out: Any = None,
    *,
    where: Any = True,
    casting: Any = "same_kind",
    order: Any = "K",
    dtype: Any = None,
    subok: bool = True,
) -> Any:
    """``log(expit(x))`` without underflow, as the ufunc ``scipy.special.log_expit``.

    ``x - log1p(exp(x))`` for ``x < 0`` and ``-log1p(exp(-x))`` otherwise, so that
    ``log_expit(-1000) == -1000``. Dtypes and keywords as :func:`expit`.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_rs import special
    >>> special.log_expit(np.array([-1000.0, 0.0]))
    array([-1.00000000e+03, -6.93147181e-01])
    """
    return _ufunc_like("log_expit", _log_expit_kernel, x, out, where, casting, order, dtype)
