"""A large shard's suffix array sorted on several cores, exactly as one ``divsufsort`` call would.

libdivsufsort is single-threaded and the sort is nearly all of an index build (92% at 50M tokens).
So the token file is cut into one part per thread; each part is sorted by its own ``divsufsort``
call (ctypes releases the GIL, so threads run them side by side; parts are sorted in
``token_code``'s encoding, which has the same order) and the sorted parts are merged
by comparing suffixes on the whole file. Each thread merges one slice of the output, cut at
splitters found by binary search, and writes infini-gram's packed ``table`` bytes directly.

Why the result is exact. A part's suffixes are compared inside that part only, i.e. cut at its
end. The last part is the file's tail, so its order is the true one. Every other part is sorted
with ``overlap`` bytes of the next part appended, and two of its suffixes can be misordered only
if the one that ends first is a prefix of the other, i.e. if some suffix's remaining text (at
least ``overlap`` bytes) occurs again in the extended part. If any suffix is affected then the
part's last token's suffix is too (shift both occurrences right by whole tokens), so checking that
one suffix against its successor in the part's suffix array decides it (a successor that starts
inside a code can only make the check fail, never pass wrongly). Parts that fail the check (a
repeat longer than ``overlap`` across a cut) make the whole shard be sorted in one piece.
The merge compares the first 8 bytes of two suffixes as one integer (gathered once per suffix, in
parallel) and reads the file only when those are equal.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

# Small parts cost more in thread start-up and merging than they save in sorting.
MIN_PART_BYTES = 1 << 20
OVERLAP_BYTES = 1 << 20


def sort_in_parts(data: np.ndarray, tokens: np.ndarray, width: int, pointer_bytes: int, code, threads: int, *,
                  min_part: int | None = None, overlap: int | None = None) -> np.ndarray | None:
    """The packed table of ``data``, sorted in parts on ``threads`` threads and merged; None when a
    repeat longer than the overlap crosses a cut (then sort the shard whole)."""
    from pydivsufsort import divsufsort

    from .token_code import encode_tokens

    min_part = MIN_PART_BYTES if min_part is None else min_part
    overlap = OVERLAP_BYTES if overlap is None else overlap
    count = tokens.shape[0]
    parts = max(1, min(threads, data.shape[0] // max(1, min_part)))
    bounds = np.array([count * k // parts for k in range(parts + 1)], dtype=np.int64)  # part k: tokens [bounds[k], bounds[k+1])
    positions = np.empty(count, dtype=np.int64)
    keys = np.empty(count, dtype=np.uint64)

    def sort_part(k: int) -> bool:
        a, b = int(bounds[k]), int(bounds[k + 1])
        stop = count if k == parts - 1 else min(count, b + overlap // width)
        mine = positions[a:b]
        if code is not None:
            text, starts = encode_tokens(code, tokens[a:stop])
            bits, before = _code_start_bits(starts, text.shape[0])
            last = int(starts[b - 1 - a])
            del starts
        else:
            text, last = data[a * width:stop * width], (b - 1 - a) * width
        suffixes = divsufsort(text)
        if k < parts - 1 and not _last_suffix_is_unique(text, suffixes, last):
            return False
        if code is not None:
            kept = _keep_code_starts(suffixes, bits, before, a, b - a, width, mine)
        else:
            kept = _keep_part(suffixes, a * width, (b - a) * width, width, mine)
        del suffixes, text
        if kept != mine.shape[0]:
            raise ValueError(f"suffix sort kept {kept} of {mine.shape[0]} positions")
        _gather_keys(data, tokens, width, mine, keys[a:b])
        return True

    with ThreadPoolExecutor(max_workers=parts) as pool:
        if not all(list(pool.map(sort_part, range(parts)))):
            return None
        slices = _output_slices(data, positions, bounds, threads)
        out = np.empty(count * pointer_bytes, dtype=np.uint8)

        def merge_slice(j: int) -> None:
            _merge(data, positions, keys, slices[j], slices[j + 1], out, int(slices[j].sum() - bounds[:-1].sum()),
                   pointer_bytes)

        list(pool.map(merge_slice, range(len(slices) - 1)))
    return out


def _output_slices(data: np.ndarray, positions: np.ndarray, bounds: np.ndarray, threads: int) -> list[np.ndarray]:
    """Per output slice, the index in every part where it begins: slice j starts at the suffix at
    quantile j/threads of part 0, and in each other part at the first suffix greater than it."""
    parts = bounds.shape[0] - 1
    slices = [bounds[:-1].copy()]
    first = bounds[1] - bounds[0]
    for j in range(1, threads):
        pivot = positions[bounds[0] + first * j // threads]
        starts = np.empty(parts, dtype=np.int64)
        for k in range(parts):
            starts[k] = bounds[0] + first * j // threads if k == 0 else \
                _count_below(data, positions, bounds[k], bounds[k + 1], pivot)
        slices.append(starts)
    slices.append(bounds[1:].copy())
    return slices


@njit(cache=True, nogil=True, inline="always")
def _less(data, a, b, skip):
    """Whether the suffix at byte ``a`` sorts before the one at ``b`` (a != b), given that their
    first ``skip`` bytes are equal: bytes compared as unsigned, a suffix that ends first is smaller."""
    n = data.shape[0]
    i, j = a + skip, b + skip
    while i < n and j < n:
        if data[i] != data[j]:
            return data[i] < data[j]
        i += 1
        j += 1
    return i == n


@njit(cache=True, nogil=True)
def _count_below(data, positions, lo, hi, pivot):
    """First index in ``positions[lo:hi]`` (sorted) whose suffix is not before ``pivot``'s."""
    a, b = lo, hi
    while a < b:
        mid = (a + b) >> 1
        if _less(data, positions[mid], pivot, 0):
            a = mid + 1
        else:
            b = mid
    return a


