"""The data order: which tokens the model sees at each step, as a pure function anyone can recompute.

Definition (the same in docs/formats.md; change it only with a new ``ORDER_VERSION``):

1. **Stream.** The corpus's documents in corpus order, each preceded by the end-of-document
   token ``eod``: ``eod d0 eod d1 eod d2 ...``. This is exactly the concatenation of the shards'
   ``tokenized`` files with every separator replaced by ``eod``, so rows are read straight from disk.
2. **Sequences.** The stream is cut into ``n = len(stream) // (seq_len + 1)`` consecutive,
   non-overlapping rows of ``seq_len + 1`` tokens (inputs are ``row[:-1]``, targets ``row[1:]``);
   the tail shorter than a row is never used.
3. **Epochs.** Epoch ``e`` visits the rows in the order ``argsort(keys, stable)``, where ``keys`` are
   the first ``n`` 64-bit outputs of NumPy's PCG64 seeded with
   ``SeedSequence([int(corpus_hash, 16), seed, seq_len, e])``. PCG64 and SeedSequence have a
   fixed, documented output (NEP 19), so the order does not depend on the NumPy version.
4. **Batches.** Global sample ``g`` is row ``perm_{g // n}[g % n]``; step ``s`` (the s-th optimizer
   step, from 0) trains on samples ``[s * batch_size, (s + 1) * batch_size)``. A batch may straddle
   two epochs. Processes only split a batch among themselves, so the order does not depend on how
   many there are, and the row order does not depend on the batch size at all.

Everything here is numpy only: replaying a run needs neither torch nor its checkpoints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..corpus.store import TokenCorpus
from ..errors import CorpusError, QueryError

ORDER_VERSION = 1


@dataclass(frozen=True)
class OrderSpec:
    """Everything the data order depends on (with the corpus's content)."""

    corpus_hash: str
    seed: int
    seq_len: int
    batch_size: int
    eod_id: int
    version: int = ORDER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RowSource:
    """The part of one document that a batch row holds."""

    doc: int
    row_start: int
    """First position in the row (0..seq_len) holding this document's tokens."""
    row_end: int
    doc_start: int
    """Token offset in the document of ``row_start``."""
    doc_end: int
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Batch:
    step: int
    token_ids: np.ndarray
    """int64, shape (batch_size, seq_len + 1): exactly what the trainer hashes and trains on."""
    samples: list[int]
    """Global sample numbers (``epoch * sequences_per_epoch + position in that epoch's order``)."""
    rows: list[int]
    """Row numbers in the stream (row ``r`` is stream tokens ``[r * (seq_len + 1), (r + 1) * (seq_len + 1))``)."""

    @property
    def sha256(self) -> str:
        return batch_sha256(self.token_ids)


def batch_sha256(token_ids: np.ndarray) -> str:
    """sha256 of a batch's token ids as little-endian int64, row-major."""
    return hashlib.sha256(np.ascontiguousarray(token_ids, dtype="<i8").tobytes()).hexdigest()


def find_eod_id(corpus: TokenCorpus, token: str | None = None) -> int:
    """The id of the end-of-document token: ``token`` if given, else the tokenizer's usual EOS name."""
    tok = corpus.require_tokenizer().tokenizer
    names = [token] if token else ["<|endoftext|>", "</s>", "<eos>", "<|eos|>", "[EOS]", "<|end_of_text|>"]
    for name in names:
        found = tok.token_to_id(name)
        if found is not None:
            return int(found)
    if token:
        raise CorpusError(f"--eod-token {token!r} is not in the tokenizer of {corpus.path}; name a token it has")
    raise CorpusError(
        f"the tokenizer of {corpus.path} has none of the usual end-of-document tokens ({', '.join(names)}); "
        "pass --eod-token with the one it uses"
    )


class DataOrder:
    """The rows of the stream and their order; see the module docstring for the definition."""

    def __init__(self, corpus: TokenCorpus, spec: OrderSpec):
        if corpus.corpus_hash is None:
            raise CorpusError(f"{corpus.path} has no seethrough manifest; training needs a corpus built by "
                              "`seethrough corpus build` (its content hash fixes the data order)")
        if corpus.corpus_hash != spec.corpus_hash:
            raise CorpusError(
                f"corpus {corpus.path} (hash {corpus.corpus_hash[:12]}) is not the corpus this order was made for "
                f"(hash {spec.corpus_hash[:12]}); pass the run's own corpus"
            )
        if spec.seq_len < 1 or spec.batch_size < 1:
            raise QueryError("--seq-len and --batch-size must be at least 1")
        self.corpus = corpus
        self.spec = spec
        self.row_len = spec.seq_len + 1
        sizes = np.array([s.positions for s in corpus.shards], dtype=np.int64)
        self.shard_starts = np.concatenate([[0], np.cumsum(sizes)])
        self.stream_len = int(self.shard_starts[-1])
        self.sequences_per_epoch = self.stream_len // self.row_len
        if self.sequences_per_epoch == 0:
            raise CorpusError(
                f"corpus {corpus.path} has {self.stream_len} tokens with separators, fewer than one row of "
                f"--seq-len {spec.seq_len} + 1; use a shorter --seq-len or a larger corpus"
            )
        self.doc_starts = np.concatenate(
            [s.doc_starts + self.shard_starts[i] for i, s in enumerate(corpus.shards)]
        ).astype(np.int64)
        """Stream position of each document's ``eod``; its first token is one further."""
        self._permutation = lru_cache(maxsize=4)(self._make_permutation)
        self._inverse = lru_cache(maxsize=4)(self._make_inverse)

    # -- the order ----------------------------------------------------------------------------
    def _make_permutation(self, epoch: int) -> np.ndarray:
        seeds = np.random.SeedSequence([int(self.spec.corpus_hash, 16), self.spec.seed, self.spec.seq_len, epoch])
        keys = np.random.PCG64(seeds).random_raw(self.sequences_per_epoch)
        return np.argsort(keys, kind="stable")

    def _make_inverse(self, epoch: int) -> np.ndarray:
        inverse = np.empty(self.sequences_per_epoch, dtype=np.int64)
        inverse[self.permutation(epoch)] = np.arange(self.sequences_per_epoch, dtype=np.int64)
        return inverse

    def permutation(self, epoch: int) -> np.ndarray:
        """Row numbers in the order epoch ``epoch`` visits them."""
        return self._permutation(epoch)

    def samples_of_step(self, step: int) -> np.ndarray:
        b = self.spec.batch_size
        return np.arange(step * b, (step + 1) * b, dtype=np.int64)

    def rows_of_samples(self, samples: np.ndarray) -> np.ndarray:
        n = self.sequences_per_epoch
        rows = np.empty(len(samples), dtype=np.int64)
        epochs = samples // n
        for epoch in np.unique(epochs):
            mask = epochs == epoch
            rows[mask] = self.permutation(int(epoch))[samples[mask] % n]
        return rows

    def steps_per_epoch(self) -> float:
        return self.sequences_per_epoch / self.spec.batch_size

    # -- tokens -------------------------------------------------------------------------------
    def stream_slice(self, start: int, end: int) -> np.ndarray:
        """Stream tokens ``[start, end)`` as int64, separators replaced by ``eod``."""
        parts = []
        first = int(np.searchsorted(self.shard_starts, start, side="right")) - 1
        for s in range(first, len(self.corpus.shards)):
            lo, hi = int(self.shard_starts[s]), int(self.shard_starts[s + 1])
            if lo >= end:
                break
            parts.append(self.corpus.shards[s].tokens[max(start, lo) - lo:min(end, hi) - lo])
        out = np.concatenate(parts).astype(np.int64) if len(parts) > 1 else parts[0].astype(np.int64)
        out[out == self.corpus.separator] = self.spec.eod_id
        return out

    def row_tokens(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.row_len), dtype=np.int64)
        for i, r in enumerate(rows):
            start = int(r) * self.row_len
            out[i] = self.stream_slice(start, start + self.row_len)
        return out

    def batch(self, step: int) -> Batch:
        """The batch that optimizer step ``step`` (from 0) trains on."""
        if step < 0:
            raise QueryError(f"--step {step} is negative; steps count from 0")
        if (step + 1) * self.spec.batch_size > np.iinfo(np.int64).max:  # sample numbers are int64
            raise QueryError(f"--step {step} is beyond any run: its sample numbers do not fit in 64 bits")
        samples = self.samples_of_step(step)
        rows = self.rows_of_samples(samples)
        return Batch(step=step, token_ids=self.row_tokens(rows), samples=samples.tolist(), rows=rows.tolist())

    def row_sources(self, row: int, with_metadata: bool = True) -> list[RowSource]:
        """The documents whose tokens row ``row`` holds, with the token ranges on both sides."""
        start, end = row * self.row_len, (row + 1) * self.row_len
        first = int(np.searchsorted(self.doc_starts, start, side="right")) - 1
        last = int(np.searchsorted(self.doc_starts, end, side="left")) - 1
        sources = []
        for doc in range(max(first, 0), last + 1):
            doc_first = int(self.doc_starts[doc]) + 1  # stream position of the document's first token
            doc_stop = int(self.doc_starts[doc + 1]) if doc + 1 < len(self.doc_starts) else self.stream_len
            lo, hi = max(start, doc_first), min(end, doc_stop)
            if lo >= hi:
                continue  # only the eod of this document falls in the row
            sources.append(RowSource(
                doc=doc, row_start=lo - start, row_end=hi - start, doc_start=lo - doc_first, doc_end=hi - doc_first,
                metadata=self.corpus.document_metadata(doc).get("metadata", {}) if with_metadata else {},
            ))
        return sources

    # -- from positions back to steps -----------------------------------------------------------
    def stream_position(self, doc: int, position: int) -> int:
        """Stream position of token ``position`` of document ``doc``."""
        return int(self.doc_starts[doc]) + 1 + position

    def steps_seeing_rows(self, rows: np.ndarray, before_step: int) -> list[np.ndarray]:
        """For each row, the steps before ``before_step`` that trained on it (one per epoch reached)."""
        n, b = self.sequences_per_epoch, self.spec.batch_size
        samples_done = before_step * b
        result: list[list[int]] = [[] for _ in rows]
        for epoch in range((samples_done + n - 1) // n):
            # cached: audits ask this for many n-grams in a row, and each inverse costs a pass over n rows
            steps = (epoch * n + self._inverse(epoch)[rows]) // b
            for i, s in enumerate(steps):
                if s < before_step:
                    result[i].append(int(s))
        return [np.array(r, dtype=np.int64) for r in result]
