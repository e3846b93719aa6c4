"""Command line: ``python -m softmax_rs {demo,bench}``, also the ``softmax-rs`` script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softmax-rs",
        description="Fast, numerically stable softmax for NumPy.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{demo,bench}")
    sub.add_parser("demo", help="the [1, 3, 2] example, stability, argmax")
    sub.add_parser(
        "bench",
        help="time softmax_rs against NumPy and the installed peers "
        "(softmax-rs bench --help for its options)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``demo`` / ``bench``; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "bench":
        from softmax_rs import _bench

        return _bench.main(args[1:])
    parser = _parser()
    ns = parser.parse_args(args)
    if ns.command == "demo":
        from softmax_rs import _demo

        return _demo.main()
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
