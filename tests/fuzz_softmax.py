"""Fuzz target for softmax / log_softmax / logsumexp / argmax (issue 5).

Each input (a byte string) is decoded into one call: the function; the input's dtype (all
float kinds incl. float16 / bfloat16 and byte-swapped, bool, ints, and unsupported ones),
shape (0-4 dims, empty axes, short and long rows), layout (negative / non-unit steps,
transposes, zero strides, unaligned data), values (raw bit patterns, so NaN, ±inf, ±0 and
subnormals, or scaled normals with specials sprinkled in), ``axis`` (int, tuple, None, out of
range, repeated), ``where``, ``temperature``, ``empty_rows``, ``dtype``, ``keepdims`` and
``out`` (fresh, strided, ``x`` itself, or unusable). The result is checked against the
float64 / longdouble oracle of ``_oracle`` (special values as API.md says), ``np.argmax``, and
the exceptions API.md documents: a call predicted valid must succeed, one predicted invalid
must raise one of the predicted NumPy exception types, nothing else may escape, and the
input is never written.

Run it::

    python tests/fuzz_softmax.py --seconds 60              # atheris (libFuzzer) if installed
    python tests/fuzz_softmax.py --seconds 60 --engine random --seed 3
    python tests/fuzz_softmax.py --replay crash-1234       # re-run saved inputs

Extra arguments go to libFuzzer (corpus directories, ``-jobs=...``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _numerics as nu
import _oracle as orc
import numpy as np
import numpy.typing as npt
import softmax_rs as sr
from numpy.exceptions import AxisError

Array = npt.NDArray[Any]

MAX_ELEMENTS = 20_000  # per input (a long row: up to 70 000)
# Looser than test_special_values: values may be anywhere in the dtype's range.
TOLERANCES = orc.Tolerances(
    softmax_eps=16.0, log_softmax_eps=16.0, logsumexp_eps=8.0, shared_ulp=1, half_ulp=1
)

FUNCS: dict[str, Callable[..., Any]] = {
    "softmax": sr.softmax,
    "log_softmax": sr.log_softmax,
    "logsumexp": sr.logsumexp,
    "argmax": sr.argmax,
}


class Finding(AssertionError):
    """A discrepancy the fuzzer found (wrong result, wrong or missing exception)."""


class Data:
    """Consumes a byte string as a stream of choices (zeros once exhausted)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def integer(self, n: int) -> int:
        """An integer in [0, n)."""
        if n <= 1:
            return 0
        v = self.byte()
        if n > 256:
            v = v << 8 | self.byte()
        return v % n

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.integer(len(options))]

    def chance(self, p256: int) -> bool:
        """True with probability p256/256."""
        return self.byte() < p256

    def raw(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        if len(chunk) < n:  # stretch what is left (deterministically)
            seed = int.from_bytes(hashlib.sha256(self.data + len(chunk).to_bytes(8)).digest()[:8])
            chunk += np.random.default_rng(seed).bytes(n - len(chunk))
        return chunk

    def seed(self) -> int:
        return int.from_bytes(bytes(self.byte() for _ in range(4)), "little")


FLOAT_DTYPES: list[np.dtype[Any]] = [
    np.dtype(np.float32),
    np.dtype(np.float64),
    np.dtype(np.float16),
    nu.BFLOAT16,
    np.dtype(">f4"),
    np.dtype(">f8"),
]
OTHER_DTYPES: list[np.dtype[Any]] = [
    np.dtype(np.bool_),
    np.dtype(np.int8),
    np.dtype(np.int32),
    np.dtype(np.int64),
    np.dtype(np.uint8),
    np.dtype(np.uint64),
]
BAD_DTYPES: list[np.dtype[Any]] = [
    np.dtype(np.complex64),
    np.dtype(np.complex128),
    np.dtype(object),
    np.dtype("U3"),
    np.dtype("M8[s]"),
    np.dtype([("a", "f4")]),
]
# Around the paths' limits: windows of 16 and 32, tiles of up to 48 columns, vectors of 16.
DIMS = [0, 1, 1, 2, 3, 4, 5, 7, 8, 10, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 100, 257, 1000]


# --------------------------------------------------------------------------------------
# Decoding one call


@dataclass
class Call:
    fn: str
    x: Array
    kwargs: dict[str, Any] = field(default_factory=dict)
    expect: set[type[BaseException]] = field(default_factory=set)  # empty: must succeed
    out_is_x: bool = False
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        kw = {
            k: (f"array{np.shape(v)} {getattr(v, 'dtype', type(v).__name__)}")
            if isinstance(v, np.ndarray | list)
            else v
            for k, v in self.kwargs.items()
        }
        return (
            f"{self.fn}(x: shape {self.x.shape} dtype {self.x.dtype} strides {self.x.strides} "
            f"aligned {self.x.flags.aligned}, {kw}) "
            f"expect {sorted(e.__name__ for e in self.expect)} {' '.join(self.notes)}"
        )


def _shape(d: Data) -> tuple[int, ...]:
    ndim = d.choice([0, 1, 1, 2, 2, 2, 3, 3, 4])
    if ndim and d.chance(12):  # one long row (> 65536): the streaming paths
        return (*([1] * (ndim - 1)), d.choice([65537, 70000]))
    shape = [d.choice(DIMS) for _ in range(ndim)]
    while int(np.prod(shape)) > MAX_ELEMENTS:
        i = max(range(ndim), key=lambda k: shape[k])
        shape[i] //= 2
    return tuple(shape)


def _values(d: Data, dtype: np.dtype[Any], n: int) -> Array:
    mode = d.integer(4)
    if dtype.kind == "b":
        bits: Array = np.frombuffer(d.raw(n), np.uint8) % 2 == 1
        return bits
    if dtype.kind in "iu":
        if mode == 0:  # raw bits: the whole range
            return np.frombuffer(d.raw(n * dtype.itemsize), dtype).copy()
        return np.random.default_rng(d.seed()).integers(-50, 50, n).astype(dtype)
    native = dtype.newbyteorder("=")
    if mode == 0:  # raw bit patterns: NaN, inf, subnormals, huge and tiny values
        v = np.frombuffer(d.raw(n * dtype.itemsize), native.str if native != nu.BFLOAT16 else "u2")
        return v.view(native).copy()
    rng = np.random.default_rng(d.seed())
    scale = d.choice([1.0, 3.0, 100.0, 1e4, 1e-3, 1e-40])
    shift = d.choice([0.0, 0.0, 1000.0, -1000.0, 1e30])
    v = rng.standard_normal(n) * scale + shift
    if mode >= 2:  # sprinkle special values
        fi = nu.finfo(native)
        specials = [
            np.nan,
            np.inf,
            -np.inf,
            0.0,
            -0.0,
            float(fi.smallest_subnormal),
            -float(fi.smallest_subnormal),
            float(fi.smallest_normal),
            float(fi.max),
            -float(fi.max),
        ]
        k = d.integer(max(1, n // 4) + 1)
        idx = rng.integers(0, max(n, 1), k)
        if n:
            v[idx] = rng.choice(specials, k)
    with np.errstate(over="ignore", invalid="ignore"):
        r: Array = v.astype(native)
        return r


def _layout(d: Data, values: Array, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    """An array of ``shape`` holding ``values`` in some memory layout."""
    ndim = len(shape)
    kind = d.integer(6) if ndim else 0
    if kind == 1:  # steps and offsets
        steps = [d.choice([1, 2, -1, -2, 3]) for _ in shape]
        base_shape = [max(n * abs(s), 1) + 1 for n, s in zip(shape, steps, strict=True)]
        base = np.zeros(base_shape, dtype)
        sl = tuple(slice(None, None, s) for s in steps)
        view = base[sl][tuple(slice(0, n) for n in shape)]
        view[...] = values.reshape(shape)
        return view
    if kind == 2:  # a transposed layout
        perm = list(np.random.default_rng(d.seed()).permutation(ndim))
        inv = list(np.argsort(perm))
        a = np.ascontiguousarray(values.reshape(shape).transpose(perm))
        return a.transpose(inv)
    if kind == 3 and int(np.prod(shape)) > 0:  # a zero stride: one axis broadcast
        ax = d.integer(ndim)
        small = list(shape)
        small[ax] = 1
        a = values.reshape(shape)[
            tuple(slice(0, 1) if i == ax else slice(None) for i in range(ndim))
        ]
        return np.broadcast_to(np.ascontiguousarray(a).reshape(small), shape)
    if kind == 4 and dtype.itemsize > 1:  # unaligned
        n = int(np.prod(shape))
        buf = bytearray(n * dtype.itemsize + 1)
        a = np.frombuffer(buf, dtype=dtype, count=n, offset=1).reshape(shape)
        a[...] = values.reshape(shape)
        return a
    return values.reshape(shape)


def _axis(d: Data, ndim: int, fn: str) -> tuple[Any, tuple[int, ...] | None, bool]:
    """(axis argument, normalized reduced axes or None if invalid, axis-error expected)."""
    k = d.integer(8)
    if k == 0:
        return None, tuple(range(ndim)), False
    if k <= 4 or (fn == "argmax" and k < 7):
        a = d.integer(2 * ndim + 2) - ndim - 1 if ndim else d.choice([-1, 0, 1])
        if -ndim <= a < ndim:
            return a, (a % ndim,), False
        return a, None, True
    if fn == "argmax":
        return (0,), None, False  # a tuple: TypeError
    n_ax = d.integer(ndim + 1) + (1 if d.chance(30) else 0)
    axes = tuple(d.integer(2 * ndim + 1) - ndim for _ in range(n_ax)) if ndim else ()
    norm = [a % ndim for a in axes if ndim and -ndim <= a < ndim]
    if len(norm) != len(axes) or len(set(norm)) != len(norm):
        return axes, None, True
    return axes, tuple(sorted(norm)), False


def decode(data: bytes) -> Call:
    d = Data(data)
    fn = d.choice(list(FUNCS))
    group = d.integer(16)
    dtype = (
        d.choice(BAD_DTYPES)
        if group == 0
        else d.choice(OTHER_DTYPES)
        if group <= 2
        else d.choice(FLOAT_DTYPES)
    )
    shape = _shape(d)
    n = int(np.prod(shape))
    if dtype in BAD_DTYPES:
        x = np.zeros(shape, dtype)
        call = Call(fn, x, expect={TypeError})
        call.kwargs["axis"] = -1 if shape else None
        return call
    x = _layout(d, _values(d, dtype, n), shape, dtype)
    call = Call(fn, x)
    axis, axes, bad_axis = _axis(d, x.ndim, fn)
    if axis != -1 or d.chance(128):
        call.kwargs["axis"] = axis
    elif "axis" not in call.kwargs:
        axes = (x.ndim - 1,) if x.ndim else None
        bad_axis = not x.ndim
    if bad_axis:
        call.expect.add(AxisError)
    if fn == "argmax" and isinstance(axis, tuple):
        call.expect.add(TypeError)
    call.notes.append(f"axes={axes}")
    reduced_shape: tuple[int, ...] | None = None
    if axes is not None:
        reduced_shape = tuple(s for i, s in enumerate(shape) if i not in axes)
    keep = False
    if fn in ("logsumexp", "argmax") and d.chance(64):
        keep = True
        call.kwargs["keepdims"] = True
    if fn == "argmax":
        if axes is not None and x.size == 0 and (axis is None or any(shape[a] == 0 for a in axes)):
            call.expect.add(ValueError)
    else:
        _softmax_kwargs(d, call, axes)
    _out(d, call, axes, reduced_shape, keep)
    return call


def _softmax_kwargs(d: Data, call: Call, axes: tuple[int, ...] | None) -> None:
    shape, fn = call.x.shape, call.fn
    if d.chance(40):  # where
        k = d.integer(5)
        if k == 4:
            call.kwargs["where"] = np.ones((*shape, 2), bool)
            call.expect.add(ValueError)
        else:
            wshape = tuple(s if d.chance(160) else 1 for s in shape) if k else shape
            w = np.random.default_rng(d.seed()).random(wshape) < d.choice([0.0, 0.3, 0.9, 1.0])
            call.kwargs["where"] = w.tolist() if k == 3 and w.size else w
    if d.chance(50):  # temperature
        k = d.integer(4)
        if k == 0:
            t: Any = d.choice([0.5, 2.0, 1e-3, 7.0, 1.0, 0.0, -1.0, np.nan, np.inf])
            if not (np.isfinite(t) and t > 0):
                call.expect.add(ValueError)
            call.kwargs["temperature"] = t
        elif axes is not None:
            red = [s for i, s in enumerate(shape) if i not in axes]
            kept = [1 if i in axes else s for i, s in enumerate(shape)]
            tshape = red if k == 1 else kept
            t = np.random.default_rng(d.seed()).uniform(0.25, 4.0, tshape)
            if k == 3 and t.size:
                t.flat[0] = d.choice([0.0, -2.0, np.nan, np.inf])
                call.expect.add(ValueError)
            if d.chance(30):
                t = np.ones((*tshape, 3))  # no broadcast
                call.expect.add(ValueError)
            call.kwargs["temperature"] = t
    if fn != "logsumexp" and d.chance(60):
        e = d.choice(["nan", "zero", None, "bogus"])
        call.kwargs["empty_rows"] = e
        if e == "bogus":
            call.expect.add(ValueError)
    if d.chance(20):
        dt = d.choice([np.float32, np.float64, np.float16, np.int32])
        call.kwargs["dtype"] = dt
        if dt not in (np.float32, np.float64):
            call.expect.add(TypeError)


def _result_dtype(call: Call) -> np.dtype[Any]:
    if call.fn == "argmax":
        return np.dtype(np.intp)
    dt = call.kwargs.get("dtype")
    if dt in (np.float32, np.float64):
        return np.dtype(np.float32 if dt is np.float32 else np.float64)
    k = call.x.dtype
    if k.kind in "biu":
        return np.dtype(np.float64)
    return k.newbyteorder("=")


def _out(
    d: Data,
    call: Call,
    axes: tuple[int, ...] | None,
    reduced: tuple[int, ...] | None,
    keep: bool,
) -> None:
    if not d.chance(70) or axes is None:
        return
    shape = call.x.shape
    if call.fn in ("softmax", "log_softmax"):
        rshape = shape
    elif keep:
        rshape = tuple(1 if i in axes else s for i, s in enumerate(shape))
    else:
        rshape = reduced or ()
    rdt = _result_dtype(call)
    k = d.integer(8)
    if k == 0:
        call.kwargs["out"] = np.zeros((*rshape, 2), rdt)
        call.expect.add(ValueError)
    elif k == 1:
        wrong = np.float32 if rdt != np.float32 else np.float64
        call.kwargs["out"] = np.zeros(rshape, wrong)
        call.expect.add(TypeError)
    elif k == 2:
        o = np.zeros(rshape, rdt)
        o.flags.writeable = False
        call.kwargs["out"] = o
        call.expect.add(ValueError)
    elif k == 3:
        call.kwargs["out"] = np.zeros(rshape, rdt).tolist()
        call.expect.add(TypeError)
    elif (
        k == 4
        and call.fn in ("softmax", "log_softmax")
        and call.x.dtype == rdt
        and call.x.flags.writeable
    ):
        call.kwargs["out"] = call.x  # in place
        call.out_is_x = True
    elif k == 5 and len(rshape):
        big = np.full(tuple(2 * s + 1 for s in rshape), -7, rdt)
        call.kwargs["out"] = big[tuple(slice(None, None, -2) for _ in rshape)][
            tuple(slice(0, s) for s in rshape)
        ]
    else:
        call.kwargs["out"] = np.full(rshape, 3, rdt)


# --------------------------------------------------------------------------------------
# Checking


def _rows(a: Array, axes: tuple[int, ...]) -> Array:
    """``a`` as (rows, d): the reduced axes last, flattened."""
    k = len(axes)
    if a.ndim == 0:
        return a.reshape(1, 1)
    moved = np.moveaxis(a, axes, tuple(range(a.ndim - k, a.ndim)))
    d = int(np.prod([a.shape[i] for i in axes]))
    rows = int(np.prod([s for i, s in enumerate(a.shape) if i not in axes]))
    return moved.reshape(rows, d)


def _temperature_rows(t: Any, shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    if t is None or np.ndim(t) == 0:
        return t
    t = np.asarray(t, np.float64)
    kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
    if t.ndim != len(shape):
        t = np.expand_dims(t, axes) if axes else t
    t = np.broadcast_to(t, kept)
    return _rows(t, axes).reshape(-1)


def check_call(call: Call) -> None:
    x = call.x
    before = x.tobytes() if x.dtype.kind != "O" else None
    x_copy = x.copy()
    try:
        got = FUNCS[call.fn](x, **call.kwargs)
    except (TypeError, ValueError, MemoryError) as e:
        if not call.expect:
            raise Finding(f"unexpected {type(e).__name__}: {e}\n  {call.describe()}") from e
        if not any(isinstance(e, t) for t in call.expect):
            raise Finding(
                f"{type(e).__name__} ({e}) instead of one of "
                f"{sorted(t.__name__ for t in call.expect)}\n  {call.describe()}"
            ) from e
        if not call.out_is_x and before is not None and x.tobytes() != before:
            raise Finding(f"the input was written by a failing call\n  {call.describe()}") from e
        return
    except BaseException as e:  # PanicException, SystemError, ...: never allowed
        if isinstance(e, KeyboardInterrupt):
            raise
        raise Finding(f"undocumented {type(e).__name__}: {e}\n  {call.describe()}") from e
    if call.expect:
        raise Finding(
            f"returned instead of raising {sorted(t.__name__ for t in call.expect)}\n"
            f"  {call.describe()}"
        )
    if not call.out_is_x and before is not None and x.tobytes() != before:
        raise Finding(f"the input was written\n  {call.describe()}")
    if "out" in call.kwargs and got is not call.kwargs["out"]:
        raise Finding(f"out= was not returned\n  {call.describe()}")
    _check_values(call, x_copy, np.asarray(got))


def _check_values(call: Call, x: Array, got: Array) -> None:
    axis = call.kwargs.get("axis", -1)
    notes = call.notes[0]
    axes: tuple[int, ...] = eval(notes.split("=", 1)[1])  # our own repr
    rdt = _result_dtype(call)
    if got.dtype != rdt:
        raise Finding(f"result dtype {got.dtype}, expected {rdt}\n  {call.describe()}")
    keep = call.kwargs.get("keepdims", False)
    if call.fn == "argmax":
        xa = x.astype(np.float32) if x.dtype == nu.BFLOAT16 else x
        want = np.argmax(xa, axis=axis, keepdims=keep)
        if got.shape != np.shape(want) or not np.array_equal(got, want):
            raise Finding(f"argmax {got!r} != numpy's {want!r}\n  {call.describe()}")
        return
    shape = x.shape
    if call.fn == "logsumexp":
        want_shape = (
            tuple(1 if i in axes else s for i, s in enumerate(shape))
            if keep
            else tuple(s for i, s in enumerate(shape) if i not in axes)
        )
    else:
        want_shape = shape
    if got.shape != want_shape:
        raise Finding(f"shape {got.shape}, expected {want_shape}\n  {call.describe()}")
    w = call.kwargs.get("where")
    wf = np.broadcast_to(np.asarray(w, bool), shape) if w is not None else np.ones(shape, bool)
    x2 = _rows(x, axes)
    w2 = _rows(wf, axes)
    t = _temperature_rows(call.kwargs.get("temperature"), shape, axes)
    lossy = (x.dtype.kind in "iu" and x.dtype.itemsize == 8) or (
        x.dtype.kind == "f" and x.dtype.itemsize > rdt.itemsize
    )
    if x.dtype.kind in "biu" or lossy:
        with np.errstate(over="ignore", invalid="ignore"):
            x2 = x2.astype(rdt)  # the conversion the core makes
    an = orc.analyse(x2, w2, dtype=rdt, temperature=t if t is not None else None)
    if lossy and an.scale is None:
        an.scale = np.ones(x2.shape)
    exp = orc.oracle(an, call.fn, call.kwargs.get("empty_rows"))
    g2 = got.reshape(-1) if call.fn == "logsumexp" else _rows(got, axes)
    msgs = orc.check(g2, exp, call.fn, rdt, TOLERANCES)
    if msgs:
        raise Finding("\n".join(msgs[:5]) + f"\n  {call.describe()}")


def one_input(data: bytes) -> None:
    """The fuzz target: raises :class:`Finding` on a discrepancy."""
    with np.errstate(all="ignore"):
        call = decode(data)
    check_call(call)


# --------------------------------------------------------------------------------------
# Engines


def _save(data: bytes, directory: str) -> str:
    path = os.path.join(directory, "crash-" + hashlib.sha1(data).hexdigest()[:16])
    with open(path, "wb") as f:
        f.write(data)
    return path


def _signature(e: Finding) -> str:
    """A finding's kind, to report each kind once with --keep-going."""
    import re

    first = str(e).splitlines()[0]
    return re.sub(r"\(.*|[0-9.e+-]+", "#", first)[:80]


def run_random(
    seconds: float, seed: int, artifacts: str | None, keep_going: bool = False
) -> tuple[int, list[str]]:
    """Random byte strings for ``seconds``: (inputs run, findings). Without ``keep_going``
    the first finding is raised."""
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    n = 0
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        data = rng.randbytes(rng.choice([8, 32, 64, 256, 1024, 4096]))
        n += 1
        try:
            one_input(data)
        except Finding as e:
            sig = _signature(e)
            if sig in seen:
                continue
            where = _save(data, artifacts or ".") if len(data) > 64 else data.hex()
            seen[sig] = f"{e}\n  input: {where}"
            print(f"FINDING after {n} inputs (input: {where}):\n{e}", file=sys.stderr)
            if not keep_going:
                raise
    return n, list(seen.values())


def run_atheris(seconds: float, extra: list[str]) -> None:
    import importlib

    atheris: Any = importlib.import_module("atheris")

    def target(data: bytes) -> None:
        one_input(data)

    # coverage feedback from the decoder and the oracle (the core itself is native code;
    # instrumenting everything loaded, NumPy included, would take minutes)
    import types

    for mod in (sys.modules[__name__], orc, nu):
        for name, obj in list(vars(mod).items()):
            if isinstance(obj, types.FunctionType) and obj.__module__ == mod.__name__:
                setattr(mod, name, atheris.instrument_func(obj))
    atheris.Setup([sys.argv[0], f"-max_total_time={int(max(1, seconds))}", *extra], target)
    atheris.Fuzz()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--artifacts", default=None, help="directory for crashing inputs")
    p.add_argument("--replay", nargs="*", default=None, help="run these saved inputs")
    p.add_argument("--keep-going", action="store_true", help="report each kind of finding")
    args, extra = p.parse_known_args(argv)
    if args.replay is not None:
        for path in args.replay:
            with open(path, "rb") as f:
                one_input(f.read())
            print(f"{path}: ok")
        return 0
    engine = args.engine
    if engine == "auto":
        try:
            __import__("atheris")
            engine = "atheris"
        except ImportError:
            engine = "random"
    if engine == "atheris":
        run_atheris(args.seconds, extra)
        return 0
    try:
        n, findings = run_random(args.seconds, args.seed, args.artifacts, args.keep_going)
    except Finding:
        return 1
    if findings:
        print(f"fuzz_softmax: {n} inputs, {len(findings)} kinds of finding", file=sys.stderr)
        return 1
    print(f"fuzz_softmax: {n} inputs in {args.seconds:.0f} s, no finding")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
