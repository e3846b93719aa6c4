"""``python -m softmax_rs bench``: softmax_rs against NumPy and the installed peers.

Every implementation of one case (shape, axis, dtype, op, thread count) is measured in the
same run, interleaved: each round times a batch of calls of every implementation in
turn (rotating the order), and the reported time is the median over the rounds of the
time per call (``time.perf_counter``). Inputs of 8 MiB or more come from memory: their
samples are one call each, after the caches were flushed (see ``COLD_MIN_BYTES``).
Inputs are generated once per shape and dtype;
outputs that can be preallocated are (softmax_rs ``out=``, the tuned NumPy variant, PyTorch
``out=``), as a performance-minded user would call them; ``reference`` and SciPy allocate,
as they are usually called. The command first has glibc's malloc keep freed memory
(``keep_freed_memory``), so that those allocations are not page-faulted in on every call.

Implementations:

- ``softmax_rs``: the core, ``out=`` preallocated, under ``softmax_rs.threads(n)``;
- ``reference``: ``softmax_rs.reference`` (idiomatic NumPy, max-shifted);
- ``numpy-out``: NumPy ufuncs into preallocated buffers (``np.subtract/exp/divide`` with
  ``out=``), the best a NumPy user can do without a kernel;
- ``scipy``: ``scipy.special``; ``torch``: PyTorch CPU (``torch.set_num_threads(n)``);
  ``jax``: ``jax.jit``-compiled ``jax.nn`` functions;
- ``copyto`` (softmax and log_softmax only): ``np.copyto`` of the input into a preallocated
  array, which reads and writes as many bytes as softmax_rs with ``out=``. It is not a
  peer but the memory-bandwidth yardstick: ``x copy`` = softmax_rs time / copyto time.

A case for ``n`` threads runs with every thread of the process pinned to ``n`` of its CPUs
(as ``taskset`` would; Linux, where ``n`` is fewer than the CPUs it may use), so that every
implementation has the same cores: XLA's CPU thread pool is sized at start-up and cannot be
told to use fewer threads, and without the pin JAX's one-thread cells ran on every core.

Speed-ups are ratios of the measured medians: ``vs ref`` = reference / softmax_rs and
``vs best`` = fastest peer (all but softmax_rs and reference) / softmax_rs. ``GB/s`` is
the bytes softmax_rs reads and writes (input + result) per second.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

__all__ = ["main"]

Array = npt.NDArray[Any]
Call = Callable[[], object]

OPS = ("softmax", "log_softmax", "logsumexp", "argmax")
DTYPES = ("float32", "float64")
PEERS = ("numpy-out", "scipy", "torch", "jax")
#: The bandwidth yardstick (see the module docstring): measured beside the others, never a
#: peer, and its result (a copy of the input) is not compared with the reference.
COPY = "copyto"
#: The ops whose result is an array like the input, so that a copy moves the same bytes.
COPY_OPS = ("softmax", "log_softmax")

# (shape, axis)
FULL_SHAPES: tuple[tuple[tuple[int, ...], int], ...] = (
    ((1, 10), -1),
    ((1, 1000), -1),
    ((64, 1000), -1),
    ((1024, 1000), -1),
    ((4096, 4096), -1),
    ((32, 32000), -1),
    ((8, 128256), -1),
    ((65536, 10), -1),
    ((1000000, 16), -1),
    ((2048, 2048), 0),
    ((8, 12, 512, 512), -1),
)
QUICK_SHAPES: tuple[tuple[tuple[int, ...], int], ...] = (
    ((1, 10), -1),
    ((64, 1000), -1),
    ((1024, 1000), -1),
    ((65536, 10), -1),
    ((1024, 1024), 0),
)


@dataclass(frozen=True)
class Settings:
    """What one run measures and how long it may take per case."""

    shapes: tuple[tuple[tuple[int, ...], int], ...]
    ops: tuple[str, ...]
    dtypes: tuple[str, ...]
    threads: tuple[int, ...]
    peers: tuple[str, ...]
    repeats: int
    batch_s: float  # target duration of one timed batch of calls
    budget_s: float  # target duration of all rounds of one case
    quick: bool


@dataclass
class Result:
    """The measurements of one case."""

    shape: tuple[int, ...]
    axis: int
    dtype: str
    op: str
    threads: int
    bytes: int
    times_s: dict[str, float] = field(default_factory=dict)
    samples_s: dict[str, list[float]] = field(default_factory=dict)
    calls_per_sample: dict[str, int] = field(default_factory=dict)
    ok: dict[str, bool] = field(default_factory=dict)

    @property
    def peer_times(self) -> dict[str, float]:
        return {
            k: v
            for k, v in self.times_s.items()
            if k not in ("softmax_rs", "reference", COPY) and self.ok.get(k, False)
        }

    @property
    def best_peer(self) -> str | None:
        peers = self.peer_times
        return min(peers, key=peers.__getitem__) if peers else None

    @property
    def speedup_vs_reference(self) -> float | None:
        if "softmax_rs" not in self.times_s or "reference" not in self.times_s:
            return None
        return self.times_s["reference"] / self.times_s["softmax_rs"]

    @property
    def speedup_vs_best_peer(self) -> float | None:
        best = self.best_peer
        if best is None or "softmax_rs" not in self.times_s:
            return None
        return self.times_s[best] / self.times_s["softmax_rs"]

    @property
    def times_copy(self) -> float | None:
        """softmax_rs's time over ``np.copyto``'s (issue 4 asks for at most 1.5x or 3.5x)."""
        if COPY not in self.times_s or "softmax_rs" not in self.times_s:
            return None
        return self.times_s["softmax_rs"] / self.times_s[COPY]

    @property
    def gbps(self) -> float | None:
        t = self.times_s.get("softmax_rs")
        return None if t is None else self.bytes / t / 1e9

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "axis": self.axis,
            "dtype": self.dtype,
            "op": self.op,
            "threads": self.threads,
            "bytes": self.bytes,
            "times_us": {k: v * 1e6 for k, v in self.times_s.items()},
            "samples_us": {k: [s * 1e6 for s in v] for k, v in self.samples_s.items()},
            "calls_per_sample": dict(self.calls_per_sample),
            "ok": dict(self.ok),
            "speedup_vs_reference": self.speedup_vs_reference,
            "best_peer": self.best_peer,
            "speedup_vs_best_peer": self.speedup_vs_best_peer,
            "times_copyto": self.times_copy,
            "gbps": self.gbps,
        }


# --------------------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------------------


def _reduced_shape(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    ax = axis % len(shape)
    return shape[:ax] + shape[ax + 1 :]


def _softmax_rs_impl(op: str, x: Array, axis: int) -> tuple[Call, Call]:
    import softmax_rs as sr

    fn: Callable[..., Any] = getattr(sr, op)
    if op in ("softmax", "log_softmax"):
        out = np.empty_like(x)
    elif op == "logsumexp":
        out = np.empty(_reduced_shape(x.shape, axis), dtype=x.dtype)
    else:
        out = np.empty(_reduced_shape(x.shape, axis), dtype=np.intp)
    call = partial(fn, x, axis, out=out)
    return call, call


def _reference_impl(op: str, x: Array, axis: int) -> tuple[Call, Call]:
    from softmax_rs import reference

    call = partial(getattr(reference, op), x, axis)
    return call, call


def _numpy_out_impl(op: str, x: Array, axis: int) -> tuple[Call, Call] | None:
    """NumPy ufuncs into preallocated buffers: no temporaries after the first call."""
    if op == "argmax":
        return None  # np.argmax is already the reference
    keep = list(x.shape)
    keep[axis] = 1
    m = np.empty(keep, dtype=x.dtype)
    s = np.empty(keep, dtype=x.dtype)
    buf = np.empty_like(x)
    tmp = np.empty_like(x) if op == "log_softmax" else buf
    res = np.empty(_reduced_shape(x.shape, axis), dtype=x.dtype)

    def softmax() -> Array:
        np.max(x, axis=axis, keepdims=True, out=m)
        np.subtract(x, m, out=buf)
        np.exp(buf, out=buf)
        np.sum(buf, axis=axis, keepdims=True, out=s)
        return np.divide(buf, s, out=buf)

    def log_softmax() -> Array:
        np.max(x, axis=axis, keepdims=True, out=m)
        np.subtract(x, m, out=buf)
        np.exp(buf, out=tmp)
        np.sum(tmp, axis=axis, keepdims=True, out=s)
        np.log(s, out=s)
        return np.subtract(buf, s, out=buf)

    def logsumexp() -> Array:
        np.max(x, axis=axis, keepdims=True, out=m)
        np.subtract(x, m, out=buf)
        np.exp(buf, out=buf)
        np.sum(buf, axis=axis, keepdims=True, out=s)
        np.log(s, out=s)
        np.add(s, m, out=s)
        res[...] = s.reshape(res.shape)
        return res

    call: Call = {
        "softmax": softmax,
        "log_softmax": log_softmax,
        "logsumexp": logsumexp,
    }[op]
    return call, call


def _scipy_impl(op: str, x: Array, axis: int) -> tuple[Call, Call] | None:
    if op == "argmax":
        return None
    special = importlib.import_module("scipy.special")
    call = partial(getattr(special, op), x, axis=axis)
    return call, call


def _torch_impl(op: str, x: Array, axis: int) -> tuple[Call, Call] | None:
    torch: Any = importlib.import_module("torch")
    t = torch.from_numpy(x)
    fn = {
        "softmax": torch.softmax,
        "log_softmax": torch.log_softmax,
        "logsumexp": torch.logsumexp,
        "argmax": torch.argmax,
    }[op]
    like = fn(t, axis)
    out = torch.empty_like(like)
    try:  # the out= variants, where this PyTorch has them
        fn(t, axis, out=out)
        call: Call = partial(fn, t, axis, out=out)
    except (TypeError, RuntimeError):
        call = partial(fn, t, axis)

    def check() -> Array:
        res: Any = call()
        return np.asarray(res.numpy())

    return call, check


_JAX_JIT: dict[tuple[str, int], Any] = {}


def _jax_impl(op: str, x: Array, axis: int) -> tuple[Call, Call] | None:
    jax: Any = importlib.import_module("jax")
    key = (op, axis)
    if key not in _JAX_JIT:
        fn = {
            "softmax": jax.nn.softmax,
            "log_softmax": jax.nn.log_softmax,
            "logsumexp": jax.nn.logsumexp,
            "argmax": jax.numpy.argmax,
        }[op]
        _JAX_JIT[key] = jax.jit(partial(fn, axis=axis))
    jitted = _JAX_JIT[key]
    jx = jax.device_put(x)
    if jx.dtype != x.dtype:  # float64 without x64 mode
        return None

    def call() -> object:
        return jitted(jx).block_until_ready()

    def check() -> Array:
        return np.asarray(call())

    return call, check


def _copyto_impl(op: str, x: Array) -> tuple[Call, Call] | None:
    """``np.copyto`` of ``x`` into a preallocated array: the bytes of softmax with ``out=``."""
    if op not in COPY_OPS:
        return None
    buf = np.empty_like(x)
    call = partial(np.copyto, buf, x)

    def check() -> Array:
        call()
        return buf

    return call, check


_BUILDERS: dict[str, Callable[[str, Array, int], tuple[Call, Call] | None]] = {
    "numpy-out": _numpy_out_impl,
    "scipy": _scipy_impl,
    "torch": _torch_impl,
    "jax": _jax_impl,
}


def _try_import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except (ImportError, OSError, RuntimeError):  # absent or broken: skip that peer
        return None


def make_impls(op: str, x: Array, axis: int, peers: Sequence[str]) -> dict[str, tuple[Call, Call]]:
    """``{name: (call, check)}`` for softmax_rs, the reference and each of ``peers``.

    ``call()`` runs one timed call; ``check()`` runs one and returns a NumPy result.
    Peers without this op (SciPy has no argmax) are left out. The ``COPY`` yardstick is
    added last, for the ops in ``COPY_OPS``.
    """
    impls: dict[str, tuple[Call, Call]] = {
        "softmax_rs": _softmax_rs_impl(op, x, axis),
        "reference": _reference_impl(op, x, axis),
    }
    for peer in peers:
        built = _BUILDERS[peer](op, x, axis)
        if built is not None:
            impls[peer] = built
    copy = _copyto_impl(op, x)
    if copy is not None:
        impls[COPY] = copy
    return impls


def available_peers(wanted: Sequence[str]) -> tuple[str, ...]:
    """The peers among ``wanted`` that import here (JAX in float64 mode)."""
    found = []
    for name in wanted:
        mod = _try_import({"numpy-out": "numpy", "scipy": "scipy.special"}.get(name, name))
        if mod is None:
            continue
        if name == "jax":
            mod.config.update("jax_enable_x64", True)
        found.append(name)
    return tuple(found)


def _peer_version(name: str) -> str | None:
    mod = sys.modules.get({"numpy-out": "numpy"}.get(name, name))
    version = getattr(mod, "__version__", None)
    return None if version is None else str(version)


# --------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------


def _thread_ids() -> list[int]:
    """The ids of this process's threads now (Linux; none elsewhere)."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return []


