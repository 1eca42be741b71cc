"""The model layer: everything above it that touches a model goes through here.

    from seethrough.model import resolve_target, load_model
    target = resolve_target("run/", checkpoints="all")     # a run's checkpoints, or one HF model folder
    target.check_corpus(index)                               # refuse a corpus that is not the model's
    for checkpoint in target.checkpoints:                    # typed: step, path, weights hash
        model = load_model(checkpoint, device="cpu", dtype="float32")
        greedy_continuations(model, prompts, 32)             # batched greedy decoding, KV cache
        last_token_hidden_states(model, rows)                # the residual stream after every block
        with edit_layer_output(model, 3, fn): ...            # a hook on the hidden state leaving block 3
    eraser = load_intervention("eraser/")                    # seethrough erase --out; installed by load_model:
    target = resolve_target("run/", intervention=eraser)     # every checkpoint carries it

- ``target``: resolving a run, its checkpoints or a model folder (``Checkpoint``, ``ModelTarget``), and
  the checks that the corpus and tokenizer are the model's own.
- ``loading``: a model on the device and dtype asked for; ``weights``: the weights hash.
- ``neox``: GPT-NeoX's forward pass in plain torch (what ``load_model(..., implementation="auto")``,
  the eval backend's choice, gives for a GPT-NeoX folder): the same logits to the bit as transformers',
  without importing transformers' modeling code; ``tokenizer``: a folder's tokenizer, without
  transformers where ``AutoTokenizer`` would only forward to its ``tokenizer.json``.
- ``generation``: greedy decoding in equal-length batches (exactly what each prompt gives alone).
- ``interventions``: erasers and steering vectors (folders written by ``seethrough erase`` / ``steer``),
  installed as hooks on the blocks; ``resolve_target(..., intervention=E)`` makes ``load_model`` install one.
- ``hidden``: the transformer blocks of any HF causal LM, hidden states, and forward hooks on a
  block's output that work whether the block returns a tensor (transformers 5) or a tuple.

Importing this package is cheap; torch and transformers load inside the functions that need them
(``neox`` imports torch, so nothing here imports it at the top).
"""

from .generation import batches_by_length, greedy_continuations, next_token_argmax
from .hidden import edit_layer_output, last_token_hidden_states, transformer_layers
from .interventions import Intervention, block_output_states, load_intervention
from .loading import DTYPES, forward_arguments, load_model
from .target import Checkpoint, ModelTarget, resolve_target
from .weights import weights_sha256

__all__ = ["DTYPES", "Checkpoint", "Intervention", "ModelTarget", "block_output_states", "load_intervention", "batches_by_length", "edit_layer_output", "forward_arguments",
           "greedy_continuations", "last_token_hidden_states", "load_model", "next_token_argmax", "resolve_target",
           "transformer_layers", "weights_sha256"]
