"""The compiled loop of the co-occurrence count (numba, cached on disk after the first call): which
groups have a one-token term in the window around each target occurrence."""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def window_masks(tokens, codes, starts, length, doc_starts, window, out):
    """``out[i]``: the OR of ``codes[token]`` over the ``window`` tokens before and the ``window`` after
    the ``length``-token occurrence at ``starts[i]``, inside its document. ``starts`` ascending;
    ``doc_starts``: the separators' positions (each document starts one token after its own), ascending;
    ``codes``: int64 bit masks of groups per token id (ids past its end have none)."""
    documents = doc_starts.shape[0]
    limit = codes.shape[0]
    d = 0
    for i in range(starts.shape[0]):
        p = starts[i]
        while d + 1 < documents and doc_starts[d + 1] <= p:  # starts ascend: the document pointer only moves on
            d += 1
        first = doc_starts[d] + 1
        end = doc_starts[d + 1] if d + 1 < documents else tokens.shape[0]
        mask = codes[0] & 0
        for q in range(max(first, p - window), p):
            token = tokens[q]
            if token < limit:
                mask |= codes[token]
        for q in range(p + length, min(end, p + length + window)):
            token = tokens[q]
            if token < limit:
                mask |= codes[token]
        out[i] = mask
