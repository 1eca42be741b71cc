"""Queries over a corpus and its suffix arrays: counts, listings, document frequency, next-token
distributions, n-gram / infini-gram probabilities, maximal matching spans and boolean queries.

Every query takes text (encoded with the corpus tokenizer, no special tokens; a word the tokenizer
does not know is refused, not silently read as its unknown token) or token ids (Python or numpy
integers; floats, bools and strings are refused). All answers are exact: nothing is sampled or capped.

``count``, ``doc_freq``, ``find``, ``prob``, ``infgram_prob`` and ``longest_matches`` are their batched
forms (``count_many`` and friends) called with one query, so each has one implementation, and
studies that send tens of thousands of queries pay one compiled loop per shard, not one Python
call per query. ``ntd``, ``positions``, ``maximal_spans`` and ``search`` answer one query at a time.

Where a query's suffixes lie in a shard's table (its rank range), and so its count, is found by
the compiled kernels' one binary search (``kernels._range``), or with ``compiled=False`` by the
plain-Python byte search, which skips numba's start-up: for one-off commands such as one
``seethrough count`` (the other queries load the kernels either way).

A query may run under a deadline (:func:`query_deadline`, for a server): it is checked between shards
and between chunks of the long loops (listing occurrences, next-token runs, longest matches, boolean
clauses), and a query past it stops there with :class:`QueryTimeout`, so the work really ends.
"""

from __future__ import annotations

import array
import json
import re
import reprlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from functools import cache, cached_property
from itertools import accumulate, chain
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np

from ..corpus.store import Document, Shard, TokenCorpus, map_file, open_token_corpus
from ..errors import CorpusError, IndexNotBuiltError, QueryError
from .build import check_index, pointer_bytes

Query = Union[str, Sequence[int], np.ndarray]
"""Text, or token ids (a list / tuple of Python or numpy integers, or an integer array)."""

PARALLEL_BATCH = 256
"""Batches at least this large are spread over all cores."""
LISTING_CHUNK = 1 << 20
DEADLINE_CHUNK = 1 << 18
"""Under a deadline, ranks (next-token runs, boolean clauses' positions) and query starts / 64 (longest
matches) handled between two looks at the clock: a few milliseconds of work on a large shard."""


class QueryTimeout(QueryError):
    """A query that ran past its deadline (:func:`query_deadline`) and was stopped."""


@dataclass
class Deadline:
    """The ``clock`` reading past which the running query stops; ``checks``: how often it was looked at."""

    at: float
    seconds: float
    clock: Callable[[], float] = time.monotonic
    checks: int = 0

    def check(self) -> None:
        self.checks += 1
        if self.clock() >= self.at:
            raise QueryTimeout(f"the query ran past its deadline of {self.seconds:g} s and was stopped; narrow it "
                               "(a longer or rarer n-gram, a smaller limit, a shorter text) or raise the deadline")


_DEADLINE: ContextVar[Deadline | None] = ContextVar("seethrough_query_deadline", default=None)


@contextmanager
def query_deadline(seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[Deadline]:
    """Queries run inside the block (in this thread: the deadline is a context variable) stop with
    :class:`QueryTimeout` once ``seconds`` have passed on ``clock``, at the next check between shards or
    chunks of work. Yields the :class:`Deadline` (its ``checks`` count the looks at the clock)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise QueryError(f"deadline {seconds!r}: give a positive number of seconds")
    deadline = Deadline(clock() + seconds, float(seconds), clock)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    """Raise :class:`QueryTimeout` if the query running here is past its deadline (none set: nothing)."""
    deadline = _DEADLINE.get()
    if deadline is not None:
        deadline.check()


@cache
def _kernels():
    """The compiled kernels, imported on first use: numba's import costs about a second, and an import
    statement inside every query would cost microseconds each time."""
    from . import kernels

    return kernels


@dataclass
class Match:
    doc: int
    position: int
    """Token offset of the match in document ``doc`` (0 = its first token)."""
    metadata: dict[str, Any]
    snippet: str | None
    """The match with ``context`` tokens either side, decoded (None without a tokenizer)."""
    snippet_ids: list[int] = field(default_factory=list)
    match_start: int = 0
    """Token offset of the match inside ``snippet_ids``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FindResult:
    count: int
    matches: list[Match]
    ids: list[int]
    excluded: int | None = None
    """With ``find(..., exclude_documents=)``: how many of the ``count`` occurrences lie in those documents
    (none of them is listed); None otherwise."""

    def to_dict(self) -> dict[str, Any]:
        out = {"count": self.count, "ids": self.ids, "matches": [m.to_dict() for m in self.matches]}
        if self.excluded is not None:
            out["excluded"] = self.excluded
        return out


@dataclass
class NextTokenDistribution:
    prompt_count: int
    """Occurrences of the prompt (for the empty prompt: tokens in the corpus)."""
    counts: dict[int, int]
    """Next token id -> occurrences of prompt + token, every token that follows, exactly."""
    end_of_document: int
    """Occurrences of the prompt that end a document (no next token)."""
    ids: list[int]

    @property
    def probs(self) -> dict[int, float]:
        return {t: c / self.prompt_count for t, c in self.counts.items()} if self.prompt_count else {}

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_count": self.prompt_count, "end_of_document": self.end_of_document, "ids": self.ids,
                "next": [{"id": t, "count": c, "prob": c / self.prompt_count}
                         for t, c in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))]}


