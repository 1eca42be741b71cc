"""GPT-NeoX, Pythia's architecture, in plain torch: the forward pass an evaluation runs.

Why not transformers' ``GPTNeoXForCausalLM``: importing its modeling code takes 2.8 s on this 2-core
machine (it pulls in torch's tensor-parallel DTensor, dynamo and, through its loss functions,
scipy), more than half of a one-item ``seethrough eval``, and an evaluation needs none of it.

This module computes what transformers 5 computes with its ``sdpa`` attention, operation for operation
and in the same order (tensor layouts included, since a kernel may round differently on a strided
input), so the logits are the same to the bit: tested against transformers on every path the eval
backend takes (no mask, a 4-D mask with position ids, a KV cache, ``logits_to_keep``, tiled linear
layers, hooks), in float32 and bfloat16. Its module tree and parameter names are transformers'
and its checkpoints' (``gpt_neox.layers[i].attention.query_key_value``; the head is ``embed_out``, the
name transformers saves it under and calls ``lm_head`` once loaded), its blocks receive
``position_ids`` as transformers' do, and ``get_input_embeddings``/``get_output_embeddings`` answer as
there, so erasers, steering vectors and ``evaluate.invariant.tiled_linear_layers`` work on it
unchanged.

It reads only what it can read completely: ``read_config`` accepts a ``config.json`` whose every key
it knows (no rope scaling, GELU, one ``model.safetensors``), and ``load_neox`` refuses a weights file
with any tensor it does not expect. Anything else loads through transformers
(``loading.load_model(..., implementation="auto")``). Training, generation with sampling and hidden
state recording stay with transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

# config.json keys that change nothing in an inference forward pass (dropout is off in eval mode; ids
# and names are metadata)
_INERT_KEYS = {"architectures", "attention_dropout", "hidden_dropout", "classifier_dropout", "bos_token_id",
               "eos_token_id", "pad_token_id", "initializer_range", "use_cache", "is_decoder", "transformers_version",
               "dtype", "torch_dtype", "_name_or_path", "model_type", "tokenizer_class", "return_dict",
               "output_hidden_states", "output_attentions", "chunk_size_feed_forward", "id2label", "label2id",
               "problem_type"}
# keys read below: the shape, which every config gives, and those with transformers' GPTNeoXConfig defaults
# (Pythia's configs on the Hub leave out attention_bias); any key outside these two sets and the inert
# ones sends the model to transformers
_SHAPE_KEYS = {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings"}
_DEFAULTS = {"layer_norm_eps": 1e-5, "use_parallel_residual": True, "attention_bias": True,
             "tie_word_embeddings": False, "hidden_act": "gelu"}
_ROPE_KEYS = {"rope_scaling", "rope_parameters", "rotary_pct", "rotary_emb_base"}
# tensors in old checkpoints that transformers ignores on load (recomputed or unused)
_IGNORED_SUFFIXES = (".attention.bias", ".attention.masked_bias", ".attention.rotary_emb.inv_freq")


@dataclass(frozen=True)
class NeoXConfig:
    """The shape of a GPT-NeoX model, as read from its ``config.json``."""
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float
    rotary_fraction: float
    """The share of each head's dimensions that rotary embeddings turn (``partial_rotary_factor``)."""
    rope_theta: float
    use_parallel_residual: bool
    attention_bias: bool
    tie_word_embeddings: bool
    _attn_implementation: str = "sdpa"  # what callers that build attention masks ask transformers models


def read_config(folder: str | Path) -> NeoXConfig | None:
    """The folder's GPT-NeoX config if this module computes exactly what transformers would for it,
    else None (another architecture, a key it does not know, rope scaling, another activation)."""
    try:
        raw = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(raw, dict) or raw.get("model_type") != "gpt_neox"
            or set(raw) - _INERT_KEYS - _SHAPE_KEYS - set(_DEFAULTS) - _ROPE_KEYS or not _SHAPE_KEYS <= set(raw)):
        return None
    values = {**_DEFAULTS, **{k: raw[k] for k in _DEFAULTS if k in raw}}
    if values["hidden_act"] != "gelu":
        return None
    # transformers 5 writes rope_parameters; earlier configs (Pythia's on the Hub) rotary_pct/rotary_emb_base;
    # rope_scaling comes first where both are given, as in GPTNeoXConfig.convert_rope_params_to_dict
    rope = raw.get("rope_scaling") or raw.get("rope_parameters") or {}
    if not isinstance(rope, dict) or rope.get("rope_type", "default") != "default" or set(rope) - {
            "rope_type", "rope_theta", "partial_rotary_factor"}:
        return None
    theta = rope.get("rope_theta", raw.get("rotary_emb_base"))
    fraction = rope.get("partial_rotary_factor", raw.get("rotary_pct", 0.25))
    if theta is None or any(type(raw[k]) is not int or raw[k] < 1 for k in _SHAPE_KEYS):
        return None
    if raw["hidden_size"] % raw["num_attention_heads"] or not all(
            isinstance(v, bool) for v in (values["use_parallel_residual"], values["attention_bias"],
                                          values["tie_word_embeddings"])):
        return None
    try:
        return NeoXConfig(
            vocab_size=raw["vocab_size"], hidden_size=raw["hidden_size"], num_hidden_layers=raw["num_hidden_layers"],
            num_attention_heads=raw["num_attention_heads"], intermediate_size=raw["intermediate_size"],
            max_position_embeddings=raw["max_position_embeddings"], layer_norm_eps=float(values["layer_norm_eps"]),
            rotary_fraction=float(fraction), rope_theta=float(theta),
            use_parallel_residual=values["use_parallel_residual"], attention_bias=values["attention_bias"],
            tie_word_embeddings=values["tie_word_embeddings"])
    except (TypeError, ValueError):  # a value of the wrong type: transformers says what is wrong with it
        return None


