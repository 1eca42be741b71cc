"""Zero-shot detectors: every score oriented "higher = machine", by definition, never flipped from data.

One forward pass of the scoring model p gives eight detectors at once. No BOS token is added and
the first token is context only (as in Fast-DetectGPT's and Binoculars' code): for a text of
tokens x_1..x_n, position t = 2..n is scored under P_t = p(. | x_<t). Per position: the
log-probability lp_t = log P_t(x_t), the rank r_t = 1 + #{v : log P_t(v) > lp_t} (ties in the
token's favour), mu_t = sum_v P_t(v) log P_t(v) (minus the entropy) and
s2_t = sum_v P_t(v) (log P_t(v))^2 - mu_t^2.

- ``likelihood``: mean lp_t.
- ``logrank``: -mean log r_t; ``rank``: -mean r_t (Fast-DetectGPT's ``baselines.py``).
- ``entropy``: -mean entropy = mean mu_t (machine text has the lower entropy; Fast-DetectGPT
  reports the raw mean, whose AUROCs sit below 0.5).
- ``gltr``: the share of positions whose token is among the 10 most likely (r_t <= 10).
- ``lrr``: |mean lp_t| / mean log r_t (DetectLLM, Su et al. 2023); infinite when every token ranks first.
- ``zlib``: mean lp_t over the zlib-compressed length of the text in bytes (the membership audit's
  ``zlib`` signal, computed by ``audit.membership.model_signals``; a baseline, not a claim).
- ``fast_detect_gpt``: the analytic criterion with p as its own reference,
  (sum lp_t - sum mu_t) / sqrt(sum s2_t) (Bao et al. 2024, ``get_sampling_discrepancy_analytic``).

With a reference model q on the same tokenizer (Q_t = q(. | x_<t); both logit rows cut to the
smaller vocabulary when their sizes differ, as the authors' code does), from the same batch:

- ``fast_detect_gpt_reference``: (sum lp_t - sum m_t) / sqrt(sum v_t), m_t = sum_v Q_t(v) log P_t(v),
  v_t = sum_v Q_t(v) (log P_t(v))^2 - m_t^2: q samples, p scores (the paper's gpt-j -> gpt-neo).
- ``binoculars``: -(mean -lp_t) / (mean -m_t): the performer (p)'s log-perplexity over the
  cross-perplexity with the observer (q)'s probabilities as weights, as Binoculars' code computes
  it (Hans et al. 2024; the code uses the performer's perplexity); negated, so higher = machine.
  The cross-perplexity averages the scored positions only (the authors' code also averages the
  last position, which predicts no token of the text).
- ``binoculars_paper``: the same with the observer (q)'s log-perplexity, as the paper writes it.

Any other detector is a Python callable ``texts -> scores`` named ``module:function``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError, ModelError, QueryError

ONE_PASS = ("likelihood", "logrank", "rank", "entropy", "gltr", "lrr", "zlib", "fast_detect_gpt")
"""The detectors one forward pass of the scoring model gives."""
PAIRED = ("fast_detect_gpt_reference", "binoculars", "binoculars_paper")
"""The detectors that need a reference model on the same tokenizer."""
GLTR_TOP = 10


@dataclass
class PositionStatistics:
    """Per scored position (tokens 2..n) of one text, under the scoring model p (and a reference q)."""
    logprob: np.ndarray
    """lp_t = log P_t(x_t)."""
    rank: np.ndarray
    """r_t: 1 + the tokens more likely than x_t under P_t."""
    mean_logp: np.ndarray
    """mu_t = sum_v P_t(v) log P_t(v), minus the entropy of P_t."""
    var_logp: np.ndarray
    """s2_t = sum_v P_t(v) (log P_t(v))^2 - mu_t^2."""
    reference_logprob: np.ndarray | None = None
    """log Q_t(x_t)."""
    cut_logprob: np.ndarray | None = None
    """log P_t(x_t) over the vocabulary shared with q (equal to ``logprob`` when the sizes match)."""
    cross_mean: np.ndarray | None = None
    """m_t = sum_v Q_t(v) log P_t(v)."""
    cross_var: np.ndarray | None = None
    """v_t = sum_v Q_t(v) (log P_t(v))^2 - m_t^2."""


def _statistics(logits: Any, targets: Any, reference_logits: Any = None) -> dict[str, Any]:
    """The per-position quantities from logit rows (texts x positions x vocabulary, or positions x
    vocabulary), as tensors of the rows' leading shape. In float64: Fast-DetectGPT's numerator is a
    small difference of two large sums (float32 left relative errors of 1e-4 on a near-uniform model)."""
    import torch

    # ranks on the logits themselves (float32): log-softmax shifts every logit of a row by one constant,
    # so the order is the same, and comparing before the shift adds no rounding ties
    target_logits = logits.gather(-1, targets[..., None])
    rank = (logits > target_logits).sum(-1) + 1
    logp = torch.log_softmax(logits.double(), dim=-1)
    lp = logp.gather(-1, targets[..., None])[..., 0]
    weighted = logp.exp() * logp
    mu = weighted.sum(-1)
    out = {"logprob": lp, "rank": rank, "mean_logp": mu,
           "var_logp": (torch.linalg.vecdot(weighted, logp) - mu * mu).clamp_min(0.0)}
    if reference_logits is not None:
        vocab = min(logits.shape[-1], reference_logits.shape[-1])
        if int(targets.max()) >= vocab:
            raise ModelError(f"token id {int(targets.max())} is outside the {vocab} ids the scoring and reference "
                             "models share; use two models with the same vocabulary")
        cut = logp if vocab == logits.shape[-1] else torch.log_softmax(logits[..., :vocab].double(), dim=-1)
        logq = torch.log_softmax(reference_logits[..., :vocab].double(), dim=-1)
        weighted_q = logq.exp() * cut
        m = weighted_q.sum(-1)
        out.update({"reference_logprob": logq.gather(-1, targets[..., None])[..., 0],
                    "cut_logprob": cut.gather(-1, targets[..., None])[..., 0], "cross_mean": m,
                    "cross_var": (torch.linalg.vecdot(weighted_q, cut) - m * m).clamp_min(0.0)})
    return out


WHOLE_BATCH_ELEMENTS = 1 << 22
"""Logit elements up to which a batch's statistics are computed at once (else one text at a time,
so the float64 copies stay positions x vocabulary)."""


def position_statistics(model: Any, rows: list[list[int]], reference: Any = None,
                        batch_size: int = 16) -> list[PositionStatistics]:
    """Per-position statistics of every text: one forward pass of ``model`` (and of ``reference``) per
    batch of equal-length texts (no padding, so a text's numbers do not depend on its batch)."""
    import torch

    from ...model import batches_by_length
    from ...model.generation import model_device

    short = next((i for i, r in enumerate(rows) if len(r) < 2), None)
    if short is not None:
        raise QueryError(f"text {short} has {len(rows[short])} token(s); a detector scores tokens 2..n, so give "
                         "texts of at least 2 tokens")
    device = model_device(model)
    reference_device = model_device(reference) if reference is not None else None
    out: list[PositionStatistics | None] = [None] * len(rows)

    def keep(stats: dict[str, Any], indexes: list[int]) -> None:
        arrays = {k: v.cpu().numpy() if k == "rank" else v.double().cpu().numpy() for k, v in stats.items()}
        for row, i in enumerate(indexes):
            out[i] = PositionStatistics(**{k: v[row] for k, v in arrays.items()})

    with torch.inference_mode():
        for chosen in batches_by_length(rows, batch_size):
            ids = torch.tensor([rows[i] for i in chosen], dtype=torch.long)
            logits = model(input_ids=ids.to(device)).logits[:, :-1]
            ref_logits = (reference(input_ids=ids.to(reference_device)).logits[:, :-1].to(logits.device)
                          if reference is not None else None)
            targets = ids[:, 1:].to(logits.device)
            if logits.numel() <= WHOLE_BATCH_ELEMENTS:
                keep(_statistics(logits, targets, ref_logits), chosen)
                continue
            for row, i in enumerate(chosen):
                one = _statistics(logits[row:row + 1], targets[row:row + 1],
                                  ref_logits[row:row + 1] if ref_logits is not None else None)
                keep(one, [i])
    return out  # type: ignore[return-value]


def one_pass_scores(stats: PositionStatistics, text: str) -> dict[str, float]:
    """The eight one-pass detectors of one text from its position statistics."""
    from ..membership import TokenScores, model_signals

    lp, rank = stats.logprob, stats.rank.astype(np.float64)
    likelihood = float(lp.mean())
    mean_log_rank = float(np.log(rank).mean())
    sigma = np.sqrt(np.maximum(stats.var_logp, 1e-24))
    signals = model_signals(TokenScores(lp, stats.mean_logp, sigma), text)  # the membership audit's zlib
    spread = math.sqrt(float(stats.var_logp.sum()))
    return {
        "likelihood": likelihood,
        "logrank": -mean_log_rank,
        "rank": -float(rank.mean()),
        "entropy": float(stats.mean_logp.mean()),
        "gltr": float((rank <= GLTR_TOP).mean()),
        "lrr": -likelihood / mean_log_rank if mean_log_rank > 0 else math.inf,
        "zlib": signals["zlib"],
        "fast_detect_gpt": (float(lp.sum()) - float(stats.mean_logp.sum())) / spread if spread > 0 else 0.0,
    }


def paired_scores(stats: PositionStatistics) -> dict[str, float]:
    """Fast-DetectGPT with the reference as sampling model, and Binoculars (code and paper forms)."""
    if stats.cross_mean is None or stats.cut_logprob is None or stats.reference_logprob is None \
            or stats.cross_var is None:
        raise ModelError("the paired detectors need a reference model; pass --reference MODEL")
    spread = math.sqrt(float(stats.cross_var.sum()))
    cross_perplexity = -float(stats.cross_mean.mean())
    return {
        "fast_detect_gpt_reference": ((float(stats.cut_logprob.sum()) - float(stats.cross_mean.sum())) / spread
                                      if spread > 0 else 0.0),
        "binoculars": -(-float(stats.cut_logprob.mean())) / cross_perplexity,
        "binoculars_paper": -(-float(stats.reference_logprob.mean())) / cross_perplexity,
    }


def load_user_detector(spec: str) -> Callable[[list[str]], Sequence[float]]:
    """The callable ``module:function`` names (importable from the current environment or folder)."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ConfigError(f"--detectors {spec!r}: name a user detector as module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any failure to import is the user's module, named in one line
        raise ConfigError(f"--detectors {spec!r}: cannot import {module_name} ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}); put it on PYTHONPATH") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"--detectors {spec!r}: {module_name} has no function {function_name}")
    return function


def call_user_detector(name: str, function: Callable[[list[str]], Any], texts: list[str]) -> np.ndarray:
    """The user's scores of ``texts``: one finite number per text, or a one-line error."""
    try:
        raw = function(list(texts))
        values = np.asarray(raw, dtype=np.float64).reshape(-1) if raw is not None else None
    except (TypeError, ValueError) as error:
        raise QueryError(f"detector {name} returned something that is not a list of numbers ({error})") from None
    if values is None or np.ndim(raw) != 1 or len(values) != len(texts):
        got = "nothing" if values is None else f"{len(values)} score(s)" if np.ndim(raw) == 1 else f"shape {np.shape(raw)}"
        raise QueryError(f"detector {name} returned {got} for {len(texts)} texts; it must return one score per text")
    bad = np.flatnonzero(np.isnan(values))
    if len(bad):
        raise QueryError(f"detector {name} returned NaN for text {int(bad[0])} ({len(bad)} in all); a score must be a "
                         "number (higher = machine)")
    return values


def parse_detectors(spec: str | Sequence[str] | None, reference: bool) -> tuple[str, ...]:
    """Detector names from a comma list: built-in names, ``one_pass``, ``paired``, ``all`` and
    ``module:function`` user detectors. Default: the eight one-pass detectors, and the paired ones
    when a reference model is given."""
    if spec is None:
        return ONE_PASS + (PAIRED if reference else ())
    names: list[str] = []
    for part in (spec.split(",") if isinstance(spec, str) else spec):
        part = part.strip()
        if not part:
            continue
        expanded = {"one_pass": ONE_PASS, "paired": PAIRED, "all": ONE_PASS + PAIRED}.get(part, (part,))
        names.extend(expanded)
    unknown = [n for n in names if n not in ONE_PASS + PAIRED and ":" not in n]
    if unknown:
        raise ConfigError(f"--detectors: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not a "
                          f"detector; choose from {', '.join(ONE_PASS + PAIRED)}, or name a callable as module:function")
    if not names:
        raise ConfigError("--detectors is empty; name at least one detector")
    if not reference and any(n in PAIRED for n in names):
        raise ConfigError(f"--detectors {', '.join(n for n in names if n in PAIRED)} need(s) a reference model on the "
                          "same tokenizer; pass --reference MODEL")
    if reference and not any(n in PAIRED for n in names):
        raise ConfigError(f"--reference has no effect without a paired detector ({', '.join(PAIRED)}) in --detectors; "
                          "add one or leave --reference out")
    return tuple(dict.fromkeys(names))


class DetectorSet:
    """The chosen detectors over loaded models: ``score(texts)`` gives every detector's scores.

    ``tokenizer`` is the scoring model's (a ``LoadedTokenizer``); ``reference`` a loaded model on the
    same vocabulary, needed by the paired detectors; ``max_tokens`` cuts longer texts (the model's
    context)."""

    def __init__(self, names: Sequence[str], model: Any, tokenizer: Any, reference: Any = None,
                 batch_size: int = 16, max_tokens: int | None = None) -> None:
        self.names = tuple(names)
        self.model, self.tokenizer, self.reference = model, tokenizer, reference
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.user = {n: load_user_detector(n) for n in self.names if ":" in n}
        self.needs_pass = any(n in ONE_PASS + PAIRED for n in self.names)

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self._rows(texts)]

    def _rows(self, texts: list[str]) -> list[list[int]]:
        rows = self.tokenizer.encode_batch(list(texts))
        return [r[:self.max_tokens] for r in rows] if self.max_tokens else rows

    def score(self, texts: list[str]) -> dict[str, np.ndarray]:
        """{detector: one score per text}."""
        out: dict[str, np.ndarray] = {}
        if self.needs_pass and texts:
            paired = any(n in PAIRED for n in self.names)
            stats = position_statistics(self.model, self._rows(texts), self.reference if paired else None,
                                        self.batch_size)
            rows = [{**one_pass_scores(s, t), **(paired_scores(s) if paired else {})} for s, t in zip(stats, texts)]
            for name in self.names:
                if ":" not in name:
                    out[name] = np.array([r[name] for r in rows], dtype=np.float64)
        for name, function in self.user.items():
            out[name] = call_user_detector(name, function, texts) if texts else np.zeros(0)
        return {name: out[name] if texts else np.zeros(0) for name in self.names}