@njit(cache=True, nogil=True)
def _last_suffix_is_unique(part, suffixes, last):
    """False when the part's text from ``last`` on also starts another suffix of the part (then
    cutting the part there could misorder suffixes; see the module docstring)."""
    n = part.shape[0]
    rank = -1
    for i in range(suffixes.shape[0]):
        if suffixes[i] == last:
            rank = i
            break
    if rank == -1 or rank + 1 == suffixes.shape[0]:
        return True
    other = np.int64(suffixes[rank + 1])
    length = n - last
    if n - other < length:
        return True
    for k in range(length):
        if part[last + k] != part[other + k]:
            return True
    return False


@njit(cache=True, nogil=True)
def _keep_part(suffixes, start, limit, width, positions):
    """The part's token-aligned suffixes that begin before ``limit``, as byte offsets into the file."""
    j = 0
    for i in range(suffixes.shape[0]):
        v = np.int64(suffixes[i])
        if v % width == 0 and v < limit:
            positions[j] = v + start
            j += 1
    return j


@njit(cache=True, nogil=True)
def _gather_keys(data, tokens, width, positions, keys):
    """The first 8 bytes of each suffix as one big-endian integer (zero past the end of the file).

    A separate loop with one cache miss per iteration and nothing else: the processor keeps many
    of these random reads in flight, which it cannot inside the filtering loop."""
    n = data.shape[0]
    for j in range(positions.shape[0]):
        p = positions[j]
        if p + 8 <= n and width == 2:
            t = p >> 1
            key = np.uint64(0)
            for k in range(4):
                v = np.uint64(tokens[t + k])
                key = (key << np.uint64(16)) | ((v & np.uint64(0xFF)) << np.uint64(8)) | (v >> np.uint64(8))
        elif p + 8 <= n and width == 4:
            t = p >> 2
            key = np.uint64(0)
            for k in range(2):
                v = np.uint64(tokens[t + k])
                swapped = ((v & np.uint64(0xFF)) << np.uint64(24)) | ((v & np.uint64(0xFF00)) << np.uint64(8)) \
                    | ((v >> np.uint64(8)) & np.uint64(0xFF00)) | (v >> np.uint64(24))
                key = (key << np.uint64(32)) | swapped
        else:
            key = np.uint64(0)
            for b in range(8):
                byte = np.uint64(data[p + b]) if p + b < n else np.uint64(0)
                key = (key << np.uint64(8)) | byte
        keys[j] = key


@njit(cache=True, nogil=True)
def _code_start_bits(starts, size):
    """A bitmap of the encoded offsets where a token's code starts (uint64 words), and the number
    of code starts before each word: together a rank structure small enough to stay in cache."""
    words = (size + 63) >> 6
    bits = np.zeros(words, dtype=np.uint64)
    for i in range(starts.shape[0]):
        v = starts[i]
        bits[v >> 6] |= np.uint64(1) << np.uint64(v & 63)
    before = np.empty(words, dtype=np.int64)
    total = 0
    for w in range(words):
        before[w] = total
        total += _popcount(bits[w])
    return bits, before


@njit(cache=True, nogil=True, inline="always")
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True)
def _keep_code_starts(suffixes, bits, before, first_token, limit, width, positions):
    """The encoded suffixes that start a code for one of the part's first ``limit`` tokens, as byte
    offsets of those tokens in the token file, in order (a sequential pass: the rank structure
    is in cache)."""
    j = 0
    for i in range(suffixes.shape[0]):
        v = np.int64(suffixes[i])
        word = bits[v >> 6]
        bit = np.uint64(1) << np.uint64(v & 63)
        if word & bit:
            token = before[v >> 6] + _popcount(word & (bit - np.uint64(1)))
            if token < limit:
                positions[j] = (first_token + token) * width
                j += 1
    return j


@njit(cache=True, nogil=True)
def _merge(data, positions, keys, begin, end, out, rank, pointer_bytes):
    """Merge ``positions[begin[k]:end[k]]`` of every part into ``out`` from ``rank`` on, packed."""
    parts = begin.shape[0]
    n = data.shape[0]
    head = begin.copy()
    while True:
        best = -1
        for k in range(parts):
            if head[k] < end[k]:
                if best == -1:
                    best = k
                else:
                    a, b = keys[head[k]], keys[head[best]]
                    if a < b:
                        best = k
                    elif a == b:
                        pa, pb = positions[head[k]], positions[head[best]]
                        # equal keys: the first 8 bytes agree unless a suffix ends inside them
                        skip = 8 if max(pa, pb) + 8 <= n else 0
                        if _less(data, pa, pb, skip):
                            best = k
        if best == -1:
            return
        v = positions[head[best]]
        base = rank * pointer_bytes
        for b in range(pointer_bytes):
            out[base + b] = (v >> (8 * b)) & 0xFF
        head[best] += 1
        rank += 1
