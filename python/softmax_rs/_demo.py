"""``python -m softmax_rs demo``: the [1, 3, 2] example, stability, argmax."""

from __future__ import annotations

import numpy as np

__all__ = ["main"]


def _fmt(a: object) -> str:
    return np.array2string(np.asarray(a), precision=8, floatmode="maxprec", separator=" ")


def main() -> int:
    """Print the demo on stdout; return the exit status."""
    import softmax_rs as sr

    x = np.array([1.0, 3.0, 2.0])
    big = np.array([1000.0, 3000.0, 2000.0])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(big) / np.exp(big).sum()

    lines = [
        "softmax_rs demo",
        "",
        f"x = {_fmt(x)}",
        f"  softmax(x)     = {_fmt(sr.softmax(x))}",
        f"  log_softmax(x) = {_fmt(sr.log_softmax(x))}",
        f"  logsumexp(x)   = {float(sr.logsumexp(x)):.8f}",
        f"  argmax(x)      = {int(sr.argmax(x))}",
        "",
        "Stability: the maximum is subtracted before exponentiating.",
        f"x = {_fmt(big)}",
        f"  naive exp(x) / sum(exp(x)) = {_fmt(naive)}   (exp overflows)",
        f"  softmax(x)     = {_fmt(sr.softmax(big))}",
        f"  log_softmax(x) = {_fmt(sr.log_softmax(big))}",
        f"  logsumexp(x)   = {float(sr.logsumexp(big)):.8f}",
        f"  argmax(x)      = {int(sr.argmax(big))}",
        "",
        "A batch of rows (axis=-1, the default):",
        "x = [[1, 3, 2], [0, 0, 0], [-1, 5, 5]]",
    ]
    batch = np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0], [-1.0, 5.0, 5.0]])
    probs = np.asarray(sr.softmax(batch))
    for row in probs:
        lines.append(f"  softmax  {_fmt(row)}")
    lines.append(f"  argmax   {_fmt(sr.argmax(batch))}   (ties: the first maximum)")
    print("\n".join(lines))
    return 0
