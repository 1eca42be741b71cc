"""Detection rates that say how sure they are: calibrated thresholds, realised FPR, TPR at low FPR, AUROC.

Scores are oriented "higher = machine" by each detector's definition, never flipped from data.

- ``exact_threshold``: the score that at most ``floor(rate * n)`` calibration humans exceed (an
  exact empirical quantile; no step search, so any score scale works). A text is called machine
  when its score is strictly above it. Below ``min_above`` allowed humans (``floor(rate * n)``)
  the rate is *not estimable*: no threshold can be told apart from a stricter one.
- ``clopper_pearson``: the exact binomial interval of the realised FPR on the disjoint human test
  split (scipy's ``binomtest(...).proportion_ci(method="exact")``).
- ``bootstrap_tpr``: the percentile interval of the TPR, calibration humans and machine texts
  resampled together, the threshold recomputed in every resample (so the interval carries the
  threshold's own uncertainty, which a fixed-threshold interval would hide).
- ``auroc_with_interval``: ROC AUC (ties count one half) and its percentile bootstrap interval,
  computed by ``audit.membership.evaluate_signal`` (machine texts in the members' place).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

RATES = (0.01, 0.001)
"""The false-positive rates every report gives TPR at."""
RATE_KEYS = {0.01: "1pct", 0.001: "0.1pct"}


def allowed_above(rate: float, n: int) -> int:
    """Calibration humans that may score above the threshold at ``rate``: floor(rate * n), exactly."""
    return math.floor(rate * n + 1e-9)  # 0.29 * 100 is 28.999...: the product is meant exactly


def exact_threshold(calibration: np.ndarray, rate: float, min_above: int = 1) -> float | None:
    """The score at most ``floor(rate * n)`` of ``calibration`` exceed (None: not estimable)."""
    k = allowed_above(rate, len(calibration))
    if k < max(1, min_above) or k >= len(calibration):
        return None
    return float(np.sort(calibration)[::-1][k])


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of ``successes / n``."""
    from scipy.stats import binomtest

    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="exact")
    return (float(ci.low), float(ci.high))


def bootstrap_tpr(calibration: np.ndarray, machine: np.ndarray, rate: float, rounds: int,
                  rng: np.random.Generator, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of TPR at ``rate``: humans and machines resampled, the threshold recomputed
    each round (the caller has checked that the rate is estimable at this calibration size)."""
    n, m = len(calibration), len(machine)
    k = allowed_above(rate, n)
    tprs = np.empty(rounds)
    chunk = max(1, min(rounds, 4_000_000 // max(n, m, 1)))  # bounded memory for large sets
    for start in range(0, rounds, chunk):
        r = min(chunk, rounds - start)
        humans = calibration[rng.integers(0, n, (r, n))]
        thresholds = -np.partition(-humans, k, axis=1)[:, k]  # the (k+1)-th highest of each resample
        machines = machine[rng.integers(0, m, (r, m))]
        tprs[start:start + r] = (machines > thresholds[:, None]).mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(tprs, [tail, 100 - tail])
    return (float(lo), float(hi))


@dataclass
class RateResult:
    """TPR and realised FPR at one target false-positive rate (None where not estimable)."""
    rate: float
    calibration_humans: int
    allowed_above: int
    threshold: float | None
    ties_at_threshold: int
    tpr: float | None
    tpr_ci: tuple[float, float] | None
    machines: int
    false_positives: int | None
    test_humans: int
    fpr: float | None
    fpr_ci: tuple[float, float] | None

    @property
    def estimable(self) -> bool:
        return self.threshold is not None

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "estimable": self.estimable, "calibration_humans": self.calibration_humans,
                "allowed_above": self.allowed_above, "threshold": self.threshold,
                "ties_at_threshold": self.ties_at_threshold, "tpr": self.tpr,
                "tpr_ci": list(self.tpr_ci) if self.tpr_ci else None, "machines": self.machines,
                "false_positives": self.false_positives, "test_humans": self.test_humans, "fpr": self.fpr,
                "fpr_ci": list(self.fpr_ci) if self.fpr_ci else None}


def rate_metrics(calibration: np.ndarray, test_humans: np.ndarray, machine: np.ndarray, rate: float,
                 rounds: int, rng: np.random.Generator, min_above: int = 1) -> RateResult:
    """TPR of ``machine`` and the realised FPR of ``test_humans`` at the threshold ``calibration``
    gives at ``rate``, with a bootstrap interval (TPR) and a Clopper-Pearson one (FPR)."""
    threshold = exact_threshold(calibration, rate, min_above)
    k = allowed_above(rate, len(calibration))
    if threshold is None:
        return RateResult(rate, len(calibration), k, None, 0, None, None, len(machine), None, len(test_humans),
                          None, None)
    ties = int((calibration == threshold).sum())
    tpr = float((machine > threshold).mean()) if len(machine) else None
    tpr_ci = bootstrap_tpr(calibration, machine, rate, rounds, rng) if len(machine) and rounds else None
    fp = int((test_humans > threshold).sum())
    fpr = fp / len(test_humans) if len(test_humans) else None
    fpr_ci = clopper_pearson(fp, len(test_humans)) if len(test_humans) else None
    return RateResult(rate, len(calibration), k, threshold, ties, tpr, tpr_ci, len(machine), fp, len(test_humans),
                      fpr, fpr_ci)


def auroc(machine: np.ndarray, humans: np.ndarray) -> float | None:
    """P(a machine text scores above a human one), ties one half (None when a side is empty)."""
    from ..membership import roc_auc

    return roc_auc(machine, humans) if len(machine) and len(humans) else None


def auroc_with_interval(machine: np.ndarray, humans: np.ndarray, rounds: int, seed: int) -> tuple[float, list[float]]:
    """ROC AUC and its 95% percentile bootstrap interval (``audit.membership.evaluate_signal``)."""
    from ..membership import evaluate_signal

    row = evaluate_signal(machine, humans, rounds=rounds, seed=seed)
    return row["auc"], row["auc_ci"]
