"""Verbatim memorization: k-extractable (Carlini et al. 2022) and Pythia's memorization score.

For each sequence, the first ``prompt_len`` tokens are the prompt; greedy decoding produces
``cont_len`` tokens, compared position by position with the true continuation:

- ``score`` = fraction of the ``cont_len`` positions where the greedy token equals the truth
  (Biderman et al. 2023, ``mem(M, N)``; per position, not longest prefix);
- ``extracted`` = every position matches (``prompt_len``-extractable, Carlini et al. 2022).

Each result is annotated with what may explain it: its count in the corpus (index), and for
sequences drawn from a run's data order, the step that trained on it, how often its exact tokens
were in batches before the checkpoint, and its offset in its document.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import QueryError
from .intervals import wilson_interval


@dataclass
class Sequence:
    ids: list[int]
    """Prompt followed by the true continuation."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where it came from: ``step``, ``row``, ``doc``, ``doc_position`` (run samples) or ``line``."""


@dataclass
class MemorizationResult:
    index: int
    prompt_ids: list[int]
    true_ids: list[int]
    generated_ids: list[int]
    score: float
    extracted: bool
    duplicates: int | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "score": self.score, "extracted": self.extracted,
                "generated_ids": self.generated_ids, "true_ids": self.true_ids, "prompt_ids": self.prompt_ids,
                "duplicates": self.duplicates, **self.source}


def sample_run_sequences(run: Any, n: int, length: int, before_step: int, seed: int = 0) -> list[Sequence]:
    """``n`` training rows consumed before ``before_step``, uniformly without replacement; the first
    ``length`` tokens of each (Pythia's protocol: the start of a training sequence is the prompt)."""
    if length > run.order.row_len:
        raise QueryError(f"--prompt-len + --cont-len = {length} exceeds the run's rows of {run.order.row_len} tokens")
    consumed = before_step * run.order.spec.batch_size
    if consumed == 0:
        raise QueryError("no training sequence was seen before step 0; choose a later checkpoint")
    samples = sorted(random.Random(seed).sample(range(consumed), min(n, consumed)))
    rows = run.order.rows_of_samples(np.array(samples, dtype=np.int64))
    tokens = run.order.row_tokens(rows)
    out = []
    for sample, row, ids in zip(samples, rows.tolist(), tokens):
        sources = run.order.row_sources(row, with_metadata=False)
        first = sources[0] if sources else None
        out.append(Sequence(ids[:length].tolist(), {
            "step": sample // run.order.spec.batch_size, "row": row,
            "doc": first.doc if first else None,
            "doc_position": first.doc_start if first and first.row_start <= 1 else None}))
    return out


def sample_corpus_sequences(corpus: Any, n: int, length: int, seed: int = 0) -> list[Sequence]:
    """``n`` random spans of ``length`` tokens inside documents (for a model without a data order)."""
    rng = random.Random(seed)
    long_docs = [i for i in range(corpus.num_documents) if len(corpus.document_tokens(i)) >= length]
    if not long_docs:
        raise QueryError(f"no document of the corpus has {length} tokens; lower --prompt-len/--cont-len")
    out = []
    for _ in range(n):
        doc = rng.choice(long_docs)
        tokens = corpus.document_tokens(doc)
        start = rng.randrange(0, len(tokens) - length + 1)
        out.append(Sequence(tokens[start:start + length].astype(np.int64).tolist(),
                            {"doc": doc, "doc_position": start}))
    return out


def measure(model: Any, sequences: list[Sequence], prompt_len: int, cont_len: int,
            batch_size: int = 128) -> list[MemorizationResult]:
    """Greedy continuation of every prompt, scored against the truth."""
    from ..model import greedy_continuations

    if prompt_len < 1 or cont_len < 1:
        raise QueryError("--prompt-len and --cont-len must be at least 1")
    short = [i for i, s in enumerate(sequences) if len(s.ids) < prompt_len + cont_len]
    if short:
        raise QueryError(f"sequence {short[0]} has {len(sequences[short[0]].ids)} tokens, fewer than --prompt-len "
                         f"{prompt_len} + --cont-len {cont_len}")
    prompts = [s.ids[:prompt_len] for s in sequences]
    generated = greedy_continuations(model, prompts, cont_len, batch_size)
    results = []
    for i, (s, got) in enumerate(zip(sequences, generated)):
        truth = s.ids[prompt_len:prompt_len + cont_len]
        matches = sum(int(a == b) for a, b in zip(truth, got))
        results.append(MemorizationResult(i, prompts[i], truth, got, matches / cont_len, matches == cont_len,
                                          source=dict(s.source)))
    return results


