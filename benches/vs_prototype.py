"""softmax_rs beside the C prototype that the speed issue cites, in one process.

The issue's figures were reached by a hand-written AVX-512 C prototype (``softmax_proto.c``,
kept outside this repository). This script times, per case and interleaved round by round:
the NumPy ``reference``, softmax_rs with ``out=``, the prototype's kernels (its own timing
loop in C, so no call overhead), and ``np.copyto`` of the input, then prints each against the
reference and against the copy. It shows which of the issue's ratios this machine allows:
a ratio the prototype misses here is one that kernels of its design do not reach here. Beside
the times, each one's largest error in units of the dtype's eps, against the reference
computed in a wider type (float64 for float32, long double for float64), measured as
``tests/accuracy_table.py`` does (``error``).

    python benches/vs_prototype.py path/to/softmax_proto.c [--dtype float64] [--threads 2]
        [--max-elements 100000] [--repeats 9]

A ``.c`` path is built with ``gcc -O3 -march=native -fopenmp`` into a temporary folder (an
x86_64 CPU with AVX-512 is needed); a built ``.so`` is loaded as it is. glibc is first told
to keep freed memory (``_bench.keep_freed_memory``), as ``python -m softmax_rs bench`` does,
so the reference's temporaries fault in once. The prototype assumes finite inputs and
has no argmax; its schedules: ``3pass`` (max; exp and sum; scale) and ``online`` (one
running max-and-sum pass, then exp and scale).
"""

from __future__ import annotations

import argparse
import ctypes
import math
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from softmax_rs import _bench

Array = npt.NDArray[Any]

# (shape, axis) of the table that the prototype has kernels for: every last-axis
# shape (as rows of a C-contiguous matrix) and axis 0 of a matrix.
SHAPES: tuple[tuple[tuple[int, ...], int], ...] = tuple(
    (s, a) for s, a in _bench.FULL_SHAPES if a == -1 or (a == 0 and len(s) == 2)
)
OPS = ("softmax", "log_softmax", "logsumexp")
# The prototype's kernel ids (``kernel_by_id``); float64 adds 10.
KERNELS: dict[tuple[str, bool], dict[str, int]] = {
    ("softmax", False): {"3pass": 0, "online": 1},
    ("log_softmax", False): {"online": 2},
    ("logsumexp", False): {"online": 3},
    ("softmax", True): {"3pass": 4, "online": 5},
}
GCC = ["gcc", "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC"]


def matrix(shape: tuple[int, ...], axis: int) -> tuple[int, int]:
    """(rows, columns) of the C-contiguous matrix the prototype is given: for the last axis,
    rows of ``shape[-1]`` values; for axis 0 (of a 2-D array), the array itself, whose
    columns the prototype's column kernels reduce."""
    if axis == 0:
        rows, cols = shape
        return rows, cols
    return math.prod(shape[:-1]), shape[-1]


def load(path: Path, build_dir: Path) -> ctypes.CDLL:
    """The prototype library, built first where ``path`` is its C source."""
    if path.suffix == ".c":
        lib = build_dir / "softmax_proto.so"
        subprocess.run([*GCC, "-o", str(lib), str(path)], check=True)
        path = lib
    proto = ctypes.CDLL(str(path.resolve()))
    proto.time_kernel.restype = ctypes.c_double
    proto.time_kernel.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int,
        ctypes.c_int64,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_double),
    ]
    return proto


def truth(op: str, x: Array, axis: int) -> Array:
    """The reference computed in a wider type than ``x``'s (long double for float64)."""
    from softmax_rs import reference

    wide = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
    return np.asarray(getattr(reference, op)(wide, axis))


def error(op: str, got: Array, want: Array) -> float:
    """The largest error in units of ``got``'s eps: relative for softmax (where the true
    value is a normal number) and logsumexp, absolute for log_softmax."""
    info = np.finfo(got.dtype)
    diff = np.abs(got.astype(want.dtype) - want)
    if op == "log_softmax":
        return float(np.max(diff) / info.eps)
    keep = np.abs(want) >= info.tiny
    return float(np.max(diff[keep] / np.abs(want[keep])) / info.eps) if keep.any() else 0.0


def batch_size(call: Callable[[], Any], batch_s: float) -> int:
    """Calls per batch so that one batch takes about ``batch_s``."""
    call()
    n = 1
    while _bench._time_batch(call, n) * n < batch_s and n < 1 << 20:
        n *= 2
    return n


def prototype_timer(
    proto: ctypes.CDLL, kernel: int, x: Array, axis: int, threads: int, batch_s: float
) -> Callable[[], float]:
    """One batch of the prototype's kernel, timed by its own loop in C: seconds per call."""
    rows, cols = matrix(x.shape, axis)
    out = np.empty_like(x)

    def batch(iters: int) -> float:
        ns = proto.time_kernel(
            kernel, x.ctypes.data, out.ctypes.data, rows, cols, threads, iters, 1, None
        )
        if ns < 0:
            raise ValueError(f"the prototype has no kernel {kernel}")
        return float(ns) * 1e-9

    iters = 1
    while batch(iters) * iters < batch_s and iters < 1 << 20:
        iters *= 2
    return lambda: batch(iters)


