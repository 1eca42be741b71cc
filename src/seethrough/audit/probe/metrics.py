"""What a probe's scores on held-out items are worth: accuracy, AUROC, calibration, and bootstrap
intervals of the first two.

- ``auroc``: the probability that a random positive item scores above a random negative one, ties
  counting one half (the Mann-Whitney statistic, from mid-ranks);
- ``expected_calibration_error``: the probabilities of label 1 in ``bins`` equal-width bins over
  [0, 1] (1.0 in the last); the gap between each bin's mean probability and its share of label 1,
  weighted by the bin's share of items;
- ``bootstrap_intervals``: percentile intervals over resamples of the items, drawn with
  replacement; the same resamples serve every layer and method of a report, so their intervals
  are comparable. A resample with only one label has no AUROC and is left out of that interval.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 1000
"""Bootstrap resamples behind every interval."""


def _ranks(values: np.ndarray) -> np.ndarray:
    """Mid-ranks (1-based, ties averaged) along the last axis."""
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (0/1); NaN when only one label is present."""
    labels = np.asarray(labels)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Share of items whose predicted label (0/1) is their label."""
    return float(np.mean(np.asarray(predicted).astype(np.int64) == np.asarray(labels)))


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """ECE of the probabilities of label 1 over ``bins`` equal-width bins."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(y[inside].mean() - p[inside].mean())
    return float(total)


def resample_indexes(n: int, seed: int = 0, resamples: int = RESAMPLES) -> np.ndarray:
    """``resamples`` x ``n`` item indexes drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_intervals(labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray,
                        resamples: np.ndarray) -> dict[str, list[float] | None]:
    """95% percentile intervals of accuracy (of the ``predicted`` labels) and AUROC (of the ``scores``)
    over ``resamples`` (rows of item indexes)."""
    y = np.asarray(labels)[resamples]
    s = np.asarray(scores, dtype=np.float64)[resamples]
    right = (np.asarray(predicted).astype(np.int64)[resamples] == y).mean(axis=1)
    positives = y.sum(axis=1)
    negatives = y.shape[1] - positives
    ranks = _ranks(s)
    with np.errstate(invalid="ignore", divide="ignore"):
        areas = ((ranks * (y == 1)).sum(axis=1) - positives * (positives + 1) / 2) / (positives * negatives)
    areas = areas[(positives > 0) & (negatives > 0)]
    return {"accuracy_ci": _interval(right), "auroc_ci": _interval(areas) if len(areas) else None}


def _interval(values: np.ndarray) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]
