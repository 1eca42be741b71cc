"""A model folder's tokenizer as transformers' ``AutoTokenizer`` gives it, without importing
transformers where the folder's tokenizer is exactly its ``tokenizer.json``.

Why: ``import transformers`` builds its lazy import structure by scanning every model's source file,
0.8 s of a one-item ``seethrough eval`` here. For a folder whose ``tokenizer_config.json`` names the
generic ``PreTrainedTokenizerFast`` with nothing on top (the special tokens it names are special
tokens of ``tokenizer.json`` already, no clean-up of decoded spaces, no extra token files: what
``seethrough train`` writes), transformers only forwards to the ``tokenizers`` tokenizer of that file:
``encode`` and ``decode`` here forward to the very same calls (tested against ``AutoTokenizer`` on
text with special tokens, odd whitespace and unknown words). Any other folder gets ``AutoTokenizer``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# the tokenizer_config.json keys accepted; the special tokens and the clean-up flag are then checked
_CONFIG_KEYS = {"tokenizer_class", "bos_token", "eos_token", "unk_token", "pad_token", "model_max_length",
                "clean_up_tokenization_spaces", "name_or_path"}
_SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token")
_UNBOUNDED = int(1e30)  # transformers' model_max_length when the config gives none


class PlainTokenizer:
    """The part of a ``PreTrainedTokenizerFast`` that evaluation uses, over the same ``tokenizers`` calls."""

    def __init__(self, tokenizer: Any, config: dict[str, Any]) -> None:
        self.backend_tokenizer = tokenizer
        given = config.get("model_max_length")
        self.model_max_length = _UNBOUNDED if given is None else int(given)
        eos = config.get("eos_token")
        self.eos_token_id = tokenizer.token_to_id(eos) if eos else None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, texts: list[str], add_special_tokens: bool = True) -> dict[str, list[list[int]]]:
        encoded = self.backend_tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encoded]}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.backend_tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str | None]:
        return [self.backend_tokenizer.id_to_token(i) for i in ids]


def load_model_tokenizer(folder: str | Path) -> Any:
    """``PlainTokenizer`` where that is exactly what ``AutoTokenizer.from_pretrained(folder)`` does,
    else ``AutoTokenizer.from_pretrained(folder)``."""
    plain = _plain_tokenizer(Path(folder))
    if plain is not None:
        return plain
    from transformers import AutoTokenizer

    from ..errors import ModelError

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as error:  # a damaged or unreadable tokenizer file (JSON, UTF-8)
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"cannot load the tokenizer of model {folder}: {first}; save the model's tokenizer "
                         "(tokenizer.json and tokenizer_config.json) into its folder again") from None


def _plain_tokenizer(folder: Path) -> PlainTokenizer | None:
    from ..corpus.tokenizer import load_tokenizer  # below the model layer; numpy and tokenizers only
    from ..errors import SeethroughError

    if any((folder / name).exists() for name in ("special_tokens_map.json", "added_tokens.json")):
        return None
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text())
        spec = json.loads((folder / "tokenizer.json").read_text())
        model = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
    except (OSError, ValueError):
        return None
    # AutoTokenizer picks another class than the one named for some model types (Qwen2's, say); for
    # GPT-NeoX, or a folder without a model config, it takes the one named
    if not isinstance(model, dict) or model.get("model_type", "gpt_neox") != "gpt_neox":
        return None
    if (not isinstance(config, dict) or config.get("tokenizer_class") != "PreTrainedTokenizerFast"
            or set(config) - _CONFIG_KEYS or config.get("clean_up_tokenization_spaces")):
        return None
    special = {t.get("content") for t in spec.get("added_tokens") or [] if isinstance(t, dict) and t.get("special")}
    named = [config.get(name) for name in _SPECIAL if config.get(name) is not None]
    if any(not isinstance(token, str) or token not in special for token in named):
        return None  # an AddedToken dict, or a token transformers would add to the file's
    try:
        loaded = load_tokenizer(folder / "tokenizer.json")  # truncation and padding off, as transformers sets them
    except SeethroughError:
        return None
    return PlainTokenizer(loaded.tokenizer, config)
