"""Exact occurrence and co-occurrence counts of token sequences, from the index.

Definitions (``tests/test_bias_data.py`` checks each against a brute force over the documents):

- The **occurrences of a set of sequences** (a term's variants, a group's terms, a target's
  variants) are the spans where one of them matches, without the spans that lie inside another
  span of the set (a bare form found inside a leading-space form is one occurrence, not two).
  Partly overlapping spans both count. ``documents``: documents holding at least one.
- A target occurrence ``[p, p + Lt)`` **has a term of a group within the window** ``N`` when one of
  the group's variants matches a span ``[q, q + L)`` lying wholly inside the ``N`` tokens before
  it (``p - N <= q`` and ``q + L <= p``) or the ``N`` tokens after it (``q >= p + Lt`` and
  ``q + L <= p + Lt + N``), in the same document: a window never reaches past a document boundary,
  and a term overlapping the target does not count. Any match of a variant counts here, also one
  inside a longer variant's match that reaches out of the window.

How: the index gives the positions of each target variant (its suffix-array range), and only the
tokens of the windows around those occurrences are read, so the cost grows with the targets'
occurrences, not with the corpus or with how common the group terms are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .terms import Variant

OCCURRENCES_PER_BLOCK = 1 << 16
"""Target occurrences whose windows are read at once (a block holds occurrences x window tokens)."""


@dataclass
class Spans:
    """Occurrences in one shard: start positions (in the shard's token file, separators included) and
    lengths, sorted by start; ``owner`` says which sequence set each belongs to (a target's index)."""
    starts: np.ndarray
    lengths: np.ndarray
    owner: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


def _variant_positions(index: object, variant: Variant) -> list[np.ndarray]:
    return index.positions(list(variant.ids))  # type: ignore[attr-defined]


def occurrence_spans(index: object, sets: Sequence[Sequence[Variant]]) -> list[Spans]:
    """Per shard, the occurrences of each set of sequences (``owner``: the set's position in ``sets``),
    spans inside another span of the same set left out."""
    shards = index.shard_indexes  # type: ignore[attr-defined]
    parts: list[list[tuple[np.ndarray, int, int]]] = [[] for _ in shards]
    for owner, variants in enumerate(sets):
        for variant in variants:
            for s, positions in enumerate(_variant_positions(index, variant)):
                if len(positions):
                    parts[s].append((positions, len(variant.ids), owner))
    out = []
    for pieces in parts:
        if not pieces:
            out.append(Spans(*(np.zeros(0, dtype=np.int64) for _ in range(3))))
            continue
        starts = np.concatenate([p for p, _, _ in pieces]).astype(np.int64)
        lengths = np.concatenate([np.full(len(p), n, dtype=np.int64) for p, n, _ in pieces])
        owner = np.concatenate([np.full(len(p), o, dtype=np.int64) for p, _, o in pieces])
        out.append(_without_contained(starts, lengths, owner))
    return out


def _without_contained(starts: np.ndarray, lengths: np.ndarray, owner: np.ndarray) -> Spans:
    """Drop each span lying inside another span of the same owner; the rest sorted by start. Sorted by
    (owner, start, longest first), a span lies inside another exactly when an earlier span of its owner
    ends at or after its own end (two distinct sequences never give two identical spans)."""
    ends = starts + lengths
    order = np.lexsort((-ends, starts, owner))
    starts, ends, owner = starts[order], ends[order], owner[order]
    # one running maximum over all owners: each owner's ends are lifted above every earlier owner's, so
    # the maximum before an owner's first span, lowered back, is negative (nothing earlier of its own)
    lift = owner * (int(ends.max()) + 2)
    reach = np.maximum.accumulate(np.r_[-1, (ends + lift)[:-1]]) - lift
    keep = ends > reach
    starts, ends, owner = starts[keep], ends[keep], owner[keep]
    order = np.argsort(starts, kind="stable")
    return Spans(starts[order], (ends - starts)[order], owner[order])


def count_by_owner(index: object, spans: list[Spans], owners: int) -> tuple[np.ndarray, np.ndarray]:
    """(occurrences, documents) of each owner."""
    occurrences = np.zeros(owners, dtype=np.int64)
    documents = np.zeros(owners, dtype=np.int64)
    for ix, part in zip(index.shard_indexes, spans):  # type: ignore[attr-defined]
        if not len(part):
            continue
        occurrences += np.bincount(part.owner, minlength=owners)
        doc = np.searchsorted(ix.doc_starts, part.starts, side="right") - 1
        pairs = np.unique(np.stack([part.owner, doc]), axis=1)
        documents += np.bincount(pairs[0], minlength=owners)
    return occurrences, documents


def document_bounds(ix: object, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First token position and end (the next separator, or the shard's end) of the document holding
    each position."""
    doc = np.searchsorted(ix.doc_starts, positions, side="right") - 1  # type: ignore[attr-defined]
    return ix.doc_starts[doc] + 1, ix.doc_ends[doc]  # type: ignore[attr-defined]


def _group_matchers(groups: Sequence[Sequence[Variant]]) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Per group, its one-token variants as one array, and each longer variant's ids."""
    out = []
    for variants in groups:
        single = np.array(sorted({v.ids[0] for v in variants if len(v.ids) == 1}), dtype=np.int64)
        longer = [np.array(v.ids, dtype=np.int64) for v in variants if len(v.ids) > 1]
        out.append((single, longer))
    return out


def _has_term(window: np.ndarray, lo: int, hi: int, matcher: tuple[np.ndarray, list[np.ndarray]]) -> np.ndarray:
    """For each row of ``window`` (tokens, -1 outside the document), whether a variant lies wholly inside
    columns [lo, hi)."""
    single, longer = matcher
    found = np.isin(window[:, lo:hi], single).any(axis=1) if len(single) else np.zeros(len(window), dtype=bool)
    for ids in longer:
        for c in range(lo, hi - len(ids) + 1):
            match = window[:, c] == ids[0]
            for k in range(1, len(ids)):
                match &= window[:, c + k] == ids[k]
            found |= match
    return found


def cooccurrence_counts(index: object, targets: Sequence[Sequence[Variant]], groups: Sequence[Sequence[Variant]],
                        window: int, target_spans: list[Spans] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(occurrences of each target, and a (groups, targets) array: occurrences of each target that have a
    term of the group within ``window`` tokens before or after, in the same document)."""
    spans = target_spans if target_spans is not None else occurrence_spans(index, targets)
    matchers = _group_matchers(groups)
    occurrences = np.zeros(len(targets), dtype=np.int64)
    together = np.zeros((len(groups), len(targets)), dtype=np.int64)
    for ix, part in zip(index.shard_indexes, spans):  # type: ignore[attr-defined]
        if not len(part):
            continue
        occurrences += np.bincount(part.owner, minlength=len(targets))
        tokens = ix.shard.tokens
        for length in np.unique(part.lengths).tolist():
            chosen = np.flatnonzero(part.lengths == length)
            offsets = np.arange(-window, length + window, dtype=np.int64)
            for block in range(0, len(chosen), OCCURRENCES_PER_BLOCK):
                picked = chosen[block:block + OCCURRENCES_PER_BLOCK]
                starts = part.starts[picked]
                first, end = document_bounds(ix, starts)
                where = starts[:, None] + offsets
                inside = (where >= first[:, None]) & (where < end[:, None])
                cells = np.where(inside, tokens[np.clip(where, 0, len(tokens) - 1)].astype(np.int64), -1)
                owner = part.owner[picked]
                for g, matcher in enumerate(matchers):
                    near = _has_term(cells, 0, window, matcher) | _has_term(cells, window + length,
                                                                          2 * window + length, matcher)
                    together[g] += np.bincount(owner[near], minlength=len(targets))
    return occurrences, together
