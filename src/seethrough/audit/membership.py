"""Membership: the exact answer from the data, and the model-only signals for when data is closed.

Every score is "higher means more likely a member". Per-token log-probabilities come from one
forward pass over the text, preceded by the model's BOS/end-of-document token when it has one
(so the first token is scored too, as it was in training after a document boundary).

- ``loss``: mean log p(x_t | x_<t) (Yeom et al. 2018; the negated loss).
- ``zlib``: that mean divided by the zlib-compressed length of the text in bytes (Carlini et al.
  2021, as MIMIR computes it).
- ``min_k``: mean of the lowest k% of token log-probs (Shi et al. 2024, k = 20%).
- ``min_k_plus_plus``: the same over z_t = (log p(x_t) - mu_t) / sigma_t with mu_t, sigma_t the
  mean and standard deviation of log p(v) under p(. | x_<t) (Zhang et al. 2024, k = 20%).
- ``reference``: mean log-prob under the model minus under a reference model (Carlini et al. 2021).
- ``index``: from the corpus: the longest span of the text found verbatim, as a fraction of the
  text (1.0 exactly when the whole text occurs): correct by construction when the data is open.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QueryError

MODEL_SIGNALS = ("loss", "zlib", "min_k", "min_k_plus_plus")


@dataclass
class TokenScores:
    logprobs: np.ndarray
    """log p(x_t | x_<t) for each token of the text."""
    mu: np.ndarray
    sigma: np.ndarray


def token_scores(model: Any, texts_ids: list[list[int]], bos: int | None, batch_size: int = 32) -> list[TokenScores]:
    """One forward pass per text (batched by equal length, so no padding changes a score)."""
    import torch

    from ..model.generation import model_device

    device = model_device(model)
    out: list[TokenScores | None] = [None] * len(texts_ids)
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(texts_ids):
        if not ids:
            raise QueryError(f"text {i} is empty (no tokens); membership needs at least one token")
        by_length.setdefault(len(ids), []).append(i)
    with torch.inference_mode():
        for indexes in by_length.values():
            for start in range(0, len(indexes), batch_size):
                chosen = indexes[start:start + batch_size]
                rows = [([bos] if bos is not None else []) + texts_ids[i] for i in chosen]
                ids = torch.tensor(rows, dtype=torch.long, device=device)
                if ids.shape[1] < 2:
                    raise QueryError("a one-token text cannot be scored by a model without a BOS token")
                # logits at position j predict token j + 1: with a BOS every token of the text is scored
                pred = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)[:, :-1, :]
                target = ids[:, 1:]
                token_lp = pred.gather(2, target.unsqueeze(-1)).squeeze(-1)
                probs = pred.exp()
                mu = (probs * pred).sum(-1)
                sigma = ((probs * pred * pred).sum(-1) - mu * mu).clamp_min(1e-12).sqrt()
                for row, i in enumerate(chosen):
                    out[i] = TokenScores(token_lp[row].cpu().numpy(), mu[row].cpu().numpy(), sigma[row].cpu().numpy())
    return out  # type: ignore[return-value]


def _lowest_mean(values: np.ndarray, k: float) -> float:
    n = max(1, int(math.ceil(len(values) * k)))
    return float(np.sort(values)[:n].mean())


def model_signals(scores: TokenScores, text: str, k: float = 0.2) -> dict[str, float]:
    lp = scores.logprobs
    mean = float(lp.mean())
    z = (lp - scores.mu) / scores.sigma
    return {"loss": mean, "zlib": mean / len(zlib.compress(text.encode("utf-8"))),
            "min_k": _lowest_mean(lp, k), "min_k_plus_plus": _lowest_mean(z, k)}


def index_signal(index: Any, ids: list[int]) -> dict[str, Any]:
    """The exact answer: maximal spans found in the corpus, coverage, and the longest span's share."""
    from ..index.engine import covered_share

    spans = index.maximal_spans(ids)
    longest = max((s.end - s.start for s in spans), default=0)
    return {"index": longest / len(ids), "covered": covered_share(spans, len(ids)), "longest_span": longest,
            "whole_text_count": next((s.count for s in spans if s.start == 0 and s.end == len(ids)), 0),
            "spans": [s.to_dict() for s in spans]}