@dataclass
class NgramProb:
    prompt_count: int
    count: int
    """Occurrences of prompt + next token."""
    prob: float
    """count / prompt_count; -1 when the prompt does not occur (infini-gram's convention)."""
    suffix_len: int
    """Prompt tokens used: all of them for ``prob``, the longest occurring suffix for ``infgram_prob``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Span:
    start: int
    end: int
    """Token range [start, end) of the query."""
    count: int
    """Occurrences of the span in the corpus."""
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BooleanResult:
    count: int
    """Occurrences of the first clause that have every other clause within the window, same document."""
    documents: int
    """Documents with at least one such occurrence."""
    matches: list[Match]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "documents": self.documents, "approx": False,
                "matches": [m.to_dict() for m in self.matches]}


class _Queries(NamedTuple):
    """A batch of queries as one flat id array: query ``q`` is ``ids[bounds[q]:bounds[q + 1]]``.

    A suffix of a query is another (start, length) over the same array, so back-off needs no copies.
    """

    ids: np.ndarray
    bounds: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        return self.bounds[:-1]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.bounds)

    def query(self, q: int) -> np.ndarray:
        return self.ids[int(self.bounds[q]):int(self.bounds[q + 1])]


def _joined(encoded: list[np.ndarray]) -> _Queries:
    bounds = np.fromiter(accumulate(map(len, encoded), initial=0), dtype=np.int64, count=len(encoded) + 1)
    return _Queries(np.concatenate(encoded) if encoded else np.zeros(0, dtype=np.int64), bounds)


def _integer_array(values: list) -> np.ndarray | None:
    """``values`` as int64 when every one is a Python or numpy integer (not a bool) that fits, else None.

    ``array.array`` converts in C and refuses floats, strings and None by itself; bool, an int subclass,
    it takes as 0 or 1, so only the values equal to 0 or 1 have their type looked at. A batch of tens of
    thousands of queries is checked this way without a Python step per id."""
    try:
        ids = np.frombuffer(array.array("q", values), dtype=np.int64)
    except (TypeError, OverflowError):
        return None
    zeros_and_ones = np.flatnonzero(ids.view(np.uint64) <= 1).tolist()
    if zeros_and_ones and bool in set(map(type, map(values.__getitem__, zeros_and_ones))):
        return None
    return ids


def _is_token_id(value: Any) -> bool:
    """A Python or numpy integer; bool is an int subclass in Python but never a token id."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _batch_of(queries: Any, what: str) -> list:
    """``queries`` as a list, refusing a bare text or a mapping (which would be read item by item)."""
    if isinstance(queries, list):
        return queries
    if isinstance(queries, (str, bytes, dict)) or not isinstance(queries, Iterable):
        raise QueryError(f"{what} takes a list of queries (each text or a list of token ids), not "
                         f"{type(queries).__name__}; wrap a single query in a list or use the single form")
    return list(queries)


