"""The logit lens and the tuned lens: what each layer's hidden state would predict as the next token.

- **logit lens** (nostalgebraist 2020): layer L's hidden state decoded by the model's own final norm
  and unembedding, head(norm(h_L)). transformers gives the last layer's state already normed, so
  there it is head(h_n): exactly the model's logits (checked on every model when the lens is made;
  a model whose logits cannot be reproduced this way is refused).
- **tuned lens** (Belrose et al. 2023): one affine translator per layer 0..n-1, added residually,
  head(norm(h + A h + b)). A and b start at zero, so an untrained tuned lens is the logit lens;
  training minimises KL(final || lens) over every position of corpus text, the model frozen.
  Saved as ``tuned_lens.safetensors`` (``layers.L.weight``, ``layers.L.bias``) and
  ``tuned_lens.json`` (the model's weights hash, layers, width, training settings); loading refuses
  a lens made for other weights.

Layer numbers are transformers' ``hidden_states`` numbers: 0 the embeddings, L the output of block L.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError, QueryError

_NORM_PATHS = ("gpt_neox.final_layer_norm", "model.norm", "transformer.ln_f", "model.decoder.final_layer_norm",
               "transformer.norm_f")
LENS_FORMAT = "seethrough-tuned-lens"


def final_norm(model: Any) -> Any:
    """The model's final norm (GPT-NeoX, Llama/OLMo, GPT-2, OPT, MPT layouts)."""
    from ...model.hidden import submodule_at

    norm = submodule_at(model, _NORM_PATHS)
    if norm is not None:
        return norm
    raise ModelError(f"cannot find the final norm of a {type(model).__name__} (looked for {', '.join(_NORM_PATHS)}); "
                     "the lenses do not support this model layout yet")


class LogitLens:
    """Decodes any layer's hidden states through the model's final norm and unembedding."""

    def __init__(self, model: Any) -> None:
        from .features import hidden_layers

        self.model = model
        self.blocks = hidden_layers(model)
        self.norm = final_norm(model)
        self.head = model.get_output_embeddings()
        if self.head is None:
            raise ModelError(f"a {type(model).__name__} has no output embeddings (unembedding) to decode with")
        self.last_normed = self._check()

    def _check(self) -> bool:
        """Whether transformers' last hidden state is already normed (True for GPT-NeoX, Llama, GPT-2 in
        transformers 5), found by reproducing the model's own logits; refuses a model where neither works."""
        import torch

        from ...model.generation import model_device

        vocab = int(self.head.weight.shape[0])
        ids = torch.arange(min(6, vocab), device=model_device(self.model))[None]
        with torch.inference_mode():
            out = self.model(input_ids=ids, output_hidden_states=True)
            last = out.hidden_states[-1]
            logits = out.logits.float()
            for normed, decoded in ((True, self.head(last)), (False, self.head(self.norm(last)))):
                if torch.allclose(decoded.float(), logits, rtol=1e-4, atol=1e-4 * float(logits.abs().max()) + 1e-6):
                    return normed
        raise ModelError(f"the logit lens cannot reproduce a {type(self.model).__name__}'s logits from its last hidden "
                         "state through its final norm and unembedding; this model layout is not supported")

    def logits(self, hidden: Any, layer: int) -> Any:
        """The lens's logits for ``hidden`` (..., width), a layer-``layer`` state."""
        if layer == self.blocks and self.last_normed:
            return self.head(hidden)
        return self.head(self.norm(hidden))


def _torch_module() -> Any:
    import torch

    class TunedLens(torch.nn.Module):
        """One residual affine translator per layer 0..n-1, zero at the start."""

        def __init__(self, blocks: int, width: int) -> None:
            super().__init__()
            self.blocks, self.width = blocks, width
            self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(blocks))
            with torch.no_grad():
                for layer in self.layers:
                    layer.weight.zero_()
                    layer.bias.zero_()

        def translate(self, hidden: Any, layer: int) -> Any:
            """h + A h + b at layer ``layer`` (the last layer's state is the model's own: unchanged)."""
            if layer >= self.blocks:
                return hidden
            return hidden + self.layers[layer](hidden)

    return TunedLens


def new_tuned_lens(blocks: int, width: int) -> Any:
    """A zero-initialised tuned lens for a model of ``blocks`` blocks and ``width`` (equal to the logit lens)."""
    return _torch_module()(blocks, width)


