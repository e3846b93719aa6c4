"""Print the accuracy of softmax_rs, scipy.special and PyTorch (if installed) as markdown.

For each battery of test_accuracy.py (N(0,1), N(0,9), N(0,1e4), N(0,9)+1000, N(0,9)-1000;
rows of 10, 1000, 32000 and 128256 values; last axis and axis 0), against the same
high-precision references (float64 for float32 inputs, longdouble for float64 inputs):

- softmax: max relative error where the true value is a normal number;
- max |row sum - 1|;
- log_softmax: max absolute error;
- logsumexp: max relative error.

All in units of the dtype's eps (float32: 2^-23 = 1.19e-7, float64: 2^-52 = 2.22e-16); by
default the maximum over the four row lengths, ``--by-length`` for one line per length.

    python tests/accuracy_table.py [--dtype float32] [--by-length] [--rows-scale 4] [--isa avx2]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _numerics as nu
import numpy as np
import numpy.typing as npt
import softmax_rs as sr
from softmax_rs import _core

Array = npt.NDArray[Any]
scipy_special: Any = importlib.import_module("scipy.special")
scipy_version: str = importlib.import_module("scipy").__version__
Funcs = tuple[Callable[[Array, int], Any], Callable[[Array, int], Any], Callable[[Array, int], Any]]
METRICS = ("softmax_rel", "row_sum", "log_softmax_abs", "logsumexp_rel")
HEADERS = (
    "softmax max rel err",
    "max \\|row sum - 1\\|",
    "log_softmax max abs err",
    "logsumexp max rel err",
)


def _libraries() -> dict[str, Funcs]:
    libs: dict[str, Funcs] = {
        "softmax_rs": (
            lambda x, a: sr.softmax(x, axis=a),
            lambda x, a: sr.log_softmax(x, axis=a),
            lambda x, a: sr.logsumexp(x, axis=a),
        ),
        "scipy": (
            lambda x, a: scipy_special.softmax(x, axis=a),
            lambda x, a: scipy_special.log_softmax(x, axis=a),
            lambda x, a: scipy_special.logsumexp(x, axis=a),
        ),
    }
    try:
        torch: Any = importlib.import_module("torch")
    except ImportError:
        return libs

    def t(x: Array) -> Any:
        return torch.from_numpy(np.ascontiguousarray(x))

    libs["torch"] = (
        lambda x, a: torch.softmax(t(x), dim=a).numpy(),
        lambda x, a: torch.log_softmax(t(x), dim=a).numpy(),
        lambda x, a: torch.logsumexp(t(x), dim=a).numpy(),
    )
    return libs


def measure(case: nu.Case, dtype: Any, libs: dict[str, Funcs]) -> dict[str, dict[str, float]]:
    x = case.make(dtype)
    ref = nu.reference(x, case.axis)
    out: dict[str, dict[str, float]] = {}
    for name, (softmax, log_softmax, logsumexp) in libs.items():
        y = np.asarray(softmax(x, case.axis))
        out[name] = {
            "softmax_rel": nu.softmax_rel_err(y, ref.softmax, dtype),
            "row_sum": nu.row_sum_err(y, case.axis, dtype),
            "log_softmax_abs": nu.abs_err(
                np.asarray(log_softmax(x, case.axis)), ref.log_softmax, dtype
            ),
            "logsumexp_rel": nu.rel_err(np.asarray(logsumexp(x, case.axis)), ref.logsumexp, dtype),
        }
    return out


def table(dtype: Any, *, by_length: bool, row_scale: float) -> str:
    libs = _libraries()
    names = list(libs)
    lines = [
        f"**{np.dtype(dtype).name}** (errors in units of eps = {nu.eps(dtype):.3g}; "
        f"each cell: {' / '.join(names)})",
        "",
        "| battery | layout | " + " | ".join(HEADERS) + " |",
        "|---|---|" + "---|" * len(HEADERS),
    ]
    for battery in nu.BATTERIES:
        for axis in (-1, 0):
            groups: list[tuple[str, list[int]]] = (
                [(f"rows of {d}", [d]) for d in nu.ROW_LENGTHS]
                if by_length
                else [("rows of 10-128256", list(nu.ROW_LENGTHS))]
            )
            for label, lengths in groups:
                worst = {n: dict.fromkeys(METRICS, 0.0) for n in names}
                for d in lengths:
                    case = nu.Case(battery, d, nu.rows_for(d, scale=row_scale), axis)
                    for n, m in measure(case, dtype, libs).items():
                        for k in METRICS:
                            worst[n][k] = max(worst[n][k], m[k])
                layout = ("last axis, " if axis == -1 else "axis 0, ") + label
                cells = [" / ".join(f"{worst[n][k]:.2f}" for n in names) for k in METRICS]
                lines.append(f"| {battery} | {layout} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", choices=("float32", "float64"), action="append")
    p.add_argument("--by-length", action="store_true", help="one line per row length")
    p.add_argument("--rows-scale", type=float, default=1.0, help="more (or fewer) rows")
    p.add_argument("--isa", default=None, help=f"SIMD path, one of {_core.available_isas()}")
    args = p.parse_args(argv)
    if args.isa:
        _core.set_isa(args.isa)
    print(
        f"softmax_rs {sr.__version__}, SIMD path {_core.get_isa()}, "
        f"{sr.get_num_threads()} threads; scipy {scipy_version}, numpy {np.__version__}"
    )
    print()
    for dt in args.dtype or ["float32", "float64"]:
        print(table(np.dtype(dt), by_length=args.by_length, row_scale=args.rows_scale))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
