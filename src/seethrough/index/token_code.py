"""An order-preserving byte code for 16-bit tokens, so that a shard is suffix-sorted on fewer bytes.

infini-gram's order is the byte order of the little-endian token file, i.e. tokens compared by
their byte-swapped value (their *key*). Sorting the file itself sorts two bytes per token, and
every odd byte offset is sorted only to be thrown away. This code gives the most frequent tokens
one byte and all others two, and keeps the keys' order:

- byte values are handed out in key order: a *single* token takes one value; the other tokens,
  in runs between singles, take one value (the prefix) per 256 of them, followed by a second byte
  (the token's place in its group);
- so the code is prefix-free (the first byte says the length) and alphabetic (comparing codes
  byte by byte compares keys), and comparing two encoded token sequences byte by byte, a
  sequence that ends first being smaller, compares the token sequences in infini-gram's order.

The suffixes of the encoded text that start on a code boundary are therefore in exactly the order
of the token-aligned suffixes of the file. Singles are chosen greedily by frequency while the 256
byte values last. On the Zipf-distributed benchmark corpus (8,192 word types) 120 singles cover
65% of the tokens: 1.35 bytes per token, and ``divsufsort`` takes half the time on it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

_VALUES = 256


@dataclass(frozen=True)
class TokenCode:
    length: np.ndarray  # uint8[65536]: 0 (token absent), 1 or 2 bytes
    first: np.ndarray   # uint8[65536]
    second: np.ndarray  # uint8[65536]
    singles: int


def token_code(counts: np.ndarray) -> TokenCode:
    """The code for a shard whose token counts (indexed by token id, 65,536 entries) are ``counts``."""
    ids = np.arange(counts.shape[0])
    keys = ((ids & 0xFF) << 8) | (ids >> 8)
    present = np.flatnonzero(counts)
    by_key = present[np.argsort(keys[present], kind="stable")]
    frequency = counts[by_key]

    def groups(run: int) -> int:
        return -(-run // _VALUES)

    singles: list[int] = []  # places in key order
    used = groups(by_key.shape[0])
    for place in np.argsort(-frequency, kind="stable").tolist():
        if used >= _VALUES:
            break
        i = bisect.bisect_left(singles, place)
        lo = singles[i - 1] + 1 if i else 0
        hi = singles[i] if i < len(singles) else by_key.shape[0]
        cost = used - groups(hi - lo) + groups(place - lo) + groups(hi - place - 1) + 1
        if cost <= _VALUES:
            singles.insert(i, place)
            used = cost
    length = np.zeros(counts.shape[0], dtype=np.uint8)
    first = np.zeros(counts.shape[0], dtype=np.uint8)
    second = np.zeros(counts.shape[0], dtype=np.uint8)
    value, place = 0, 0
    bounds = singles + [by_key.shape[0]]
    for single in bounds:
        for group_start in range(place, single, _VALUES):  # the run before this single
            members = by_key[group_start:min(single, group_start + _VALUES)]
            length[members], first[members] = 2, value
            second[members] = np.arange(members.shape[0])
            value += 1
        if single < by_key.shape[0]:
            length[by_key[single]], first[by_key[single]] = 1, value
            value += 1
        place = single + 1
    if value > _VALUES:
        raise RuntimeError(f"token code used {value} byte values, over {_VALUES} (a bug in token_code)")
    return TokenCode(length, first, second, len(singles))


def encode_tokens(code: TokenCode, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``tokens`` (uint16) encoded, and the encoded offset where each token's code starts."""
    length = code.length[tokens]
    starts = np.cumsum(length, dtype=np.int64)
    size = int(starts[-1]) if starts.shape[0] else 0
    starts -= length
    encoded = np.empty(size, dtype=np.uint8)
    encoded[starts] = code.first[tokens]
    two = np.flatnonzero(length == 2)
    encoded[starts[two] + 1] = code.second[tokens[two]]
    return encoded, starts