def add_duplicates(results: list[MemorizationResult], index: Any, eod_id: int | None = None) -> None:
    """``duplicates``: occurrences of prompt + continuation in the corpus (leading end-of-document
    tokens dropped; a sequence spanning two documents occurs 0 times, as the index never spans them)."""
    queries = []
    for r in results:
        ids = r.prompt_ids + r.true_ids
        while ids and ids[0] == eod_id:
            ids = ids[1:]
        queries.append(ids)
    valid = [i for i, q in enumerate(queries) if q and (eod_id is None or eod_id not in q)]
    counts = index.count_many([queries[i] for i in valid]) if valid else []
    for r in results:
        r.duplicates = 0
    for i, c in zip(valid, counts):
        results[i].duplicates = int(c)


def duplication_bucket(count: int) -> int:
    """Powers of two: 0, 1, 2-3 -> 2, 4-7 -> 4, ..."""
    return 0 if count <= 0 else 1 << (int(count).bit_length() - 1)


def summarize(results: list[MemorizationResult], by: str = "duplicates") -> list[dict[str, Any]]:
    """Extraction rate (with a 95% Wilson interval) and mean score per bucket of ``by``."""
    groups: dict[Any, list[MemorizationResult]] = {}
    for r in results:
        value = r.duplicates if by == "duplicates" else r.source.get(by)
        if value is None:
            continue
        key = duplication_bucket(value) if by in ("duplicates", "doc_position", "step") else value
        groups.setdefault(key, []).append(r)
    rows = []
    for key in sorted(groups):
        members = groups[key]
        hits = sum(r.extracted for r in members)
        lo, hi = wilson_interval(hits, len(members))
        rows.append({by: key, "n": len(members), "extracted": hits / len(members), "extracted_ci": [lo, hi],
                     "score": sum(r.score for r in members) / len(members)})
    return rows