def python_timer(call: Callable[[], Any], batch_s: float) -> Callable[[], float]:
    """One batch of a Python call: seconds per call."""
    n = batch_size(call, batch_s)
    return lambda: _bench._time_batch(call, n)


def errors(
    proto: ctypes.CDLL, op: str, x: Array, axis: int, kernels: dict[str, int]
) -> dict[str, float]:
    """``error`` of softmax_rs and of each prototype schedule on ``x``."""
    import softmax_rs as sr

    want = truth(op, x, axis)
    found = {"softmax_rs": error(op, np.asarray(getattr(sr, op)(x, axis)), want)}
    rows, cols = matrix(x.shape, axis)
    for schedule, kernel in kernels.items():
        out = np.empty_like(x)
        proto.time_kernel(kernel, x.ctypes.data, out.ctypes.data, rows, cols, 1, 1, 1, None)
        # The prototype's logsumexp writes one value per row at the start of out.
        got = out.reshape(-1)[:rows].reshape(want.shape) if op == "logsumexp" else out
        found[f"proto-{schedule}"] = error(op, got, want)
    return found


def measure(
    proto: ctypes.CDLL,
    op: str,
    shape: tuple[int, ...],
    axis: int,
    dtype: str,
    args: argparse.Namespace,
) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per call of every implementation of one case, rounds interleaved, and
    their errors (``errors``)."""
    x = _bench._inputs(shape, dtype)
    impls = _bench.make_impls(op, x, axis, ())
    timers = {
        name: python_timer(impls[name][0], args.batch)
        for name in ("reference", "softmax_rs", _bench.COPY)
        if name in impls
    }
    off = 10 if dtype == "float64" else 0
    kernels = {k: v + off for k, v in KERNELS[(op, axis == 0)].items()}
    for schedule, kernel in kernels.items():
        timers[f"proto-{schedule}"] = prototype_timer(
            proto, kernel, x, axis, args.threads, args.batch
        )
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(args.repeats):
        for name, timer in timers.items():
            samples[name].append(timer())
    times = {name: statistics.median(s) for name, s in samples.items()}
    return times, errors(proto, op, x, axis, kernels)


def row(
    op: str, shape: tuple[int, ...], axis: int, t: dict[str, float], err: dict[str, float]
) -> str:
    """One line of the table: times in us, speed-ups, times over the copy's, errors in eps."""
    best = min((k for k in t if k.startswith("proto-")), key=t.__getitem__)
    ref, ours, proto, copy = t["reference"], t["softmax_rs"], t[best], t.get(_bench.COPY)
    by_copy = "" if copy is None else f" {ours / copy:9.2f}x {proto / copy:9.2f}x"
    schedules = " ".join(
        f"{k[6:]}={_bench._us(v)}us/{err[k]:.2f}eps" for k, v in t.items() if k.startswith("proto-")
    )
    return (
        f"{op:<12}{_bench._shape_str(shape) + f' ax{axis}':<24}"
        f"{_bench._us(ref):>10} {_bench._us(ours):>10} {_bench._us(proto):>10}"
        f" {ref / ours:8.2f}x {ref / proto:8.2f}x{by_copy:22}"
        f" {err['softmax_rs']:8.2f} {err[best]:8.2f}  {schedules}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prototype", type=Path, help="softmax_proto.c or a built .so")
    parser.add_argument("--dtype", choices=_bench.DTYPES, default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch", type=float, default=0.02, help="seconds per timed batch")
    parser.add_argument("--max-elements", type=int, help="leave out larger shapes")
    args = parser.parse_args(argv)
    keeps = _bench.keep_freed_memory()
    with tempfile.TemporaryDirectory() as tmp:
        proto = load(args.prototype, Path(tmp))
        print(
            f"# {args.dtype}, {args.threads} thread(s), median of {args.repeats};"
            f" glibc keeps freed memory: {keeps}. Times in us."
        )
        print(
            f"{'op':<12}{'shape':<24}{'reference':>10} {'softmax_rs':>10} {'prototype':>10}"
            f" {'ref/ours':>9} {'ref/proto':>9} {'ours/copy':>10} {'proto/copy':>10}"
            f" {'ours err':>8} {'protoerr':>8}  prototype schedules (time/error)"
        )
        with _bench.at_threads(args.threads):
            for shape, axis in SHAPES:
                if args.max_elements is not None and math.prod(shape) > args.max_elements:
                    continue
                for op in OPS:
                    if (op, axis == 0) in KERNELS:
                        t, err = measure(proto, op, shape, axis, args.dtype, args)
                        print(row(op, shape, axis, t, err), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
