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

# tokenizer_config.json keys that PreTrainedTokenizerFast reads without changing what the file encodes
_CONFIG_KEYS = {"tokenizer_class", "bos_token", "eos_token", "unk_token", "pad_token", "model_max_length",
                "clean_up_tokenization_spaces", "name_or_path"}
_SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token")
_UNBOUNDED = int(1e30)  # transformers' model_max_length when the config gives none


class PlainTokenizer:
    """The part of a ``PreTrainedTokenizerFast`` that evaluation uses, over the same ``tokenizers`` calls."""

    def __init__(self, tokenizer: Any, config: dict[str, Any]) -> None:
        self.backend_tokenizer = tokenizer
        self.model_max_length = int(config.get("model_max_length") or _UNBOUNDED)
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

    return AutoTokenizer.from_pretrained(str(folder))


def _plain_tokenizer(folder: Path) -> PlainTokenizer | None:
    from ..corpus.tokenizer import load_tokenizer
    from ..errors import SeethroughError

    if any((folder / name).exists() for name in ("special_tokens_map.json", "added_tokens.json")):
        return None
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text())
        spec = json.loads((folder / "tokenizer.json").read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(config, dict) or config.get("tokenizer_class") != "PreTrainedTokenizerFast"
            or set(config) - _CONFIG_KEYS or config.get("clean_up_tokenization_spaces")):
        return None
    special = {t.get("content") for t in spec.get("added_tokens") or [] if isinstance(t, dict) and t.get("special")}
    if any(config.get(name) is not None and config[name] not in special for name in _SPECIAL):
        return None  # transformers would add it, or it is not a plain string
    try:
        loaded = load_tokenizer(folder / "tokenizer.json")  # truncation and padding off, as transformers sets them
    except SeethroughError:
        return None
    return PlainTokenizer(loaded.tokenizer, config)
