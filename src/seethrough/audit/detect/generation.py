"""Machine text from human prefixes, under the decoding settings the literature compares.

Decoding names: ``greedy``, ``sampling`` (T = 1), ``temperature_T``, ``top_p_P``, ``top_k_K``, each
optionally followed by ``+rep`` (Hugging Face's repetition penalty 1.2, as RAID uses) or
``+rep_X``. :data:`DEFAULT_DECODINGS` is the grid of shared/research/detectors.md §5.2: greedy,
sampling, T = 0.7, top-p 0.96 and top-k 40, each with and without the penalty.

The next-token distribution is processed in Hugging Face ``generate``'s order: the end-of-text token
masked (as ``min_new_tokens`` does, so every continuation reaches its length), repetition penalty
over every token of the row so far, prompt included (a positive logit divided by the penalty, a
negative one multiplied), temperature, top-k (ties with the k-th kept), top-p (the smallest set of
most likely tokens whose mass exceeds p). A sampled token is drawn by inverting the cumulative
distribution at one uniform number from the row's own generator, seeded per document and
decoding (:func:`document_seed`), so a text does not depend on batching or on the other texts.
Prompts of equal length share a batch (no padding); every row of a batch runs as many steps as the
longest and keeps its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError

DEFAULT_PENALTY = 1.2


@dataclass(frozen=True)
class Decoding:
    """One decoding setting (``name`` parses back to it)."""
    name: str
    greedy: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "greedy": self.greedy, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "repetition_penalty": self.repetition_penalty}


_BASE = re.compile(r"^(greedy|sampling|temperature_(?P<t>[0-9.]+)|top_p_(?P<p>[0-9.]+)|top_k_(?P<k>[0-9]+))"
                   r"(?P<rep>\+rep(?:_(?P<penalty>[0-9.]+))?)?$")


def _number(text: str, what: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--decoding {name!r}: {text!r} is not a number for the {what}") from None


def parse_decoding(name: str) -> Decoding:
    """The setting a name such as ``top_k_40+rep`` stands for."""
    match = _BASE.match(name.strip())
    if match is None:
        raise ConfigError(f"--decoding {name!r} is not a decoding; use greedy, sampling, temperature_T, top_p_P or "
                          "top_k_K, optionally with +rep (penalty 1.2) or +rep_X")
    penalty = None
    if match["rep"]:
        penalty = _number(match["penalty"], "repetition penalty", name) if match["penalty"] else DEFAULT_PENALTY
        if penalty <= 0:
            raise ConfigError(f"--decoding {name!r}: the repetition penalty must be above 0 (1 = none)")
    temperature, top_k, top_p = 1.0, None, None
    if match["t"] is not None:
        temperature = _number(match["t"], "temperature", name)
        if temperature <= 0:
            raise ConfigError(f"--decoding {name!r}: the temperature must be above 0 (use greedy for T -> 0)")
    if match["p"] is not None:
        top_p = _number(match["p"], "top-p mass", name)
        if not 0 < top_p <= 1:
            raise ConfigError(f"--decoding {name!r}: top-p must be in (0, 1]")
    if match["k"] is not None:
        top_k = int(match["k"])
        if top_k < 1:
            raise ConfigError(f"--decoding {name!r}: top-k must be at least 1")
    return Decoding(name.strip(), match.group(1) == "greedy", temperature, top_k, top_p, penalty)


DEFAULT_DECODINGS = tuple(f"{base}{rep}" for rep in ("", "+rep")
                          for base in ("greedy", "sampling", "temperature_0.7", "top_p_0.96", "top_k_40"))
"""Greedy, T = 1, T = 0.7, top-p 0.96, top-k 40; each without and with repetition penalty 1.2."""


def parse_decodings(spec: str | Sequence[str] | None) -> tuple[Decoding, ...]:
    """Decodings from a comma list (``all`` or None: :data:`DEFAULT_DECODINGS`)."""
    if spec is None:
        names: list[str] = list(DEFAULT_DECODINGS)
    else:
        names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
        if names == ["all"]:
            names = list(DEFAULT_DECODINGS)
    if not names:
        raise ConfigError("--decoding is empty; name at least one decoding (or all)")
    return tuple(parse_decoding(n) for n in dict.fromkeys(names))


def document_seed(seed: int, document_id: str, decoding: str) -> int:
    """The seed of one document's continuation under one decoding (a hash, so no two collide by design)."""
    digest = hashlib.sha256(f"{seed}\x00{decoding}\x00{document_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def process_logits(logits: Any, seen: Any, decoding: Decoding, forbidden: Sequence[int] = ()) -> Any:
    """Next-token logits after Hugging Face's processing order (see the module docstring); ``seen``
    holds every token of each row so far (batch x length)."""
    import torch

    scores = logits.float().clone()
    if forbidden:
        scores[:, list(forbidden)] = -torch.inf
    if decoding.repetition_penalty is not None and seen.shape[1]:
        before = scores.gather(1, seen)
        scores.scatter_(1, seen, torch.where(before < 0, before * decoding.repetition_penalty,
                                             before / decoding.repetition_penalty))
    if decoding.greedy:
        return scores
    if decoding.temperature != 1.0:
        scores = scores / decoding.temperature
    if decoding.top_k is not None and decoding.top_k < scores.shape[-1]:
        kth = torch.topk(scores, decoding.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, -torch.inf)
    if decoding.top_p is not None and decoding.top_p < 1.0:
        ascending, order = torch.sort(scores, dim=-1)
        drop = ascending.softmax(-1).cumsum(-1) <= 1 - decoding.top_p
        drop[:, -1] = False  # the most likely token always stays
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), -torch.inf)
    return scores


