"""seethrough's model backend for lm-evaluation-harness (``lm_eval --model seethrough``).

Tokenization at the context/continuation boundary, the empty-context prefix token, left
truncation to ``max_length`` and the softmax over the model's full vocabulary are lm-eval's own
(this class is a ``TemplateLM``, like its ``hf`` backend), so per-item results match ``hf``.
What differs is how the forward passes are scheduled:

- A one-token continuation (most multiple-choice questions over words or letters) needs only the
  last row of its prefix (the model input before it): each distinct prefix runs once, and prefixes
  of exactly equal length share a forward pass (no padding; ``batch_size`` of them, or with
  ``auto`` as many as fit ``AUTO_TOKENS_PER_CALL`` tokens: short prompts need big batches to keep
  the matrix units busy, 1.8x faster than 32 at a time for 5-token prompts measured here, and past
  about 2,048 tokens a call gets slower again as activations leave the cache: 300 prompts of 23
  tokens took 2.37 s at 2,048 tokens a call, 2.84 s at 8,192, 2.56 s at 1,024).
- A context with a continuation of several tokens runs as a packed row: the context once, then each
  of its distinct continuations (all but the last token) after it, each attending to the context
  and to its own earlier tokens only (a 4-D attention mask), at the positions it would have in a
  row of its own. A 4-choice question thus costs one context instead of four, whatever its length
  (3-shot, choices of 2-9 tokens at Pythia-70M shape: 2.4x faster than one row per choice, measured
  here). Log-probabilities are computed only at the positions whose next token is scored; the
  context's last position, which predicts every choice's first token, once (lm-eval's ``hf``
  computes them at every position of every row, padding included). Rows are padded to a multiple
  of ``PACKED_ROW_MULTIPLE`` and rows of equal padded length share a pass. Whether the model computes
  a packed row as it would each row alone (it honours a 4-D mask and position ids) is probed once,
  on a few tokens; a model that fails gets one row per continuation.
- Every batched pass multiplies its linear layers in fixed tiles of rows
  (``invariant.tiled_linear_layers``), so every score is the same to the bit whatever else is
  evaluated, in whatever order, at any batch size (tested). The tile sizes are fixed per path
  (``LAST_ROW_TILES``, ``PACKED_TILES``), and a request's path and row layout depend only on the
  requests that share its context (its own question's choices), never on anything else evaluated.
  This costs the one-token path about 8% of its forward passes at Pythia-70M shape (measured;
  128-row tiles there cost 17-24%, and left untiled its scores moved by up to 2 float32 units in
  the last place, 1.9e-6 near -11, with the batch).
- Generation is greedy with a KV cache and stops at the first stop sequence or end-of-text token.
- An ambiguous context/continuation split (the context's tokens are not a prefix of the whole's)
  or an empty continuation is flagged in ``self.flags`` instead of crashing.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval import utils as lm_utils

from ..model import weights_sha256
from .harness import collection_paused


@dataclass
class PackedRow:
    """One forward-pass row: a prefix, then continuations (each but its last token) after it."""
    tokens: list[int]
    positions: list[int]  # each continuation's positions count on from the end of the prefix
    segments: list[int]  # 0: the prefix, k: the k-th continuation, -1: padding
    scored: list[int]  # positions whose output is projected onto the vocabulary
    continuations: dict[tuple[int, ...], list[int]] = field(default_factory=dict)  # -> indexes into scored
    requests: list[tuple[int, list[int], list[int]]] = field(default_factory=list)  # (request, tokens, picks)


@register_model("seethrough")
class SeethroughLM(TemplateLM):
    _DEFAULT_MAX_LENGTH = 2048
    AUTO_TOKENS_PER_CALL = 2048
    # packed rows are padded to a multiple of this many tokens, so that rows of nearby lengths share
    # a forward pass while each row's length still depends on its own requests alone
    PACKED_ROW_MULTIPLE = 16
    AUTO_LOGIT_ROWS = 1024  # scored positions per call: each holds a vocabulary's worth of log-probabilities
    # (rows of the body's linear layers, rows of the output layer) per product: prompts scored at their
    # last row come ~2,048 tokens a call and fill 512-row tiles (measured in invariant.py); packed rows
    # come in one short last call per padded length, where 128-row tiles pad least (measured on choices
    # of 2-9 tokens: 256-row body tiles 1.04x slower at 0-shot, 512-row 1.25x, 512/512 1.28x; at
    # 3-shot 256 and 512 were 0.95x, within this machine's noise)
    LAST_ROW_TILES = (512, 128)
    PACKED_TILES = (128, 128)

    ARGUMENTS = ("pretrained", "max_length", "max_gen_toks", "threads", "batch_size", "max_batch_size", "device",
                 "dtype", "cache_dir", "implementation")
    """Every ``--model_args`` key (and lm-eval's ``--batch_size``, ``--max_batch_size``, ``--device``) this
    backend takes; any other is refused, so that no argument is silently ignored."""

    @collection_paused()  # its first construction imports torch and transformers' model code: see harness
    def __init__(self, pretrained: str, max_length: int | None = None, max_gen_toks: int = 256,
                 threads: int | None = None, batch_size: int | str = "auto", cache_dir: str | None = None,
                 device: str = "cpu", dtype: str = "float32", max_batch_size: int | None = None,
                 implementation: str = "auto", **unknown: Any) -> None:
        super().__init__()
        import torch

        from ..errors import ModelError
        from ..model import forward_arguments, load_model
        from ..model.tokenizer import load_model_tokenizer

        if unknown:
            raise ModelError(f"the seethrough backend does not take {', '.join(sorted(unknown))}; its arguments are "
                             f"{', '.join(self.ARGUMENTS)}")
        self._batch = _positive_int_or_none(batch_size, "batch_size", auto=True)
        self._max_batch = _positive_int_or_none(max_batch_size, "max_batch_size")
        self._max_length = _positive_int_or_none(max_length, "max_length")
        self.max_gen_toks = _positive_int_or_none(max_gen_toks, "max_gen_toks")
        self.pretrained = str(getattr(pretrained, "path", pretrained))  # a folder, or a model.Checkpoint's
        intervention = getattr(pretrained, "intervention", None)  # installed by load_model
        # auto: a GPT-NeoX folder runs on seethrough's plain-torch GPT-NeoX (model.neox), 2.8 s less
        # start-up than importing transformers' modeling code; any other model on transformers
        self.model = load_model(pretrained, device=str(device), dtype=str(dtype), threads=threads,
                                implementation=str(implementation))
        self.implementation = _implementation_of(self.model)
        self._device = next(self.model.parameters()).device
        self.dtype_name = str(dtype)
        self.tokenizer = load_model_tokenizer(self.pretrained)  # AutoTokenizer's, without transformers where it can
        self.batch_size = batch_size
        self.flags: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._encoded: dict[str, list[int]] | None = None  # strings encoded ahead, within loglikelihood()
        self._cache_name, self._last_logits_only = forward_arguments(self.model)
        self._packing: bool | None = None  # whether the model scores packed rows right: probed on first use
        self._torch = torch
        self.cache = None
        if cache_dir:
            from ..corpus.tokenizer import load_tokenizer
            from .cache import ResponseCache

            tokenizer_file = Path(self.pretrained) / "tokenizer.json"
            self.cache = ResponseCache(cache_dir, {
                "weights_sha256": weights_sha256(self.pretrained), "dtype": self.dtype_name,
                "max_length": self.max_length,
                "tokenizer_sha256": load_tokenizer(tokenizer_file).sha256 if tokenizer_file.exists() else None,
                # scores on another device, or from the other implementation, may differ in their last
                # bits (keys of transformers on the CPU stay as they were)
                **({"device": self._device.type} if self._device.type != "cpu" else {}),
                **({"implementation": self.implementation} if self.implementation != "transformers" else {}),
                # an eraser (or steering vector) changes every answer: its content hash is part of the key
                **({"intervention_sha256": intervention.sha256} if intervention is not None else {})})

    # ---- what TemplateLM needs ------------------------------------------------------------------
    @property
    def device(self) -> Any:
        return self._device

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        """As lm-eval's hf backend: the argument, else the model config's length, else the tokenizer's."""
        if self._max_length:
            return self._max_length
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            if hasattr(self.model.config, attr):
                return getattr(self.model.config, attr)
        if getattr(self.tokenizer, "model_max_length", 10**30) < 10**29:
            return self.tokenizer.model_max_length
        return self._DEFAULT_MAX_LENGTH

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, left_truncate_len: int | None = None,
                   **_: Any) -> list[int]:
        known = self._encoded.get(string) if self._encoded is not None and not add_special_tokens else None
        ids = list(known) if known is not None else self.tokenizer.encode(string,
                                                                           add_special_tokens=bool(add_special_tokens))
        return ids[-left_truncate_len:] if left_truncate_len else ids

    def tok_decode(self, tokens: list[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens)

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        context_enc, continuation_enc = super()._encode_pair(context, continuation)
        # lm-eval cuts the whole's tokens at len(context_enc): if those are not the context's own
        # tokens, the continuation's first tokens carry part of the context (or vice versa)
        if self.tok_encode(context + continuation)[:len(context_enc)] != context_enc:
            self.flags[(context, continuation)].append("boundary_ambiguous")
        return context_enc, continuation_enc

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """lm-eval's own tokenization (``TemplateLM.loglikelihood``), with every distinct string
        encoded once and in one batch first: the contexts of a multiple-choice item repeat per
        choice, and the tokenizer's batch call runs in Rust, several strings at a time."""
        strings: set[str] = set()
        for context, continuation in (r.args for r in requests):
            if context == "":
                strings.add(continuation)
            else:  # what _encode_pair encodes: the context without trailing whitespace, and the whole
                strings.update((context.rstrip(), context + continuation))
        unique = list(strings)
        encoded = self.tokenizer(unique, add_special_tokens=False)["input_ids"] if unique else []
        self._encoded = dict(zip(unique, encoded))
        try:
            return super().loglikelihood(requests, disable_tqdm=True)
        finally:
            self._encoded = None

    # ---- scoring ----------------------------------------------------------------------------------
    def _next_token(self, ids: list[int], cache: Any) -> tuple[Any, Any]:
        """Log-probabilities of the token after ``ids`` (on ``cache``, if any) and the extended cache;
        the vocabulary projection of every other position is skipped."""
        torch = self._torch
        out = self.model(input_ids=torch.tensor([ids], dtype=torch.long, device=self._device), use_cache=True, **{self._cache_name: cache},
                         **self._last_logits_only)
        return torch.log_softmax(out.logits[0, -1:].float(), dim=-1), getattr(out, self._cache_name)

    def _last_rows(self, prefixes: list[tuple[int, ...]]) -> Any:
        """Next-token logits after each of several equal-length prefixes, in one call."""
        torch = self._torch
        keep = self._last_logits_only
        out = self.model(input_ids=torch.tensor(prefixes, dtype=torch.long, device=self._device), use_cache=False, **keep)
        return out.logits[:, -1].float()

    def _loglikelihood_tokens(self, requests: list, disable_tqdm: bool = False, **_: Any) -> list[tuple[float, bool]]:
        if self.cache is None:
            return self._score(requests)
        keys = [self.cache.key("loglikelihood", context=list(c), continuation=list(t)) for _, c, t in requests]
        found = [self.cache.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        computed = self._score([requests[i] for i in missing]) if missing else []
        for i, result in zip(missing, computed):
            found[i] = result
        self.cache.put_many([(keys[i], list(found[i])) for i in missing if requests[i][2]])
        return [(float(f[0]), bool(f[1])) for f in found]

    def _score(self, requests: list) -> list[tuple[float, bool]]:
        from .invariant import tiled_linear_layers

        torch = self._torch
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = defaultdict(list)
        for i, (key, context_enc, continuation_enc) in enumerate(requests):
            if not continuation_enc:
                if key is not None:
                    self.flags[tuple(key)].append("empty_continuation")
                results[i] = (0.0, True)
                continue
            whole = (context_enc + continuation_enc)[-(self.max_length + 1):]
            groups[tuple(whole[:len(whole) - len(continuation_enc)])].append((i, continuation_enc))
        # a context whose continuations are all one token needs only its last row, computed once; one with
        # a longer continuation runs as packed rows, the context once and all its continuations after it
        one_token: dict[int, list[tuple[int, ...]]] = defaultdict(list)
        packed: dict[int, list[PackedRow]] = defaultdict(list)
        for prefix, members in groups.items():
            if all(len(cont) == 1 for _, cont in members):
                one_token[len(prefix)].append(prefix)
            else:
                for row in self._pack(prefix, members):
                    packed[len(row.tokens)].append(row)
        # tiles: each row's bits are its own; reuse_output: each pass's logits are read before the next
        # pass writes over them
        with torch.inference_mode():
            with tiled_linear_layers(self.model, *self.LAST_ROW_TILES, reuse_output=True):
                for length, prefixes in one_token.items():
                    per_call = self._rows_per_call(length, 1)
                    for start in range(0, len(prefixes), per_call):
                        chunk = prefixes[start:start + per_call]
                        asked = [(row, i, cont[0]) for row, prefix in enumerate(chunk) for i, cont in groups[prefix]]
                        scores, greedy = target_log_probs(self._last_rows(chunk), [row for row, _, _ in asked],
                                                          [token for _, _, token in asked])
                        for (_, i, _), score, top in zip(asked, scores, greedy):
                            results[i] = (score, top)
            with tiled_linear_layers(self.model, *self.PACKED_TILES, reuse_output=True):
                for length, rows in packed.items():
                    per_call = self._rows_per_call(length, max(len(row.scored) for row in rows))
                    for start in range(0, len(rows), per_call):
                        self._score_packed(rows[start:start + per_call], results)
        return results  # type: ignore[return-value]

    def _rows_per_call(self, length: int, scored: int) -> int:
        """Rows of ``length`` tokens, each with up to ``scored`` scored positions, per forward pass:
        ``batch_size``, or with ``auto`` as many as fit both per-call budgets."""
        if self._batch:
            return self._batch
        auto = max(1, min(self.AUTO_TOKENS_PER_CALL // length, self.AUTO_LOGIT_ROWS // scored))
        return min(auto, self._max_batch) if self._max_batch else auto

    def _pack(self, prefix: tuple[int, ...], members: list[tuple[int, list[int]]]) -> list[PackedRow]:
        """The rows that score ``members``, continuations of ``prefix``: the prefix, then each distinct
        continuation but its last token, in token order, as many per row as fit ``max_length`` (one per
        row where the model cannot take packed rows), padded to a multiple of ``PACKED_ROW_MULTIPLE``.
        The layout depends on these requests alone, so their scores do too."""
        each_alone = not self._packing_works()
        distinct = sorted({tuple(cont) for _, cont in members})
        rows: list[PackedRow] = []
        for cont in distinct:
            if not rows or each_alone or len(rows[-1].tokens) + len(cont) - 1 > self.max_length:
                rows.append(PackedRow(list(prefix), list(range(len(prefix))), [0] * len(prefix), [len(prefix) - 1]))
            row = rows[-1]
            segment = len(row.continuations) + 1
            picks = [0]  # the prefix's last row predicts every continuation's first token
            for k, token in enumerate(cont[:-1]):
                picks.append(len(row.scored))
                row.scored.append(len(row.tokens))
                row.tokens.append(token)
                row.positions.append(len(prefix) + k)
                row.segments.append(segment)
            row.continuations[cont] = picks
        for row in rows:
            row.requests = [(i, cont, row.continuations[tuple(cont)]) for i, cont in members
                            if tuple(cont) in row.continuations]
            padding = -len(row.tokens) % self.PACKED_ROW_MULTIPLE
            row.tokens += [0] * padding
            row.positions += [0] * padding
            row.segments += [-1] * padding  # padding sees the prefix and itself, and nothing sees it
        return rows

    def _packing_works(self) -> bool:
        """Whether the model scores a packed row as it scores each continuation in a row of its own
        (it must honour a 4-D attention mask and position ids: a model that derives positions from the
        mask, or ignores one of them, does not). Probed once, on a few tokens; if not, every
        continuation gets a row of its own."""
        if self._packing is None:
            vocab = self.model.get_input_embeddings().num_embeddings
            tokens = [(7 * k + 1) % vocab for k in range(9)]
            members = [(0, tokens[4:7]), (1, tokens[7:9]), (2, tokens[4:5])]
            scores = []
            for packing in (False, True):
                self._packing, results = packing, [None, None, None]
                try:
                    with self._torch.inference_mode():
                        for row in self._pack(tuple(tokens[:4]), members):
                            self._score_packed([row], results)
                except (TypeError, ValueError, RuntimeError, IndexError):
                    results = [(float("nan"), False)] * 3
                scores.append([score for score, _ in results])
            self._packing = all(abs(a - b) <= 1e-4 for a, b in zip(*scores))
        return self._packing

    def _score_packed(self, part: list[PackedRow], results: list) -> None:
        """One forward pass over equally long packed rows. Each continuation token attends to the
        prefix and to its own continuation's earlier tokens only (a 4-D mask, with each continuation's
        positions counted on from the prefix), so the model computes what it would for prefix +
        continuation as a row of its own. Only the scored positions reach the vocabulary projection:
        a hook on the output layer picks those rows of the final hidden states, so whatever the model
        does to logits after that projection still happens."""
        torch = self._torch
        device = self._device
        ids = torch.tensor([row.tokens for row in part], dtype=torch.long, device=device)
        inputs: dict[str, Any] = {}
        if self._packing:  # decided per model, never per batch: a row's arithmetic is its own
            segments = torch.tensor([row.segments for row in part], dtype=torch.long, device=device)
            causal = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool, device=device).tril()
            mask = causal & ((segments[:, None, :] == 0) | (segments[:, None, :] == segments[:, :, None]))
            if getattr(self.model.config, "_attn_implementation", "sdpa") != "sdpa":  # eager adds it to scores
                mask = torch.zeros(mask.shape, dtype=self.model.dtype, device=device).masked_fill(
                    ~mask, torch.finfo(self.model.dtype).min)
            inputs = {"attention_mask": mask.unsqueeze(1),
                      "position_ids": torch.tensor([row.positions for row in part], dtype=torch.long, device=device)}
        picked = (torch.tensor([r for r, row in enumerate(part) for _ in row.scored], device=device),
                  torch.tensor([p for row in part for p in row.scored], device=device))
        fired = []

        def pick(_: Any, args: tuple) -> tuple:
            fired.append(True)
            return (args[0][picked].unsqueeze(0), *args[1:])

        head = self.model.get_output_embeddings()
        hook = head.register_forward_pre_hook(pick) if head is not None else None
        try:
            logits = self.model(input_ids=ids, use_cache=False, **inputs).logits
        finally:
            if hook is not None:
                hook.remove()
        # a model that never calls its output layer as a module projected every position
        logits = (logits[0] if fired else logits[picked]).float()
        rows_at, tokens, spans, offset = [], [], [], 0
        for row in part:
            for i, cont, picks in row.requests:
                spans.append((i, len(tokens), len(tokens) + len(cont)))
                rows_at += [offset + p for p in picks]
                tokens += cont
            offset += len(row.scored)
        values, greedy = target_log_probs(logits, rows_at, tokens)
        for i, start, end in spans:
            results[i] = (sum(values[start:end]), all(greedy[start:end]))

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list[float]:
        out = []
        for (string,) in [r.args for r in requests]:
            windows = map(lm_utils.make_disjoint_window, lm_utils.get_rolling_token_windows(
                token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length, context_len=1))
            scores = self._loglikelihood_tokens([(None, ctx, cont) for ctx, cont in windows])
            out.append(sum(s for s, _ in scores))
        return out

    # ---- generation ---------------------------------------------------------------------------------
    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        torch = self._torch
        out = []
        eos_text = self.tok_decode([self.eot_token_id], skip_special_tokens=False)
        for context, gen_kwargs in [r.args for r in requests]:
            kwargs = dict(gen_kwargs or {})
            until = kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            until.append(eos_text)
            max_gen = _positive_int_or_none(kwargs.pop("max_gen_toks", self.max_gen_toks), "max_gen_toks")
            _check_greedy(kwargs)
            ids = self.tok_encode(context, left_truncate_len=self.max_length - max_gen)
            key = self.cache.key("generate", context=ids, until=until, max_gen_toks=max_gen) if self.cache else None
            cached = self.cache.get(key) if key else None
            if cached is not None:
                out.append(cached)
                continue
            generated: list[int] = []
            with torch.inference_mode():
                logp, cache = self._next_token(ids, None)
                for _ in range(max_gen):
                    token = int(logp[-1].argmax())
                    if token == self.eot_token_id:
                        break
                    generated.append(token)
                    text = self.tok_decode(generated)
                    if any(term and term in text for term in until):
                        break
                    logp, cache = self._next_token([token], cache)
            text = self.tok_decode(generated)
            for term in until:
                if term:
                    text = text.split(term)[0]
            if key:
                self.cache.put_many([(key, text)])
            out.append(text)
        return out


def _implementation_of(model: Any) -> str:
    """``seethrough.model.neox`` for seethrough's plain-torch GPT-NeoX, else ``transformers``."""
    from ..model.neox import NeoXForCausalLM

    return "seethrough.model.neox" if isinstance(model, NeoXForCausalLM) else "transformers"


def target_log_probs(logits: Any, rows: list[int], tokens: list[int], chunk: int = 16) -> tuple[list[float], list[bool]]:
    """``log_softmax(logits)[rows[k], tokens[k]]`` for each k, and whether ``tokens[k]`` is what
    ``argmax`` picks in its row (the first maximal index), without writing out the whole
    log-softmax: the normaliser is summed ``chunk`` rows at a time, while they are in cache (2.6x
    faster than ``log_softmax`` on 1,900 rows of 50,304 measured here, and ``amax`` 5x faster than
    ``argmax``); its rounding differs from ``log_softmax``'s by float32 units, not more."""
    import torch

    top = torch.amax(logits, dim=-1)
    sums = torch.empty_like(top)
    for start in range(0, len(logits), chunk):
        sums[start:start + chunk] = (logits[start:start + chunk] - top[start:start + chunk, None]).exp_().sum(dim=-1)
    at = torch.tensor(rows, dtype=torch.long, device=logits.device)
    wanted = torch.tensor(tokens, dtype=torch.long, device=logits.device)
    picked = logits[at, wanted]
    values = (picked - (top[at] + sums[at].log())).tolist()
    greedy = (picked == top[at]).tolist()
    for k in [k for k, g in enumerate(greedy) if g]:  # a tie for the maximum goes to the lowest index
        greedy[k] = not bool((logits[rows[k], :tokens[k]] == top[rows[k]]).any())
    return values, greedy


GREEDY_ARGUMENTS = {"do_sample": (False,), "temperature": (0, 0.0), "num_beams": (1,)}
"""Generation arguments the greedy decoder honours, with the values that mean greedy decoding."""


def _check_greedy(kwargs: dict[str, Any]) -> None:
    """Refuse any generation argument that greedy decoding would not honour (sampling, beams, top-p...)."""
    from ..errors import ModelError

    for name, value in kwargs.items():
        if name not in GREEDY_ARGUMENTS:
            raise ModelError(f"generation argument {name}={value!r} is not supported by the seethrough backend (it "
                             "decodes greedily, honouring until and max_gen_toks); remove it from the task's "
                             "generation_kwargs or use --model hf")
        if value not in GREEDY_ARGUMENTS[name]:
            raise ModelError(f"generation argument {name}={value!r}: the seethrough backend decodes greedily; set "
                             f"{name}: {GREEDY_ARGUMENTS[name][0]} in the task's generation_kwargs or use --model hf")


def _positive_int_or_none(value: Any, name: str, auto: bool = False) -> int | None:
    """A model argument that must be a positive integer (``auto`` and None mean "choose": None)."""
    from ..errors import ModelError

    if value is None or (auto and str(value) == "auto"):
        return None
    text = str(value)
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        choose = " or auto" if auto else ""
        raise ModelError(f"{name}={value!r}: give a positive whole number{choose}")
    return int(text)


def lm_eval_cli() -> None:
    """``seethrough-lm-eval``: lm-eval's own command line, with ``--model seethrough`` registered, run inside
    ``faster_lm_eval()``: its ``TaskManager`` takes lm-eval's task index from seethrough's cache
    (``tasks.cached_task_index``) instead of parsing every shipped task YAML again."""
    from lm_eval.__main__ import cli_evaluate

    from .._process import exit_without_teardown
    from .harness import faster_lm_eval

    from ..errors import SeethroughError

    try:
        with faster_lm_eval():
            cli_evaluate()
        code: int | str | None = 0
    except SystemExit as done:  # lm-eval's CLI ends some paths (--help, errors) this way
        code = done.code
    except SeethroughError as error:  # the backend's own refusals: one line, as `seethrough` prints them
        sys.stderr.write(f"error: {error}\n")
        code = 2
    exit_without_teardown(code)  # as `seethrough` does: 1.1-1.5 s of interpreter teardown skipped
