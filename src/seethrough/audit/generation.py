"""Loading a causal LM from a folder, and batched greedy decoding with a KV cache.

Prompts are grouped by length, so a batch needs no padding and its greedy tokens are exactly those
of decoding each prompt alone (no pad tokens, no attention-mask or position-id differences).
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def load_model(folder: str | Path, threads: int | None = None) -> Any:
    """An HF causal LM from a local folder (a seethrough checkpoint or any saved model), in eval mode.

    ``threads``: torch's CPU threads; by default one per core that other processes leave free."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from .._threads import default_threads

    torch.set_num_threads(threads or default_threads())
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return model.eval()


def greedy_continuations(model: Any, prompts: list[list[int]], new_tokens: int, batch_size: int = 256) -> list[list[int]]:
    """For each prompt, the ``new_tokens`` tokens greedy decoding produces (no early stop)."""
    import torch

    out: list[list[int]] = [[] for _ in prompts]
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_length[len(p)].append(i)
    with torch.inference_mode():
        for indexes in by_length.values():
            for start in range(0, len(indexes), batch_size):
                chosen = indexes[start:start + batch_size]
                ids = torch.tensor([prompts[i] for i in chosen], dtype=torch.long)
                generated = _greedy(model, ids, new_tokens)
                for i, row in zip(chosen, generated.tolist()):
                    out[i] = row
    return out


def forward_arguments(model: Any) -> tuple[str, dict[str, int]]:
    """(the name of the KV-cache argument, extra arguments that keep only the last position's logits).

    transformers 5 calls the cache ``cache``, earlier versions ``past_key_values``; ``logits_to_keep``
    exists from 4.45 and spares the vocabulary projection of every position but the last."""
    parameters = inspect.signature(model.forward).parameters
    cache = "cache" if "cache" in parameters else "past_key_values"
    return cache, ({"logits_to_keep": 1} if "logits_to_keep" in parameters else {})


def _greedy(model: Any, ids: Any, new_tokens: int) -> Any:
    import torch

    result = torch.empty((ids.shape[0], new_tokens), dtype=torch.long)
    name, keep = forward_arguments(model)  # only the last position's logits are ever read
    step_input, cache = ids, None
    for k in range(new_tokens):
        output = model(input_ids=step_input, use_cache=True, **{name: cache}, **keep)
        cache = getattr(output, name)
        step_input = output.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        result[:, k] = step_input[:, 0]
    return result


def next_token_argmax(model: Any, prompts: list[list[int]], batch_size: int = 256) -> np.ndarray:
    """The single most likely next token after each prompt."""
    return np.array([row[0] for row in greedy_continuations(model, prompts, 1, batch_size)], dtype=np.int64)