@dataclass
class _ShardIndex:
    """One shard with its suffix array, and every query's part that one shard answers.

    Each method below is one shard's partial answer to a batch (already encoded and checked),
    returned as plain arrays, lists and :class:`Match` objects; :class:`IndexedCorpus` combines the
    shards' answers in shard order. The same methods answer for a local corpus and on a cluster's
    query servers (``open_corpus(..., ray=ADDRESS)``), and the same :class:`IndexedCorpus` code
    combines them, so both give the same answers."""

    shard: Shard
    table: np.ndarray
    pointer_bytes: int
    """Bytes per suffix-array entry (see :func:`seethrough.index.build.pointer_bytes`)."""
    corpus: TokenCorpus = field(repr=False)
    """The corpus the shard belongs to: its tokenizer decodes snippets, its metadata describes matches."""

    @property
    def width(self) -> int:
        """Bytes per token."""
        return self.shard.tokens.itemsize

    @cached_property
    def doc_starts(self) -> np.ndarray:
        return self.shard.doc_starts

    @cached_property
    def doc_ends(self) -> np.ndarray:
        return np.append(self.doc_starts[1:], self.shard.positions)

    # ---- per-shard answers ------------------------------------------------------------------------
    def rank_ranges(self, ids: np.ndarray, bounds: np.ndarray, order: np.ndarray | None,
                    compiled: bool = True) -> np.ndarray:
        """A (2, n) array: the rank range [lo, hi) of the suffixes that start with each query (lo == hi
        where it does not occur; the empty query spans every position). ``order``: the order a large
        batch is searched in (on all cores), or None; ``compiled=False``: the plain-Python byte search."""
        n = len(bounds) - 1
        ranges = np.empty((2, n), dtype=np.int64)
        if not compiled:
            from .bytesearch import rank_range

            little_endian = self.shard.tokens.dtype.newbyteorder("<")
            token_bytes = self.shard.tokens.view(np.uint8)
            for q in range(n):
                query = ids[int(bounds[q]):int(bounds[q + 1])].astype(little_endian).tobytes()
                ranges[:, q] = rank_range(token_bytes, self.table, self.pointer_bytes, query)
        elif order is None:
            _kernels().find_ranges(self.shard.tokens, self.table, self.pointer_bytes, self.width, ids, bounds, ranges)
        else:
            _kernels().find_ranges_parallel(self.shard.tokens, self.table, self.pointer_bytes, self.width, ids, bounds,
                                            order, ranges)
        return ranges

    def document_counts(self, ids: np.ndarray, bounds: np.ndarray, order: np.ndarray | None,
                        compiled: bool = True) -> np.ndarray:
        """Documents of this shard that contain each query."""
        counts = np.zeros(len(bounds) - 1, dtype=np.int64)
        _kernels().document_counts(self.table, self.pointer_bytes, self.width, self.doc_starts,
                                   self.rank_ranges(ids, bounds, order, compiled), counts)
        return counts

    def first_positions(self, lo: int, hi: int, k: int) -> np.ndarray:
        """The ``k`` smallest token positions among ranks [lo, hi), sorted; memory bounded by chunks."""
        best = np.zeros(0, dtype=np.int64)
        if k <= 0:
            return best
        for start in range(lo, hi, LISTING_CHUNK):
            check_deadline()
            chunk = _kernels().positions(self.table, self.pointer_bytes, self.width, start, min(hi, start + LISTING_CHUNK))
            merged = np.concatenate((best, chunk))
            best = np.partition(merged, k - 1)[:k] if len(merged) > k else merged
        return np.sort(best)

    def first_matches(self, ranges: np.ndarray, takes: np.ndarray, skips: np.ndarray, lengths: np.ndarray,
                      context: int) -> list[list[Match]]:
        """For each query, the matches at its positions numbered ``skips[q]`` to ``skips[q] + takes[q]`` in this
        shard, in position order (rank range ``ranges[:, q]``, ``lengths[q]`` tokens long)."""
        return [[self.match(int(pos), int(length), context)
                 for pos in self.first_positions(int(lo), int(hi), int(skip + k))[int(skip):]]
                if k else [] for lo, hi, k, skip, length in zip(ranges[0], ranges[1], takes, skips, lengths)]

    def occurrences_in_documents(self, local_docs: np.ndarray, ids: np.ndarray) -> int:
        """Occurrences of the n-gram ``ids`` inside this shard's documents ``local_docs`` (shard-local numbers),
        by scanning their tokens: linear in those documents' length, not in the n-gram's count."""
        found = 0
        for local in local_docs.tolist():
            check_deadline()
            found += len(ngram_starts(self.shard.tokens[int(self.doc_starts[local]) + 1:int(self.doc_ends[local])], ids))
        return found

    def matches_outside(self, lo: int, hi: int, skip: int, take: int, inside: int, local_docs: np.ndarray,
                        length: int, context: int) -> list[Match]:
        """The matches at the positions numbered ``skip`` to ``skip + take`` among ranks [lo, hi) that lie
        outside documents ``local_docs``, which hold ``inside`` of them: the first ``skip + take + inside``
        positions hold those."""
        positions = self.first_positions(lo, hi, skip + take + inside)
        if len(local_docs):
            local = np.searchsorted(self.doc_starts, positions, side="right") - 1
            positions = positions[~np.isin(local, local_docs)]
        return [self.match(int(pos), length, context) for pos in positions[skip:skip + take]]

    def next_tokens(self, lo: int, hi: int, depth: int) -> tuple[list[int], list[int], int]:
        """Every distinct token after the ``depth``-token prefix of ranks [lo, hi), its count, and how many
        of those occurrences end a document."""
        if _DEADLINE.get() is None:
            tokens, runs, ends = _kernels().next_token_counts(self.shard.tokens, self.table, self.pointer_bytes,
                                                              self.width, lo, hi, depth, self.corpus.separator)
            return tokens.tolist(), runs.tolist(), int(ends)
        # under a deadline, in pieces of ranks: a run cut at a piece's edge is counted in both, and summed
        counts: dict[int, int] = {}
        ends = 0
        for start in range(lo, hi, DEADLINE_CHUNK):
            check_deadline()
            tokens, runs, piece_ends = _kernels().next_token_counts(
                self.shard.tokens, self.table, self.pointer_bytes, self.width, start, min(hi, start + DEADLINE_CHUNK),
                depth, self.corpus.separator)
            ends += int(piece_ends)
            for t, c in zip(tokens.tolist(), runs.tolist()):
                counts[t] = counts.get(t, 0) + c
        return list(counts), list(counts.values()), ends

    def ngram_counts(self, ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                     next_ids: np.ndarray) -> np.ndarray:
        """(2, n): occurrences in this shard of each prompt suffix ``ids[starts[q]:starts[q] + lengths[q]]``,
        and of that suffix followed by ``next_ids[q]``."""
        counts = np.zeros((2, len(next_ids)), dtype=np.int64)
        _kernels().ngram_counts(self.shard.tokens, self.table, self.pointer_bytes, self.width, self.shard.documents,
                                ids, starts, lengths, next_ids, counts)
        return counts

    def longest_suffixes(self, ids: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Length of each query's longest suffix that occurs in this shard."""
        known = np.zeros(len(bounds) - 1, dtype=np.int64)
        _kernels().longest_occurring_suffixes(self.shard.tokens, self.table, self.pointer_bytes, self.width, ids, bounds,
                                              known)
        return known

    def longest_matches(self, ids: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query token: the longest match in this shard starting there, and its count."""
        lengths, counts = np.empty(len(ids), dtype=np.int64), np.empty(len(ids), dtype=np.int64)
        kernels = _kernels()
        if _DEADLINE.get() is None:
            kernels.longest_matches(self.shard.tokens, self.table, self.pointer_bytes, self.width, ids, bounds,
                                    lengths, counts)
            return lengths, counts
        keys = kernels.token_keys(ids, self.width)  # under a deadline, a few starts at a time
        step = max(1, DEADLINE_CHUNK >> 6)
        for begin, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            known = 0
            for start in range(begin, end, step):
                check_deadline()
                known = kernels.longest_matches_from(self.shard.tokens, self.table, self.pointer_bytes, self.width,
                                                     keys, start, min(end, start + step), end, known, lengths, counts)
        return lengths, counts

    def boolean_hits(self, ranges: np.ndarray, clause_sizes: list[int], window: int,
                     limit: int) -> tuple[int, int, np.ndarray]:
        """Occurrences of the first clause with every other clause within ``window`` (same document): their
        number, the documents they are in, and the first ``limit`` of their positions. ``ranges[:, t]`` is
        the rank range of the clauses' ``t``-th n-gram, clause after clause."""
        starts_by_clause, t = [], 0
        for size in clause_sizes:
            found = [self._positions(int(ranges[0, t + i]), int(ranges[1, t + i])) for i in range(size)]
            t += size
            check_deadline()  # under a deadline, between each of the steps below (each one pass over positions)
            starts_by_clause.append(_sorted_unique(np.concatenate(found)))
        check_deadline()
        anchors = starts_by_clause[0]
        doc = np.searchsorted(self.doc_starts, anchors, side="right") - 1
        lo_pos = np.maximum(anchors - window, self.doc_starts[doc] + 1)
        hi_pos = np.minimum(anchors + window, self.doc_ends[doc] - 1)
        keep = np.ones(len(anchors), dtype=bool)
        for other in starts_by_clause[1:]:
            check_deadline()
            keep &= np.searchsorted(other, lo_pos, side="left") < np.searchsorted(other, hi_pos, side="right")
        hits = anchors[keep]
        kept_docs = doc[keep]  # sorted, as the anchors are: its distinct values are where it changes
        documents = int(len(kept_docs) and 1 + np.count_nonzero(kept_docs[1:] != kept_docs[:-1]))
        return len(hits), documents, hits[:limit]

    def _positions(self, lo: int, hi: int) -> np.ndarray:
        """Token positions of ranks [lo, hi) in table order; under a deadline, a chunk at a time."""
        if _DEADLINE.get() is None:
            return _kernels().positions(self.table, self.pointer_bytes, self.width, lo, hi)
        parts = []
        for start in range(lo, hi, DEADLINE_CHUNK):
            check_deadline()
            parts.append(_kernels().positions(self.table, self.pointer_bytes, self.width, start,
                                              min(hi, start + DEADLINE_CHUNK)))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def anchored_matches(self, positions: np.ndarray, anchor: list[np.ndarray], context: int) -> list[Match]:
        """The matches at ``positions``, each as long as the longest n-gram of ``anchor`` that starts there."""
        return [self.match(int(pos), self._anchor_length(int(pos), anchor), context) for pos in positions]

    # ---- helpers ----------------------------------------------------------------------------------
    def match(self, pos: int, length: int, context: int) -> Match:
        """The match of ``length`` tokens at token position ``pos`` of this shard, with ``context`` either side."""
        local = int(np.searchsorted(self.doc_starts, pos, side="right")) - 1
        doc_start, doc_end = int(self.doc_starts[local]) + 1, int(self.doc_ends[local])
        left = max(doc_start, pos - context)
        right = min(doc_end, pos + length + context)
        ids = self.shard.tokens[left:right].tolist()
        doc = self.shard.first_document + local
        tok = self.corpus.tokenizer
        # the ``metadata`` field of the document's record, or {} where the record is not a JSON object
        # (an infini-gram folder may hold any line)
        record = self.corpus.document_metadata(doc)
        return Match(doc=doc, position=pos - doc_start, metadata=record.get("metadata", {}) if isinstance(record, dict) else {},
                     snippet=tok.decode(ids) if tok else None, snippet_ids=ids, match_start=pos - left)

    def _anchor_length(self, pos: int, clause: list[np.ndarray]) -> int:
        """Length of the longest term of ``clause`` that starts at ``pos``."""
        tokens = self.shard.tokens
        best = 0
        for term in clause:
            end = pos + len(term)
            if end <= len(tokens) and np.array_equal(tokens[pos:end].astype(np.int64), term):
                best = max(best, len(term))
        return best


def ngram_starts(tokens: np.ndarray, ngram: Sequence[int] | np.ndarray) -> np.ndarray:
    """Where the n-gram starts in ``tokens`` (one document's, or any array), in order, by a scan: for the
    few documents a query looks inside; the index answers for the corpus. The empty n-gram starts nowhere."""
    ngram = np.asarray(ngram, dtype=np.int64)
    m = len(ngram)
    if m == 0 or len(tokens) < m:
        return np.zeros(0, dtype=np.int64)
    found = np.flatnonzero(tokens[:len(tokens) - m + 1] == ngram[0])
    for k in range(1, m):
        found = found[tokens[found + k] == ngram[k]]
    return found


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` by a sort and a comparison of neighbours: numpy 2.4's ``np.unique`` took 13.4 s
    on 9M int64 positions where this takes 0.25 s (measured; its hash-based path is slow here)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _takes_in_order(counts: np.ndarray, limit: int) -> np.ndarray:
    """How many of the first ``limit`` results of each query come from each shard, results listed in shard
    order: ``counts[s, q]`` results of query q in shard s, the first shards' all before the next's."""
    before = np.cumsum(counts, axis=0) - counts
    return np.clip(limit - before, 0, counts)


class IndexedCorpus:
    """A corpus with its suffix arrays: the object :func:`open_corpus` returns."""

    max_query_tokens: int = 100_000
    """Longer queries are refused (a count of them is pointless and their spans cost memory); the
    limit is per query, so a batch may hold any number of queries."""

    def __init__(self, corpus: TokenCorpus, verify_hashes: bool = False, compiled: bool = True,
                 servers: Any = None) -> None:
        self.corpus = corpus
        self._indexes: list[_ShardIndex] | None = None
        self._verify_hashes = verify_hashes
        self.compiled = compiled
        """False: rank ranges come from the pure-Python byte search (no numba start-up; for one-off commands)."""
        self.servers = servers
        """Shard servers that answer each shard's part of every query (``open_corpus(..., ray=ADDRESS)``:
        :class:`seethrough.distributed.ShardServers`), or None to answer here; the answers are combined
        here either way, by the same code."""

    def close(self) -> None:
        """Stop the shard servers, if any (a local corpus holds nothing to stop)."""
        if self.servers is not None:
            self.servers.close()

    def __enter__(self) -> IndexedCorpus:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ---- corpus facts -------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.corpus.path

    @property
    def num_documents(self) -> int:
        return self.corpus.num_documents

    @property
    def num_tokens(self) -> int:
        return self.corpus.num_tokens

    @property
    def tokenizer(self):
        return self.corpus.tokenizer

    def document(self, index: int) -> Document:
        return self.corpus.document(index)

    @property
    def shard_indexes(self) -> list[_ShardIndex]:
        if self._indexes is None:
            self._indexes = self._open_tables()
        return self._indexes

    def _open_tables(self) -> list[_ShardIndex]:
        folder = self.corpus.path
        if not self.corpus.foreign:
            check_index(self.corpus, full=self._verify_hashes)
        out = []
        for shard in self.corpus.shards:
            path = folder / shard.file("table")
            if not path.exists():
                raise IndexNotBuiltError(f"{folder} has no suffix array {path.name}; run `seethrough index build {folder}`")
            entry_bytes = pointer_bytes(shard.positions * shard.tokens.itemsize)
            table = map_file(path)
            if len(table) != shard.positions * entry_bytes:
                raise IndexNotBuiltError(
                    f"{path} has {len(table)} bytes, expected {shard.positions * entry_bytes} for this shard: it "
                    f"belongs to another corpus or is truncated; run `seethrough index build --force {folder}`"
                )
            out.append(_ShardIndex(shard, table, entry_bytes, self.corpus))
        return out

    @property
    def _width(self) -> int:
        """Bytes per token, the same in every shard."""
        return self.corpus.shards[0].tokens.itemsize

    def _per_shard(self, op: str, *common: Any, each: Sequence[tuple | None] | None = None) -> list[Any]:
        """Every shard's answer to ``op`` (a :class:`_ShardIndex` method), in shard order: called with
        ``each[s]`` (shard s's own arguments; None skips the shard, whose answer is then None), then
        ``common``. Here one call per shard; with shard servers one call per server for all its shards."""
        if self.servers is not None:
            return self.servers.answer(op, common, each)
        answers = []
        for s, ix in enumerate(self.shard_indexes):
            check_deadline()  # a query past its deadline stops between shards too
            own = () if each is None else each[s]
            answers.append(None if own is None else getattr(ix, op)(*own, *common))
        return answers

    # ---- query encoding -------------------------------------------------------------------------
    def encode(self, query: Query) -> np.ndarray:
        """Token ids of a query, validated: text is encoded with the corpus tokenizer (a word it does not
        know is refused), ids must be Python or numpy integers inside the vocabulary."""
        return self._encode(query, allow_empty=False)

    def _encode(self, query: Query, allow_empty: bool) -> np.ndarray:
        """``allow_empty``: the empty prompt ("" or no ids) is accepted; text that encodes to nothing never is."""
        if isinstance(query, str):
            if not query:
                if allow_empty:
                    return np.zeros(0, dtype=np.int64)
                raise QueryError("empty query: give some text or --ids")
            ids = self._encode_text(query)
            self._check_length(len(ids), allow_empty=False)
            return ids
        ids = self._ids_of(query)
        self._check_length(len(ids), allow_empty)
        return ids

    def _encode_text(self, text: str) -> np.ndarray:
        tok = self.corpus.require_tokenizer()
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:  # a lone surrogate: a non-UTF-8 argument, or "\ud800" in JSON
            raise QueryError(f"the query text holds {text[error.start:error.end]!r} at character {error.start}, which "
                             "is not a character (a lone surrogate or undecodable byte); give valid UTF-8 text") from None
        ids = tok.encode(text)
        unknown = self._unknown_token
        if unknown is not None and unknown[0] in ids:
            self._refuse_unknown_words(text, *unknown)
        ids = np.array(ids, dtype=np.int64)
        self._check_in_vocabulary(ids)
        return ids

    @cached_property
    def _unknown_token(self) -> tuple[int, str] | None:
        """(id, text) of the tokenizer's unknown token (word-level, WordPiece, Unigram, BPE with one), or
        None for tokenizers that encode any text exactly (byte-level BPE)."""
        loaded = self.corpus.tokenizer
        if loaded is None:
            return None
        model = loaded.tokenizer.model
        token = getattr(model, "unk_token", None)
        if token is None and type(model).__name__ == "Unigram":  # the Python binding does not expose its unk_id
            spec = json.loads(loaded.tokenizer.to_str())["model"]
            if spec.get("unk_id") is not None:
                token = spec["vocab"][spec["unk_id"]][0]
        token_id = loaded.tokenizer.token_to_id(token) if token is not None else None
        return None if token_id is None else (token_id, token)

    def _refuse_unknown_words(self, text: str, unk_id: int, unk_token: str) -> None:
        """Raises naming the words of ``text`` read as the unknown token, unless each is that token written out."""
        encoding = self.corpus.require_tokenizer().tokenizer.encode(text, add_special_tokens=False)
        words = list(dict.fromkeys(text[a:b] for i, (a, b) in zip(encoding.ids, encoding.offsets)
                                   if i == unk_id and text[a:b] != unk_token))
        if not words:
            return
        shown = ", ".join(map(repr, words[:5])) + (f" and {len(words) - 5} more" if len(words) > 5 else "")
        verb, pronoun = ("is", "it") if len(words) == 1 else ("are", "they")
        raise QueryError(f"{shown} {verb} not in the tokenizer's vocabulary ({pronoun} would be read as {unk_token}); "
                         "query only words the corpus tokenizer knows, or pass --ids")

    def _ids_of(self, query: Any) -> np.ndarray:
        """A query given as token ids, as int64: integers (Python or numpy) inside the vocabulary, nothing else."""
        if isinstance(query, np.ndarray) and query.dtype.kind in "iu":
            return self._ids_of_array(query)
        if type(query) is not list or not set(map(type, query)) <= {int}:  # all but a list of plain ints
            query = self._checked_id_list(query)
        # checked on the Python values: an id past 64 bits must be named, not overflow numpy
        if query and (min(query) < 0 or max(query) >= self.corpus.vocab_size):
            self._refuse_outside_vocabulary(next(int(i) for i in query if not 0 <= i < self.corpus.vocab_size))
        return np.array(query, dtype=np.int64)

    def _ids_of_array(self, query: np.ndarray) -> np.ndarray:
        ids = query.reshape(-1)
        if ids.dtype == np.uint64 and len(ids) and int(ids.max()) > np.iinfo(np.int64).max:
            self._refuse_outside_vocabulary(int(ids.max()))
        ids = ids.astype(np.int64)
        self._check_in_vocabulary(ids)
        return ids

    @staticmethod
    def _checked_id_list(query: Any) -> list:
        """``query`` as a list of ids after checking that every element is an integer, else a one-line refusal."""
        if isinstance(query, np.ndarray):
            if query.dtype.kind != "O":
                raise QueryError(f"token ids of type {query.dtype} are not integers; give whole-number ids, "
                                 "or the query as text")
            query = query.reshape(-1).tolist()
        if isinstance(query, (str, bytes, dict)) or not isinstance(query, Sequence):
            raise QueryError(f"query {reprlib.repr(query)} is neither text nor a list of token ids")
        for value in query:
            if not _is_token_id(value):
                if isinstance(value, (bool, str, bytes, float, complex, np.generic)) or value is None:
                    raise QueryError(f"token id {value!r} is not an integer ({type(value).__name__}); give token "
                                     "ids as whole numbers, or the query as text")
                raise QueryError(f"query {reprlib.repr(query)} is neither text nor a list of token ids")
        return list(query)

    def _check_length(self, length: int, allow_empty: bool) -> None:
        if length == 0 and not allow_empty:
            raise QueryError("empty query: it encodes to no tokens; give at least one token")
        if length > self.max_query_tokens:
            raise QueryError(f"query has {length} tokens, over the limit of {self.max_query_tokens}; "
                             "shorten or split it")

    def _check_in_vocabulary(self, ids: np.ndarray) -> None:
        """``ids``: contiguous int64. Viewed as unsigned, a negative id is huge: one reduction checks both ends."""
        unsigned = ids.view(np.uint64)
        if len(ids) and unsigned.max() >= self.corpus.vocab_size:
            self._refuse_outside_vocabulary(int(ids[unsigned >= self.corpus.vocab_size][0]))

    def _refuse_outside_vocabulary(self, bad: int) -> None:
        raise QueryError(f"token id {bad} is outside the vocabulary (0..{self.corpus.vocab_size - 1}); "
                         "check the ids or the tokenizer")

    def _encode_batch(self, queries: list, allow_empty: bool = False) -> _Queries:
        """All queries as one flat batch, each validated as :meth:`encode` would (the length limit per query).

        One query (what every single form sends) takes the per-query checks; a batch of lists, the
        common case of large batches, is checked and flattened in C-level passes (see
        :func:`_integer_array`) with no Python step per query; anything else, or a refusal, goes
        query by query, which names what is wrong."""
        if len(queries) == 1:
            ids = self._encode(queries[0], allow_empty)
            return _Queries(ids, np.array([0, len(ids)], dtype=np.int64))
        if set(map(type, queries)) == {list}:
            lengths = np.fromiter(map(len, queries), dtype=np.int64, count=len(queries))
            self._check_length(int(lengths.min()), allow_empty)
            self._check_length(int(lengths.max()), allow_empty)
            ids = _integer_array(list(chain.from_iterable(queries)))
            if ids is not None:
                self._check_in_vocabulary(ids)
                bounds = np.zeros(len(queries) + 1, dtype=np.int64)
                np.cumsum(lengths, out=bounds[1:])
                return _Queries(ids, bounds)
        return _joined([self._encode(q, allow_empty) for q in queries])

    # ---- the one search: rank ranges ------------------------------------------------------------------
    def _rank_ranges(self, queries: _Queries) -> list[np.ndarray]:
        """Per shard, a (2, n) array: the rank range [lo, hi) in that shard's table of the suffixes that
        start with each query (lo == hi where it does not occur; the empty query spans every position)."""
        return self._per_shard("rank_ranges", queries.ids, queries.bounds, self._search_order(queries), self.compiled)

    def _counts(self, queries: _Queries) -> np.ndarray:
        """Occurrences of every (non-empty) query, summed over shards: the sizes of its rank ranges.
        (Counting inside the kernel instead of keeping the ranges measured the same: 14.8 vs 15.2 ms
        for 20,000 queries.)"""
        return sum(hi - lo for lo, hi in self._rank_ranges(queries))

    def _search_order(self, queries: _Queries) -> np.ndarray | None:
        """The order a large batch is searched in (on every core): by first tokens, as the table is sorted,
        so that consecutive binary searches walk the same part of the suffix array and find it in cache.
        None for small batches and the byte search, which go in the given order."""
        if not self.compiled or len(queries.bounds) - 1 < PARALLEL_BATCH:
            return None
        return np.argsort(_kernels().sort_keys(queries.ids, queries.bounds, self._width))

    def _ranges(self, encoded: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`_rank_ranges` of already encoded queries."""
        return self._rank_ranges(_joined(encoded))

    # ---- count ------------------------------------------------------------------------------------
    def count(self, query: Query) -> int:
        """Exact occurrences of the n-gram; never across a document boundary."""
        return self.count_many([query])[0]

    def count_many(self, queries: Sequence[Query]) -> list[int]:
        """:meth:`count` of every query, in one search per shard."""
        queries = _batch_of(queries, "count_many")
        if not queries:
            return []
        return self._counts(self._encode_batch(queries)).tolist()

    # ---- document frequency -----------------------------------------------------------------------
    def doc_freq(self, query: Query) -> int:
        """Number of documents that contain the n-gram at least once."""
        return self.doc_freq_many([query])[0]

    def doc_freq_many(self, queries: Sequence[Query]) -> list[int]:
        """:meth:`doc_freq` of every query, in one search per shard."""
        queries = _batch_of(queries, "doc_freq_many")
        if not queries:
            return []
        batch = self._encode_batch(queries)
        per_shard = self._per_shard("document_counts", batch.ids, batch.bounds, self._search_order(batch), self.compiled)
        return np.sum(per_shard, axis=0).tolist()

    # ---- find -------------------------------------------------------------------------------------
    def find(self, query: Query, limit: int = 10, context: int = 20, offset: int = 0,
             exclude_documents: Iterable[int] | None = None) -> FindResult:
        """Count and the occurrences numbered ``offset`` to ``offset + limit`` in corpus order (document, then
        position). ``exclude_documents``: document ids whose occurrences are neither listed nor numbered (a
        takedown list); the count stays the index's, and ``excluded`` says how many of it they hold."""
        if exclude_documents is None:
            return self.find_many([query], limit, context, offset)[0]
        self._check_page(limit, context, offset)
        ids = self.encode(query)
        excluded = self._document_ids(exclude_documents)
        ranges = self._ranges([ids])
        counts = np.array([int(hi[0] - lo[0]) for lo, hi in ranges], dtype=np.int64)
        firsts = np.cumsum([0] + [shard.documents for shard in self.corpus.shards])
        local_docs = [excluded[(excluded >= firsts[s]) & (excluded < firsts[s + 1])] - firsts[s]
                      for s in range(len(ranges))]
        inside = self._per_shard("occurrences_in_documents", ids,
                                 each=[(local,) if len(local) and count else None
                                       for local, count in zip(local_docs, counts)])
        inside = np.array([n or 0 for n in inside], dtype=np.int64)
        visible = (counts - inside)[:, None]
        skips = _takes_in_order(visible, offset)[:, 0]
        takes = _takes_in_order(visible, offset + limit)[:, 0] - skips
        found = self._per_shard("matches_outside", len(ids), context,
                                each=[(int(lo[0]), int(hi[0]), int(skip), int(take), int(n), local) if take else None
                                      for (lo, hi), skip, take, n, local in zip(ranges, skips, takes, inside, local_docs)])
        return FindResult(int(counts.sum()), [m for part in found if part for m in part], ids.tolist(),
                          excluded=int(inside.sum()))

    def find_many(self, queries: Sequence[Query], limit: int = 10, context: int = 20,
                  offset: int = 0) -> list[FindResult]:
        """:meth:`find` of every query, in one search per shard."""
        self._check_page(limit, context, offset)
        queries = _batch_of(queries, "find_many")
        if not queries:
            return []
        batch = self._encode_batch(queries)
        shards = self._rank_ranges(batch)
        counts = np.array([hi - lo for lo, hi in shards])  # (shards, queries)
        skips = _takes_in_order(counts, offset)  # the matches before the page, in corpus order
        takes = _takes_in_order(counts, offset + limit) - skips
        found = self._per_shard("first_matches", batch.lengths, context,
                                each=[(ranges, take, skip) if take.any() else None
                                      for ranges, take, skip in zip(shards, takes, skips)])
        totals = counts.sum(axis=0).tolist()
        return [FindResult(totals[q], [m for part in found if part is not None for m in part[q]], batch.query(q).tolist())
                for q in range(len(queries))]

    @staticmethod
    def _check_page(limit: int, context: int, offset: int) -> None:
        for name, value in (("--limit", limit), ("--context", context), ("--offset", offset)):
            if value < 0:
                raise QueryError(f"{name} must be 0 or more")

    def _document_ids(self, docs: Iterable[int]) -> np.ndarray:
        """Document ids, sorted and distinct, each checked to be one of the corpus's."""
        values = sorted({int(d) for d in docs})
        if values and (values[0] < 0 or values[-1] >= self.num_documents):
            bad = values[0] if values[0] < 0 else values[-1]
            raise QueryError(f"document {bad} does not exist; the corpus has documents 0..{self.num_documents - 1}")
        return np.array(values, dtype=np.int64)

    def positions(self, query: Query) -> list[np.ndarray]:
        """Every occurrence, per shard: sorted token positions in that shard's ``tokenized`` file
        (separators included, so position ``p`` is document token ``p - doc_start - 1``)."""
        shards = self._ranges([self.encode(query)])
        return self._per_shard("first_positions", each=[(int(lo[0]), int(hi[0]), int(hi[0] - lo[0])) for lo, hi in shards])

    # ---- next-token distribution and probabilities --------------------------------------------------
    def ntd(self, prompt: Query) -> NextTokenDistribution:
        """Exact distribution of the token that follows the prompt (empty prompt: unigram counts)."""
        ids = self._encode(prompt, allow_empty=True)
        shards = self._ranges([ids])  # the empty prompt spans every position, separators included
        parts = self._per_shard("next_tokens", len(ids),
                                each=[(int(lo[0]), int(hi[0])) if hi[0] > lo[0] else None for lo, hi in shards])
        counts: dict[int, int] = {}
        ends = 0
        for part in parts:
            if part is not None:
                tokens, runs, shard_ends = part
                ends += shard_ends
                for t, c in zip(tokens, runs):
                    counts[t] = counts.get(t, 0) + c
        if len(ids) == 0:
            ends = 0  # the "ends" of the empty prompt are the separators themselves
            prompt_count = self.num_tokens
        else:
            prompt_count = int(sum(hi[0] - lo[0] for lo, hi in shards))
        return NextTokenDistribution(prompt_count, counts, ends, ids.tolist())

    def prob(self, prompt: Query, next_id: int) -> NgramProb:
        """n-gram probability of ``next_id`` after the whole prompt: count(prompt+next) / count(prompt)."""
        return self.prob_many([(prompt, next_id)])[0]

    def prob_many(self, pairs: Sequence[tuple[Query, int]]) -> list[NgramProb]:
        """:meth:`prob` of every (prompt, next id) pair, in one search per shard."""
        prompts, next_ids = self._prompts_and_next(pairs, "prob_many")
        return self._ngram_probs(prompts, next_ids, prompts.lengths)

    def infgram_prob(self, prompt: Query, next_id: int) -> NgramProb:
        """∞-gram probability: the n-gram probability under the longest suffix of the prompt that occurs."""
        return self.infgram_prob_many([(prompt, next_id)])[0]

    def infgram_prob_many(self, pairs: Sequence[tuple[Query, int]]) -> list[NgramProb]:
        """:meth:`infgram_prob` of every (prompt, next id) pair: the longest occurring suffix of each prompt
        (one bisection per prompt and shard, in the kernels), then one n-gram search per shard."""
        prompts, next_ids = self._prompts_and_next(pairs, "infgram_prob_many")
        # the longest suffix that occurs in the corpus: the longest of those that occur in a shard
        suffix = np.max(self._per_shard("longest_suffixes", prompts.ids, prompts.bounds), axis=0)
        return self._ngram_probs(prompts, next_ids, suffix)

    def _prompts_and_next(self, pairs: Any, what: str) -> tuple[_Queries, np.ndarray]:
        pairs = _batch_of(pairs, what)
        for pair in pairs:
            if isinstance(pair, (str, bytes, dict)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise QueryError(f"{what} takes (prompt, next token id) pairs; got {reprlib.repr(pair)}")
        prompts = self._encode_batch([prompt for prompt, _ in pairs], allow_empty=True)
        return prompts, self._ids_of([next_id for _, next_id in pairs])

    def _ngram_probs(self, prompts: _Queries, next_ids: np.ndarray, suffix: np.ndarray) -> list[NgramProb]:
        """For each prompt, the n-gram probability of its next id after the prompt's last ``suffix`` tokens."""
        starts = prompts.bounds[1:] - suffix
        # occurrences of the suffix, and of suffix + next, summed over shards
        counts = np.sum(self._per_shard("ngram_counts", prompts.ids, starts, suffix, next_ids), axis=0)
        return [NgramProb(prompt_count, count, count / prompt_count if prompt_count else -1.0, length)
                for prompt_count, count, length in zip(counts[0].tolist(), counts[1].tolist(), suffix.tolist())]

    # ---- maximal matching spans -----------------------------------------------------------------
    def longest_matches(self, query: Query) -> tuple[list[int], list[int]]:
        """For each start i, the length of the longest span query[i:i+len] found in the corpus, and its count."""
        return self.longest_matches_many([query])[0]

    def longest_matches_many(self, queries: Sequence[Query]) -> list[tuple[list[int], list[int]]]:
        """:meth:`longest_matches` of every query, in one compiled call per shard."""
        queries = _batch_of(queries, "longest_matches_many")
        if not queries:
            return []
        batch = self._encode_batch(queries)
        best = np.zeros(len(batch.ids), dtype=np.int64)  # per query token, over all shards so far
        count = np.zeros(len(batch.ids), dtype=np.int64)
        for lengths, counts in self._per_shard("longest_matches", batch.ids, batch.bounds):
            longer = lengths > best
            same = (lengths == best) & (lengths > 0)
            count[same] += counts[same]
            count[longer] = counts[longer]
            np.maximum(best, lengths, out=best)
        best_list, count_list = best.tolist(), count.tolist()
        bounds = batch.bounds.tolist()
        return [(best_list[a:b], count_list[a:b]) for a, b in zip(bounds, bounds[1:])]

    def maximal_spans(self, query: Query, min_length: int = 1) -> list[Span]:
        """Spans of the query found verbatim in the corpus that no earlier span contains: for each start,
        the longest match, kept when it reaches past every span before it (infini-gram's / OLMoTrace's spans)."""
        ids = self.encode(query)
        lengths, counts = self.longest_matches(ids)
        return self.spans_of_matches(ids, lengths, counts, min_length)

    def spans_of_matches(self, ids: Any, lengths: Sequence[int], counts: Sequence[int],
                         min_length: int = 1) -> list[Span]:
        """``maximal_spans`` from ``longest_matches`` already computed, for callers that need both."""
        ids = np.asarray(ids, dtype=np.int64)
        spans, reach = [], 0
        tok = self.corpus.tokenizer
        for start, (length, count) in enumerate(zip(lengths, counts)):
            end = start + length
            if length >= max(min_length, 1) and end > reach:
                text = tok.decode(ids[start:end].tolist()) if tok else None
                spans.append(Span(start, end, count, text))
                reach = end
        return spans

    # ---- boolean queries ----------------------------------------------------------------------------
    def search(self, cnf: Sequence[Sequence[Query]], window: int = 100, limit: int = 10,
               context: int = 20) -> BooleanResult:
        """AND of OR-clauses: occurrences of the first clause (any of its n-grams) that have, in the same
        document, an occurrence of every other clause starting at most ``window`` tokens away. Exact.

        ``cnf`` is a list of clauses, each a list of n-grams (text or token ids): ``[[[1, 2], [3]], [[4]]]``
        is (1 2 OR 3) AND 4. :func:`parse_boolean_query` turns ``"a b AND c OR d"`` into that shape."""
        if window < 0:
            raise QueryError("--window must be 0 or more")
        if limit < 0:
            raise QueryError("--limit must be 0 or more")
        if context < 0:
            raise QueryError("--context must be 0 or more")
        clauses = self._clauses(cnf)
        shards = self._ranges([term for clause in clauses for term in clause])
        hits = self._per_shard("boolean_hits", [len(clause) for clause in clauses], window, limit,
                               each=[(ranges,) for ranges in shards])
        totals = np.array([[total] for total, _, _ in hits], dtype=np.int64)  # (shards, 1)
        takes = _takes_in_order(totals, limit)[:, 0]  # the first `limit` matches, in corpus order
        found = self._per_shard("anchored_matches", clauses[0], context,
                                each=[(first[:take],) if take else None for (_, _, first), take in zip(hits, takes)])
        return BooleanResult(int(totals.sum()), sum(documents for _, documents, _ in hits),
                             [m for part in found if part is not None for m in part])

    def _clauses(self, cnf: Any) -> list[list[np.ndarray]]:
        """``cnf`` encoded, after checking its shape: a non-empty list of non-empty lists of queries."""
        shape = ("a boolean query is a list of clauses, each a list of n-grams (text or token ids), like "
                 "[[[1,2],[3]],[[4]]] for (1 2 OR 3) AND 4")

        def is_list(value: Any) -> bool:
            return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))

        if not is_list(cnf):
            raise QueryError(f"{shape}; got {type(cnf).__name__} {reprlib.repr(cnf)}")
        if not len(cnf) or any(is_list(clause) and not len(clause) for clause in cnf):
            raise QueryError("empty boolean query: give at least one n-gram in every clause")
        for clause in cnf:
            if not is_list(clause):
                raise QueryError(f"{shape}; clause {reprlib.repr(clause)} is {type(clause).__name__}, not a list")
            for term in clause:
                if not (isinstance(term, str) or is_list(term)):
                    raise QueryError(f"{shape}; n-gram {reprlib.repr(term)} is {type(term).__name__}, "
                                     "not text or a list of ids")
        return [[self.encode(term) for term in clause] for clause in cnf]


_OPERATOR = re.compile(r"(?<!\S)(AND|OR)(?!\S)")
"""AND / OR as whole words: "ANDROID" or "or" are text."""


def parse_boolean_query(text: str) -> list[list[str]]:
    """A boolean query written in words, as the clauses :meth:`IndexedCorpus.search` takes.

    ``"a b AND c OR d"`` is ``[["a b"], ["c", "d"]]``: the n-gram "a b", and "c" or "d". OR binds
    tighter than AND, so any such query is an AND of OR-clauses; the operators are the upper-case
    words AND and OR, an n-gram is the text between them. Parentheses are refused (there is no
    grouping beyond that order), as are an operator without an n-gram on each side and empty text.
    """
    example = 'write n-grams joined by AND and OR, like "a b AND c OR d" (OR binds tighter)'
    if not isinstance(text, str):
        raise QueryError(f"a boolean query is text, not {type(text).__name__}; {example}")
    if "(" in text or ")" in text:
        raise QueryError(f"parentheses are not supported in a boolean query; {example}, or give the clauses as --cnf")
    parts = _OPERATOR.split(text)  # n-gram, operator, n-gram, ..., operator, n-gram
    terms, operators = [part.strip() for part in parts[0::2]], parts[1::2]
    if not operators and not terms[0]:
        raise QueryError(f"empty boolean query; {example}")
    for i, operator in enumerate(operators):
        if not terms[i]:
            raise QueryError(f"{operator} has no n-gram before it in the boolean query; {example}")
        if not terms[i + 1]:
            raise QueryError(f"{operator} has no n-gram after it in the boolean query; {example}")
    clauses = [[terms[0]]]
    for operator, term in zip(operators, terms[1:]):
        if operator == "AND":
            clauses.append([term])
        else:
            clauses[-1].append(term)
    return clauses


def open_corpus(path: str | Path, tokenizer: str | Path | None = None, token_dtype: str | None = None,
                verify: bool = False, compiled: bool = True, ray: str | None = None) -> IndexedCorpus:
    """Open a corpus folder for queries: a seethrough corpus, or an index written by infini-gram.

    ``tokenizer`` overrides the corpus's own copy (it must be the same tokenizer; for infini-gram folders
    it is how text queries get encoded). ``verify`` re-hashes every file instead of trusting unchanged ones.
    ``compiled=False`` finds counts with the plain-Python byte search instead of the numba kernels: no
    numba start-up, so faster for one count, slower for batches.

    ``ray``: the address of a Ray cluster (``host:port``, ``auto``; see :func:`seethrough.distributed.connect`)
    whose nodes see the corpus at the same path: the shards are spread over query servers, one per node,
    each answering its shards' part of every query (a batch is one call per server), combined here in
    shard order by the same code as locally, so every answer is the local one; ``verify`` re-hashes the
    files on the cluster, one task per shard. ``close()`` (or ``with``) stops the servers; the cluster
    stays up.
    """
    if ray is not None:
        from ..distributed.cluster import require_ray

        require_ray()  # first: without Ray, --ray cannot be honoured whatever the corpus
    corpus = open_token_corpus(path, tokenizer=tokenizer, token_dtype=token_dtype)
    if verify and corpus.foreign:
        raise CorpusError(f"{path} is an infini-gram folder, which records no hashes: --verify cannot check it; "
                          "leave --verify out")
    if ray is None:
        if verify:
            corpus.verify()
        return IndexedCorpus(corpus, verify_hashes=verify, compiled=compiled)
    import functools

    from ..distributed.index_build import verify_on_ray
    from ..distributed.queries import start_shard_servers

    if verify:
        verify_on_ray(path, ray)
    index = IndexedCorpus(corpus, compiled=compiled)
    index.shard_indexes  # noqa: B018 - a missing or foreign index is refused here, before any server starts
    # the servers open the corpus as this call did (absolute paths: their working folder is not this one)
    opener = functools.partial(open_corpus, Path(path).resolve(), tokenizer=None if tokenizer is None else
                               Path(tokenizer).resolve(), token_dtype=token_dtype, compiled=compiled)
    index.servers = start_shard_servers(ray, opener, [shard.positions for shard in corpus.shards])
    return index


def covered_share(spans: Sequence[Span], length: int) -> float:
    """Share of a query's ``length`` tokens inside at least one span (0.0 for an empty query)."""
    covered = np.zeros(length, dtype=bool)
    for s in spans:
        covered[s.start:s.end] = True
    return float(covered.mean()) if length else 0.0
