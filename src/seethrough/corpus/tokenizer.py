"""Loading a Hugging Face ``tokenizers`` tokenizer from a local path, and fingerprinting it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from .._files import sha256_json
from ..errors import TokenizerError


@dataclass(frozen=True)
class LoadedTokenizer:
    tokenizer: Tokenizer
    path: Path
    """The ``tokenizer.json`` file it was read from."""
    sha256: str
    """Hash of the tokenizer's JSON in canonical form: the same tokenizer saved twice hashes the same."""
    vocab_size: int
    """Ids run from 0 to ``vocab_size - 1`` (added tokens included)."""

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)


def resolve_tokenizer_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise TokenizerError(
            f"no tokenizer at {path}: pass --tokenizer a tokenizer.json file or a model folder that "
            "contains one"
        )
    return path


def load_tokenizer(path: str | Path) -> LoadedTokenizer:
    """Load ``path`` (a ``tokenizer.json`` or a folder holding one); never touches a hub."""
    file = resolve_tokenizer_file(path)
    try:
        text = file.read_text(encoding="utf-8")
        spec = json.loads(text)
        tokenizer = Tokenizer.from_str(text)
    except (OSError, ValueError, Exception) as error:  # tokenizers raises plain Exception
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TokenizerError(
            f"cannot read tokenizer {file}: {first_line}; pass a tokenizer.json saved by Hugging Face "
            "tokenizers or transformers"
        ) from None
    return LoadedTokenizer(
        tokenizer=tokenizer,
        path=file,
        sha256=sha256_json(spec),
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
    )
