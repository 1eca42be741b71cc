"""Inside the model: its transformer blocks, hidden states, and hooks on a block's output.

Layers are numbered as transformers' ``hidden_states``: 0 is the embeddings, L (1..n) the residual
stream leaving block L (blocks counted from 1). A hook "on layer L" therefore sits on the output of
block L, which is what probes read, erasers edit and steering vectors are added to. One exception,
transformers' own: ``hidden_states[n]`` is the last block's output after the model's final norm,
while a hook on layer n edits the block's output before it (tested). transformers 5
blocks return a tensor, earlier versions a tuple whose first element is the hidden state; the hooks
here handle both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import ModelError

_BLOCK_PATHS = ("gpt_neox.layers", "model.layers", "transformer.h", "model.decoder.layers", "transformer.blocks")


def submodule_at(model: Any, paths: tuple[str, ...], accept: Callable[[Any], bool] = lambda node: True) -> Any:
    """The first of the dotted attribute ``paths`` that exists on ``model`` and passes ``accept``, else None:
    the same part sits at different paths in different HF layouts."""
    for path in paths:
        node = model
        for name in path.split("."):
            node = getattr(node, name, None)
            if node is None:
                break
        if node is not None and accept(node):
            return node
    return None


def transformer_layers(model: Any) -> Any:
    """The model's ``ModuleList`` of transformer blocks (GPT-NeoX, Llama/OLMo, GPT-2, OPT, MPT layouts)."""
    import torch

    blocks = submodule_at(model, _BLOCK_PATHS, lambda node: isinstance(node, torch.nn.ModuleList))
    if blocks is not None:
        return blocks
    raise ModelError(f"cannot find the transformer blocks of a {type(model).__name__} (looked for "
                     f"{', '.join(_BLOCK_PATHS)}); this model layout is not supported yet")


def check_layer(model: Any, layer: int) -> int:
    """``layer`` if it is a block output 1..n of this model, else a one-line error."""
    n = len(transformer_layers(model))
    if not isinstance(layer, int) or not 1 <= layer <= n:
        raise ModelError(f"layer {layer} is not a block output of this model; use 1..{n} (0 is the embeddings)")
    return layer


@contextlib.contextmanager
def edit_layer_output(model: Any, layer: int, edit: Callable[[Any], Any]) -> Iterator[None]:
    """Within the block, the hidden state leaving block ``layer`` (1..n) is replaced by ``edit(hidden)``
    (a tensor of shape batch x positions x width, returned with the same shape) on every forward pass."""
    block = transformer_layers(model)[check_layer(model, layer) - 1]

    def hook(_module: Any, _inputs: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (edit(output[0]), *output[1:])
        return edit(output)

    # first among the block's hooks: transformers 5 records hidden_states with forward hooks of its own,
    # which must see the edited state, as the next block does
    handle = block.register_forward_hook(hook, prepend=True)
    try:
        yield
    finally:
        handle.remove()


def last_token_hidden_states(model: Any, rows: Sequence[Sequence[int]], layers: Sequence[int] | None = None,
                             batch_size: int = 64) -> Any:
    """The hidden state at each row's last token, for each layer: a float32 tensor of shape
    rows x layers x width (``layers`` default: all, 0..n). Rows are batched by equal length, so no
    padding changes a value; what a row gives does not depend on the other rows."""
    import torch

    from .generation import batches_by_length, model_device
    from .loading import forward_arguments

    n = len(transformer_layers(model))
    chosen = list(range(n + 1)) if layers is None else list(layers)
    bad = [x for x in chosen if not isinstance(x, int) or not 0 <= x <= n]
    if bad:
        raise ModelError(f"layer {bad[0]} is outside this model's 0..{n}")
    if any(len(r) == 0 for r in rows):
        raise ModelError("an empty row has no last token; every row needs at least one token")
    device = model_device(model)
    _, last_logits_only = forward_arguments(model)  # no vocabulary projection of every position (11x measured)
    out: Any = None
    with torch.inference_mode():
        for group in batches_by_length(rows, batch_size):
            ids = torch.tensor([list(rows[i]) for i in group], dtype=torch.long, device=device)
            states = model(input_ids=ids, output_hidden_states=True, **last_logits_only).hidden_states
            picked = torch.stack([states[x][:, -1, :] for x in chosen], dim=1).float().cpu()
            if out is None:
                out = torch.empty((len(rows), len(chosen), picked.shape[-1]), dtype=torch.float32)
            out[torch.tensor(group)] = picked
    return out
