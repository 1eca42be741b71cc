"""The probes: each fits one direction in one layer's normalised hidden states.

Inputs are the normalised states ``z`` of the items (items x sides x width, ``features``). A probe
reads ``f``: the state itself for statements, the difference of the two sides (second choice minus
first) for contrast pairs, where label 1 means the second choice is right.

Supervised (the labels fit the direction):

- ``logreg``: L2-regularised logistic regression on ``f`` (scikit-learn, ``C`` = ``logreg_c``);
  Mallen et al.'s best method on contrast pairs.
- ``diffmean``: the difference of the class means of ``f``, w = mu1 - mu0, threshold halfway
  between them; probabilities sigmoid(slope x score), the slope fitted on the training labels.
- ``lda``: mass-mean with the pooled covariance (Marks & Tegmark's "mass-mean + IID"):
  w = S^-1 (mu1 - mu0), S the class-weighted within-class covariance shrunk towards a multiple of
  the identity, (1 - a) S + a tr(S)/d I, with a the Ledoit-Wolf estimate (so it is defined when the
  width exceeds the items); scikit-learn's ``LinearDiscriminantAnalysis`` (lsqr solver, that
  shrinkage), whose posterior is the probability.

Unsupervised (the labels give the sign, and only the sign: a direction whose training AUROC is
below 0.5 is turned round):

- ``ccs``: Burns et al.'s contrast-consistent search, pairs only. p(x) = sigmoid(w.z + b) on each
  side; loss = mean[(p(x1) - (1 - p(x0)))^2 + min(p(x0), p(x1))^2]; minimised by L-BFGS from
  ``ccs_restarts`` random starts, the lowest loss kept. The item's probability is
  (p(x1) + 1 - p(x0)) / 2.
- ``vinc``: elk's VINC reporter in closed form, pairs only: the top eigenvector (largest algebraic
  eigenvalue) of A = var_weight (C00 + C11)/2 - neg_cov_weight (C01 + C10)/2, the sides' covariances
  and cross-covariance, with elk's defaults (0 and 0.5). With one prompt per item the invariance term
  is zero and VINC is the CRC (contrastive representation clustering) direction. elk first erases
  the subspace that tells the sides apart; per-side normalisation has already removed it (the
  sides' means are equal after it). Score w.(z1 - z0).
- ``random``: a random unit direction (seeded per layer), the baseline every other method must beat.

Accuracy and AUROC of ``vinc`` and ``random`` use the sign alone (threshold 0: the sides are
centred); their probabilities, for calibration only, use one slope fitted on the training labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ConfigError
from .metrics import auroc

METHODS = ("logreg", "diffmean", "lda", "ccs", "vinc", "random")
"""Every method, in report order."""
SUPERVISED = ("logreg", "diffmean", "lda")
PAIRS_ONLY = ("ccs", "vinc")
VINC_VAR_WEIGHT = 0.0
VINC_NEG_COV_WEIGHT = 0.5


def parse_methods(spec: str | list[str] | None, kind: str) -> list[str]:
    """``all`` (or None): every method the data allows (``ccs`` and ``vinc`` need contrast pairs); else a
    comma list of method names, each one the data allows."""
    if spec is None or spec == "all":
        return [m for m in METHODS if kind == "pairs" or m not in PAIRS_ONLY]
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise ConfigError(f"--methods {spec!r}: name at least one of {', '.join(METHODS)}, or all")
    chosen: list[str] = []
    for name in names:
        if name not in METHODS:
            raise ConfigError(f"--methods: unknown method {name!r}; use all or some of {', '.join(METHODS)}")
        if name in PAIRS_ONLY and kind != "pairs":
            raise ConfigError(f"--methods {name}: {name} needs contrast pairs ({{\"question\", \"choices\", "
                              "\"label\"}); the data holds statements")
        if name not in chosen:
            chosen.append(name)
    return chosen


def probe_inputs(z: np.ndarray) -> np.ndarray:
    """What a linear probe reads: the state (statements) or the second side minus the first (pairs)."""
    return z[:, 0] if z.shape[1] == 1 else z[:, 1] - z[:, 0]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass
class FittedProbe:
    """A fitted direction and how it turns normalised states into a score and a probability."""
    method: str
    layer: int
    weight: np.ndarray
    """The direction (width,), in the layer's normalised space (the model's own up to one scale per side)."""
    bias: float
    slope: float = 1.0
    offset: float = 0.0
    """Probability = sigmoid(slope x score + offset) (1 and 0 where the method has its own probability)."""
    loss: float | None = None
    """CCS: its loss at the kept restart; VINC: the eigenvalue."""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> np.ndarray:
        norm = float(np.linalg.norm(self.weight))
        return self.weight / norm if norm > 0 else self.weight

    def _ccs(self, z: np.ndarray) -> np.ndarray:
        p0 = _sigmoid(z[:, 0] @ self.weight + self.bias)
        p1 = _sigmoid(z[:, 1] @ self.weight + self.bias)
        return 0.5 * (p1 + 1.0 - p0)

    def scores(self, z: np.ndarray) -> np.ndarray:
        """Higher: label 1 more likely (the ranking AUROC measures)."""
        if self.method == "ccs":
            return self._ccs(z)
        return probe_inputs(z) @ self.weight + self.bias

    def probabilities(self, z: np.ndarray) -> np.ndarray:
        """The probability of label 1 (what calibration is measured on)."""
        if self.method == "ccs":
            return self._ccs(z)
        return _sigmoid(self.slope * self.scores(z) + self.offset)

    def predictions(self, z: np.ndarray) -> np.ndarray:
        """The predicted labels (what accuracy counts): score above 0 (CCS: probability above 0.5). For
        logreg and LDA that is their probability above 0.5; for the others the threshold the method set,
        whatever slope calibration fitted."""
        if self.method == "ccs":
            return (self._ccs(z) > 0.5).astype(np.int64)
        return (self.scores(z) > 0).astype(np.int64)


def fit_probe(method: str, layer: int, z: np.ndarray, labels: np.ndarray, seed: int = 0, logreg_c: float = 1.0,
              ccs_restarts: int = 10) -> FittedProbe:
    """One method's probe on the normalised states ``z`` (items x sides x width) of the training items."""
    y = np.asarray(labels, dtype=np.int64)
    f = probe_inputs(z)
    if method == "logreg":
        return _fit_logreg(layer, f, y, logreg_c)
    if method == "diffmean":
        probe = _fit_diffmean(layer, f, y)
        probe.slope, _ = platt_scaling(probe.scores(z), y, offset=False)
        return probe
    if method == "lda":
        return _fit_lda(layer, f, y)
    if method in PAIRS_ONLY and z.shape[1] != 2:
        raise ConfigError(f"{method} needs contrast pairs; the data holds statements")
    if method == "ccs":
        probe = fit_ccs(layer, z, restarts=ccs_restarts, seed=seed)
    elif method == "vinc":
        probe = fit_vinc(layer, z)
    elif method == "random":
        rng = np.random.default_rng([seed, layer])
        weight = rng.standard_normal(z.shape[-1])
        probe = FittedProbe("random", layer, weight / np.linalg.norm(weight), 0.0)
    else:
        raise ConfigError(f"unknown probe method {method!r}; use one of {', '.join(METHODS)}")
    _orient(probe, z, y)
    if method != "ccs":
        probe.slope, _ = platt_scaling(probe.scores(z), y, offset=False)
    return probe


