"""``seethrough generate``: a prompt's greedy continuation, with an eraser and/or a steering vector on."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ...model.tokenizer import load_model_tokenizer
from .common import check_positive, outputs_are_finite, resolve_checkpoint


@dataclass
class Generation:
    prompt: str
    text: str
    """The decoded continuation (the prompt not repeated)."""
    token_ids: list[int]
    """The continuation's token ids (up to the end-of-text token, which is left out)."""
    model: dict[str, Any] = field(default_factory=dict)
    interventions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"prompt", "text", "token_ids"}``: what ``generate --json`` prints."""
        return {"prompt": self.prompt, "text": self.text, "token_ids": list(self.token_ids)}


def generate_text(target: Any, prompt: str, max_new_tokens: int = 32, *, erase: Any = None,
                  steer: Any = None, checkpoint: str | None = None, threads: int | None = None,
                  device: str = "cpu") -> Generation:
    """Greedy decoding (KV cache) of ``max_new_tokens`` after ``prompt``; what follows the model's
    end-of-text token is dropped. ``erase``: an ERASER folder or ``Intervention``, on at every position;
    ``steer``: a steering ``Intervention`` with its multiplier, or ``(VECTOR folder, multiplier)``,
    added from the prompt's last token on (as ``seethrough steer`` measures it). The prompt and the new
    tokens must fit the model's context (``max_position_embeddings``)."""
    from ...errors import ConfigError, ModelError, QueryError
    from ...model import Intervention, greedy_continuations, load_model
    from ...model.interventions import ERASER, STEERING, load_eraser, load_steering

    check_positive(max_new_tokens, "--max-new-tokens")
    if not isinstance(prompt, str) or not prompt:
        raise QueryError("--prompt: give a non-empty prompt")
    eraser = erase if isinstance(erase, Intervention) or erase is None else load_eraser(erase)
    if eraser is not None and eraser.kind != ERASER:
        raise ConfigError(f"--erase {eraser.path} is a steering vector; --erase takes an eraser (seethrough erase --out)")
    steering = steer if isinstance(steer, Intervention) or steer is None else load_steering(*steer)
    if steering is not None and steering.kind != STEERING:
        raise ConfigError(f"--steer {steering.path} is an eraser; pass it as --erase {steering.path}")
    chosen = resolve_checkpoint(target, checkpoint)
    if steering is not None:
        steering.check_model(chosen.weights_sha256, str(chosen.path))
        steering.check_unchanged()
    model = load_model(chosen.with_intervention(eraser), device=device, threads=threads)
    tokenizer = load_model_tokenizer(chosen.path)
    ids = list(tokenizer.encode(prompt, add_special_tokens=False))
    if not ids:
        raise QueryError("--prompt encodes to no token; give it some text")
    context = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if context is not None and len(ids) + max_new_tokens > context:
        raise QueryError(f"--max-new-tokens {max_new_tokens}: with the prompt's {len(ids)} tokens that passes the "
                         f"model's context of {context} tokens; give at most {max(context - len(ids), 0)}")
    scope = steering.installed(model, start=len(ids) - 1) if steering is not None else contextlib.nullcontext()
    with scope:
        if not outputs_are_finite(model, ids):  # else greedy decoding picks token 0 at every step, silently
            raise ModelError("the model's outputs on the prompt are not finite with these interventions on (a "
                             "multiplier so large that the hidden states overflow?); give a smaller --steer "
                             "multiplier")
        generated = greedy_continuations(model, [ids], max_new_tokens)[0]
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and eos in generated:
        generated = generated[:generated.index(eos)]
    text = tokenizer.decode(generated)
    model_info = {**chosen.to_dict(), "weights_sha256": chosen.weights_sha256}
    return Generation(prompt, text, generated, model_info,
                      [x.to_dict() for x in (eraser, steering) if x is not None])
