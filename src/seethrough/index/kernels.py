"""Compiled inner loops of the suffix-array engine (numba, cached on disk after the first call).

Conventions shared by every kernel:

- ``tokens``: one shard's token array (uint8/16/32, native), separators included; ``width``: bytes
  per token.
- ``table`` / ``pointer_bytes``: the suffix array as infini-gram stores it, ``pointer_bytes``
  little-endian bytes per entry, each entry a *byte* offset into the token file.
- Queries arrive as one flat array of token ids and their ``bounds``: query ``q`` is
  ``ids[bounds[q]:bounds[q + 1]]``. A kernel that searches parts of queries (their suffixes) takes
  a ``starts`` and a ``lengths`` array instead, over the same ids.
- Suffixes are sorted by the byte order of the little-endian token file (infini-gram's order,
  which is what ``divsufsort`` produces). Comparing tokens in that order is comparing their
  byte-swapped values: each entry point turns the query ids into such ``keys`` once
  (:func:`token_keys`), and ``_key`` swaps tokens.
- A suffix is compared with a query on the query's length only; a suffix that ends first is smaller.
  The separator (all bits set) is the largest key, so no match ever crosses a document boundary.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

# numba's default threading layer on Linux is OpenMP, and it shares libgomp with torch: once a parallel
# kernel here has run, every torch parallel region with a nested OpenMP call (MKL's sgemm inside CPU
# flash attention) oversubscribes and spins: training in the same process went from ~11,000 to ~400
# tokens/s (measured, the demo's model on 2 cores). The workqueue layer keeps numba's threads to itself.
# A user's NUMBA_THREADING_LAYER is kept. (workqueue runs one parallel kernel at a time: a caller that
# queries from several threads at once, a server say, serializes its calls.)
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"


@njit(cache=True, inline="always")
def _key(value, width):
    v = np.int64(value)
    if width == 2:
        return ((v & 0xFF) << 8) | (v >> 8)
    if width == 4:
        return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24)
    return v


@njit(cache=True, inline="always")
def _position(table, pointer_bytes, width, rank):
    """Token index of the suffix at ``rank``."""
    base = rank * pointer_bytes
    value = np.int64(0)
    for b in range(pointer_bytes - 1, -1, -1):
        value = (value << 8) | np.int64(table[base + b])
    return value // width


@njit(cache=True)
def _compare(tokens, width, pos, keys, start, length):
    """-1 / 0 / 1: the suffix at ``pos`` against ``keys[start:start+length]`` (0: the query is its prefix)."""
    n = tokens.shape[0]
    for k in range(length):
        if pos + k >= n:
            return -1
        a = _key(tokens[pos + k], width)
        b = keys[start + k]
        if a < b:
            return -1
        if a > b:
            return 1
    return 0


@njit(cache=True)
def _range(tokens, table, pointer_bytes, width, keys, start, length, lo, hi):
    """SA rank range [first, last) of suffixes that start with the query, searched within [lo, hi).

    One search narrows [a, b) until it lands on a match; only then does it split into the lower
    and upper bound searches, each over what is left. A query that does not occur costs one
    search instead of two, and the two bounds share the path down to the first match."""
    a, b = lo, hi
    while a < b:
        mid = (a + b) >> 1
        c = _compare(tokens, width, _position(table, pointer_bytes, width, mid), keys, start, length)
        if c < 0:
            a = mid + 1
        elif c > 0:
            b = mid
        else:
            break
    if a >= b:
        return a, a
    top = b
    b = mid  # first rank whose suffix is >= query: in [a, mid]
    while a < b:
        m = (a + b) >> 1
        if _compare(tokens, width, _position(table, pointer_bytes, width, m), keys, start, length) < 0:
            a = m + 1
        else:
            b = m
    first = a
    a, b = mid + 1, top  # first rank whose suffix is > query: in [mid + 1, top]
    while a < b:
        m = (a + b) >> 1
        if _compare(tokens, width, _position(table, pointer_bytes, width, m), keys, start, length) <= 0:
            a = m + 1
        else:
            b = m
    return first, a


@njit(cache=True)
def token_keys(ids, width):
    """The search keys of token ids: each id byte-swapped as its token sorts in the table."""
    keys = np.empty(ids.shape[0], dtype=np.int64)
    for k in range(ids.shape[0]):
        keys[k] = _key(ids[k], width)
    return keys


@njit(cache=True)
def sort_keys(ids, bounds, width):
    """One int64 per query that sorts as the query's first tokens do in the table, shorter first on a
    tie, with as many tokens as fit in 63 bits (7 of uint8, 3 of uint16, 1 of uint32): a batch searched
    in this order walks the table from one end to the other, so neighbouring searches share cache."""
    bits = 8 * width + 1  # a token's key plus one, 0 where the query has ended
    slots = max(1, 63 // bits)
    out = np.empty(bounds.shape[0] - 1, dtype=np.int64)
    for q in range(bounds.shape[0] - 1):
        value = np.int64(0)
        for j in range(slots):
            p = bounds[q] + j
            value = (value << bits) | (_key(ids[p], width) + 1 if p < bounds[q + 1] else 0)
        out[q] = value
    return out


@njit(cache=True)
def find_ranges(tokens, table, pointer_bytes, width, ids, bounds, ranges):
    """``ranges[0, q], ranges[1, q]``: the SA rank range [lo, hi) of every query, in query order."""
    n = tokens.shape[0]
    keys = token_keys(ids, width)
    for q in range(bounds.shape[0] - 1):
        ranges[0, q], ranges[1, q] = _range(tokens, table, pointer_bytes, width, keys, bounds[q],
                                            bounds[q + 1] - bounds[q], 0, n)


@njit(cache=True, parallel=True)
def find_ranges_parallel(tokens, table, pointer_bytes, width, ids, bounds, order, ranges):
    """:func:`find_ranges` on every core, visiting the queries in ``order`` (results stay in query order)."""
    n = tokens.shape[0]
    keys = token_keys(ids, width)
    for k in prange(order.shape[0]):
        q = order[k]
        ranges[0, q], ranges[1, q] = _range(tokens, table, pointer_bytes, width, keys, bounds[q],
                                            bounds[q + 1] - bounds[q], 0, n)


@njit(cache=True)
def positions(table, pointer_bytes, width, lo, hi):
    """Token indices of the suffixes at ranks [lo, hi)."""
    out = np.empty(hi - lo, dtype=np.int64)
    for r in range(lo, hi):
        out[r - lo] = _position(table, pointer_bytes, width, r)
    return out


@njit(cache=True)
def _document_of(doc_starts, pos):
    a, b = 0, doc_starts.shape[0]
    while b - a > 1:
        mid = (a + b) >> 1
        if doc_starts[mid] <= pos:
            a = mid
        else:
            b = mid
    return a


@njit(cache=True)
def document_counts(table, pointer_bytes, width, doc_starts, ranges, out):
    """Adds to ``out[q]`` the distinct documents among the suffixes at ranks ``ranges[:, q]``."""
    widest = 0
    for q in range(ranges.shape[1]):
        widest = max(widest, ranges[1, q] - ranges[0, q])
    seen = np.zeros(doc_starts.shape[0], dtype=np.uint8)  # one flag per document, cleared after each query
    marked = np.empty(min(widest, doc_starts.shape[0]), dtype=np.int64)
    for q in range(ranges.shape[1]):
        distinct = 0
        for r in range(ranges[0, q], ranges[1, q]):
            d = _document_of(doc_starts, _position(table, pointer_bytes, width, r))
            if seen[d] == 0:
                seen[d] = 1
                marked[distinct] = d
                distinct += 1
        for i in range(distinct):
            seen[marked[i]] = 0
        out[q] += distinct


@njit(cache=True)
def next_token_counts(tokens, table, pointer_bytes, width, lo, hi, depth, separator):
    """Exact next-token distribution of the suffixes at ranks [lo, hi), which share a ``depth``-token prefix.

    Within the range the suffixes are sorted by their next token, so each distinct next token is one
    contiguous run, found by a galloping search: O(distinct tokens x log(range)), never a scan.
    Returns (token ids, counts, ends): ``ends`` counts suffixes whose document ends after the prefix.
    """
    n = tokens.shape[0]
    ids = np.empty(min(hi - lo, 1 << 16), dtype=np.int64)
    counts = np.empty(ids.shape[0], dtype=np.int64)
    found = 0
    ends = 0
    r = lo
    while r < hi:
        pos = _position(table, pointer_bytes, width, r) + depth
        if pos >= n or tokens[pos] == separator:
            token_key = np.int64(-1) if pos >= n else _key(tokens[pos], width)
        else:
            token_key = _key(tokens[pos], width)
        # gallop then bisect for the end of this run
        step = 1
        last = r  # last rank known inside the run
        while True:
            probe = last + step
            if probe >= hi:
                break
            ppos = _position(table, pointer_bytes, width, probe) + depth
            pkey = np.int64(-1) if ppos >= n else _key(tokens[ppos], width)
            if pkey != token_key:
                break
            last = probe
            step <<= 1
        a, b = last + 1, min(last + step, hi)  # run ends in [a, b]
        while a < b:
            mid = (a + b) >> 1
            mpos = _position(table, pointer_bytes, width, mid) + depth
            mkey = np.int64(-1) if mpos >= n else _key(tokens[mpos], width)
            if mkey == token_key:
                a = mid + 1
            else:
                b = mid
        run = a - r
        if pos >= n or tokens[pos] == separator:
            ends += run
        else:
            if found == ids.shape[0]:
                grown_ids = np.empty(found * 2, dtype=np.int64)
                grown_counts = np.empty(found * 2, dtype=np.int64)
                grown_ids[:found] = ids
                grown_counts[:found] = counts
                ids, counts = grown_ids, grown_counts
            ids[found] = np.int64(tokens[pos])
            counts[found] = run
            found += 1
        r = a
    return ids[:found], counts[:found], ends


@njit(cache=True)
def longest_matches(tokens, table, pointer_bytes, width, ids, bounds, out_lengths, out_counts):
    """For each query and each start i in it, the length of the longest prefix of the query from i that
    occurs in the shard and its number of occurrences, written at ``out_*[bounds[q] + i]``.

    Uses that the match ending at start i+1 reaches at least as far as the one at i: each start first
    re-finds the known part in one search, then extends one token at a time inside the current range.
    Total work O(query length x log n) plus the extensions.
    """
    keys = token_keys(ids, width)
    for q in range(bounds.shape[0] - 1):
        longest_matches_from(tokens, table, pointer_bytes, width, keys, bounds[q], bounds[q + 1], bounds[q + 1], 0,
                             out_lengths, out_counts)


@njit(cache=True)
def longest_matches_from(tokens, table, pointer_bytes, width, keys, begin, stop, end, known, out_lengths, out_counts):
    """:func:`longest_matches` for the starts [begin, stop) of the query ``keys[..:end]`` (search keys, see
    :func:`token_keys`), ``known`` tokens from ``begin`` known to occur (0 at the query's start); returns
    that for ``stop``, so a query can be answered a few starts at a time (the engine's deadline checks)."""
    n = tokens.shape[0]
    for i in range(begin, stop):
        if known > 0:
            lo, hi = _range(tokens, table, pointer_bytes, width, keys, i, known, 0, n)
        else:
            lo, hi = 0, n
        length = known
        while i + length < end:
            nlo, nhi = _range_one(tokens, table, pointer_bytes, width, keys[i + length], length, lo, hi)
            if nlo >= nhi:
                break
            lo, hi = nlo, nhi
            length += 1
        out_lengths[i] = length
        out_counts[i] = hi - lo if length > 0 else 0
        known = length - 1 if length > 0 else 0
    return known


@njit(cache=True)
def longest_occurring_suffixes(tokens, table, pointer_bytes, width, ids, bounds, known):
    """Raises ``known[q]`` (a suffix length of query q known to occur somewhere, 0 at first) to the
    longest suffix of the query that occurs in this shard, when that is longer. Bisection: a suffix
    occurs only if every shorter one does, so "occurs here, or is no longer than known" flips once."""
    n = tokens.shape[0]
    keys = token_keys(ids, width)
    for q in range(bounds.shape[0] - 1):
        end = bounds[q + 1]
        too_long = end - bounds[q] + 1  # no suffix is this long
        while too_long - known[q] > 1:
            mid = (known[q] + too_long) >> 1
            lo, hi = _range(tokens, table, pointer_bytes, width, keys, end - mid, mid, 0, n)
            if hi > lo:
                known[q] = mid
            else:
                too_long = mid


@njit(cache=True)
def ngram_counts(tokens, table, pointer_bytes, width, documents, ids, starts, lengths, next_ids, counts):
    """Adds to ``counts[0, q]`` the occurrences of prompt q and to ``counts[1, q]`` those of prompt q
    followed by ``next_ids[q]``, found inside the prompt's rank range. The empty prompt occurs once per
    token: every position but the shard's ``documents`` separators."""
    n = tokens.shape[0]
    keys = token_keys(ids, width)
    next_keys = token_keys(next_ids, width)
    for q in range(starts.shape[0]):
        if lengths[q] > 0:
            lo, hi = _range(tokens, table, pointer_bytes, width, keys, starts[q], lengths[q], 0, n)
            counts[0, q] += hi - lo
        else:
            lo, hi = 0, n
            counts[0, q] += n - documents
        if hi > lo:
            nlo, nhi = _range_one(tokens, table, pointer_bytes, width, next_keys[q], lengths[q], lo, hi)
            counts[1, q] += nhi - nlo


@njit(cache=True)
def _token_at(tokens, table, pointer_bytes, width, rank, depth):
    pos = _position(table, pointer_bytes, width, rank) + depth
    if pos >= tokens.shape[0]:
        return np.int64(-1)
    return _key(tokens[pos], width)


@njit(cache=True)
def _range_one(tokens, table, pointer_bytes, width, key, depth, lo, hi):
    """Within [lo, hi) (suffixes sharing ``depth`` tokens), the sub-range whose next token is ``key``."""
    a, b = lo, hi
    while a < b:
        mid = (a + b) >> 1
        if _token_at(tokens, table, pointer_bytes, width, mid, depth) < key:
            a = mid + 1
        else:
            b = mid
    first = a
    b = hi
    while a < b:
        mid = (a + b) >> 1
        if _token_at(tokens, table, pointer_bytes, width, mid, depth) <= key:
            a = mid + 1
        else:
            b = mid
    return first, a