def _orient(probe: FittedProbe, z: np.ndarray, y: np.ndarray) -> None:
    """The sign, from the training labels: a direction that ranks label 0 higher is turned round."""
    if auroc(y, probe.scores(z)) < 0.5:
        probe.weight = -probe.weight
        probe.bias = -probe.bias
        probe.details["flipped"] = True
    else:
        probe.details["flipped"] = False


def _fit_logreg(layer: int, f: np.ndarray, y: np.ndarray, c: float) -> FittedProbe:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=10_000, tol=1e-8)
    model.fit(f, y)
    return FittedProbe("logreg", layer, model.coef_[0].astype(np.float64), float(model.intercept_[0]),
                       details={"C": c})


def _fit_diffmean(layer: int, f: np.ndarray, y: np.ndarray) -> FittedProbe:
    mu1, mu0 = f[y == 1].mean(axis=0), f[y == 0].mean(axis=0)
    weight = mu1 - mu0
    return FittedProbe("diffmean", layer, weight, float(-weight @ (mu1 + mu0) / 2))


def lda_shrinkage(f: np.ndarray, y: np.ndarray) -> float:
    """The Ledoit-Wolf shrinkage of the within-class covariance (on the class-centred inputs)."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    centred = f.copy()
    for value in (0, 1):
        centred[y == value] -= f[y == value].mean(axis=0)
    return float(ledoit_wolf_shrinkage(centred, assume_centered=True))


def _fit_lda(layer: int, f: np.ndarray, y: np.ndarray) -> FittedProbe:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    shrinkage = lda_shrinkage(f, y)
    model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage)
    model.fit(f, y)
    return FittedProbe("lda", layer, model.coef_[0].astype(np.float64), float(model.intercept_[0]),
                       details={"shrinkage": shrinkage})


def ccs_loss(p0: Any, p1: Any) -> Any:
    """Burns et al.'s loss: consistency (p1 = 1 - p0) plus confidence (the smaller of the two near 0),
    averaged over items; ``p0``, ``p1``: each item's probability on its first and second side (numpy
    arrays or torch tensors)."""
    if isinstance(p0, np.ndarray):
        return float(np.mean((p1 - (1.0 - p0)) ** 2 + np.minimum(p0, p1) ** 2))
    import torch

    return ((p1 - (1.0 - p0)) ** 2 + torch.minimum(p0, p1) ** 2).mean()


def fit_ccs(layer: int, z: np.ndarray, restarts: int = 10, seed: int = 0, max_iter: int = 100) -> FittedProbe:
    """CCS by L-BFGS from ``restarts`` random starts (w ~ N(0, 1/width), b = 0); the lowest loss is
    kept. ``details["losses"]`` lists every start's final loss."""
    import torch

    x0 = torch.tensor(z[:, 0], dtype=torch.float64)
    x1 = torch.tensor(z[:, 1], dtype=torch.float64)
    width = x0.shape[1]
    best: tuple[float, np.ndarray, float] | None = None
    losses = []
    for start in range(restarts):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + layer * 1009 + start)
        weight = (torch.randn(width, generator=generator, dtype=torch.float64) / width ** 0.5).requires_grad_()
        bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe",
                                      tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure() -> Any:
            optimizer.zero_grad()
            loss = ccs_loss(torch.sigmoid(x0 @ weight + bias), torch.sigmoid(x1 @ weight + bias))
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            final = float(ccs_loss(torch.sigmoid(x0 @ weight + bias), torch.sigmoid(x1 @ weight + bias)))
        losses.append(final)
        if best is None or final < best[0]:
            best = (final, weight.detach().numpy().copy(), float(bias.detach()))
    assert best is not None
    return FittedProbe("ccs", layer, best[1], best[2], loss=best[0], details={"losses": losses})