# ---- evaluation: ROC AUC, TPR at low FPR, bootstrap intervals -----------------------------------

def roc_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """P(score of a member > score of a non-member), ties counting one half (Mann-Whitney U / (m n))."""
    scores = np.concatenate([members, nonmembers])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    ranks = ((last - counts + 1 + last) / 2)[inverse]  # 1-based ranks, averaged over ties
    m, n = len(members), len(nonmembers)
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float) -> float:
    """Share of members scoring above the threshold that at most ``fpr`` of non-members exceed."""
    ranked = np.sort(nonmembers)[::-1]
    allowed = int(math.floor(fpr * len(nonmembers)))  # non-members that may lie above the threshold
    threshold = ranked[allowed] if allowed < len(ranked) else -np.inf
    return float((members > threshold).mean())


def evaluate_signal(members: np.ndarray, nonmembers: np.ndarray, rounds: int = 1000, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        a = members[rng.integers(0, len(members), len(members))]
        b = nonmembers[rng.integers(0, len(nonmembers), len(nonmembers))]
        aucs.append(roc_auc(a, b))
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return {"auc": roc_auc(members, nonmembers), "auc_ci": [float(lo), float(hi)],
            "tpr_at_1pct_fpr": tpr_at_fpr(members, nonmembers, 0.01),
            "tpr_at_0.1pct_fpr": tpr_at_fpr(members, nonmembers, 0.001),
            "members": len(members), "nonmembers": len(nonmembers)}


def roc_curve(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    thresholds = np.unique(np.concatenate([members, nonmembers]))[::-1]
    fpr = np.array([0.0] + [(nonmembers >= t).mean() for t in thresholds])
    tpr = np.array([0.0] + [(members >= t).mean() for t in thresholds])
    return fpr, tpr


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(np.maximum(fpr, 1e-4), tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([1e-4, 1], [1e-4, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("false positive rate (log)")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_roc(members: list[TextMembership], nonmembers: list[TextMembership], names: list[str], path: Any) -> None:
    """One plot of every signal's ROC curve, members' records against non-members', written atomically."""
    curves = {}
    for name in names:
        a, b = np.array([r.signals[name] for r in members]), np.array([r.signals[name] for r in nonmembers])
        fpr, tpr = roc_curve(a, b)
        curves[name] = (fpr, tpr, roc_auc(a, b))
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    plot_roc(curves, tmp)
    tmp.replace(path)


@dataclass
class TextMembership:
    """Every signal for one text: ``signals`` (higher = more likely a member: the model-only ones, the
    ``reference`` ratio and the ``index`` share when asked), the index's ``evidence`` (maximal spans,
    coverage, whole-text count) and, against a reference set of non-members, each signal's ``percentile``."""
    text: str
    tokens: int
    signals: dict[str, float]
    evidence: dict[str, Any] | None = None
    percentile: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"text": self.text, "tokens": self.tokens, **self.signals, **(self.evidence or {})}
        if self.percentile is not None:
            record["percentile"] = self.percentile
        return record


@dataclass
class MembershipEvaluation:
    """Members against non-members: per signal, ROC AUC with its bootstrap interval and TPR at low FPR."""
    signals: dict[str, dict[str, Any]]
    members: list[TextMembership]
    nonmembers: list[TextMembership]
    intervention: dict[str, Any] | None = None
    """The eraser (``Intervention.to_dict``) that was on while the model scored the texts, if any."""

    def to_dict(self) -> dict[str, Any]:
        return {"signals": self.signals, **({"intervention": self.intervention} if self.intervention else {})}


def write_evaluation(evaluation: MembershipEvaluation, out: Any) -> None:
    """``out/scores.jsonl`` (every text's scores, spans left out), ``evaluation.json`` and ``roc.png``."""
    import json

    from .._files import atomic_write_bytes, atomic_write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"member": m, **{k: v for k, v in r.to_dict().items() if k != "spans"}})
             for m, rows in ((True, evaluation.members), (False, evaluation.nonmembers)) for r in rows]
    atomic_write_bytes(out / "scores.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
    atomic_write_json(out / "evaluation.json", evaluation.to_dict())
    write_roc(evaluation.members, evaluation.nonmembers, list(evaluation.signals), out / "roc.png")


def score_texts(texts: list[str], tokenizer: Any, model: Any, bos: int | None, index: Any = None,
                reference: Any = None, k: float = 0.2) -> list[TextMembership]:
    """Every signal for every text (``index`` and ``reference`` when given), from loaded models."""
    if not 0 < k <= 1:
        raise QueryError(f"--k {k}: the share of lowest-scoring tokens must be in (0, 1]")
    ids = tokenizer.encode_batch(texts)
    target = token_scores(model, ids, bos)
    ref = token_scores(reference, ids, bos) if reference is not None else None
    out = []
    for i, text in enumerate(texts):
        record = TextMembership(text, len(ids[i]), model_signals(target[i], text, k))
        if ref is not None:
            record.signals["reference"] = record.signals["loss"] - float(ref[i].logprobs.mean())
        if index is not None:
            evidence = index_signal(index, ids[i])
            record.signals["index"] = evidence.pop("index")
            record.evidence = evidence
        out.append(record)
    return out


def percentiles(records: list[TextMembership], reference_set: list[TextMembership], names: list[str]) -> None:
    """``percentile[NAME]``: share of the reference (non-member) texts scoring below each record."""
    for name in names:
        pool = np.sort(np.array([r.signals[name] for r in reference_set]))
        for r in records:
            r.percentile = r.percentile or {}
            r.percentile[name] = float(np.searchsorted(pool, r.signals[name], side="left") / len(pool))


def evaluate(members: list[TextMembership], nonmembers: list[TextMembership], names: list[str] | None = None,
             seed: int = 0) -> MembershipEvaluation:
    """ROC AUC (bootstrap CI) and TPR at 1% / 0.1% FPR of each signal (default: every signal the records have)."""
    if not members or not nonmembers:
        raise QueryError("--evaluate needs at least one member and one non-member text")
    names = list(members[0].signals) if names is None else names
    return MembershipEvaluation({name: evaluate_signal(np.array([r.signals[name] for r in members]),
                                                       np.array([r.signals[name] for r in nonmembers]), seed=seed)
                                 for name in names}, members, nonmembers)


def check_one_checkpoint(checkpoint: str | None) -> None:
    """``--checkpoint`` names one step (or ``last``); several are ``--checkpoints``."""
    if checkpoint is not None and not (checkpoint == "last" or (checkpoint.isascii() and checkpoint.isdigit())):
        raise QueryError(f"--checkpoint {checkpoint!r} takes one step (or last); give several with --checkpoints "
                         "(membership --evaluate, memorization and eval take them)")


class MembershipAuditor:
    """Membership of texts in the training data of ``target`` (a run, one of its checkpoints or a model
    folder, resolved through the model layer), with ``index`` the indexed corpus it was trained on (checked).

        auditor = MembershipAuditor("run/", open_corpus("corpus/"))
        auditor.score(["is this text in the data?"])          # [TextMembership]
        auditor.evaluate(members, nonmembers).to_dict()         # AUC, TPR at low FPR per signal
    """

    def __init__(self, target: Any, index: Any, reference: Any = None, k: float = 0.2, checkpoint: str | None = None,
                 threads: int | None = None, device: str = "cpu") -> None:
        from ..model import ModelTarget, load_model, resolve_target
        from ..model.target import check_tokenizer

        if index.tokenizer is None:
            raise QueryError(f"{index.path} has no tokenizer; membership needs text")
        check_one_checkpoint(checkpoint)
        resolved = target if isinstance(target, ModelTarget) else resolve_target(target, checkpoint)
        resolved.check_corpus(index)
        self.index, self.k, self.checkpoint = index, k, resolved.last
        self.model = load_model(resolved.last, device=device, threads=threads)
        self.bos = self.model.config.bos_token_id
        self.reference = None
        if reference is not None:
            check_tokenizer(reference, index.corpus)  # a reference model must read the same token ids
            self.reference = load_model(reference, device=device, threads=threads)

    @property
    def signal_names(self) -> list[str]:
        return [*MODEL_SIGNALS, *(["reference"] if self.reference is not None else []), "index"]

    def score(self, texts: list[str], reference_set: list[str] | None = None) -> list[TextMembership]:
        """Every signal for every text; with ``reference_set`` (known non-members), each model signal's percentile."""
        records = score_texts(texts, self.index.tokenizer, self.model, self.bos, self.index, self.reference, self.k)
        if reference_set is not None:
            if not reference_set:
                raise QueryError("the reference set is empty; give at least one known non-member text")
            pool = score_texts(reference_set, self.index.tokenizer, self.model, self.bos, self.index, self.reference,
                               self.k)
            percentiles(records, pool, [n for n in self.signal_names if n != "index"])
        return records

    def evaluate(self, members: list[str], nonmembers: list[str], seed: int = 0) -> MembershipEvaluation:
        if not members or not nonmembers:
            raise QueryError("--evaluate needs at least one member and one non-member text")
        found = evaluate(self.score(members), self.score(nonmembers), self.signal_names, seed)
        if self.checkpoint.intervention is not None:
            found.intervention = self.checkpoint.intervention.to_dict()
        return found


def evaluate_checkpoints(target: Any, index: Any, members: list[str], nonmembers: list[str], reference: Any = None,
                         k: float = 0.2, checkpoints: str | None = None, threads: int | None = None,
                         device: str = "cpu", seed: int = 0, ray: str | None = None) -> dict[str, MembershipEvaluation]:
    """``MembershipAuditor(...).evaluate(members, nonmembers)`` for each chosen checkpoint of ``target``
    (``checkpoints``: ``last``, ``all`` or steps, as ``resolve_target``), keyed by checkpoint label, in order.

    ``ray``: a Ray cluster's address: each checkpoint is one task there (one GPU each unless ``device``
    is cpu) that reopens the corpus at the same path; the evaluations are the ones this machine gives.
    ``threads`` then defaults to 1 per task."""
    from ..model import ModelTarget, resolve_target

    resolved = target if isinstance(target, ModelTarget) else resolve_target(target, checkpoints)
    resolved.check_corpus(index)
    task = _CheckpointMembership(members, nonmembers, None if reference is None else Path(reference).resolve(), k,
                                 threads, device, seed)
    if ray is None:
        found = [task.evaluate(c, index, resolved.run) for c in resolved.checkpoints]
    else:
        from ..distributed import CorpusAt, map_checkpoints

        task = replace(task, threads=threads or 1, corpus=CorpusAt.of(index),
                       run_path=None if resolved.run is None else resolved.run.path.resolve())
        found = map_checkpoints(task, resolved.checkpoints, ray, gpus=0 if device == "cpu" else None)
    return {c.label: evaluation for c, evaluation in zip(resolved.checkpoints, found)}


@dataclass(frozen=True)
class _CheckpointMembership:
    """One checkpoint's membership evaluation, the same code on this machine and as a cluster task; called
    as a task, it reopens the corpus (and the run, for its corpus check) by path on its node."""
    members: list[str]
    nonmembers: list[str]
    reference: Path | None
    k: float
    threads: int | None
    device: str
    seed: int
    corpus: Any = None
    """A ``distributed.CorpusAt`` when the task runs on a cluster."""
    run_path: Path | None = None

    def __call__(self, checkpoint: Any) -> MembershipEvaluation:
        from ..train import open_run

        return self.evaluate(checkpoint, self.corpus.open(), open_run(self.run_path) if self.run_path else None)

    def evaluate(self, checkpoint: Any, index: Any, run: Any) -> MembershipEvaluation:
        from ..model import ModelTarget

        auditor = MembershipAuditor(ModelTarget(checkpoint.path, [checkpoint], run), index, self.reference, self.k,
                                    None, self.threads, self.device)
        return auditor.evaluate(self.members, self.nonmembers, self.seed)
