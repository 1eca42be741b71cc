"""Batched greedy decoding with a KV cache.

Prompts are grouped by length, so a batch needs no padding and its greedy tokens are exactly those
of decoding each prompt alone (no pad tokens, no attention-mask or position-id differences).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .loading import forward_arguments


def batches_by_length(rows: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Indexes of ``rows`` in groups of equal length, at most ``batch_size`` each (first-seen length first)."""
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_length.setdefault(len(row), []).append(i)
    for indexes in by_length.values():
        for start in range(0, len(indexes), batch_size):
            yield indexes[start:start + batch_size]


def model_device(model: Any) -> Any:
    """Where the model's weights are (the CPU for a module without parameters)."""
    import torch

    weight = next(model.parameters(), None)
    return weight.device if weight is not None else torch.device("cpu")


def greedy_continuations(model: Any, prompts: list[list[int]], new_tokens: int, batch_size: int = 256) -> list[list[int]]:
    """For each prompt, the ``new_tokens`` tokens greedy decoding produces (no early stop)."""
    import torch

    out: list[list[int]] = [[] for _ in prompts]
    device = model_device(model)
    with torch.inference_mode():
        for chosen in batches_by_length(prompts, batch_size):
            ids = torch.tensor([prompts[i] for i in chosen], dtype=torch.long, device=device)
            for i, row in zip(chosen, _greedy(model, ids, new_tokens).tolist()):
                out[i] = row
    return out


def _greedy(model: Any, ids: Any, new_tokens: int) -> Any:
    import torch

    result = torch.empty((ids.shape[0], new_tokens), dtype=torch.long, device=ids.device)
    name, keep = forward_arguments(model)  # only the last position's logits are ever read
    step_input, cache = ids, None
    for k in range(new_tokens):
        output = model(input_ids=step_input, use_cache=True, **{name: cache}, **keep)
        cache = getattr(output, name)
        step_input = output.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        result[:, k] = step_input[:, 0]
    return result.cpu()


def next_token_argmax(model: Any, prompts: list[list[int]], batch_size: int = 256) -> np.ndarray:
    """The single most likely next token after each prompt."""
    return np.array([row[0] for row in greedy_continuations(model, prompts, 1, batch_size)], dtype=np.int64)
