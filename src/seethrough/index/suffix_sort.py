"""The suffix array of one shard in infini-gram's ``table`` format, as one ``divsufsort`` of the
token file gives it (same order, byte for byte), but faster.

Two things make it faster:

- Tokens are sorted through an order-preserving byte code (``token_code``): frequent tokens take
  fewer bytes, so fewer bytes are sorted and no offset inside a token needs sorting at all. On the
  Zipf-distributed benchmark corpus ``divsufsort`` takes half the time.
- Large shards are cut into one part per thread, sorted side by side and merged exactly
  (``suffix_merge``, numba). Small shards are sorted whole with numpy only: loading numba and its
  runtime costs about a second, more than a small shard's sort.
"""

from __future__ import annotations

import numpy as np

# Below this many bytes a shard is sorted whole: the parts' merge (and numba's start-up) cost more.
MIN_PARALLEL_BYTES = 64 << 20


def sort_suffixes(data: np.ndarray, width: int, pointer_bytes: int, threads: int, *, encoded: bool = True,
                  min_parallel: int | None = None, min_part: int | None = None,
                  overlap: int | None = None) -> np.ndarray:
    """The packed table (``pointer_bytes`` little-endian bytes per token-aligned suffix) of the token file
    ``data`` (uint8, ``width`` bytes per token), sorted on up to ``threads`` threads.

    ``encoded=False`` (or a shard the code cannot cover) sorts the raw bytes (the reference order the tests compare against);
    ``min_parallel``, ``min_part`` and ``overlap`` (bytes) exist for tests of the parallel path."""
    from .token_code import token_code

    count = data.shape[0] // width
    if count == 0:
        return np.empty(0, dtype=np.uint8)
    tokens = data.view(np.uint16 if width == 2 else np.uint32) if width in (2, 4) else data
    code = token_code(tokens, width) if encoded and width in (2, 4) else None
    min_parallel = MIN_PARALLEL_BYTES if min_parallel is None else min_parallel
    if threads > 1 and data.shape[0] >= min_parallel:
        from .suffix_merge import sort_in_parts

        table = sort_in_parts(data, tokens, width, pointer_bytes, code, threads, min_part=min_part, overlap=overlap)
        if table is not None:
            return table
    return pack_positions(sort_whole(data, tokens, width, code), pointer_bytes)


def sort_whole(data: np.ndarray, tokens: np.ndarray, width: int, code) -> np.ndarray:
    """Byte offsets of the token-aligned suffixes in order (an integer array), from one ``divsufsort`` call."""
    from pydivsufsort import divsufsort

    count = tokens.shape[0]
    if code is None:
        suffixes = divsufsort(data)
        positions = suffixes[suffixes % width == 0]
    else:
        from .token_code import encode_tokens

        text, starts = encode_tokens(code, tokens)
        token_at = np.full(text.shape[0], -1, dtype=np.int32 if count < 2**31 else np.int64)
        token_at[starts] = np.arange(count, dtype=token_at.dtype)
        del starts
        suffixes = divsufsort(text)
        del text
        tokens_in_order = token_at[suffixes]
        del token_at, suffixes
        positions = np.compress(tokens_in_order >= 0, tokens_in_order).astype(np.uint64)
        positions *= np.uint64(width)
    if positions.shape[0] != count:
        raise ValueError(f"suffix sort kept {positions.shape[0]} of {count} positions")
    return positions


def pack_positions(positions: np.ndarray, pointer_bytes: int) -> np.ndarray:
    """``pointer_bytes`` little-endian bytes per position, one after another: infini-gram's ``table``."""
    base = 4 if pointer_bytes <= 4 else 8
    wide = positions.astype(f"<u{base}").view(np.uint8)
    if pointer_bytes == base:
        return wide
    return np.ascontiguousarray(wide.reshape(-1, base)[:, :pointer_bytes]).reshape(-1)