@contextmanager
def pinned_to_cores(n: int) -> Iterator[bool]:
    """Run the block with every thread of the process on ``n`` of its CPUs, then restore.

    Yields whether it pinned: only on Linux, and only where ``n`` is fewer than the CPUs the
    process may use. Threads started inside the block inherit the pin and lose it on exit.
    """
    if not sys.platform.startswith("linux"):
        yield False
        return
    allowed = os.sched_getaffinity(0)
    tids = _thread_ids()
    if n >= len(allowed) or not tids:
        yield False
        return
    cores = set(sorted(allowed)[:n])
    before: dict[int, set[int]] = {}
    for tid in tids:
        with suppress(OSError):  # a thread that has just exited
            before[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cores)
    try:
        yield True
    finally:
        for tid in _thread_ids():
            with suppress(OSError):
                os.sched_setaffinity(tid, before.get(tid, allowed))


@contextmanager
def at_threads(n: int) -> Iterator[None]:
    """Run the block with every implementation on ``n`` threads, and on ``n`` CPUs.

    softmax_rs and PyTorch are told the count (PyTorch's is restored afterwards); the
    process is pinned to ``n`` CPUs for the rest, JAX's pool, sized at start-up, included.
    """
    import softmax_rs as sr

    torch: Any = sys.modules.get("torch")
    before = None if torch is None else int(torch.get_num_threads())
    if torch is not None:
        torch.set_num_threads(n)
    try:
        with pinned_to_cores(n), sr.threads(n):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def _agrees(op: str, got: Any, want: Any, dtype: str) -> bool:
    g = np.asarray(got)
    w = np.asarray(want)
    if g.shape != w.shape:
        return False
    if op == "argmax":
        return bool(np.array_equal(g, w))
    rtol = 1e-4 if dtype == "float32" else 1e-9
    return bool(np.allclose(g, w, rtol=rtol, atol=rtol))


