"""Hidden states of probe items, per layer, and their per-side normalisation.

Layer numbers are transformers' ``hidden_states`` numbers (``seethrough.model.hidden``): 0 is the
embeddings, L = 1..n the residual stream leaving block L, read at the last token of each text.
One exception, transformers' own: ``hidden_states[n]``, the last block's output, is taken after the
model's final norm (GPT-NeoX, Llama, GPT-2 in transformers 5), so layer n is what the unembedding
reads, not the raw residual stream of block n.

Contrast pairs are normalised per side (Burns et al. 2022): the mean of the first choices' states and
their scale are removed from the first side, those of the second choices from the second. Otherwise
the easiest direction to find is the one that tells which answer token was appended. The scale is
one number per side and layer (the root mean square of a coordinate after centring), so
directions keep their geometry and a direction found here points the same way in the model's own
hidden space (what erasure and steering need). The statistics come from the items fitted on, and
are applied unchanged to the items tested on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError, ModelError
from .data import ProbeData


def hidden_layers(model: Any) -> int:
    """The number of transformer blocks n (layers are 0..n), after checking that the model returns
    its hidden states (``output_hidden_states``): one for the embeddings and one per block."""
    import torch

    from ...model import transformer_layers
    from ...model.generation import model_device

    n = len(transformer_layers(model))
    with torch.inference_mode():
        out = model(input_ids=torch.zeros((1, 1), dtype=torch.long, device=model_device(model)),
                    output_hidden_states=True)
    states = getattr(out, "hidden_states", None)
    if states is None or len(states) != n + 1:
        got = "none" if states is None else f"{len(states)}"
        raise ModelError(f"{type(model).__name__} does not expose its hidden states (output_hidden_states=True gave "
                         f"{got}, expected {n + 1}: the embeddings and one per block); probes need a model that "
                         "returns them")
    return n


def parse_layers(spec: str | Sequence[int] | None, n: int) -> list[int]:
    """``all`` (or None) -> 0..n; else a comma list like ``0,2,4`` or ranges like ``1-3``, each in 0..n."""
    if spec is None or spec == "all":
        return list(range(n + 1))
    parts: list[int] = []
    tokens = spec.split(",") if isinstance(spec, str) else list(spec)
    for token in tokens:
        text = str(token).strip()
        low, dash, high = text.partition("-")
        if not (low.isascii() and low.isdigit()) or (dash and not (high.isascii() and high.isdigit())):
            raise ConfigError(f"--layers {spec!r}: use all, or layer numbers like 0,2,4 or 1-3")
        for layer in range(int(low), int(high or low) + 1):
            if layer > n:
                raise ModelError(f"--layers {spec!r}: layer {layer} is outside this model's 0..{n} (0 is the "
                                 f"embeddings, 1..{n} the blocks)")
            if layer not in parts:
                parts.append(layer)
    if not parts:
        raise ConfigError(f"--layers {spec!r}: no layer given")
    return parts


def encode_sides(tokenizer: Any, data: ProbeData, delimiter: str = " ") -> list[list[int]]:
    """Token ids of every side of every item, items in order, sides within each (no special tokens added,
    as the eval backend scores them)."""
    texts = [text for item in data.items for text in item.sides(delimiter)]
    rows = tokenizer(texts, add_special_tokens=False)["input_ids"]
    for number, row in enumerate(rows):
        if not row:
            item = data.items[number // data.sides]
            raise ModelError(f"{data.source or 'the data'}:{item.line}: a text encodes to no token, so it has no last "
                             "token to read; give it some text")
    return [list(r) for r in rows]


def extract_features(model: Any, tokenizer: Any, data: ProbeData, layers: Sequence[int], delimiter: str = " ",
                     batch_size: int = 64) -> np.ndarray:
    """The hidden state at the last token of each side: float32, items x sides x layers x width."""
    from ...model import last_token_hidden_states

    rows = encode_sides(tokenizer, data, delimiter)
    states = last_token_hidden_states(model, rows, list(layers), batch_size=batch_size).numpy()
    return states.reshape(len(data.items), data.sides, len(layers), states.shape[-1])


@dataclass
class SideNormalizer:
    """Per side and layer: the mean (sides x layers x width) and one scale (sides x layers)."""
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> SideNormalizer:
        """From ``features`` (items x sides x layers x width), the items fitted on."""
        x = features.astype(np.float64)
        mean = x.mean(axis=0)
        spread = np.sqrt(((x - mean) ** 2).mean(axis=(0, 3)))
        # a side whose states do not vary (one item, or a constant) keeps scale 1 rather than dividing by 0
        return cls(mean, np.where(spread > 0, spread, 1.0))

    def apply(self, features: np.ndarray) -> np.ndarray:
        return (features.astype(np.float64) - self.mean) / self.scale[..., None]
