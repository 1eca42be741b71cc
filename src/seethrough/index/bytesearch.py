"""Suffix-array search in plain Python, for one-off queries that should not wait for numba.

Loading the compiled kernels costs about a second per process (numba's import and its on-disk
cache); a command that answers one count needs only two binary searches of ~log2(N) steps each.
Here the comparison is done on bytes, which *is* the index's order: suffixes are sorted by the
bytes of the little-endian token file, and Python compares ``bytes`` the same way (a suffix that
ends first sorts first). The compiled kernels remain the path for batches.
"""

from __future__ import annotations

import numpy as np


def rank_range(token_bytes: np.ndarray, table: np.ndarray, pointer_bytes: int, query: bytes) -> tuple[int, int]:
    """[first, last) ranks of the suffixes that start with ``query`` (little-endian token bytes)."""
    size = len(query)
    limit = len(table) // pointer_bytes

    def suffix(rank: int) -> bytes:
        offset = int.from_bytes(table[rank * pointer_bytes:(rank + 1) * pointer_bytes].tobytes(), "little")
        return token_bytes[offset:offset + size].tobytes()

    lo, hi = 0, limit
    while lo < hi:  # first suffix >= query
        mid = (lo + hi) // 2
        if suffix(mid) < query:
            lo = mid + 1
        else:
            hi = mid
    first, hi = lo, limit
    while lo < hi:  # first suffix that does not start with query
        mid = (lo + hi) // 2
        if suffix(mid) <= query:
            lo = mid + 1
        else:
            hi = mid
    return first, lo
