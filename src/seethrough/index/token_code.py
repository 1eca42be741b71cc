"""An order-preserving byte code for tokens, so that a shard is suffix-sorted on fewer bytes.

infini-gram's order is the byte order of the little-endian token file, i.e. tokens compared by
their byte-swapped value (their *key*). Sorting the file itself sorts 2 (or 4) bytes per token,
and every offset inside a token is sorted only to be thrown away. This code gives frequent tokens
fewer bytes and keeps the keys' order:

- byte values are handed out in key order, each to one *group* of key-consecutive tokens that
  occur in the shard: a group of one token is that token's whole code (1 byte); a group of up to
  256 tokens is followed by a second byte, a group of up to 65,536 by two more;
- so the code is prefix-free (the first byte says the length) and alphabetic (comparing codes
  byte by byte compares keys), and comparing two encoded token sequences byte by byte, a
  sequence that ends first being smaller, compares the token sequences in infini-gram's order.

The suffixes of the encoded text that start on a code boundary are therefore in exactly the order
of the token-aligned suffixes of the file. Up to 65,536 distinct tokens, every token gets 1 or 2
bytes: single-byte tokens are chosen greedily by frequency while the 256 byte values last. Beyond
that (large vocabularies in uint32 shards), blocks of 256 key-consecutive tokens get 2 bytes,
again the most frequent first, and the rest 3. On the Zipf-distributed benchmark corpus (8,192 word
types) 120 single-byte tokens cover 65% of the text: 1.35 bytes per token, and ``divsufsort``
takes half the time on it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

_VALUES = 256
# Token ids above this are not coded (lookup tables are indexed by id); the shard is sorted raw.
MAX_CODED_ID = 1 << 24


@dataclass(frozen=True)
class TokenCode:
    """Per token id (the separator folded onto ``clip``): code length (0 = absent) and its bytes."""
    length: np.ndarray  # uint8
    first: np.ndarray   # uint8
    second: np.ndarray  # uint8
    third: np.ndarray   # uint8
    clip: int           # ids above it are the separator, looked up at ``clip``
    singles: int


def token_code(tokens: np.ndarray, width: int) -> TokenCode | None:
    """The code for a shard's tokens (uint16 or uint32), or None when it cannot be built (ids over
    ``MAX_CODED_ID``, or more distinct tokens than three bytes can tell apart)."""
    separator = (1 << (8 * width)) - 1
    if width == 2:
        counts, clip = np.bincount(tokens, minlength=1 << 16), separator
    else:
        is_separator = tokens == separator
        others = tokens[~is_separator]
        top = int(others.max()) if others.shape[0] else 0
        if top >= MAX_CODED_ID:
            return None
        clip = top + 1  # the separator's slot: its key is the largest, as the id's is
        counts = np.bincount(others, minlength=clip + 1)
        counts[clip] = int(is_separator.sum())
    ids = np.arange(counts.shape[0], dtype=np.int64)
    keys = _byteswap(np.where(ids == clip, separator, ids), width)
    present = np.flatnonzero(counts)
    by_key = present[np.argsort(keys[present], kind="stable")]
    frequency = counts[by_key]
    if by_key.shape[0] <= _VALUES * _VALUES:
        groups = _singles_and_pairs(frequency)
    elif by_key.shape[0] <= _VALUES * _VALUES * _VALUES:
        groups = _pairs_and_triples(frequency)
    else:
        return None
    length = np.zeros(counts.shape[0], dtype=np.uint8)
    first, second, third = (np.zeros(counts.shape[0], dtype=np.uint8) for _ in range(3))
    if len(groups) > _VALUES:
        raise RuntimeError(f"token code used {len(groups)} byte values, over {_VALUES} (a bug in token_code)")
    for value, (start, stop, size) in enumerate(groups):
        members = by_key[start:stop]
        place = np.arange(stop - start)
        length[members], first[members] = size, value
        if size == 2:
            second[members] = place
        elif size == 3:
            second[members], third[members] = place >> 8, place & 0xFF
    singles = sum(1 for _, _, size in groups if size == 1)
    return TokenCode(length, first, second, third, clip, singles)


def _byteswap(values: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros_like(values)
    for b in range(width):
        out |= ((values >> (8 * b)) & 0xFF) << (8 * (width - 1 - b))
    return out


def _runs(start: int, stop: int, per_group: int, size: int) -> list[tuple[int, int, int]]:
    return [(s, min(stop, s + per_group), size) for s in range(start, stop, per_group)]


def _own_values(weight: np.ndarray) -> list[int]:
    """Places (in key order) that get a byte value of their own, heaviest first while the 256
    values last, where every run of places between them takes one value per 256 places."""
    count = weight.shape[0]

    def groups(run: int) -> int:
        return -(-run // _VALUES)

    chosen: list[int] = []
    used = groups(count)
    for place in np.argsort(-weight, kind="stable").tolist():
        if used >= _VALUES:
            break
        i = bisect.bisect_left(chosen, place)
        lo = chosen[i - 1] + 1 if i else 0
        hi = chosen[i] if i < len(chosen) else count
        cost = used - groups(hi - lo) + groups(place - lo) + groups(hi - place - 1) + 1
        if cost <= _VALUES:
            chosen.insert(i, place)
            used = cost
    return chosen


def _singles_and_pairs(frequency: np.ndarray) -> list[tuple[int, int, int]]:
    """Groups (start, stop, code length) in key order: singles greedily by frequency, the runs
    between them in groups of 256."""
    count = frequency.shape[0]
    out: list[tuple[int, int, int]] = []
    place = 0
    for single in _own_values(frequency) + [count]:
        out += _runs(place, single, _VALUES, 2)
        if single < count:
            out.append((single, single + 1, 1))
        place = single + 1
    return out


def _pairs_and_triples(frequency: np.ndarray) -> list[tuple[int, int, int]]:
    """Groups in key order for more than 65,536 tokens: blocks of 256 tokens take 2 bytes, the
    most frequent blocks first while byte values last; the runs of blocks between them, 3."""
    count = frequency.shape[0]
    blocks = -(-count // _VALUES)
    out: list[tuple[int, int, int]] = []
    block = 0
    for pair in _own_values(np.add.reduceat(frequency, np.arange(0, count, _VALUES))) + [blocks]:
        out += _runs(block * _VALUES, min(count, pair * _VALUES), _VALUES * _VALUES, 3)
        if pair < blocks:
            out.append((pair * _VALUES, min(count, (pair + 1) * _VALUES), 2))
        block = pair + 1
    return out


def encode_tokens(code: TokenCode, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``tokens`` encoded, and the encoded offset where each token's code starts."""
    if code.clip < np.iinfo(tokens.dtype).max:
        tokens = np.minimum(tokens, code.clip)
    length = code.length[tokens]
    starts = np.cumsum(length, dtype=np.int64)
    size = int(starts[-1]) if starts.shape[0] else 0
    starts -= length
    encoded = np.empty(size, dtype=np.uint8)
    encoded[starts] = code.first[tokens]
    longer = np.flatnonzero(length >= 2)
    encoded[starts[longer] + 1] = code.second[tokens[longer]]
    longest = np.flatnonzero(length == 3)
    encoded[starts[longest] + 2] = code.third[tokens[longest]]
    return encoded, starts
