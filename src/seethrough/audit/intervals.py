"""Intervals and exact tests for proportions: what an accuracy, or a difference of two, can claim.

- ``wilson_interval``: the Wilson score interval of one binomial proportion (Wilson 1927; the
  interval Brown, Cai & DasGupta 2001 recommend). Sound at 0 and n successes, unlike the normal one.
- ``newcombe_interval``: the interval of a difference of two independent proportions by
  Newcombe's hybrid score method (Newcombe 1998, "Interval estimation for the difference between
  independent proportions", method 10): each proportion's Wilson interval, combined as
  ``L = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)``, ``U = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``. It is
  the default of statsmodels' ``confint_proportions_2indep`` ("newcomb"), written here in closed form.
- ``p_at_least``: the exact one-sided p-value of getting at least ``k`` right by chance when item
  ``i`` is right with probability ``chances[i]`` (a Poisson binomial; a binomial when every chance
  is the same), computed by convolving one binomial per distinct chance.

Pure Python and numpy (scipy is only the tests' reference).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n`` (``(0, 1)`` when ``n`` is 0: nothing is known)."""
    if n == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # clamped around p: rounding would otherwise put the bound of 0/n a hair above 0
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


def newcombe_interval(successes1: int, n1: int, successes2: int, n2: int,
                      confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) of ``successes1/n1 - successes2/n2``."""
    if n1 == 0 or n2 == 0:
        return (-1.0, 1.0)
    p1, p2 = successes1 / n1, successes2 / n2
    l1, u1 = wilson_interval(successes1, n1, confidence)
    l2, u2 = wilson_interval(successes2, n2, confidence)
    d = p1 - p2
    return (max(-1.0, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
            min(1.0, d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)))


def binomial_pmf(n: int, p: float) -> np.ndarray:
    """P(X = j), j = 0..n, for X ~ Binomial(n, p) (in log space, so large n neither overflows nor underflows
    where the mass is)."""
    if p <= 0.0 or p >= 1.0:
        out = np.zeros(n + 1)
        out[0 if p <= 0.0 else n] = 1.0
        return out
    j = np.arange(n + 1, dtype=np.float64)
    log_choose = math.lgamma(n + 1) - np.array([math.lgamma(x + 1) + math.lgamma(n - x + 1) for x in range(n + 1)])
    return np.exp(log_choose + j * math.log(p) + (n - j) * math.log1p(-p))


def p_at_least(successes: int, chances: Sequence[float]) -> float:
    """P(at least ``successes`` of the items right), item ``i`` right by chance with ``chances[i]``
    independently: the exact one-sided p-value of the observed count against chance."""
    if successes <= 0:
        return 1.0
    if successes > len(chances):
        return 0.0
    pmf = np.ones(1)
    for chance, count in sorted(Counter(float(c) for c in chances).items()):
        pmf = np.convolve(pmf, binomial_pmf(count, chance))
    return float(min(1.0, max(0.0, pmf[successes:].sum())))
