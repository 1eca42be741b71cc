"""Batch-invariant linear layers: a row's output does not depend on how many rows share the call.

A BLAS matrix product chooses its kernel and blocking from the shape of the matrices, so the same
input row comes out differently, by float rounding, in a product of 5 rows and one of 300: measured
here up to 1e-4 on one linear layer's output (MKL, 1 or 2 threads), and up to 2 float32 units in
the last place of a Pythia-70M log-likelihood. The other layers of a transformer already give one
sequence the same bits whatever the other rows of its batch (layer norm, activations and attention
work row by row; measured bit for bit with 2 to 100 other rows). So inside ``tiled_linear_layers``,
each ``nn.Linear`` multiplies its rows in tiles of exactly ``rows`` rows (the last one padded with
zeros): every product has the same shape, and each row's output is a function of that row alone.

The price is smaller products: a Pythia-70M-shaped forward pass of 300 rows took 1.27x as long
with 128-row tiles as without on this CPU (2.03 vs 1.63 s for 23-token rows; 0.57 vs 0.45 s for
5-token rows), and 256-row tiles were no faster but pad more. Single-sequence generation is left
as it is (one row padded to a tile would multiply its work).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

TILE_ROWS = 128


@contextlib.contextmanager
def tiled_linear_layers(model: Any, rows: int = TILE_ROWS) -> Iterator[int]:
    """Within the block, every ``nn.Linear`` of ``model`` computes its output ``rows`` rows at a time;
    yields how many layers that is."""
    import torch

    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and "forward" not in vars(m)]
    for layer in layers:
        layer.forward = functools.partial(_tiled_forward, layer, rows)
    try:
        yield len(layers)
    finally:
        for layer in layers:
            del layer.forward


def _tiled_forward(layer: Any, tile: int, x: Any) -> Any:
    import torch

    flat = x.reshape(-1, x.shape[-1])
    n = flat.shape[0]
    padded = -(-n // tile) * tile
    if padded != n:
        flat = torch.cat([flat, flat.new_zeros(padded - n, flat.shape[1])])
    out = flat.new_empty(padded, layer.out_features)
    weight = layer.weight.t()
    for start in range(0, padded, tile):
        if layer.bias is None:
            torch.mm(flat[start:start + tile], weight, out=out[start:start + tile])
        else:
            torch.addmm(layer.bias, flat[start:start + tile], weight, out=out[start:start + tile])
    return out[:n].reshape(*x.shape[:-1], layer.out_features)
