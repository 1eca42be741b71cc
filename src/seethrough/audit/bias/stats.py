"""Statistics the bias audits share: percentile bootstrap intervals, Pearson and Spearman
correlations (numpy only).

Every interval is a 95% percentile bootstrap over the units that were sampled (windows, items,
targets), ``BOOTSTRAP_ROUNDS`` resamples from a seeded generator, so the same inputs give the same
interval. A resample on which a statistic is undefined (all x equal, for a correlation) is left out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BOOTSTRAP_ROUNDS = 1000
CELLS_PER_CHUNK = 1 << 23
"""Resampled values held at once (rounds x sample size), so a large sample is resampled in chunks."""


def percentile_interval(values: np.ndarray, level: float = 0.95) -> list[float] | None:
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap(n: int, statistic: Callable[[np.ndarray], np.ndarray], rounds: int = BOOTSTRAP_ROUNDS,
              seed: int = 0) -> np.ndarray:
    """``statistic`` of ``rounds`` resamples of ``n`` units: it takes a (chunk, n) array of resampled
    unit indexes and returns one value per row."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CELLS_PER_CHUNK // max(n, 1))
    out = []
    for start in range(0, rounds, per_chunk):
        picks = rng.integers(0, n, size=(min(per_chunk, rounds - start), n))
        out.append(np.asarray(statistic(picks), dtype=np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def mean_interval(values: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> list[float] | None:
    """95% bootstrap interval of the mean (None for no values)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return None
    return percentile_interval(bootstrap(len(values), lambda picks: values[picks].mean(axis=1), rounds, seed))


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's r, or None when either side has no spread (or fewer than two points)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denominator) if denominator > 0 else None


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given the mean of the ranks they span (as Spearman's rho needs)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    return pearson(average_ranks(x), average_ranks(y))


def correlation(x: np.ndarray, y: np.ndarray, units: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS,
                seed: int = 0) -> dict[str, object]:
    """Pearson and Spearman of (x, y) with 95% bootstrap intervals, resampling ``units`` (the points of
    one unit, a target, are drawn together)."""
    x, y, units = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(units)
    names, members = np.unique(units, return_inverse=True)
    points_of = [np.flatnonzero(members == u) for u in range(len(names))]
    pearsons, spearmans = [], []
    rng = np.random.default_rng(seed)
    for _ in range(rounds if len(names) >= 2 else 0):
        chosen = np.concatenate([points_of[u] for u in rng.integers(0, len(names), len(names))])
        pearsons.append(np.nan if (r := pearson(x[chosen], y[chosen])) is None else r)
        spearmans.append(np.nan if (r := spearman(x[chosen], y[chosen])) is None else r)
    return {"points": int(len(x)), "units": int(len(names)), "pearson": pearson(x, y),
            "pearson_ci": percentile_interval(np.array(pearsons)), "spearman": spearman(x, y),
            "spearman_ci": percentile_interval(np.array(spearmans))}