#: Inputs of at least this many bytes are timed one call per sample, each after the caches
#: were flushed: such arrays come from memory in the pipelines they model, and otherwise
#: whatever part of the input the previous implementation left in the last-level cache
#: favoured the next one (one thread, (4096, 4096) float32 argmax took 2.4 ms right after
#: another read of the same array, 5.2 ms after JAX had read its own copy; the rotation
#: below put softmax_rs after JAX in most rounds).
COLD_MIN_BYTES = 8 << 20
#: Read to flush the caches: larger than the last-level cache of the machines we run on.
FLUSH_BYTES = 256 << 20


#: glibc's ``mallopt`` parameters (``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc takes on 64-bit machines, where its own dynamic
#: threshold stops as well.
MMAP_THRESHOLD_MAX = 32 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc's malloc serve every block up to ``MMAP_THRESHOLD_MAX`` from its heap and
    never trim that heap, so that the temporaries of the implementations that allocate (the
    reference, SciPy) are page-faulted in once, not on every call, whatever ran before.
    Returns whether it applied (glibc only; elsewhere nothing changes).

    By default glibc maps each block above a threshold (128 KiB at start, raised up to
    32 MiB as mapped blocks are freed) and trims the top of its heap, so whether a call's
    temporaries fault depended on what the process had freed before. Measured here, one
    thread: the reference of (1024, 1000) float32 softmax took 4.9 ms a call (1,970 page
    faults) in a fresh process and 1.3 ms with this; of (64, 1000) float64 0.64 ms against
    0.15 ms. Tables made without it had such cells beside others that ran at full speed
    (``vs ref`` 20x-34x at (1024, 1000) on two threads against 3.4x on one). Blocks above
    32 MiB are still mapped on every call, as glibc always maps them: the reference's
    temporaries of the 64 MiB inputs fault in on every call (``numpy-out`` shows NumPy
    without them).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success.
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
        and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    )