# Layers whose weights are loaded, never initialised: the model is built on the meta device and its
# weights assigned from the file. (Initialising even meta tensors imports torch's dynamo, 1 s here.)
class UninitializedLinear(nn.Linear):
    def reset_parameters(self) -> None:
        pass


class UninitializedEmbedding(nn.Embedding):
    def reset_parameters(self) -> None:
        pass


class UninitializedLayerNorm(nn.LayerNorm):
    def reset_parameters(self) -> None:
        pass


@dataclass
class CausalLMOutput:
    logits: torch.Tensor
    cache: KVCache | None = None


class KVCache:
    """Keys and values of the positions seen so far, per block (transformers' ``DynamicCache``)."""

    def __init__(self) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []

    def get_seq_length(self) -> int:
        return self.layers[0][0].shape[-2] if self.layers else 0

    def update(self, index: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if index == len(self.layers):  # transformers concatenates onto an empty tensor: a contiguous copy
            self.layers.append((keys.contiguous(), values.contiguous()))
        else:
            past_keys, past_values = self.layers[index]
            self.layers[index] = (torch.cat([past_keys, keys], dim=-2), torch.cat([past_values, values], dim=-2))
        return self.layers[index]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``cos.shape[-1]`` dimensions of each head by position; the rest pass through."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    turned, passed = x[..., :cos.shape[-1]], x[..., cos.shape[-1]:]
    return torch.cat([(turned * cos) + (rotate_half(turned) * sin), passed], dim=-1)


class Attention(nn.Module):
    def __init__(self, config: NeoXConfig, index: int) -> None:
        super().__init__()
        self.head_size = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_size ** -0.5
        self.index = index
        self.query_key_value = UninitializedLinear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.dense = UninitializedLinear(config.hidden_size, config.hidden_size, bias=config.attention_bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None) -> torch.Tensor:
        shape = x.shape[:-1]
        # each head's query, key and value sit side by side in the fused projection (GPT-NeoX's layout)
        qkv = self.query_key_value(x).view(*shape, -1, 3 * self.head_size).transpose(1, 2)
        query, key, value = qkv.chunk(3, dim=-1)
        query, key = apply_rotary(query, cos, sin), apply_rotary(key, cos, sin)
        if cache is not None:
            key, value = cache.update(self.index, key, value)
        length = query.shape[2]
        if mask is None and 1 < length < key.shape[2]:  # new positions after cached ones: a causal mask
            # aligned to the last position, as transformers builds it (SDPA's is_causal aligns to the first)
            seen = key.shape[2] - length
            rows = torch.arange(length, device=x.device)[:, None] + seen
            mask = (torch.arange(key.shape[2], device=x.device)[None, :] <= rows).expand(x.shape[0], 1, -1, -1)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=0.0, scale=self.scaling,
                                             is_causal=mask is None and length > 1)
        out = out.reshape(out.shape[0], -1, length, value.shape[-1]).transpose(1, 2).contiguous()
        return self.dense(out.reshape(*shape, -1).contiguous())


class MLP(nn.Module):
    def __init__(self, config: NeoXConfig) -> None:
        super().__init__()
        self.dense_h_to_4h = UninitializedLinear(config.hidden_size, config.intermediate_size)
        self.dense_4h_to_h = UninitializedLinear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))


class Block(nn.Module):
    def __init__(self, config: NeoXConfig, index: int) -> None:
        super().__init__()
        self.use_parallel_residual = config.use_parallel_residual
        self.input_layernorm = UninitializedLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_attention_layernorm = UninitializedLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = Attention(config, index)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None, position_ids: torch.Tensor,
                position_embeddings: tuple[torch.Tensor, torch.Tensor], cache: KVCache | None) -> torch.Tensor:
        # position_ids is unused here, but steering hooks read it from the block's arguments, as in transformers
        attended = self.attention(self.input_layernorm(x), *position_embeddings, attention_mask, cache)
        if self.use_parallel_residual:  # Pythia: attention and MLP both read the block's input
            return self.mlp(self.post_attention_layernorm(x)) + attended + x
        attended = attended + x
        return self.mlp(self.post_attention_layernorm(attended)) + attended


