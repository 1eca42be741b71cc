"""The datasheet's measurements of a corpus: document lengths (from the offsets, exact), duplication of
sampled documents (counted by the index, exact per document), the most frequent unigrams and bigrams
(exact, from the index's next-token distributions) and the metadata fields the documents carry."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np


def power_of_two_bin(n: int) -> str:
    """``0``, ``1``, ``2-3``, ``4-7``, ...: the bin of a non-negative count."""
    if n <= 1:
        return str(n)
    low = 1 << (int(n).bit_length() - 1)
    return f"{low}-{2 * low - 1}"


def bin_order(label: str) -> int:
    return int(label.split("-")[0])


def document_lengths(corpus: Any) -> np.ndarray:
    """Tokens of every document, in corpus order (separators excluded), from the shards' offsets."""
    parts = []
    for shard in corpus.shards:
        starts = shard.doc_starts
        ends = np.append(starts[1:], shard.positions)
        parts.append(ends - starts - 1)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def length_histogram(lengths: np.ndarray) -> dict[str, int]:
    counts = Counter(power_of_two_bin(int(n)) for n in lengths)
    return {label: counts[label] for label in sorted(counts, key=bin_order)}


def sample_documents(total: int, limit: int) -> list[int]:
    """Up to ``limit`` document numbers spread evenly over the corpus (all of them when it has fewer)."""
    if total <= limit:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, limit).round()})


@dataclass
class Duplication:
    documents: list[int]
    prefix_tokens: int
    counts: list[int]
    """Occurrences in the corpus of each sampled document's first ``prefix_tokens`` tokens (the whole
    document when shorter); empty documents are left out of the sample."""

    @property
    def duplicated(self) -> int:
        return sum(c > 1 for c in self.counts)

    def histogram(self) -> dict[str, int]:
        counts = Counter(power_of_two_bin(c) for c in self.counts)
        return {label: counts[label] for label in sorted(counts, key=bin_order)}


def measure_duplication(index: Any, lengths: np.ndarray, limit: int = 2000, prefix_tokens: int = 32) -> Duplication:
    chosen = [d for d in sample_documents(len(lengths), limit) if lengths[d] > 0]
    queries = [index.corpus.document_tokens(d)[:prefix_tokens].tolist() for d in chosen]
    counts = index.count_many(queries) if queries else []
    return Duplication(chosen, prefix_tokens, [int(c) for c in counts])


@dataclass
class TopNgrams:
    unigrams: list[tuple[list[int], int]]
    bigrams: list[tuple[list[int], int]]
    bigrams_exact: bool
    """True when the search proved these are the most frequent bigrams (every unseen prefix is rarer
    than the last one listed); False when it stopped at ``max_prefixes``."""
    prefixes_searched: int


def top_ngrams(index: Any, top: int = 20, max_prefixes: int = 500) -> TopNgrams:
    """The ``top`` most frequent tokens and bigrams. A bigram occurs at most as often as its first token,
    so walking first tokens from the most frequent, the search can stop once a token is rarer than the
    ``top``-th bigram found: what is listed is then exactly the top (ties broken by token ids)."""
    vocab = index.corpus.vocab_size
    unigram = index.ntd([])
    ranked = sorted(((c, t) for t, c in unigram.counts.items() if t < vocab), key=lambda x: (-x[0], x[1]))
    best: list[tuple[int, tuple[int, int]]] = []  # min-heap of (count, negated ids) for a stable order
    exact = True
    searched = 0
    for count, token in ranked:
        if len(best) >= top and count < best[0][0]:
            break
        if searched >= max_prefixes:
            exact = False
            break
        searched += 1
        following = index.ntd([token]).counts
        for nxt, c in following.items():
            if nxt >= vocab:
                continue
            item = (c, (-token, -nxt))
            if len(best) < top:
                heapq.heappush(best, item)
            elif item > best[0]:
                heapq.heapreplace(best, item)
    bigrams = sorted(((list((-a, -b)), c) for c, (a, b) in best), key=lambda x: (-x[1], x[0]))
    return TopNgrams([([t], c) for c, t in ranked[:top]], bigrams, exact, searched)


@dataclass
class MetadataFields:
    documents: list[int]
    """The documents read (all, or an even sample)."""
    fields: dict[str, int]
    """Field name -> documents (of those read) that have it."""
    values: dict[str, list[tuple[str, int]]]
    """For licence-like and low-cardinality fields: the most common values with their counts."""
    distinct: dict[str, int]


LICENCE_FIELDS = ("license", "licence", "licenses", "license_name", "copyright", "rights")
VALUE_FIELDS = LICENCE_FIELDS + ("source", "language", "lang", "domain", "kind", "type", "dataset", "subset")


def metadata_fields(corpus: Any, limit: int = 20000, top: int = 8) -> MetadataFields:
    chosen = sample_documents(corpus.num_documents, limit)
    fields: Counter = Counter()
    values: dict[str, Counter] = {}
    for d in chosen:
        record = corpus.document_metadata(d)
        meta = record.get("metadata", {}) if isinstance(record, dict) else {}
        if not isinstance(meta, dict):
            continue
        for key, value in meta.items():
            fields[key] += 1
            if isinstance(value, (str, int, float, bool)) or value is None:
                values.setdefault(key, Counter())[str(value)] += 1
    shown = {}
    distinct = {}
    for key, counter in values.items():
        distinct[key] = len(counter)
        if key.lower() in VALUE_FIELDS or len(counter) <= top:
            shown[key] = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    ordered = dict(sorted(fields.items(), key=lambda kv: (-kv[1], kv[0])))
    return MetadataFields(chosen, ordered, dict(sorted(shown.items())), dict(sorted(distinct.items())))
