"""Compiled inner loops of the suffix-array engine (numba, cached on disk after the first call).

Conventions shared by every kernel:

- ``tokens``: one shard's token array (uint8/16/32, native), separators included.
- ``table`` / ``ratio``: the suffix array as infini-gram stores it, ``ratio`` little-endian bytes
  per entry, each entry a *byte* offset into the token file; ``width`` = bytes per token.
- Suffixes are sorted by the byte order of the little-endian token file (infini-gram's order,
  which is what ``divsufsort`` produces). Comparing tokens in that order is comparing their
  byte-swapped values, so queries arrive as ``keys`` (byte-swapped ids) and ``_key`` swaps tokens.
- A suffix is compared with a query on the query's length only; a suffix that ends first is smaller.
  The separator (all bits set) is the largest key, so no match ever crosses a document boundary.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _key(value, width):
    v = np.int64(value)
    if width == 2:
        return ((v & 0xFF) << 8) | (v >> 8)
    if width == 4:
        return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24)
    return v


@njit(cache=True, inline="always")
def _position(table, ratio, width, rank):
    """Token index of the suffix at ``rank``."""
    base = rank * ratio
    value = np.int64(0)
    for b in range(ratio - 1, -1, -1):
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
def _range(tokens, table, ratio, width, keys, start, length, lo, hi):
    """SA rank range [first, last) of suffixes that start with the query, searched within [lo, hi).

    One search narrows [a, b) until it lands on a match; only then does it split into the lower
    and upper bound searches, each over what is left. A query that does not occur costs one
    search instead of two, and the two bounds share the path down to the first match."""
    a, b = lo, hi
    while a < b:
        mid = (a + b) >> 1
        c = _compare(tokens, width, _position(table, ratio, width, mid), keys, start, length)
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
        if _compare(tokens, width, _position(table, ratio, width, m), keys, start, length) < 0:
            a = m + 1
        else:
            b = m
    first = a
    a, b = mid + 1, top  # first rank whose suffix is > query: in [mid + 1, top]
    while a < b:
        m = (a + b) >> 1
        if _compare(tokens, width, _position(table, ratio, width, m), keys, start, length) <= 0:
            a = m + 1
        else:
            b = m
    return first, a


@njit(cache=True)
def find_ranges(tokens, table, ratio, width, keys, starts, lengths, out_lo, out_hi):
    n = tokens.shape[0]
    for q in range(starts.shape[0]):
        out_lo[q], out_hi[q] = _range(tokens, table, ratio, width, keys, starts[q], lengths[q], 0, n)


@njit(cache=True, parallel=True)
def find_ranges_parallel(tokens, table, ratio, width, keys, starts, lengths, out_lo, out_hi):
    n = tokens.shape[0]
    for q in prange(starts.shape[0]):
        out_lo[q], out_hi[q] = _range(tokens, table, ratio, width, keys, starts[q], lengths[q], 0, n)


@njit(cache=True)
def positions(table, ratio, width, lo, hi):
    """Token indices of the suffixes at ranks [lo, hi)."""
    out = np.empty(hi - lo, dtype=np.int64)
    for r in range(lo, hi):
        out[r - lo] = _position(table, ratio, width, r)
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
def count_documents(table, ratio, width, doc_starts, lo, hi, seen):
    """Distinct documents among the suffixes at ranks [lo, hi); ``seen`` is a zeroed scratch array
    (one byte per document) and is zeroed again on return."""
    distinct = 0
    marked = np.empty(min(hi - lo, doc_starts.shape[0]), dtype=np.int64)
    for r in range(lo, hi):
        d = _document_of(doc_starts, _position(table, ratio, width, r))
        if seen[d] == 0:
            seen[d] = 1
            marked[distinct] = d
            distinct += 1
    for i in range(distinct):
        seen[marked[i]] = 0
    return distinct


@njit(cache=True)
def next_token_counts(tokens, table, ratio, width, lo, hi, depth, separator):
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
        pos = _position(table, ratio, width, r) + depth
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
            ppos = _position(table, ratio, width, probe) + depth
            pkey = np.int64(-1) if ppos >= n else _key(tokens[ppos], width)
            if pkey != token_key:
                break
            last = probe
            step <<= 1
        a, b = last + 1, min(last + step, hi)  # run ends in [a, b]
        while a < b:
            mid = (a + b) >> 1
            mpos = _position(table, ratio, width, mid) + depth
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
def longest_matches(tokens, table, ratio, width, keys):
    """For each start i, the length of the longest prefix of ``keys[i:]`` that occurs in the shard,
    and its number of occurrences.

    Uses that the match ending at start i+1 reaches at least as far as the one at i: each start first
    re-finds the known part in one search, then extends one token at a time inside the current range.
    Total work O(len(keys) x log n) plus the extensions.
    """
    m = keys.shape[0]
    n = tokens.shape[0]
    lengths = np.zeros(m, dtype=np.int64)
    counts = np.zeros(m, dtype=np.int64)
    known = 0
    for i in range(m):
        if known > 0:
            lo, hi = _range(tokens, table, ratio, width, keys, i, known, 0, n)
        else:
            lo, hi = 0, n
        length = known
        while i + length < m:
            nlo, nhi = _range_one(tokens, table, ratio, width, keys[i + length], length, lo, hi)
            if nlo >= nhi:
                break
            lo, hi = nlo, nhi
            length += 1
        lengths[i] = length
        counts[i] = hi - lo if length > 0 else 0
        known = length - 1 if length > 0 else 0
    return lengths, counts


@njit(cache=True)
def _token_at(tokens, table, ratio, width, rank, depth):
    pos = _position(table, ratio, width, rank) + depth
    if pos >= tokens.shape[0]:
        return np.int64(-1)
    return _key(tokens[pos], width)


@njit(cache=True)
def _range_one(tokens, table, ratio, width, key, depth, lo, hi):
    """Within [lo, hi) (suffixes sharing ``depth`` tokens), the sub-range whose next token is ``key``."""
    a, b = lo, hi
    while a < b:
        mid = (a + b) >> 1
        if _token_at(tokens, table, ratio, width, mid, depth) < key:
            a = mid + 1
        else:
            b = mid
    first = a
    b = hi
    while a < b:
        mid = (a + b) >> 1
        if _token_at(tokens, table, ratio, width, mid, depth) <= key:
            a = mid + 1
        else:
            b = mid
    return first, a


@njit(cache=True)
def count_ids(tokens, table, ratio, width, ids):
    """Occurrences of one query given as token ids (the single-query fast path: one compiled call)."""
    keys = np.empty(ids.shape[0], dtype=np.int64)
    for k in range(ids.shape[0]):
        keys[k] = _key(ids[k], width)
    lo, hi = _range(tokens, table, ratio, width, keys, 0, keys.shape[0], 0, tokens.shape[0])
    return hi - lo
