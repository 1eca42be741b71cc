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
from functools import cache

import numpy as np

from .terms import Variant

OCCURRENCES_PER_BLOCK = 1 << 16
"""Target occurrences whose windows are read at once (a block holds occurrences x window tokens)."""


@dataclass
class Spans:
    """Occurrences in one shard: start positions (in the shard's token file, separators included) and
    lengths, in no particular order; ``owner`` says which sequence set each belongs to (its index)."""
    starts: np.ndarray
    lengths: np.ndarray
    owner: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def of(self, owner: int) -> Spans:
        """The spans of one owner, sorted by start (corpus order within the shard)."""
        keep = np.flatnonzero(self.owner == owner)
        keep = keep[np.argsort(self.starts[keep], kind="stable")]
        return Spans(self.starts[keep], self.lengths[keep], self.owner[keep])


def may_nest(variants: Sequence[Variant]) -> bool:
    """Whether a match of one of the sequences can lie inside a match of another: exactly when one is a
    contiguous piece of another (never for distinct one-token variants, the common case)."""
    sequences = list({v.ids for v in variants})
    return any(a != b and len(a) <= len(b) and any(b[i:i + len(a)] == a for i in range(len(b) - len(a) + 1))
               for a in sequences for b in sequences)


def occurrence_spans(index: object, sets: Sequence[Sequence[Variant]]) -> list[Spans]:
    """Per shard, the occurrences of each set of sequences (``owner``: the set's position in ``sets``),
    spans inside another span of the same set left out (looked for only where a set's sequences can nest)."""
    shards = index.shard_indexes  # type: ignore[attr-defined]
    nesting = any(may_nest(variants) for variants in sets)
    parts: list[list[tuple[np.ndarray, int, int]]] = [[] for _ in shards]
    for owner, variants in enumerate(sets):
        for ids in dict.fromkeys(v.ids for v in variants):  # a sequence twice in a set is one sequence
            for s, positions in enumerate(index.positions(list(ids))):  # type: ignore[attr-defined]
                if len(positions):
                    parts[s].append((positions, len(ids), owner))
    out = []
    for pieces in parts:
        if not pieces:
            out.append(Spans(*(np.zeros(0, dtype=np.int64) for _ in range(3))))
            continue
        starts = np.concatenate([p for p, _, _ in pieces]).astype(np.int64, copy=False)
        lengths = np.concatenate([np.full(len(p), n, dtype=np.int64) for p, n, _ in pieces])
        owner = np.concatenate([np.full(len(p), o, dtype=np.int64) for p, _, o in pieces])
        out.append(_without_contained(starts, lengths, owner) if nesting else Spans(starts, lengths, owner))
    return out


def _without_contained(starts: np.ndarray, lengths: np.ndarray, owner: np.ndarray) -> Spans:
    """Drop each span lying inside another span of the same owner. Sorted by (owner, start, longest
    first), a span lies inside another exactly when an earlier span of its owner ends at or after its
    own end (two distinct sequences never give two identical spans)."""
    ends = starts + lengths
    order = np.lexsort((-ends, starts, owner))
    starts, ends, owner = starts[order], ends[order], owner[order]
    # one running maximum over all owners: each owner's ends are lifted above every earlier owner's, so
    # the maximum before an owner's first span, lowered back, is negative (nothing earlier of its own)
    lift = owner * (int(ends.max()) + 2)
    reach = np.maximum.accumulate(np.r_[-1, (ends + lift)[:-1]]) - lift
    keep = ends > reach
    return Spans(starts[keep], (ends - starts)[keep], owner[keep])


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


def _group_codes(groups: Sequence[Sequence[Variant]], vocab_size: int) -> np.ndarray:
    """For each token id, an int64 bit mask of the groups (at most 63) that have it as a one-token variant."""
    codes = np.zeros(vocab_size, dtype=np.int64)
    for bit, variants in enumerate(groups):
        for v in variants:
            if len(v.ids) == 1 and v.ids[0] < vocab_size:
                codes[v.ids[0]] |= 1 << bit
    return codes


