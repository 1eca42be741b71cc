"""Queries over a corpus and its suffix arrays: counts, listings, document frequency, next-token
distributions, n-gram / infini-gram probabilities, maximal matching spans and boolean queries.

Every query takes text (encoded with the corpus tokenizer, no special tokens) or token ids, and
every query has a batched form (``count_many`` and friends) that the single form calls: studies
that send thousands of queries pay one compiled loop per shard, not one Python call per query.
All answers are exact: nothing is sampled or capped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..corpus.store import Document, Shard, TokenCorpus, map_file, open_token_corpus
from ..errors import IndexNotBuiltError, QueryError
from .build import check_index, pointer_bytes

Query = Union[str, Sequence[int], np.ndarray]

PARALLEL_BATCH = 256
"""Batches at least this large are spread over all cores."""
LISTING_CHUNK = 1 << 20


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

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "ids": self.ids, "matches": [m.to_dict() for m in self.matches]}


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


@dataclass
class _ShardIndex:
    shard: Shard
    table: np.ndarray
    ratio: int

    @property
    def width(self) -> int:
        return self.shard.tokens.itemsize

    @cached_property
    def doc_starts(self) -> np.ndarray:
        return self.shard.doc_starts

    @cached_property
    def doc_ends(self) -> np.ndarray:
        return np.append(self.doc_starts[1:], self.shard.positions)


class IndexedCorpus:
    """A corpus with its suffix arrays: the object :func:`open_corpus` returns."""

    max_query_tokens: int = 100_000
    """Longer queries are refused (a count of them is pointless and their spans cost memory)."""

    def __init__(self, corpus: TokenCorpus, verify_hashes: bool = False, compiled: bool = True) -> None:
        self.corpus = corpus
        self._indexes: list[_ShardIndex] | None = None
        self._verify_hashes = verify_hashes
        self.compiled = compiled
        """False: single counts use the pure-Python search (no numba start-up; for one-off commands)."""

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
            file_bytes = shard.positions * shard.tokens.itemsize
            ratio = pointer_bytes(file_bytes)
            table = map_file(path)
            if len(table) != shard.positions * ratio:
                raise IndexNotBuiltError(
                    f"{path} has {len(table)} bytes, expected {shard.positions * ratio} for this shard: it belongs "
                    f"to another corpus or is truncated; run `seethrough index build --force {folder}`"
                )
            out.append(_ShardIndex(shard, table, ratio))
        return out

    # ---- query encoding -------------------------------------------------------------------------
    def encode(self, query: Query) -> np.ndarray:
        """Token ids of a query (text is encoded with the corpus tokenizer), validated."""
        if isinstance(query, str):
            if not query:
                raise QueryError("empty query: give some text or --ids")
            return self._validate(np.asarray(self.corpus.require_tokenizer().encode(query), dtype=np.int64))
        if isinstance(query, list) and all(type(i) is int for i in query):
            # plain Python checks: on a short list they cost far less than numpy reductions
            self._check_ids(len(query), min(query, default=0), max(query, default=0), query)
            return np.array(query, dtype=np.int64)
        try:
            ids = np.asarray(query, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            raise QueryError(f"query {query!r} is neither text nor a list of token ids") from None
        return self._validate(ids)

    def _check_ids(self, length: int, low: int, high: int, ids: Any, allow_empty: bool = False) -> None:
        if length == 0 and not allow_empty:
            raise QueryError("empty query: it encodes to no tokens; give at least one token")
        if length > self.max_query_tokens:
            raise QueryError(f"query has {length} tokens, over the limit of {self.max_query_tokens}; "
                             "shorten or split it")
        if length and (low < 0 or high >= self.corpus.vocab_size):
            bad = next(int(i) for i in ids if i < 0 or i >= self.corpus.vocab_size)
            raise QueryError(f"token id {bad} is outside the vocabulary (0..{self.corpus.vocab_size - 1}); "
                             "check the ids or the tokenizer")

    def _validate(self, ids: np.ndarray, allow_empty: bool = False) -> np.ndarray:
        if len(ids):
            self._check_ids(len(ids), int(ids.min()), int(ids.max()), ids, allow_empty)
        else:
            self._check_ids(0, 0, 0, ids, allow_empty)
        return ids

    def _keys(self, ids: np.ndarray) -> np.ndarray:
        width = self.corpus.shards[0].tokens.itemsize
        ids = ids.astype(np.int64)
        if width == 2:
            return ((ids & 0xFF) << 8) | (ids >> 8)
        if width == 4:
            return ((ids & 0xFF) << 24) | ((ids & 0xFF00) << 8) | ((ids >> 8) & 0xFF00) | (ids >> 24)
        return ids

    def _encode_batch(self, queries: Sequence[Query]) -> tuple[np.ndarray, np.ndarray]:
        """All queries as one flat id array plus lengths; lists of ints are checked in one pass."""
        if set(map(type, queries)) == {list}:  # map/set iterate in C: thousands of queries per call
            lengths = np.fromiter(map(len, queries), dtype=np.int64, count=len(queries))
            try:
                flat = np.fromiter(chain.from_iterable(queries), dtype=np.int64, count=int(lengths.sum()))
            except (TypeError, ValueError):
                flat = None
            if flat is not None:
                for q in np.nonzero((lengths == 0) | (lengths > self.max_query_tokens))[0][:1]:
                    self._check_ids(int(lengths[q]), 0, 0, [])
                self._validate(flat, allow_empty=True)
                return flat, lengths
        encoded = [self.encode(q) for q in queries]
        lengths = np.fromiter((len(q) for q in encoded), dtype=np.int64, count=len(encoded))
        return (np.concatenate(encoded) if encoded else np.zeros(0, np.int64)), lengths

    def _ranges(self, encoded: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        lengths = np.fromiter((len(q) for q in encoded), dtype=np.int64, count=len(encoded))
        return self._ranges_flat(np.concatenate(encoded) if encoded else np.zeros(0, np.int64), lengths)

    def _ranges_flat(self, flat: np.ndarray, lengths: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shard, the SA rank range [lo, hi) of every query.

        Large batches are searched in sorted order (by their first tokens), so consecutive binary
        searches walk the same part of the suffix array and find it in cache.
        """
        from .kernels import find_ranges, find_ranges_parallel

        n = len(lengths)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        keys = self._keys(flat)
        order = np.arange(n)
        parallel = n >= PARALLEL_BATCH
        if parallel:
            columns = []
            for j in range(3, -1, -1):  # np.lexsort: last key is primary
                has = lengths > j
                column = np.full(n, -1, dtype=np.int64)
                column[has] = keys[starts[has] + j]
                columns.append(column)
            order = np.lexsort(columns)
        kernel = find_ranges_parallel if parallel else find_ranges
        out = []
        for ix in self.shard_indexes:
            lo = np.empty(n, dtype=np.int64)
            hi = np.empty(n, dtype=np.int64)
            kernel(ix.shard.tokens, ix.table, ix.ratio, ix.width, keys, starts[order], lengths[order], lo, hi)
            unsorted_lo, unsorted_hi = np.empty_like(lo), np.empty_like(hi)
            unsorted_lo[order], unsorted_hi[order] = lo, hi
            out.append((unsorted_lo, unsorted_hi))
        return out

    # ---- count ------------------------------------------------------------------------------------
    def count(self, query: Query) -> int:
        """Exact occurrences of the n-gram; never across a document boundary."""
        return self._count_ids(self.encode(query))

    def _count_ids(self, ids: np.ndarray) -> int:
        """Occurrences of validated ids; the empty sequence counts every token (the empty prompt)."""
        if len(ids) == 0:
            return self.num_tokens
        if not self.compiled:
            from .bytesearch import rank_range

            total = 0
            for ix in self.shard_indexes:
                query = ids.astype(ix.shard.tokens.dtype.newbyteorder("<")).tobytes()
                lo, hi = rank_range(ix.shard.tokens.view(np.uint8), ix.table, ix.ratio, query)
                total += hi - lo
            return total
        from .kernels import count_ids

        return sum(int(count_ids(ix.shard.tokens, ix.table, ix.ratio, ix.width, ids)) for ix in self.shard_indexes)

    def count_many(self, queries: Sequence[Query]) -> list[int]:
        if not queries:
            return []
        flat, lengths = self._encode_batch(queries)
        total = np.zeros(len(lengths), dtype=np.int64)
        for lo, hi in self._ranges_flat(flat, lengths):
            total += hi - lo
        return total.tolist()

    # ---- document frequency -----------------------------------------------------------------------
    def doc_freq(self, query: Query) -> int:
        """Number of documents that contain the n-gram at least once."""
        return self.doc_freq_many([query])[0]

    def doc_freq_many(self, queries: Sequence[Query]) -> list[int]:
        from .kernels import count_documents

        encoded = [self.encode(q) for q in queries]
        result = np.zeros(len(encoded), dtype=np.int64)
        for ix, (lo, hi) in zip(self.shard_indexes, self._ranges(encoded)):
            seen = np.zeros(ix.shard.documents, dtype=np.uint8)
            for q in range(len(encoded)):
                if hi[q] > lo[q]:
                    result[q] += count_documents(ix.table, ix.ratio, ix.width, ix.doc_starts, lo[q], hi[q], seen)
        return result.tolist()

    # ---- find -------------------------------------------------------------------------------------
    def find(self, query: Query, limit: int = 10, context: int = 20) -> FindResult:
        """Count and the first ``limit`` occurrences in corpus order (document, then position)."""
        return self.find_many([query], limit, context)[0]

    def find_many(self, queries: Sequence[Query], limit: int = 10, context: int = 20) -> list[FindResult]:
        if limit < 0:
            raise QueryError("--limit must be 0 or more")
        encoded = [self.encode(q) for q in queries]
        ranges = self._ranges(encoded)
        results = []
        for q, ids in enumerate(encoded):
            count = int(sum(hi[q] - lo[q] for lo, hi in ranges))
            matches: list[Match] = []
            for ix, (lo, hi) in zip(self.shard_indexes, ranges):
                if len(matches) >= limit:
                    break
                for pos in self._first_positions(ix, int(lo[q]), int(hi[q]), limit - len(matches)):
                    matches.append(self._match(ix, int(pos), len(ids), context))
            results.append(FindResult(count, matches, ids.tolist()))
        return results

    def positions(self, query: Query) -> list[np.ndarray]:
        """Every occurrence, per shard: sorted token positions in that shard's ``tokenized`` file
        (separators included, so position ``p`` is document token ``p - doc_start - 1``)."""
        ids = self.encode(query)
        ranges = self._ranges([ids])
        return [self._first_positions(ix, int(lo[0]), int(hi[0]), int(hi[0] - lo[0]))
                for ix, (lo, hi) in zip(self.shard_indexes, ranges)]

    def _first_positions(self, ix: _ShardIndex, lo: int, hi: int, k: int) -> np.ndarray:
        """The ``k`` smallest token positions among ranks [lo, hi), sorted; memory bounded by chunks."""
        from .kernels import positions

        best = np.zeros(0, dtype=np.int64)
        if k <= 0:
            return best
        for start in range(lo, hi, LISTING_CHUNK):
            chunk = positions(ix.table, ix.ratio, ix.width, start, min(hi, start + LISTING_CHUNK))
            merged = np.concatenate((best, chunk))
            best = np.partition(merged, k - 1)[:k] if len(merged) > k else merged
        return np.sort(best)

    def _match(self, ix: _ShardIndex, pos: int, length: int, context: int) -> Match:
        local = int(np.searchsorted(ix.doc_starts, pos, side="right")) - 1
        doc_start, doc_end = int(ix.doc_starts[local]) + 1, int(ix.doc_ends[local])
        left = max(doc_start, pos - context)
        right = min(doc_end, pos + length + context)
        ids = ix.shard.tokens[left:right].tolist()
        doc = ix.shard.first_document + local
        tok = self.corpus.tokenizer
        return Match(
            doc=doc, position=pos - doc_start, metadata=self.corpus.document_metadata(doc).get("metadata", {}),
            snippet=tok.decode(ids) if tok else None, snippet_ids=ids, match_start=pos - left,
        )

    # ---- next-token distribution and probabilities --------------------------------------------------
    def ntd(self, prompt: Query) -> NextTokenDistribution:
        """Exact distribution of the token that follows the prompt (empty prompt: unigram counts)."""
        from .kernels import next_token_counts

        ids = self._prompt(prompt)
        ranges = self._ranges([ids]) if len(ids) else [(np.array([0]), np.array([ix.shard.positions]))
                                                         for ix in self.shard_indexes]
        counts: dict[int, int] = {}
        ends = 0
        for ix, (lo, hi) in zip(self.shard_indexes, ranges):
            if hi[0] > lo[0]:
                tokens, runs, shard_ends = next_token_counts(ix.shard.tokens, ix.table, ix.ratio, ix.width,
                                                             int(lo[0]), int(hi[0]), len(ids), self.corpus.separator)
                ends += int(shard_ends)
                for t, c in zip(tokens.tolist(), runs.tolist()):
                    counts[t] = counts.get(t, 0) + c
        if len(ids) == 0:
            ends = 0  # the "ends" of the empty prompt are the separators themselves
            prompt_count = self.num_tokens
        else:
            prompt_count = int(sum(hi[0] - lo[0] for lo, hi in ranges))
        return NextTokenDistribution(prompt_count, counts, ends, ids.tolist())

    def _prompt(self, prompt: Query) -> np.ndarray:
        if isinstance(prompt, str) and prompt == "":
            return np.zeros(0, dtype=np.int64)
        if isinstance(prompt, str):
            return self.encode(prompt)
        return self._validate(np.asarray(prompt, dtype=np.int64).reshape(-1), allow_empty=True)

    def prob(self, prompt: Query, next_id: int) -> NgramProb:
        """n-gram probability of ``next_id`` after the whole prompt: count(prompt+next) / count(prompt)."""
        ids = self._prompt(prompt)
        return self._prob_ids(ids, next_id)

    def _prob_ids(self, ids: np.ndarray, next_id: int) -> NgramProb:
        self._check_ids(1, next_id, next_id, [next_id])
        prompt_count = self._count_ids(ids)
        count = self._count_ids(np.append(ids, np.int64(next_id))) if prompt_count else 0
        return NgramProb(prompt_count, count, count / prompt_count if prompt_count else -1.0, len(ids))

    def prob_many(self, pairs: Sequence[tuple[Query, int]]) -> list[NgramProb]:
        prompts = [self._prompt(p) for p, _ in pairs]
        nexts = [self._validate(np.asarray([n], dtype=np.int64)) for _, n in pairs]
        prompt_counts = self._counts_allow_empty(prompts)
        full = self._counts_allow_empty([np.concatenate((p, n)) for p, n in zip(prompts, nexts)])
        return [NgramProb(int(pc), int(c), float(c / pc) if pc else -1.0, len(p))
                for p, pc, c in zip(prompts, prompt_counts, full)]

    def _counts_allow_empty(self, encoded: list[np.ndarray]) -> np.ndarray:
        counts = np.zeros(len(encoded), dtype=np.int64)
        nonempty = [i for i, q in enumerate(encoded) if len(q)]
        if nonempty:
            for lo, hi in self._ranges([encoded[i] for i in nonempty]):
                counts[nonempty] += hi - lo
        counts[[i for i, q in enumerate(encoded) if not len(q)]] = self.num_tokens
        return counts

    def infgram_prob(self, prompt: Query, next_id: int) -> NgramProb:
        """∞-gram probability: the n-gram probability under the longest suffix of the prompt that occurs."""
        ids = self._prompt(prompt)
        lo, hi = 0, len(ids) + 1  # a suffix of length lo occurs, one of length hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._count_ids(ids[len(ids) - mid:]) > 0:
                lo = mid
            else:
                hi = mid
        return self._prob_ids(ids[len(ids) - lo:], next_id)

    def infgram_prob_many(self, pairs: Sequence[tuple[Query, int]]) -> list[NgramProb]:
        prompts = [self._prompt(p) for p, _ in pairs]
        suffix = self._longest_occurring_suffix(prompts)
        return self.prob_many([(p[len(p) - s:] if s else [], n) for p, s, (_, n) in zip(prompts, suffix, pairs)])

    def _longest_occurring_suffix(self, prompts: list[np.ndarray]) -> list[int]:
        """Per prompt, the longest suffix length with a non-zero count; one batched count per bisection round."""
        lo = np.zeros(len(prompts), dtype=np.int64)  # known to occur (0 always does)
        hi = np.array([len(p) + 1 for p in prompts], dtype=np.int64)  # known not to occur
        while True:
            active = np.nonzero(hi - lo > 1)[0]
            if len(active) == 0:
                return lo.tolist()
            mid = (lo[active] + hi[active]) // 2
            counts = self._counts_allow_empty([prompts[i][len(prompts[i]) - m:] for i, m in zip(active, mid)])
            occurs = counts > 0
            lo[active[occurs]] = mid[occurs]
            hi[active[~occurs]] = mid[~occurs]

    # ---- maximal matching spans -----------------------------------------------------------------
    def longest_matches(self, query: Query) -> tuple[list[int], list[int]]:
        """For each start i, the length of the longest span query[i:i+len] found in the corpus, and its count."""
        lengths, counts = self.longest_matches_many([query])[0]
        return lengths, counts

    def longest_matches_many(self, queries: Sequence[Query]) -> list[tuple[list[int], list[int]]]:
        from .kernels import longest_matches

        out = []
        for query in queries:
            ids = self.encode(query)
            keys = self._keys(ids)
            best = np.zeros(len(ids), dtype=np.int64)
            count = np.zeros(len(ids), dtype=np.int64)
            for ix in self.shard_indexes:
                lengths, counts = longest_matches(ix.shard.tokens, ix.table, ix.ratio, ix.width, keys)
                longer = lengths > best
                same = (lengths == best) & (lengths > 0)
                count[same] += counts[same]
                count[longer] = counts[longer]
                best = np.maximum(best, lengths)
            out.append((best.tolist(), count.tolist()))
        return out

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
        document, an occurrence of every other clause starting at most ``window`` tokens away. Exact."""
        from .kernels import positions

        if not cnf or any(not clause for clause in cnf):
            raise QueryError("empty boolean query: give at least one n-gram in every clause")
        if window < 0:
            raise QueryError("--window must be 0 or more")
        clauses = [[self.encode(term) for term in clause] for clause in cnf]
        ranges = self._ranges([term for clause in clauses for term in clause])
        total, documents, matches = 0, 0, []
        for ix, (lo, hi) in zip(self.shard_indexes, ranges):
            starts_by_clause, q = [], 0
            for clause in clauses:
                found = [positions(ix.table, ix.ratio, ix.width, int(lo[q + t]), int(hi[q + t]))
                         for t in range(len(clause))]
                q += len(clause)
                starts_by_clause.append(np.unique(np.concatenate(found)))
            anchors = starts_by_clause[0]
            doc = np.searchsorted(ix.doc_starts, anchors, side="right") - 1
            lo_pos = np.maximum(anchors - window, ix.doc_starts[doc] + 1)
            hi_pos = np.minimum(anchors + window, ix.doc_ends[doc] - 1)
            keep = np.ones(len(anchors), dtype=bool)
            for other in starts_by_clause[1:]:
                keep &= np.searchsorted(other, lo_pos, side="left") < np.searchsorted(other, hi_pos, side="right")
            hits = anchors[keep]
            total += len(hits)
            documents += len(np.unique(doc[keep]))
            for pos in hits[: max(0, limit - len(matches))]:
                length = self._anchor_length(ix, int(pos), clauses[0])
                matches.append(self._match(ix, int(pos), length, context))
        return BooleanResult(total, documents, matches)

    def _anchor_length(self, ix: _ShardIndex, pos: int, clause: list[np.ndarray]) -> int:
        """Length of the longest term of ``clause`` that starts at ``pos``."""
        tokens = ix.shard.tokens
        best = 0
        for term in clause:
            end = pos + len(term)
            if end <= len(tokens) and np.array_equal(tokens[pos:end].astype(np.int64), term):
                best = max(best, len(term))
        return best


def open_corpus(path: str | Path, tokenizer: str | Path | None = None, token_dtype: str | None = None,
                verify: bool = False, compiled: bool = True) -> IndexedCorpus:
    """Open a corpus folder for queries: a seethrough corpus, or an index written by infini-gram.

    ``tokenizer`` overrides the corpus's own copy (it must be the same tokenizer; for infini-gram folders
    it is how text queries get encoded). ``verify`` re-hashes every file instead of trusting unchanged ones.
    ``compiled=False`` answers single counts without loading the numba kernels (faster for one query).
    """
    corpus = open_token_corpus(path, tokenizer=tokenizer, token_dtype=token_dtype)
    if verify and not corpus.foreign:
        corpus.verify()
    return IndexedCorpus(corpus, verify_hashes=verify, compiled=compiled)


def covered_share(spans: Sequence[Span], length: int) -> float:
    """Share of a query's ``length`` tokens inside at least one span (0.0 for an empty query)."""
    covered = np.zeros(length, dtype=bool)
    for s in spans:
        covered[s.start:s.end] = True
    return float(covered.mean()) if length else 0.0