def choose_tokens(scores: Any, decoding: Decoding, uniforms: np.ndarray) -> Any:
    """Greedy: the argmax; else the token whose cumulative probability first exceeds each row's uniform."""
    import torch

    if decoding.greedy:
        return scores.argmax(dim=-1)
    probs = torch.softmax(scores.double(), dim=-1)
    cumulative = probs.cumsum(-1)
    u = torch.as_tensor(uniforms, dtype=torch.float64, device=scores.device)[:, None] * cumulative[:, -1:]
    chosen = torch.searchsorted(cumulative, u, right=True)[:, 0]
    # rounding can put u at the very end: take the last token with probability above zero
    last = (probs > 0).cumsum(-1).argmax(-1)
    return torch.minimum(chosen, last)


def continuations(model: Any, prompts: list[list[int]], lengths: list[int], decoding: Decoding,
                  seeds: list[int], batch_size: int = 64, forbidden: Sequence[int] = ()) -> list[list[int]]:
    """For each prompt, ``lengths[i]`` new tokens under ``decoding``, row ``i`` drawing from its own
    generator seeded ``seeds[i]``."""
    import torch

    from ...model.generation import model_device
    from ...model.loading import forward_arguments

    out: list[list[int]] = [[] for _ in prompts]
    device = model_device(model)
    cache_name, keep = forward_arguments(model)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        if lengths[i] > 0:
            groups.setdefault(len(p), []).append(i)
    with torch.inference_mode():
        for members in groups.values():
            members.sort(key=lambda i: lengths[i])  # similar lengths together: fewer wasted steps
            for start in range(0, len(members), batch_size):
                chosen = members[start:start + batch_size]
                generators = [np.random.default_rng(seeds[i]) for i in chosen]
                steps = max(lengths[i] for i in chosen)
                seen = torch.tensor([prompts[i] for i in chosen], dtype=torch.long, device=device)
                step_input, cache = seen, None
                for _ in range(steps):
                    output = model(input_ids=step_input, use_cache=True, **{cache_name: cache}, **keep)
                    cache = getattr(output, cache_name)
                    scores = process_logits(output.logits[:, -1, :], seen, decoding, forbidden)
                    uniforms = np.array([g.random() for g in generators]) if not decoding.greedy else None
                    step_input = choose_tokens(scores, decoding, uniforms)[:, None]
                    seen = torch.cat([seen, step_input], dim=1)
                for row, i in enumerate(chosen):
                    out[i] = seen[row, len(prompts[i]):len(prompts[i]) + lengths[i]].tolist()
    return out