@cache
def _kernel():
    """The compiled window loop, imported on first use (numba's import costs about a second)."""
    from .windows import window_masks

    return window_masks


def _longer_matches(ix: object, starts: np.ndarray, length: int, window: int,
                    longer: list[tuple[int, tuple[int, ...]]], near: list[np.ndarray]) -> None:
    """Adds to ``near`` the occurrences that have a multi-token variant of a group inside their window
    (column comparisons over the window's tokens; such variants are rare)."""
    tokens = ix.shard.tokens  # type: ignore[attr-defined]
    width = 2 * window + length
    offsets = np.arange(-window, length + window, dtype=np.int64)
    for block in range(0, len(starts), OCCURRENCES_PER_BLOCK):
        part = starts[block:block + OCCURRENCES_PER_BLOCK]
        first, end = document_bounds(ix, part)
        cells = np.take(tokens, part[:, None] + offsets, mode="clip")
        inside = (offsets >= (first - part)[:, None]) & (offsets < (end - part)[:, None])
        for g, ids in longer:
            for lo, hi in ((0, window), (window + length, width)):
                near[g][block:block + len(part)] |= _any_match(cells, inside, lo, hi, ids)


def _any_match(cells: np.ndarray, inside: np.ndarray, lo: int, hi: int, ids: tuple[int, ...]) -> np.ndarray:
    """For each row, whether the token sequence ``ids`` lies wholly inside columns [lo, hi), in its document."""
    found = np.zeros(len(cells), dtype=bool)
    for c in range(lo, hi - len(ids) + 1):
        match = inside[:, c].copy()
        for k, token in enumerate(ids):
            match &= cells[:, c + k] == token
        found |= match
    return found


def cooccurrence_counts(index: object, targets: Sequence[Sequence[Variant]], groups: Sequence[Sequence[Variant]],
                        window: int, target_spans: list[Spans] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(occurrences of each target, and a (groups, targets) array: occurrences of each target that have a
    term of the group within ``window`` tokens before or after, in the same document).

    Only the tokens around the target occurrences are read: a compiled loop ORs each window token's bit
    mask of groups (one-token variants, nearly every term); multi-token variants are matched by
    comparing columns of the window's tokens."""
    if len(groups) > 63:  # one bit per group in an int64 mask
        parts = [cooccurrence_counts(index, targets, groups[g:g + 63], window, target_spans)
                 for g in range(0, len(groups), 63)]
        return parts[0][0], np.concatenate([p[1] for p in parts])
    spans = target_spans if target_spans is not None else occurrence_spans(index, targets)
    codes = _group_codes(groups, int(index.corpus.vocab_size))  # type: ignore[attr-defined]
    longer = [(g, v.ids) for g, variants in enumerate(groups) for v in variants if len(v.ids) > 1]
    occurrences = np.zeros(len(targets), dtype=np.int64)
    together = np.zeros((len(groups), len(targets)), dtype=np.int64)
    for ix, part in zip(index.shard_indexes, spans):  # type: ignore[attr-defined]
        if not len(part):
            continue
        occurrences += np.bincount(part.owner, minlength=len(targets))
        lengths = np.unique(part.lengths).tolist()
        for length in lengths:
            chosen = np.flatnonzero(part.lengths == length) if len(lengths) > 1 else np.arange(len(part))
            chosen = chosen[np.argsort(part.starts[chosen], kind="stable")]  # the loop walks the file forward
            starts = np.ascontiguousarray(part.starts[chosen])
            masks = np.empty(len(starts), dtype=np.int64)
            _kernel()(ix.shard.tokens, codes, starts, length, ix.doc_starts, window, masks)
            near = [(masks >> bit) & 1 == 1 for bit in range(len(groups))]
            if longer:
                _longer_matches(ix, starts, length, window, longer, near)
            owner = part.owner[chosen]
            for g in range(len(groups)):
                together[g] += np.bincount(owner[near[g]], minlength=len(targets))
    return occurrences, together