def plot_by_duplication(tables: dict[str, list[dict[str, Any]]], path: Any, by: str = "duplicates") -> None:
    """Extraction rate against duplication count (log axis), one line per checkpoint/model, 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rows in tables.items():
        xs = [max(r[by], 0.5) for r in rows]  # 0 copies drawn at 0.5 on the log axis
        ys = [r["extracted"] for r in rows]
        lo = [r["extracted"] - r["extracted_ci"][0] for r in rows]
        hi = [r["extracted_ci"][1] - r["extracted"] for r in rows]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("copies in the corpus (0 drawn at 0.5)" if by == "duplicates" else by)
    ax.set_ylabel("extracted (greedy, exact)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass
class MemorizationReport:
    """What ``evaluate_memorization`` found: per label (``step-N``, or ``step-N prompt-K`` when several
    prompt lengths are compared), the result of every sequence."""
    results: dict[str, list[MemorizationResult]]
    checkpoints: dict[str, Any] = field(default_factory=dict)
    """Label -> the ``model.Checkpoint`` whose weights produced those results."""

    def summary(self) -> dict[str, Any]:
        """Per label: extraction rate and mean score, and both by duplication, document position and step."""
        out = {label: {"sequences": len(items), "extracted": sum(r.extracted for r in items) / max(1, len(items)),
                       "score": sum(r.score for r in items) / max(1, len(items)),
                       "by_duplicates": summarize(items, "duplicates"),
                       "by_doc_position": summarize(items, "doc_position"),
                       "by_step": summarize(items, "step")}
               for label, items in self.results.items()}
        for label, row in out.items():  # the eraser that was on while this checkpoint decoded, if any
            intervention = getattr(self.checkpoints.get(label), "intervention", None)
            if intervention is not None:
                row["intervention"] = intervention.to_dict()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(),
                "checkpoints": {label: c.to_dict() for label, c in self.checkpoints.items()},
                "results": {label: [r.to_dict() for r in items] for label, items in self.results.items()}}


def evaluate_memorization(target: Any, corpus: Any, sequences: list[Sequence] | None = None, sample: int = 1000,
                          prompt_len: int | list[int] = 32, cont_len: int = 32, checkpoints: str | None = None,
                          batch_size: int = 128, seed: int = 0, threads: int | None = None,
                          device: str = "cpu", ray: str | None = None) -> MemorizationReport:
    """Greedy extraction of sequences by each chosen checkpoint of ``target`` (a run or model folder, or a
    resolved ``model.ModelTarget``), against ``corpus`` (the indexed corpus it was trained on: checked).
    Without ``sequences``: a sample of what the run saw before
    its latest chosen checkpoint (the same sequences for every checkpoint, as in Pythia's forecasting
    of memorization), or, for a plain model, of the corpus. ``times_seen`` and ``first_step`` are
    counted before each checkpoint's own step.

    Several prompt lengths (Carlini et al.'s third factor): the continuation stays the same tokens
    (those after the longest prompt) and each shorter prompt is the tokens just before it; results
    are labelled ``"step-N prompt-K"``.

    ``ray``: a Ray cluster's address (see ``seethrough.distributed.connect``): each checkpoint is one
    task there (one GPU each unless ``device`` is cpu), which reopens the corpus and the run at the same
    paths; the report is the one this machine would give. ``threads`` then defaults to 1 per task (Ray's
    CPU count does not limit torch's threads)."""
    from ..model import ModelTarget, resolve_target

    if sample < 1 and sequences is None:
        raise QueryError(f"--sample {sample}: draw at least one sequence")
    if batch_size < 1:
        raise QueryError(f"--batch-size {batch_size}: decode at least one prompt at a time")
    lengths = sorted(set(prompt_len)) if isinstance(prompt_len, list) else [prompt_len]
    if not lengths or lengths[0] < 1 or cont_len < 1:
        raise QueryError("--prompt-len and --cont-len must be at least 1")
    longest = lengths[-1]
    resolved = target if isinstance(target, ModelTarget) else resolve_target(target, checkpoints)
    resolved.check_corpus(corpus)
    run = resolved.run
    if sequences is not None:
        chosen = sequences
    elif run is not None:  # one sample for every checkpoint, so they are compared on the same sequences
        latest = max(c.step for c in resolved.checkpoints)
        chosen = sample_run_sequences(run, sample, longest + cont_len, latest, seed)
    else:
        chosen = sample_corpus_sequences(corpus.corpus, sample, longest + cont_len, seed)
    task = _Extraction(chosen, lengths, cont_len, batch_size, run is not None and sequences is None, threads, device)
    if ray is None:
        measured = [task.extract(checkpoint, corpus, run) for checkpoint in resolved.checkpoints]
    else:
        from ..distributed import CorpusAt, map_checkpoints

        task = replace(task, threads=threads or 1, corpus=CorpusAt.of(corpus),
                       run_path=None if run is None else run.path.resolve())
        measured = map_checkpoints(task, resolved.checkpoints, ray, gpus=0 if device == "cpu" else None)
    report = MemorizationReport({})
    for checkpoint, labelled in zip(resolved.checkpoints, measured):
        for label, results in labelled:
            report.results[label], report.checkpoints[label] = results, checkpoint
    return report


@dataclass(frozen=True)
class _Extraction:
    """One checkpoint's part of ``evaluate_memorization``, the same code on this machine and as a cluster
    task; called as a task, it reopens the corpus and the run by path on its node."""
    sequences: list[Sequence]
    lengths: list[int]
    cont_len: int
    batch_size: int
    count_seen: bool
    threads: int | None
    device: str
    corpus: Any = None
    """A ``distributed.CorpusAt`` when the task runs on a cluster."""
    run_path: Any = None

    def __call__(self, checkpoint: Any) -> list[tuple[str, list[MemorizationResult]]]:
        from ..train import open_run

        return self.extract(checkpoint, self.corpus.open(), open_run(self.run_path) if self.run_path else None)

    def extract(self, checkpoint: Any, corpus: Any, run: Any) -> list[tuple[str, list[MemorizationResult]]]:
        """(label, results) for each prompt length."""
        from ..model import load_model

        model = load_model(checkpoint, device=self.device, threads=self.threads)
        eod = run.order.spec.eod_id if run is not None else None
        longest, out = self.lengths[-1], []
        for k in self.lengths:
            trimmed = [Sequence(s.ids[longest - k:longest + self.cont_len], {**s.source, "prompt_len": k})
                       if len(s.ids) >= longest + self.cont_len else s for s in self.sequences]
            results = measure(model, trimmed, k, self.cont_len, self.batch_size)
            add_duplicates(results, corpus, eod)
            if self.count_seen:
                _add_seen(run, results, checkpoint.step)
            out.append((checkpoint.label if len(self.lengths) == 1 else f"{checkpoint.label} prompt-{k}", results))
        return out


def _add_seen(run: Any, results: list[MemorizationResult], before_step: int) -> None:
    """``times_seen`` / ``first_step``: the sequence's exact tokens in batches before the checkpoint."""
    from .seen import seen_before

    for r in results:
        ids = r.prompt_ids + r.true_ids
        if run.order.spec.eod_id in ids:
            continue  # spans a document boundary: the index cannot count it
        seen = seen_before(run, ids, before_step)
        r.source["times_seen"], r.source["first_step"] = seen.count, seen.first_step


def write_report(report: MemorizationReport, out: Any) -> dict[str, Any]:
    """``out/memorization.parquet`` and ``.csv`` (one row per sequence and model), ``summary.json``,
    ``extraction_by_duplication.png``; returns the summary."""
    from pathlib import Path

    from .._files import atomic_write_json, atomic_write_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, items in report.results.items():
        for r in items:
            record = r.to_dict()
            for key in ("generated_ids", "true_ids", "prompt_ids"):
                record[key] = " ".join(map(str, record[key]))
            rows.append({"model": label, **record})
    atomic_write_table(rows, out, "memorization")
    summary = report.summary()
    atomic_write_json(out / "summary.json", summary)
    tmp = out / ".extraction_by_duplication.png.tmp.png"
    plot_by_duplication({k: v["by_duplicates"] for k, v in summary.items()}, tmp)
    tmp.replace(out / "extraction_by_duplication.png")
    return summary
