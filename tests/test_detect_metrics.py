"""Detection metrics against hand-worked cases, scikit-learn, scipy, a plain bootstrap loop and the
per-text predictions Fast-DetectGPT's authors published with their stored AUROC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seethrough.audit.detect.metrics import (allowed_above, auroc, bootstrap_tpr, clopper_pearson, exact_threshold,
                                             rate_metrics)

FDG = Path(__file__).resolve().parents[2] / "shared" / "data" / "fast-detect-gpt"


def test_threshold_and_tpr_by_hand():
    humans = np.arange(100.0)  # at 1% one human may lie above: the threshold is the 2nd highest, 98
    assert exact_threshold(humans, 0.01) == 98.0
    machines = np.array([98.0, 98.5, 99.5, 50.0])
    result = rate_metrics(humans, humans, machines, 0.01, rounds=0, rng=np.random.default_rng(0))
    assert result.tpr == 0.5 and result.false_positives == 1 and result.fpr == 0.01  # 98.5, 99.5 > 98; human 99 > 98
    assert exact_threshold(humans, 0.001) is None  # floor(0.1) = 0 humans allowed above: not estimable
    assert rate_metrics(humans, humans, machines, 0.001, 0, np.random.default_rng(0)).tpr is None
    assert exact_threshold(np.arange(1000.0), 0.001) == 998.0
    assert exact_threshold(humans, 0.05, min_above=10) is None  # floor(5) < 10
    assert exact_threshold(np.arange(1000.0), 0.01, min_above=10) == 989.0
    assert allowed_above(0.29, 100) == 29  # 0.29 * 100 is 28.999... in floating point


def test_threshold_with_ties_counts_them_and_never_lets_more_than_allowed_above():
    humans = np.array([5.0] * 10 + [1.0] * 90)
    threshold = exact_threshold(humans, 0.05)  # 5 may lie above; the 6th highest is a 5
    assert threshold == 5.0 and (humans > threshold).sum() == 0
    result = rate_metrics(humans, humans, np.array([5.0, 6.0]), 0.05, 0, np.random.default_rng(0))
    assert result.ties_at_threshold == 10 and result.tpr == 0.5


def test_tpr_at_fpr_equals_the_best_sklearn_roc_point_within_the_allowed_fpr():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(3)
    for trial in range(20):
        n, m = int(rng.integers(100, 400)), int(rng.integers(20, 200))
        humans = rng.integers(0, 60, n).astype(float)  # many ties
        machines = rng.integers(10, 80, m).astype(float)
        for rate in (0.01, 0.05, 0.1):
            k = allowed_above(rate, n)
            if k < 1:
                continue
            labels = np.r_[np.zeros(n), np.ones(m)]
            fpr, tpr, _ = roc_curve(labels, np.r_[humans, machines], drop_intermediate=False)
            expected = tpr[fpr <= k / n + 1e-12].max()
            got = rate_metrics(humans, humans, machines, rate, 0, rng).tpr
            assert got == pytest.approx(expected), (trial, rate)


def test_auroc_against_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(10):
        h, m = rng.integers(0, 7, 150).astype(float), rng.integers(2, 9, 90).astype(float)
        assert auroc(m, h) == pytest.approx(roc_auc_score(np.r_[np.zeros(150), np.ones(90)], np.r_[h, m]))
    assert auroc(np.array([1.0, 2.0]), np.array([2.0, 0.0])) == pytest.approx(0.625)  # by hand: (1 + .5 + 1 + 0)/4


@pytest.mark.parametrize("name", ["xsum_gpt-neo-2.7B.likelihood.json", "xsum_gpt-neo-2.7B.logrank.json"])
def test_fast_detect_gpt_published_predictions_give_their_stored_auroc(name):
    """The authors' per-text predictions (500 human, 500 machine) give the AUROC stored beside them, to 4
    decimals, and TPR at 1% FPR the best point of their stored ROC curve within 1% FPR."""
    stored = json.loads((FDG / name).read_text())
    humans, machines = np.array(stored["predictions"]["real"]), np.array(stored["predictions"]["samples"])
    assert len(humans) == len(machines) == 500
    assert round(auroc(machines, humans), 4) == round(stored["metrics"]["roc_auc"], 4)
    fpr, tpr = np.array(stored["metrics"]["fpr"]), np.array(stored["metrics"]["tpr"])
    k = allowed_above(0.01, 500)  # 5 of the 500 humans may lie above
    ours = rate_metrics(humans, humans, machines, 0.01, 0, np.random.default_rng(0))
    assert ours.tpr == pytest.approx(tpr[fpr <= k / 500 + 1e-12].max())
    assert ours.false_positives <= k


def test_clopper_pearson_against_the_beta_quantiles():
    from scipy.stats import beta

    for k, n in ((0, 50), (3, 50), (50, 50), (7, 1000), (1, 1)):
        lo, hi = clopper_pearson(k, n)
        assert lo == pytest.approx(0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1), abs=1e-9)
        assert hi == pytest.approx(1.0 if k == n else beta.ppf(0.975, k + 1, n - k), abs=1e-9)
    assert clopper_pearson(0, 50)[1] == pytest.approx(1 - 0.025 ** (1 / 50))  # the closed form at 0 successes


def test_bootstrap_tpr_equals_a_plain_loop_with_the_same_draws():
    rng = np.random.default_rng(5)
    humans, machines = rng.normal(0, 1, 300), rng.normal(1.5, 1, 200)
    rounds, rate = 400, 0.01
    got = bootstrap_tpr(humans, machines, rate, rounds, np.random.default_rng(9))
    draw = np.random.default_rng(9)  # the same draws: every round's humans, then every round's machines
    human_draws, machine_draws = draw.integers(0, 300, (rounds, 300)), draw.integers(0, 200, (rounds, 200))
    tprs = []
    for h_rows, m_rows in zip(human_draws, machine_draws):
        t = np.sort(humans[h_rows])[::-1][allowed_above(rate, 300)]  # the threshold recomputed in the resample
        tprs.append((machines[m_rows] > t).mean())
    assert got == pytest.approx(tuple(np.percentile(tprs, [2.5, 97.5])))
    point = rate_metrics(humans, humans, machines, rate, 0, rng).tpr
    assert got[0] <= point <= got[1]
    separated = bootstrap_tpr(np.arange(200.0), np.arange(200.0) + 1000, 0.01, 100, np.random.default_rng(0))
    assert separated == (1.0, 1.0)
