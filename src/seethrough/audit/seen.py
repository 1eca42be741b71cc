""""Seen before step S": where an n-gram occurs in the corpus (the index) crossed with the data order.

An occurrence counts as seen at step s when the whole n-gram lies inside one row of the batch of
step s (an occurrence split across two rows never reached the model as one piece). With several
epochs an occurrence is seen once per epoch that reached it before S.

S may not pass the steps the run has trained: the data order goes on past a run's end, but what it
holds there was never seen (``planned=True`` asks about the steps the run is configured for instead,
labelled as such).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import QueryError
from ..train.run import Run


@dataclass
class Seen:
    ids: list[int]
    before_step: int
    count: int
    """Occurrences inside the rows of steps 0..before_step-1 (each epoch counted)."""
    first_step: int | None
    """The first step whose batch held an occurrence (None: not seen before ``before_step``)."""
    corpus_count: int
    """Occurrences in the whole corpus (each once)."""
    split_by_rows: int
    """Occurrences that straddle two rows or fall in the unused tail, so are never seen whole."""
    steps: dict[int, int] = field(default_factory=dict)
    """Step -> occurrences seen at that step."""
    method: str = "index"
    planned: bool = False
    """True when asked of the run's configured steps (``planned=True``), some perhaps not trained yet."""

    def to_dict(self) -> dict[str, Any]:
        return {"ids": self.ids, "before_step": self.before_step, "count": self.count, "first_step": self.first_step,
                "corpus_count": self.corpus_count, "split_by_rows": self.split_by_rows,
                "steps": {str(k): v for k, v in sorted(self.steps.items())}, "method": self.method,
                "planned": self.planned}


def occurrence_positions(run: Run, ids: list[int]) -> tuple[np.ndarray, str]:
    """Stream positions of every occurrence of ``ids``: from the index when built, else by a scan."""
    if run.index is None:
        return _scan(run, np.asarray(ids, dtype=np.int64)), "scan"
    per_shard = run.index.positions(ids)
    return np.concatenate([p + int(run.order.shard_starts[s]) for s, p in enumerate(per_shard)]), "index"


def _scan(run: Run, query: np.ndarray) -> np.ndarray:
    """Brute-force search of the stream, shard by shard (for corpora without an index)."""
    hits = []
    sep = run.corpus.separator
    for number, shard in enumerate(run.corpus.shards):
        tokens = shard.tokens
        n = len(query)
        if len(tokens) < n:
            continue
        candidates = np.flatnonzero(tokens[: len(tokens) - n + 1] == query[0])
        for k in range(1, n):
            candidates = candidates[tokens[candidates + k] == query[k]]
        if query[0] == sep:
            candidates = candidates[:0]
        hits.append(candidates.astype(np.int64) + int(run.order.shard_starts[number]))
    return np.concatenate(hits) if hits else np.zeros(0, dtype=np.int64)


def seen_before(run: Run, query: str | list[int], step: int, planned: bool = False) -> Seen:
    """How often ``query`` occurred in the batches of steps ``0 .. step - 1``, and when first.

    ``step`` is at most the steps the run has trained (its newest checkpoint), or with ``planned``
    the steps it is configured for; past that a ``RunError`` names the run's end."""
    if step < 0:
        raise QueryError(f"--step {step} is negative; steps count from 0")
    run.require_steps(step, "--step", step, planned)
    ids = run.corpus.require_tokenizer().encode(query) if isinstance(query, str) else [int(i) for i in query]
    if not ids:
        raise QueryError("the query is empty (no tokens); give some text or --ids")
    if any(not 0 <= i < run.corpus.vocab_size for i in ids):
        raise QueryError(f"--ids must lie in 0..{run.corpus.vocab_size - 1}, the corpus vocabulary")
    positions, method = occurrence_positions(run, ids)
    row_len, n_rows = run.order.row_len, run.order.sequences_per_epoch
    rows = positions // row_len
    whole = (rows == (positions + len(ids) - 1) // row_len) & (rows < n_rows)
    per_row = run.order.steps_seeing_rows(rows[whole], step)
    steps: dict[int, int] = {}
    for row_steps in per_row:
        for s in row_steps.tolist():
            steps[s] = steps.get(s, 0) + 1
    return Seen(ids=ids, before_step=step, count=sum(steps.values()), first_step=min(steps) if steps else None,
                corpus_count=len(positions), split_by_rows=int((~whole).sum()), steps=steps, method=method,
                planned=planned)
