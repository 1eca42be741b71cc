"""Where two entities occur together: the documents (index), and with a run the training rows and
steps (index x data order). Exact: every occurrence is listed, nothing is sampled.

- An entity's *forms* are the token sequences that stand for it: ``encode(text)``, and
  ``encode(" " + text)`` where that differs (byte-level BPE writes a word after a space with
  other tokens than at the start of a text). A form that ends with another form is dropped (every
  occurrence of it contains one of the shorter form ending at the same token), so each mention is
  found once. Matching is on tokens, as ``count`` matches: a form also matches where its tokens
  begin a longer word (" Paris" in " Parisian" when BPE splits it so).
- A *mention* is one occurrence of one form. Positions are stream positions, the data order's
  coordinates (``shard start + position in the shard's tokenized file``), so documents and training
  rows are both intervals of them.
- Subject and answer *co-occur* in a document when a subject mention and an answer mention lie in
  that document, do not overlap, and (with ``window``) start at most ``window`` tokens apart
  (``seethrough search "S AND A" --window N``'s definition).
- A co-occurrence is *inside a training row* when both mentions lie wholly in one row of the data
  order (row ``r`` = stream tokens ``[r * (seq_len + 1), (r + 1) * (seq_len + 1))``), the row being
  one the epochs use. Each (step, row) that trained on such a row before a step is one exposure.
- ``same_row``: some subject mention and some answer mention (any documents, any distance, not
  overlapping) lie wholly in one row that was trained on: packing put them in one context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import QueryError


@dataclass
class Mentions:
    """Every occurrence of an entity's forms, sorted by stream position."""
    text: str
    forms: list[list[int]]
    start: np.ndarray
    """Stream position of the mention's first token (int64)."""
    length: np.ndarray
    """Tokens of the mention's form."""
    doc: np.ndarray
    """Index of the document holding it (corpus order)."""
    doc_first: np.ndarray
    """Stream position of that document's first token."""
    doc_end: np.ndarray
    """Stream position just past that document's last token."""

    def __len__(self) -> int:
        return len(self.start)


def entity_forms(index: Any, text: str) -> list[list[int]]:
    """The token sequences that stand for ``text`` in ``index``'s corpus (see the module docstring).

    A ``QueryError`` whose message completes "<text> ..." when the text is blank, encodes to nothing,
    or holds words the tokenizer reads as its unknown token."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("is empty")
    tokenizer = index.tokenizer
    if tokenizer is None:
        raise QueryError(f"cannot be encoded: corpus {index.path} has no tokenizer")
    forms: list[list[int]] = []
    for variant in (text, " " + text):
        ids = tokenizer.encode(variant)
        if not ids:
            continue
        try:  # the index refuses text with a word read as the unknown token
            index.encode(variant)
        except QueryError:
            raise QueryError("has words the corpus tokenizer does not know (they would be read as its unknown "
                             "token)") from None
        if ids not in forms:
            forms.append(list(ids))
    if not forms:
        raise QueryError("maps to no tokens with the corpus tokenizer")
    return [f for f in forms if not any(len(g) < len(f) and f[len(f) - len(g):] == g for g in forms)]


def shard_starts(index: Any) -> np.ndarray:
    """Stream position of each shard's first token, and the stream's length last (as ``DataOrder``)."""
    sizes = np.array([s.positions for s in index.corpus.shards], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(sizes)])


def find_mentions(index: Any, text: str, forms: list[list[int]] | None = None) -> Mentions:
    """Every mention of ``text`` (its ``forms``, by default ``entity_forms``) in the indexed corpus."""
    forms = entity_forms(index, text) if forms is None else forms
    offsets = shard_starts(index)
    parts: list[tuple[np.ndarray, ...]] = []
    for form in forms:
        for number, (ix, positions) in enumerate(zip(index.shard_indexes, index.positions(form))):
            positions = np.asarray(positions, dtype=np.int64)
            local = np.searchsorted(ix.doc_starts, positions, side="right") - 1
            base = int(offsets[number])
            parts.append((positions + base, np.full(len(positions), len(form), dtype=np.int64),
                          local.astype(np.int64) + ix.shard.first_document,
                          ix.doc_starts[local].astype(np.int64) + 1 + base,
                          ix.doc_ends[local].astype(np.int64) + base))
    if parts:
        start, length, doc, doc_first, doc_end = (np.concatenate(column) for column in zip(*parts))
    else:
        start = length = doc = doc_first = doc_end = np.zeros(0, dtype=np.int64)
    order = np.argsort(start, kind="stable")
    return Mentions(text, forms, start[order], length[order], doc[order], doc_first[order], doc_end[order])


def _count_between(starts: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each i, how many of the sorted ``starts`` lie in ``[lo[i], hi[i]]`` (0 where hi < lo)."""
    found = np.searchsorted(starts, hi, side="right") - np.searchsorted(starts, lo, side="left")
    return np.maximum(found, 0)