@functools.cache
def _flush_buffer() -> Array:
    return np.ones(FLUSH_BYTES // 8)


def _flush_caches() -> None:
    np.max(_flush_buffer())


def _time_batch(call: Call, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n


def _truth(op: str, x: Array, axis: int) -> Any:
    """What every result (the reference's too) is checked against: the reference computed in
    float64, from float32 inputs widened exactly. The reference's own float32 rounding is
    not charged to the others: over a long axis 0 its sums drift (1.9e-3 off for a column
    of 65536 small terms, 4.6e-4 on (1000000, 16) softmax)."""
    from softmax_rs import reference

    wide = x.astype(np.float64) if x.dtype == np.float32 else x
    return getattr(reference, op)(wide, axis)


def measure_case(op: str, x: Array, axis: int, threads: int, settings: Settings) -> Result:
    """Measure every implementation of one case side by side, interleaved."""
    impls = make_impls(op, x, axis, settings.peers)

    want = _truth(op, x, axis)
    itemsize = np.dtype(np.intp).itemsize if op == "argmax" else x.itemsize
    nbytes = x.nbytes + np.asarray(want).size * itemsize
    result = Result(x.shape, axis, str(x.dtype), op, threads, nbytes)
    with at_threads(threads):
        per_call: dict[str, float] = {}
        for name, (call, check) in impls.items():
            got = check()  # warm-up
            if name != COPY:
                result.ok[name] = _agrees(op, got, want, result.dtype)
            per_call[name] = _time_batch(call, 1)
        cold = x.nbytes >= COLD_MIN_BYTES
        counts = {
            name: 1 if cold else max(1, min(100_000, round(settings.batch_s / max(t, 1e-8))))
            for name, t in per_call.items()
        }
        round_s = sum(counts[k] * per_call[k] for k in impls)
        fit = max(3, int(settings.budget_s / max(round_s, 1e-9)))
        repeats = min(settings.repeats, fit)
        names = list(impls)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for r in range(repeats):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                if cold:
                    _flush_caches()
                samples[name].append(_time_batch(impls[name][0], counts[name]))
    result.samples_s = samples
    result.calls_per_sample = counts
    result.times_s = {k: statistics.median(v) for k, v in samples.items()}
    return result


def _inputs(shape: tuple[int, ...], dtype: str) -> Array:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32) * np.float32(4.0)
    return x.astype(dtype, copy=False)


class Progress:
    """A plain-text progress bar on a stream (stderr); one line per 10% when not a TTY."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last_decile = -1
        self.start = time.perf_counter()

    def update(self, done: int, label: str) -> None:
        frac = done / self.total
        filled = round(self.width * frac)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        text = f"[{bar}] {done:>3}/{self.total} {elapsed:5.1f}s {label}"
        if self.tty:
            self.stream.write("\r" + text[:110].ljust(110))
        elif int(frac * 10) > self.last_decile or done == self.total:
            self.last_decile = int(frac * 10)
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def run(settings: Settings, stream: TextIO | None = None) -> list[Result]:
    """Measure every case of ``settings``, reporting progress on ``stream`` (stderr)."""
    cases = [
        (shape, axis, dtype, op, n)
        for shape, axis in settings.shapes
        for dtype in settings.dtypes
        for op in settings.ops
        for n in settings.threads
    ]
    progress = Progress(len(cases), sys.stderr if stream is None else stream)
    results: list[Result] = []
    inputs: tuple[tuple[tuple[int, ...], str], Array] | None = None
    for i, (shape, axis, dtype, op, n) in enumerate(cases):
        label = f"{op} {_shape_str(shape)} axis={axis} {dtype} {n}T"
        progress.update(i, label)
        if inputs is None or inputs[0] != (shape, dtype):
            inputs = None  # free the previous input first
            inputs = ((shape, dtype), _inputs(shape, dtype))
        results.append(measure_case(op, inputs[1], axis, n, settings))
    progress.update(len(cases), "done")
    progress.close()
    return results


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def _shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _us(t: float | None) -> str:
    if t is None:
        return "-"
    us = t * 1e6
    if us < 10:
        return f"{us:.2f}"
    if us < 1000:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def _ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def format_table(results: Sequence[Result], peers: Sequence[str]) -> str:
    """The readable table: times per call in µs, speed-ups and softmax_rs's GB/s."""
    copy = any(COPY in r.times_s for r in results)
    impl_cols = ["softmax_rs", "reference", *peers, *([COPY] if copy else [])]
    header = [
        "shape",
        "axis",
        "dtype",
        "op",
        "thr",
        *(f"{c} µs" for c in impl_cols),
        "vs ref",
        "vs best",
        "best peer",
        *(["x copy"] if copy else []),
        "GB/s",
    ]
    rows = [header]
    for r in results:
        cells = [
            _shape_str(r.shape),
            str(r.axis),
            r.dtype,
            r.op,
            str(r.threads),
        ]
        for c in impl_cols:
            t = r.times_s.get(c)
            cell = _us(t)
            if t is not None and not r.ok.get(c, True):
                cell += "!"
            cells.append(cell)
        gbps = r.gbps
        cells += [
            _ratio(r.speedup_vs_reference),
            _ratio(r.speedup_vs_best_peer),
            r.best_peer or "-",
            *([_ratio(r.times_copy)] if copy else []),
            "-" if gbps is None else f"{gbps:.2f}" if gbps < 10 else f"{gbps:.1f}",
        ]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    left = {header.index(name) for name in ("shape", "dtype", "op", "best peer")}
    lines = []
    for k, row in enumerate(rows):
        line = "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        lines.append(line.rstrip())
        if k == 0:
            lines.append("-" * len(line))
    notes = [
        "",
        (
            "Medians of interleaved rounds, time per call in µs. vs ref = reference "
            "time / softmax_rs time; vs best = fastest peer / softmax_rs."
        ),
        (
            "GB/s = bytes read and written by softmax_rs (input + result) per second. "
            "'!' marks a result that disagreed with the reference computed in float64 (never a "
            "'best')."
        ),
    ]
    if copy:
        notes.append(
            "x copy = softmax_rs time / time of np.copyto of the input into a preallocated "
            "array (the same bytes read and written; softmax and log_softmax only)."
        )
    notes.append(
        "thr = threads: each case ran with the process pinned to that many CPUs "
        "(where fewer than it may use), so that every implementation had the same cores."
    )
    return "\n".join(lines + notes)


def environment(settings: Settings, malloc_keeps_freed: bool) -> dict[str, Any]:
    import softmax_rs as sr

    return {
        "softmax_rs": getattr(sr, "__version__", None),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": list(settings.threads),
        "quick": settings.quick,
        "peers": {p: _peer_version(p) for p in settings.peers},
        # Whether the run had glibc keep freed memory (`keep_freed_memory`).
        "malloc_keeps_freed": malloc_keeps_freed,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json(
    path: str, results: Sequence[Result], settings: Settings, malloc_keeps_freed: bool
) -> None:
    doc = {
        "environment": environment(settings, malloc_keeps_freed),
        "results": [r.to_json() for r in results],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def write_plot(path: str, results: Sequence[Result]) -> None:
    """Speed-ups (vs reference, vs best peer) per shape and thread count, one panel per op."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'softmax_rs[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = [op for op in OPS if any(r.op == op for r in results)]
    threads = sorted({r.threads for r in results})
    ncols = 2 if len(ops) > 1 else 1
    nrows = (len(ops) + ncols - 1) // ncols
    labels = list(
        dict.fromkeys(
            (f"{_shape_str(r.shape)}{'' if r.axis == -1 else f' ax{r.axis}'} {r.dtype}")
            for r in results
        )
    )
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(max(6.0, 0.55 * len(labels) * ncols + 2), 3.6 * nrows),
        squeeze=False,
    )
    nbars = 2 * len(threads)
    width = 0.8 / nbars
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, op in enumerate(ops):
        ax = axes[k // ncols][k % ncols]
        for j, n in enumerate(threads):
            by_label = {
                f"{_shape_str(r.shape)}{'' if r.axis == -1 else f' ax{r.axis}'} {r.dtype}": r
                for r in results
                if r.op == op and r.threads == n
            }
            for kind, (name, hatch) in enumerate((("reference", ""), ("best peer", "//"))):
                xs, ys = [], []
                for i, label in enumerate(labels):
                    r = by_label.get(label)
                    if r is None:
                        continue
                    y = r.speedup_vs_reference if kind == 0 else r.speedup_vs_best_peer
                    if y is not None:
                        xs.append(i - 0.4 + width * (2 * j + kind + 0.5))
                        ys.append(y)
                ax.bar(
                    xs,
                    ys,
                    width,
                    label=f"vs {name}, {n} thread{'s' if n > 1 else ''}",
                    color=colors[j % len(colors)],
                    alpha=1.0 if kind == 0 else 0.55,
                    hatch=hatch,
                )
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_title(op)
        ax.set_ylabel("speed-up (x)")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
        ax.legend(fontsize=7)
    for k in range(len(ops), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.suptitle("softmax_rs speed-up (median time ratio)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _parse_shape(text: str) -> tuple[tuple[int, ...], int]:
    """``64x1000`` (axis -1) or ``2048x2048:0`` (axis 0)."""
    dims, _, axis = text.partition(":")
    try:
        shape = tuple(int(n) for n in dims.lower().split("x"))
        ax = int(axis) if axis else -1
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: use 64x1000[:axis]") from None
    if not shape or min(shape) < 1 or not -len(shape) <= ax < len(shape):
        raise argparse.ArgumentTypeError(f"bad shape {text!r}")
    return shape, ax


def _list_of(choices: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(s.strip() for s in text.split(",") if s.strip())
        bad = [s for s in items if s not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"choose from {', '.join(choices)} (comma-separated), got {text!r}"
            )
        return items

    return parse


def _threads_list(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad thread count {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {text!r}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softmax-rs bench",
        description="Time softmax_rs against softmax_rs.reference (NumPy) and the "
        "installed peers (SciPy, PyTorch, JAX), side by side in one run.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer, smaller shapes and fewer repeats"
    )
    parser.add_argument(
        "--threads",
        type=_threads_list,
        metavar="N",
        help="thread count(s) for softmax_rs and PyTorch, e.g. 2 or 1,2 "
        "(default: 1 and all usable cores)",
    )
    parser.add_argument("--json", metavar="FILE", help="write all results as JSON")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="write a chart of the speed-ups (matplotlib)"
    )
    parser.add_argument("--ops", type=_list_of(OPS), help=f"subset of {','.join(OPS)}")
    parser.add_argument("--dtypes", type=_list_of(DTYPES), help=f"subset of {','.join(DTYPES)}")
    parser.add_argument(
        "--peers",
        type=_list_of(PEERS),
        help=f"subset of {','.join(PEERS)} (default: all installed)",
    )
    parser.add_argument(
        "--shapes",
        type=lambda s: tuple(_parse_shape(p) for p in s.split(",") if p),
        help="comma-separated shapes, e.g. 64x1000,2048x2048:0 (':0' = axis 0)",
    )
    parser.add_argument(
        "--repeats", type=int, metavar="R", help="at most R interleaved rounds per case"
    )
    return parser


def settings_from_args(ns: argparse.Namespace) -> Settings:
    import softmax_rs as sr

    if ns.threads is not None:
        threads = tuple(dict.fromkeys(ns.threads))
    else:
        default = int(sr.get_num_threads())
        threads = (1, default) if default > 1 else (1,)
    quick = bool(ns.quick)
    repeats = ns.repeats if ns.repeats is not None else (5 if quick else 15)
    if repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    return Settings(
        shapes=ns.shapes or (QUICK_SHAPES if quick else FULL_SHAPES),
        ops=ns.ops or OPS,
        dtypes=ns.dtypes or DTYPES,
        threads=threads,
        peers=available_peers(ns.peers or PEERS),
        repeats=repeats,
        batch_s=0.002 if quick else 0.01,
        budget_s=0.25 if quick else 2.0,
        quick=quick,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table on stdout. Returns the exit status."""
    ns = build_parser().parse_args(list(argv) if argv is not None else None)
    settings = settings_from_args(ns)
    kept = keep_freed_memory()
    results = run(settings)
    print(format_table(results, settings.peers))
    if ns.json:
        write_json(ns.json, results, settings, kept)
        print(f"\nwrote {ns.json}")
    if ns.plot:
        write_plot(ns.plot, results)
        print(f"wrote {ns.plot}")
    return 0