def vinc_matrix(z: np.ndarray, var_weight: float = VINC_VAR_WEIGHT,
                neg_cov_weight: float = VINC_NEG_COV_WEIGHT) -> np.ndarray:
    """VINC's matrix for one prompt per item: var_weight (C00 + C11)/2 - neg_cov_weight (C01 + C10)/2."""
    x0 = z[:, 0] - z[:, 0].mean(axis=0)
    x1 = z[:, 1] - z[:, 1].mean(axis=0)
    n = len(x0)
    c00, c11, c01 = x0.T @ x0 / n, x1.T @ x1 / n, x0.T @ x1 / n
    return var_weight * (c00 + c11) / 2 - neg_cov_weight * (c01 + c01.T) / 2


def fit_vinc(layer: int, z: np.ndarray) -> FittedProbe:
    values, vectors = np.linalg.eigh(vinc_matrix(z))
    return FittedProbe("vinc", layer, vectors[:, -1].copy(), 0.0, loss=float(values[-1]))


def platt_scaling(scores: np.ndarray, labels: np.ndarray, offset: bool = True) -> tuple[float, float]:
    """(slope, offset) of sigmoid(slope x score + offset) fitted to the labels by maximum likelihood, with
    a small ridge on the slope (in units of the scores' spread) so separable training items keep it finite;
    ``offset=False`` fits the slope alone (the threshold stays where the method put it)."""
    from scipy.optimize import minimize

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    spread = float(s.std()) or 1.0
    u = s / spread

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, c = theta[0], (theta[1] if offset else 0.0)
        t = a * u + c
        loss = np.mean(np.logaddexp(0.0, t) - y * t) + 1e-3 * a * a
        r = _sigmoid(t) - y
        grad = [np.mean(r * u) + 2e-3 * a] + ([np.mean(r)] if offset else [])
        return float(loss), np.array(grad)

    start = np.array([1.0, 0.0] if offset else [1.0])
    found = minimize(objective, start, jac=True, method="L-BFGS-B",
                     bounds=[(0.0, None)] + ([(None, None)] if offset else []))
    return float(found.x[0] / spread), float(found.x[1]) if offset else 0.0