def _partnered(subject: Mentions, answer: Mentions, lo: np.ndarray, end: np.ndarray,
               start_max: np.ndarray | None = None) -> np.ndarray:
    """Per subject mention: whether some answer mention starts at ``lo`` or later (and at ``start_max``
    or earlier, when given), ends at ``end`` or earlier, and shares no token with the subject mention."""
    found = np.zeros(len(subject), dtype=bool)
    s, ls = subject.start, subject.length
    for la in np.unique(answer.length):
        starts = answer.start[answer.length == la]
        hi = end - la if start_max is None else np.minimum(end - la, start_max)
        inside = _count_between(starts, lo, hi)
        # an answer starting in [s - la + 1, s + ls - 1] shares a token with the subject mention
        overlapping = _count_between(starts, np.maximum(lo, s - la + 1), np.minimum(hi, s + ls - 1))
        found |= inside - overlapping > 0
    return found


@dataclass
class PairEvidence:
    """Where ``subject`` and ``answer`` co-occur: documents always; with a run, rows and (after
    ``count_training``) steps."""
    subject: str
    answer: str
    subject_forms: list[list[int]]
    answer_forms: list[list[int]]
    documents: np.ndarray
    """Every document with a co-occurrence, in corpus order."""
    rows_together: np.ndarray | None = None
    """Training rows (of the data order's stream) holding a co-occurrence whole; None without a run."""
    rows_shared: np.ndarray | None = None
    """Training rows holding a subject mention and an answer mention whole (any documents)."""
    exposure_steps: np.ndarray | None = None
    """Sorted steps of every (step, row) training on one of ``rows_together`` (a step repeats per such row in
    its batch), before the step ``count_training`` was given; None until then."""
    same_row_first_step: int | None = None
    """First step that trained on one of ``rows_shared``."""

    @property
    def count(self) -> int:
        """Documents with a co-occurrence (all of them, whatever ``documents`` is cut to for display)."""
        return int(len(self.documents))

    @property
    def stated(self) -> bool:
        return self.count > 0

    def seen_before(self, step: int | None) -> dict[str, Any]:
        """``first_step``, ``last_step``, ``exposures`` and ``same_row`` counted over steps ``< step`` (all None
        without a run, or without a step); ``step`` at most the one ``count_training`` counted up to."""
        if step is None or self.exposure_steps is None:
            return {"first_step": None, "last_step": None, "exposures": None, "same_row": None}
        k = int(np.searchsorted(self.exposure_steps, step, side="left"))
        return {"first_step": int(self.exposure_steps[0]) if k else None,
                "last_step": int(self.exposure_steps[k - 1]) if k else None,
                "exposures": k,
                "same_row": self.same_row_first_step is not None and self.same_row_first_step < step}


def pair_evidence(subject: Mentions, answer: Mentions, window: int | None = None, order: Any = None) -> PairEvidence:
    """Co-occurrences of two entities' mentions (see the module docstring); with ``order`` (a run's
    ``DataOrder`` over the same corpus) also the training rows holding them (``count_training`` adds
    the steps)."""
    s = subject.start
    lo, start_max = subject.doc_first, None
    if window is not None:
        lo, start_max = np.maximum(lo, s - window), s + window
    documents = np.unique(subject.doc[_partnered(subject, answer, lo, subject.doc_end, start_max)])
    evidence = PairEvidence(subject.text, answer.text, subject.forms, answer.forms, documents)
    if order is None:
        return evidence
    row = s // order.row_len
    row_lo, row_end = row * order.row_len, (row + 1) * order.row_len
    whole = (s + subject.length <= row_end) & (row < order.sequences_per_epoch)  # the subject fits its row
    in_row = whole & _partnered(subject, answer, np.maximum(lo, row_lo), np.minimum(subject.doc_end, row_end),
                                start_max)
    evidence.rows_together = np.unique(row[in_row])
    evidence.rows_shared = np.unique(row[whole & _partnered(subject, answer, row_lo, row_end)])
    return evidence


def count_training(order: Any, evidence: list[PairEvidence], before_step: int) -> None:
    """Fill in ``exposure_steps`` and ``same_row_first_step`` of each (with rows) over steps ``< before_step``.

    One pass over the epochs for all of them: step ``s`` trains samples ``[s * batch, (s + 1) * batch)``
    and sample ``e * n + i`` is the ``i``-th row epoch ``e`` visits (the data order's definition), so a
    row's step in epoch ``e`` is ``(e * n + position of the row in that epoch) // batch``. Each epoch's
    order is inverted once, whatever the number of pairs (the data order keeps only a few epochs)."""
    n, batch = order.sequences_per_epoch, order.spec.batch_size
    together: list[list[np.ndarray]] = [[] for _ in evidence]
    shared: list[list[np.ndarray]] = [[] for _ in evidence]
    for epoch in range((max(before_step, 0) * batch + n - 1) // n):
        position = np.empty(n, dtype=np.int64)
        position[order.permutation(epoch)] = np.arange(n, dtype=np.int64)
        for k, e in enumerate(evidence):
            for rows, out in ((e.rows_together, together[k]), (e.rows_shared, shared[k])):
                if rows is not None and len(rows):
                    steps = (epoch * n + position[rows]) // batch
                    out.append(steps[steps < before_step])
    for e, steps_together, steps_shared in zip(evidence, together, shared):
        if e.rows_together is None:
            continue
        e.exposure_steps = np.sort(np.concatenate(steps_together)) if steps_together else np.zeros(0, dtype=np.int64)
        first = [int(s.min()) for s in steps_shared if len(s)]
        e.same_row_first_step = min(first) if first else None
