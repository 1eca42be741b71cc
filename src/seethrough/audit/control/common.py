"""What erasing and steering share: the checkpoint and its tokenizer, layer lists, the cost on corpus
text, and intervals of a mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import ConfigError, ModelError, QueryError


def resolve_checkpoint(target: Any, checkpoint: str | None = None, corpus: Any = None) -> Any:
    """One checkpoint of ``target`` (a run (its ``checkpoint`` step, default the last), a model folder or a
    ``Checkpoint``); ``corpus``, when given, is checked to be the model's own."""
    from ...model import Checkpoint, ModelTarget, resolve_target
    from ...model.target import check_tokenizer

    if isinstance(target, Checkpoint):
        if corpus is not None:
            check_tokenizer(target.path, getattr(corpus, "corpus", corpus))
        return target
    resolved = (target if isinstance(target, ModelTarget)
                else resolve_target(target, checkpoint, flag="--checkpoint"))
    if len(resolved.checkpoints) != 1:
        raise ModelError(f"--checkpoint {checkpoint}: one checkpoint at a time; give one step")
    if corpus is not None:
        resolved.check_corpus(corpus)
    return resolved.last


def block_layers(spec: str | Sequence[int] | None, n: int) -> list[int]:
    """``--layers``: all (or None), or numbers and ranges of block outputs 1..n, each once, ascending; 0, the
    embeddings, is no block's output, and an empty list is refused rather than read as all."""
    import re

    from ..probe.features import parse_layers

    if spec is None or (isinstance(spec, str) and spec.strip() == "all"):
        return list(range(1, n + 1))
    usage = f"use all, or block numbers like 1,3 or ranges like 1-3 (this model has blocks 1..{n})"
    try:
        layers = parse_layers(spec, n)
    except ConfigError:
        raise ConfigError(f"--layers {spec!r}: {usage}") from None
    except ModelError:  # a number past the last block; name it
        outside = next(int(x) for x in re.findall(r"\d+", str(spec)) if int(x) > n)
        raise ModelError(f"--layers {spec!r}: layer {outside} is outside this model's blocks 1..{n}; use 1..{n}") from None
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


def outputs_are_finite(model: Any, ids: list[int]) -> bool:
    """Whether every logit of one forward pass over ``ids`` is finite (with what is installed on ``model``)."""
    import torch

    from ...model.generation import model_device

    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], dtype=torch.long, device=model_device(model)),
                       use_cache=False).logits
    return bool(torch.isfinite(logits).all())


def heldout_windows(corpus: Any, tokens: int, seq_len: int, seed: int) -> list[list[int]]:
    """Windows of ``seq_len`` tokens from a seeded draw of the corpus's documents (``lens``' draw)."""
    from ..probe.lens_report import corpus_windows

    tokens_of = getattr(corpus, "corpus", corpus)
    try:
        windows, _ = corpus_windows(tokens_of, seq_len, tokens, 0, seed)
    except QueryError:  # lens's wording names its own --train-tokens
        raise QueryError(f"--heldout-tokens {tokens:,}: the corpus gives fewer tokens than that in windows of "
                         f"{seq_len}; ask for fewer --heldout-tokens or a shorter --seq-len") from None
    return windows


def mean_interval(values: np.ndarray, seed: int, resamples: int = 1000) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean (items resampled)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    return (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)))


def check_fit_settings(settings: Any) -> None:
    """The fields ``EraseSettings`` and ``SteerSettings`` share: a held-out share, a seed, positive token
    counts and batch size, windows of at least 2 tokens; each refused naming its flag."""
    check_share(settings.test_share, "--test-share")
    for name in ("heldout_tokens", "batch_size"):
        check_positive(getattr(settings, name), f"--{name.replace('_', '-')}")
    check_positive(settings.seq_len, "--seq-len", 2)  # a window of one token predicts nothing
    check_positive(settings.seed, "--seed", 0)


def check_positive(value: Any, flag: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{flag} {value!r}: give a whole number of at least {minimum}")


def check_share(value: Any, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"{flag} {value!r}: give a share between 0 and 1, like 0.3")
