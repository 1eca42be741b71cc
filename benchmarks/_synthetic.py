"""What the synthetic benchmark corpora share: their word-level tokenizer (imported by the benchmarks,
which run as scripts from this folder)."""

from __future__ import annotations

from pathlib import Path


def write_word_tokenizer(path: Path, words: list[str]) -> Path:
    """A word-level tokenizer at ``path``: word i is id i (the first word stands for unknown words), split
    on whitespace, decoded with single spaces between words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token=words[0]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    tok.save(str(path))
    return path
