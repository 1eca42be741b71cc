"""What erasing and steering share: the checkpoint and its tokenizer, layer lists, the cost on corpus
text, and intervals of a mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import ConfigError, ModelError


def resolve_checkpoint(target: Any, checkpoint: str | None = None, corpus: Any = None) -> Any:
    """One checkpoint of ``target`` (a run (its ``checkpoint`` step, default the last), a model folder or a
    ``Checkpoint``); ``corpus``, when given, is checked to be the model's own."""
    from ...model import Checkpoint, ModelTarget, resolve_target
    from ...model.target import check_tokenizer

    if isinstance(target, Checkpoint):
        if corpus is not None:
            check_tokenizer(target.path, getattr(corpus, "corpus", corpus))
        return target
    resolved = target if isinstance(target, ModelTarget) else resolve_target(target, checkpoint)
    if len(resolved.checkpoints) != 1:
        raise ModelError(f"--checkpoint {checkpoint}: one checkpoint at a time; give one step")
    if corpus is not None:
        resolved.check_corpus(corpus)
    return resolved.last


def load_tokenizer_of(checkpoint: Any) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(checkpoint.path))
    except (OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"cannot load the tokenizer of {checkpoint.path}: {first}") from None


def block_layers(spec: str | Sequence[int], n: int) -> list[int]:
    """``--layers``: numbers or ranges of block outputs 1..n (ascending); 0, the embeddings, is not a block."""
    from ..probe.features import parse_layers

    if spec is None or (isinstance(spec, str) and spec.strip() in ("", "all")):
        return list(range(1, n + 1))
    layers = parse_layers(spec, n)
    if 0 in layers:
        raise ModelError(f"--layers {spec!r}: layer 0 is the embeddings, not a block's output; use 1..{n}")
    return sorted(layers)


def corpus_cross_entropy(model: Any, windows: list[list[int]], batch_rows: int = 8) -> float:
    """Mean next-token cross-entropy (nats) over every predicted position of ``windows``."""
    import torch

    from ...model.generation import model_device

    if not windows:
        return float("nan")
    device = model_device(model)
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(windows), batch_rows):
            ids = torch.tensor(windows[start:start + batch_rows], dtype=torch.long, device=device)
            logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                                     reduction="sum")
            total += float(loss)
            count += ids[:, 1:].numel()
    return total / count


def heldout_windows(corpus: Any, tokens: int, seq_len: int, seed: int) -> list[list[int]]:
    """Windows of ``seq_len`` tokens from a seeded draw of the corpus's documents (``lens``' draw)."""
    from ..probe.lens_report import corpus_windows

    tokens_of = getattr(corpus, "corpus", corpus)
    windows, _ = corpus_windows(tokens_of, seq_len, tokens, 0, seed)
    return windows


def mean_interval(values: np.ndarray, seed: int, resamples: int = 1000) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean (items resampled)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    return (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)))


def check_positive(value: Any, flag: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{flag} {value!r}: give a whole number of at least {minimum}")


def check_share(value: Any, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"{flag} {value!r}: give a share between 0 and 1, like 0.3")