def lens_log_probs(logit_lens: LogitLens, hidden_states: Any, layer: int, tuned: Any = None) -> Any:
    """Log-probabilities of the next token from layer ``layer`` (logit lens, or the tuned lens when given)."""
    import torch

    hidden = hidden_states[layer]
    if tuned is not None:
        hidden = tuned.translate(hidden, layer)
    return torch.log_softmax(logit_lens.logits(hidden, layer).float(), dim=-1)


def train_tuned_lens(logit_lens: LogitLens, windows: list[list[int]], epochs: int = 4, batch_rows: int = 8,
                     lr: float = 1e-3, seed: int = 0,
                     progress: Callable[[dict[str, Any]], None] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """A tuned lens trained on token ``windows`` (equal lengths) to minimise KL(final || lens) at every
    position, summed over layers, by Adam; the model stays frozen. Returns the lens and one record per
    epoch (mean KL per layer)."""
    import torch

    from ...model.generation import model_device

    model = logit_lens.model
    device = model_device(model)
    width = int(logit_lens.head.weight.shape[1])
    lens = new_tuned_lens(logit_lens.blocks, width).to(device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    optimizer = torch.optim.Adam(lens.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(epochs):
        began = time.perf_counter()
        totals = np.zeros(logit_lens.blocks)
        count = 0
        order = rng.permutation(len(windows))
        for start in range(0, len(order), batch_rows):
            ids = torch.tensor([windows[i] for i in order[start:start + batch_rows]], dtype=torch.long, device=device)
            with torch.no_grad():
                out = model(input_ids=ids, output_hidden_states=True)
                target = torch.log_softmax(out.logits.float(), dim=-1)
                states = [s.detach() for s in out.hidden_states]
            p = target.exp()
            optimizer.zero_grad()
            for layer in range(logit_lens.blocks):  # each layer's graph on its own: one vocabulary-sized tensor at a time
                q = lens_log_probs(logit_lens, states, layer, lens)
                kl = (p * (target - q)).sum(-1).mean()
                kl.backward()
                totals[layer] += float(kl.detach()) * ids.numel()
            count += ids.numel()
            optimizer.step()
        record = {"epoch": epoch + 1, "kl": (totals / max(1, count)).tolist(), "tokens": count,
                  "seconds": round(time.perf_counter() - began, 3)}
        history.append(record)
        if progress is not None:
            progress(record)
    lens.eval()
    return lens, history


def save_tuned_lens(lens: Any, folder: str | Path, meta: dict[str, Any]) -> None:
    """``folder/tuned_lens.safetensors`` and ``tuned_lens.json`` (``meta`` must name the model's weights hash)."""
    from safetensors.torch import save

    from ..._files import atomic_write_bytes, atomic_write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"layers.{k}.{name}": p.detach().cpu().contiguous()
               for k, layer in enumerate(lens.layers) for name, p in layer.named_parameters()}
    atomic_write_bytes(folder / "tuned_lens.safetensors", save(tensors))
    atomic_write_json(folder / "tuned_lens.json", {"format": LENS_FORMAT, "version": 1, "blocks": lens.blocks,
                                                   "width": lens.width, **meta})


def load_tuned_lens(folder: str | Path, weights_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """A saved tuned lens and its metadata; refused when ``weights_sha256`` (the model's) is not the one it
    was trained for."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta_file, tensor_file = folder / "tuned_lens.json", folder / "tuned_lens.safetensors"
    if not meta_file.exists() or not tensor_file.exists():
        raise QueryError(f"--lens {folder} holds no tuned lens (tuned_lens.json and tuned_lens.safetensors); train "
                         "one with seethrough lens --corpus C --out DIR")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        tensors = load_file(str(tensor_file))
    except (ValueError, OSError) as error:
        raise QueryError(f"--lens {folder}: the tuned lens cannot be read ({str(error).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("format") != LENS_FORMAT:
        raise QueryError(f"--lens {folder}: {meta_file.name} is not a seethrough tuned lens")
    recorded = (meta.get("model") or {}).get("weights_sha256")
    if weights_sha256 is not None and recorded != weights_sha256:
        raise ModelError(f"--lens {folder} was trained for other weights ({str(recorded)[:12]}), not this model's "
                         f"({weights_sha256[:12]}); train a lens for this model with --corpus")
    lens = new_tuned_lens(int(meta["blocks"]), int(meta["width"]))
    try:
        lens.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise QueryError(f"--lens {folder}: its tensors do not fit its own metadata ({str(error).splitlines()[0]})") \
            from None
    return lens.eval(), meta