class Body(nn.Module):
    """transformers' ``GPTNeoXModel``: embeddings, blocks and the final norm (``model.gpt_neox``)."""

    def __init__(self, config: NeoXConfig) -> None:
        super().__init__()
        self.embed_in = UninitializedEmbedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([Block(config, i) for i in range(config.num_hidden_layers)])
        self.final_layer_norm = UninitializedLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        dims = int(config.hidden_size // config.num_attention_heads * config.rotary_fraction)
        # on the CPU whatever the default device (the model is built on the meta device, then loaded)
        self.register_buffer("inv_freq", 1.0 / (config.rope_theta ** (
            torch.arange(0, dims, 2, dtype=torch.float, device="cpu") / dims)), persistent=False)


class NeoXForCausalLM(nn.Module):
    """Logits (and a KV cache) for token ids, as transformers' ``GPTNeoXForCausalLM`` computes them."""

    def __init__(self, config: NeoXConfig) -> None:
        super().__init__()
        self.config = config
        self.gpt_neox = Body(config)
        self.embed_out = UninitializedLinear(config.hidden_size, config.vocab_size, bias=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_out.weight.dtype

    def get_input_embeddings(self) -> nn.Embedding:
        return self.gpt_neox.embed_in

    def get_output_embeddings(self) -> nn.Linear:
        return self.embed_out

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: KVCache | None = None,
                use_cache: bool | None = None, logits_to_keep: int = 0) -> CausalLMOutput:
        """``attention_mask``: None (causal) or a 4-D boolean mask, batch x 1 x new positions x all
        positions (True: may attend), which ``position_ids`` needs; ``logits_to_keep``: project only the
        last that many positions (0: all); ``use_cache``: None means yes, as transformers' default."""
        if attention_mask is not None and (attention_mask.dim() != 4 or attention_mask.dtype != torch.bool):
            raise ValueError("attention_mask: this GPT-NeoX takes a 4-D boolean mask (or none); pass padding as a "
                             "4-D mask, or load the model with implementation='transformers'")
        if position_ids is not None and attention_mask is None:  # transformers would infer packed sequences
            raise ValueError("position_ids: give the 4-D attention_mask that goes with them, or load the model "
                             "with implementation='transformers'")
        use_cache = True if use_cache is None else use_cache
        if use_cache and cache is None:
            cache = KVCache()
        body = self.gpt_neox
        hidden = body.embed_in(input_ids)
        if position_ids is None:
            seen = cache.get_seq_length() if cache is not None else 0
            position_ids = (torch.arange(hidden.shape[1], device=hidden.device) + seen).unsqueeze(0)
        freqs = position_ids[..., None].float() * body.inv_freq.to(device=hidden.device, dtype=torch.float)
        angles = torch.cat((freqs, freqs), dim=-1)
        # times 1.0: transformers scales by its rope type's attention factor, 1.0 for the default rope
        position_embeddings = ((angles.cos() * 1.0).to(hidden.dtype), (angles.sin() * 1.0).to(hidden.dtype))
        for block in body.layers:
            hidden = block(hidden, attention_mask=attention_mask, position_ids=position_ids,
                           position_embeddings=position_embeddings, cache=cache)
        hidden = body.final_layer_norm(hidden)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:, :]
        return CausalLMOutput(self.embed_out(hidden), cache)


def load_neox(folder: str | Path, config: NeoXConfig, dtype: torch.dtype) -> NeoXForCausalLM | None:
    """The model of ``folder`` (one ``model.safetensors``) in ``dtype``, on the CPU, in eval mode; None
    when its weights are not exactly the tensors this config expects (transformers then loads it)."""
    from safetensors import SafetensorError, safe_open

    weights = Path(folder) / "model.safetensors"
    if not weights.exists() or any(p.suffix in (".safetensors", ".bin") and p != weights
                                   for p in Path(folder).iterdir()):
        return None
    with torch.device("meta"):  # no random initialisation of weights about to be replaced
        model = NeoXForCausalLM(config)
    expected = {name: p.shape for name, p in model.named_parameters()}
    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(weights), framework="pt") as file:
            for name in file.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                if name.endswith(_IGNORED_SUFFIXES):
                    continue
                key = "embed_out.weight" if name == "lm_head.weight" else name
                if key not in expected or key in state:
                    return None
                # a copy of its own: a tensor read from the file sits at the file's offset, and a matrix
                # product rounds differently on memory not aligned as torch aligns its own (measured)
                state[key] = file.get_tensor(name).to(dtype=dtype, copy=True)
    except (OSError, SafetensorError):  # a damaged file: transformers' loader says what is wrong with it
        return None
    if config.tie_word_embeddings and "embed_out.weight" not in state and "gpt_neox.embed_in.weight" in state:
        state["embed_out.weight"] = state["gpt_neox.embed_in.weight"]
    if set(state) != set(expected) or any(state[k].shape != expected[k] for k in expected):
        return None
    model.load_state_dict(state, assign=True)
    if config.tie_word_embeddings:  # one parameter, as transformers ties them
        model.embed_out.weight = model.gpt_neox.embed_in.weight
    model.requires_grad_(False)
    return model.eval()
