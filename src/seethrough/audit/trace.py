"""Tracing a text back to the training documents (in the manner of OLMoTrace), and its novelty.

1. Maximal spans: for each start, the longest span of the text found verbatim in the corpus,
   kept when it reaches past every earlier span (the index's ``maximal_spans``).
2. Keep the long and rare ones: spans of at least ``min_length`` tokens (and at most ``max_count``
   occurrences when set), ranked by their unigram
   probability (the product of each token's corpus frequency; lower = rarer); keep the
   ``ceil(span_density * text_tokens)`` rarest (OLMoTrace's span-density budget).
3. For each kept span, at most ``docs_per_span`` occurrences (corpus order) with context, ranked by
   BM25 of their context against the whole text (a relevance order among the retrieved snippets).
4. Overlapping kept spans are merged for display (``merged``), each merged piece listing its spans.

Novelty: the share of the text's n-grams (n = 1..max_n) found in the corpus, computed exactly from
the longest match at each start (an n-gram at i occurs iff that match is at least n long).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import QueryError


@dataclass
class TraceSettings:
    min_length: int = 4
    """Shortest span kept (tokens)."""
    span_density: float = 0.05
    """Spans kept per token of the text (at least one)."""
    docs_per_span: int = 10
    """Documents listed per span."""
    context: int = 30
    """Tokens of context on each side of a span in a document."""
    novelty_max_n: int = 16
    """Largest n of the novelty curve."""
    max_count: int | None = None
    """Drop spans found more than this many times (infini-gram ``attribute``'s ``max_cnt``; None: keep all)."""


@dataclass
class TracedSpan:
    start: int
    end: int
    text: str | None
    count: int
    unigram_logprob: float
    documents: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def bm25_scores(query: list[int], documents: list[list[int]], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each document for the query, with IDF over these documents only."""
    if not documents:
        return []
    n = len(documents)
    avg = sum(len(d) for d in documents) / n or 1.0
    df = Counter(t for d in documents for t in set(d))
    terms = Counter(query)
    scores = []
    for d in documents:
        tf = Counter(d)
        total = 0.0
        for t, q in terms.items():
            if t not in tf:
                continue
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            total += q * idf * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(d) / avg))
        scores.append(total)
    return scores


def novelty(lengths: list[int], max_n: int) -> dict[str, Any]:
    """Share of n-grams found in the corpus for n = 1..max_n, and the longest copied span."""
    arr = np.asarray(lengths, dtype=np.int64)
    curve = {}
    for n in range(1, max_n + 1):
        starts = len(arr) - n + 1
        if starts <= 0:
            break
        curve[str(n)] = float((arr[:starts] >= n).mean())
    return {"found_share_by_n": curve, "longest_copied_span": int(arr.max()) if len(arr) else 0,
            "novel_share_by_n": {n: 1 - v for n, v in curve.items()}}


@dataclass
class TraceResult:
    """A traced text: its kept spans (with their documents), the merged pieces for display, and the
    novelty curve; with the prompt and generated ids when the model wrote the text."""
    ids: list[int]
    text: str | None
    spans: list[TracedSpan]
    merged: list[dict[str, Any]]
    novelty: dict[str, Any]
    prompt: str | None = None
    generated: bool = False
    intervention: dict[str, Any] | None = None
    """The eraser (``Intervention.to_dict``) that was on while the model wrote the text, if any."""

    @property
    def tokens(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict[str, Any]:
        extra = {"prompt": self.prompt, "generated_ids": self.ids} if self.generated else {}
        if self.intervention is not None:
            extra["intervention"] = self.intervention
        return {"text": self.text, **extra, "tokens": self.tokens, "spans": [s.to_dict() for s in self.spans],
                "merged": self.merged, "novelty": self.novelty}


def trace(index: Any, ids: list[int], settings: TraceSettings | None = None) -> TraceResult:
    """Spans of ``ids`` found in the corpus, their documents, and the novelty curve."""
    settings = settings or TraceSettings()
    if not ids:
        raise QueryError("nothing to trace: the text encodes to no tokens")
    if settings.min_length < 1 or settings.docs_per_span < 0 or settings.context < 0 or settings.novelty_max_n < 1 \
            or not 0 < settings.span_density <= 1 or (settings.max_count is not None and settings.max_count < 1):
        raise QueryError("trace settings out of range: --min-length and --novelty-max-n at least 1, --docs-per-span "
                         "and --context at least 0, --span-density in (0, 1], --max-count at least 1")
    lengths, counts = index.longest_matches(ids)  # once: for the spans and for the novelty curve
    spans = [s for s in index.spans_of_matches(ids, lengths, counts, settings.min_length)
             if settings.max_count is None or s.count <= settings.max_count]
    unigram = _unigram_logprobs(index, ids)
    traced = [TracedSpan(s.start, s.end, s.text, s.count, float(unigram[s.start:s.end].sum())) for s in spans]
    budget = max(1, math.ceil(settings.span_density * len(ids)))
    traced = sorted(sorted(traced, key=lambda s: s.unigram_logprob)[:budget], key=lambda s: s.start)
    for span in traced:
        found = index.find(ids[span.start:span.end], limit=settings.docs_per_span, context=settings.context)
        snippets = [m.snippet_ids for m in found.matches]
        relevance = bm25_scores(list(ids), snippets)
        docs = [{"doc": m.doc, "position": m.position, "snippet": m.snippet, "metadata": m.metadata, "bm25": r}
                for m, r in zip(found.matches, relevance)]
        span.documents = sorted(docs, key=lambda d: (-d["bm25"], d["doc"], d["position"]))
    text = index.tokenizer.decode(list(ids)) if index.tokenizer is not None else None
    return TraceResult(list(ids), text, traced, _merge(traced), novelty(list(lengths), settings.novelty_max_n))


def trace_generation(target: Any, index: Any, prompt: str, max_new_tokens: int = 64,
                     settings: TraceSettings | None = None, threads: int | None = None,
                     device: str = "cpu") -> TraceResult:
    """Greedy continuation of ``prompt`` by ``target`` (a run's last checkpoint or a model folder, checked
    against ``index``'s corpus; a ``ModelTarget`` whose checkpoint carries an eraser writes with it on),
    cut at the end-of-document token, then traced."""
    from ..model import ModelTarget, greedy_continuations, load_model, resolve_target

    if index.tokenizer is None:
        raise QueryError(f"{index.path} has no tokenizer; tracing a generation needs text")
    if max_new_tokens < 1:
        raise QueryError(f"--max-new-tokens {max_new_tokens}: generate at least one token")
    resolved = target if isinstance(target, ModelTarget) else resolve_target(target)
    resolved.check_corpus(index)
    model = load_model(resolved.last, device=device, threads=threads)
    bos = model.config.bos_token_id
    prompt_ids = index.tokenizer.encode(prompt)
    ids = greedy_continuations(model, [([bos] if bos is not None else []) + prompt_ids], max_new_tokens)[0]
    eos = model.config.eos_token_id
    if eos in ids:
        ids = ids[:ids.index(eos)]  # the response ends at the end-of-document token
    if not ids:
        raise QueryError("the model ended its response at once (end-of-document token); try another --prompt")
    result = trace(index, ids, settings)
    result.prompt, result.generated = prompt, True
    if resolved.last.intervention is not None:  # installed by load_model; recorded with what it wrote
        result.intervention = resolved.last.intervention.to_dict()
    return result


def _unigram_logprobs(index: Any, ids: list[int]) -> np.ndarray:
    counts = np.array(index.count_many([[t] for t in ids]), dtype=np.float64)
    return np.log(np.maximum(counts, 0.5) / max(1, index.num_tokens))


def _merge(spans: list[TracedSpan]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for i, s in enumerate(spans):  # spans arrive sorted by start
        if merged and s.start < merged[-1]["end"]:
            merged[-1]["end"] = max(merged[-1]["end"], s.end)
            merged[-1]["spans"].append(i)
        else:
            merged.append({"start": s.start, "end": s.end, "spans": [i]})
    return merged
