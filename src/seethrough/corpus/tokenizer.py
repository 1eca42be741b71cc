"""Loading a Hugging Face ``tokenizers`` tokenizer from a local path, fingerprinting it, and encoding
long documents in bounded memory.

Long documents: ``tokenizers`` keeps, for every token of an encoding, its id, string, offsets, word
index and masks (a few hundred bytes), so encoding a 50 MB document at once takes gigabytes. A text
over :data:`LONG_TEXT_CHARS` characters is therefore encoded in pieces of about :data:`PIECE_CHARS`
characters, but only when the pieces provably give the very ids of the whole text
(:func:`pieces_are_exact`); otherwise it is encoded whole, as before.

Where a cut may go: just before a ``\\n``, ``\\r`` or space that follows an *ordinary* character (a
letter or digit, ``\\w``, or printable ASCII), newlines preferred. Why that holds for the tokenizers
accepted by :func:`pieces_are_exact`:

- normalizers NFC/NFD/NFKC/NFKD/Lowercase (and sequences of them) act on each character or on runs
  of combining marks, which never cross a ``\\n``, ``\\r`` or space (starters that compose with
  nothing), and no ordinary character normalizes into trailing whitespace;
- the pre-tokenizers ``Whitespace``, ``WhitespaceSplit`` and ``BertPreTokenizer`` never put
  whitespace and other characters in one pre-token, so a whitespace character is a boundary; GPT-2's
  ``ByteLevel`` regex (without ``add_prefix_space``) never puts a non-space character and a following
  whitespace character in one pre-token, only looks ahead past a whitespace run (which cannot end at
  an ordinary character) and never looks behind, so the pre-tokens before the cut are those of the
  piece before it and those after are those of the piece after it; ``BertNormalizer`` is accepted
  with the whitespace-splitting pre-tokenizers only;
- models (BPE without dropout, WordPiece, WordLevel, Unigram) encode each pre-token on its own;
- added tokens are matched before pre-tokenization, so none may hold whitespace after a
  non-whitespace character (or any whitespace under ``BertNormalizer``, which turns ``\\n`` into a
  space and pads CJK characters with spaces), strip whitespace to its right (``rstrip``) or ask
  whether a word character precedes it (``single_word``).

Any other tokenizer (a custom ``Split`` regex, ``Metaspace``, ``Replace``, ``Prepend``, BPE dropout,
``ByteLevel`` with ``add_prefix_space``) encodes long documents whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from .._files import sha256_json
from ..errors import TokenizerError

LONG_TEXT_CHARS = 1 << 20
"""Texts longer than this are encoded in pieces (when exact)."""
PIECE_CHARS = 1 << 18
"""Target length of a piece: a cut is sought from this many characters after the previous one."""
PIECES_PER_CALL = 8
"""Pieces encoded together (on all cores); bounds what ``tokenizers`` holds at once."""

_ORDINARY = r"[\w!-~]"
_NEWLINE_CUT = re.compile(rf"(?<={_ORDINARY})[\n\r]")
_SPACE_CUT = re.compile(rf"(?<={_ORDINARY}) ")

_PIECEWISE_NORMALIZERS = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase"}
_WHITESPACE_SPLITTERS = {"Whitespace", "WhitespaceSplit", "BertPreTokenizer"}
_PER_SPLIT_PRE_TOKENIZERS = _WHITESPACE_SPLITTERS | {"ByteLevel", "Digits", "Punctuation"}
_PER_TOKEN_MODELS = {"BPE", "WordPiece", "WordLevel", "Unigram"}


@dataclass(frozen=True)
class LoadedTokenizer:
    tokenizer: Tokenizer
    path: Path
    """The ``tokenizer.json`` file it was read from."""
    sha256: str
    """Hash of the tokenizer's JSON in canonical form: the same tokenizer saved twice hashes the same."""
    vocab_size: int
    """Ids run from 0 to ``vocab_size - 1`` (added tokens included)."""
    encodes_in_pieces: bool = False
    """Whether long texts are encoded in pieces (see :func:`pieces_are_exact`)."""

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def encode_documents(self, texts: list[str]) -> list[Sequence[int]]:
        """Ids of each text, exactly as :meth:`encode` gives them, in bounded memory: short texts are
        encoded together; a long one on its own, in pieces where that is exact, its ids kept as a
        uint32 array (a Python list of ids takes 8 bytes per id more)."""
        out: list[Sequence[int]] = [[] for _ in texts]
        short = [i for i, t in enumerate(texts) if len(t) <= LONG_TEXT_CHARS]
        for i, ids in zip(short, self.encode_batch([texts[i] for i in short])):
            out[i] = ids
        for i, text in enumerate(texts):
            if len(text) > LONG_TEXT_CHARS:
                out[i] = self._encode_long(text)
        return out

    def _encode_long(self, text: str) -> np.ndarray:
        if not self.encodes_in_pieces:
            return np.asarray(self.encode(text), dtype=np.uint32)
        cuts = [0, *piece_cuts(text), len(text)]
        parts = []
        for first in range(0, len(cuts) - 1, PIECES_PER_CALL):
            bounds = cuts[first:first + PIECES_PER_CALL + 1]
            pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
            parts.extend(np.asarray(ids, dtype=np.uint32) for ids in self.encode_batch(pieces))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)


def piece_cuts(text: str, every: int | None = None) -> list[int]:
    """Positions to cut ``text`` at, about ``every`` (default :data:`PIECE_CHARS`) characters apart (see
    the module docstring)."""
    every = every or PIECE_CHARS
    cuts: list[int] = []
    start = 0
    while len(text) - start > every:
        target = start + every
        found = (_NEWLINE_CUT.search(text, target, target + every) or _SPACE_CUT.search(text, target, target + every)
                 or _NEWLINE_CUT.search(text, target) or _SPACE_CUT.search(text, target))
        if found is None:
            break  # no cut left: the rest is one piece
        start = found.start()
        cuts.append(start)
    return cuts


def pieces_are_exact(spec: dict[str, Any]) -> bool:
    """Whether encoding a text in pieces cut as :func:`piece_cuts` cuts gives the ids of the whole text,
    judged from the tokenizer's JSON (the reasons are in the module docstring)."""
    model = spec.get("model") or {}
    if model.get("type") not in _PER_TOKEN_MODELS or model.get("dropout") not in (None, 0, 0.0):
        return False
    normalizers = _members(spec.get("normalizer"), "normalizers")
    bert_normalizer = any(n.get("type") == "BertNormalizer" for n in normalizers)
    if any(n.get("type") not in _PIECEWISE_NORMALIZERS | {"BertNormalizer"} for n in normalizers):
        return False
    pre_tokenizers = _members(spec.get("pre_tokenizer"), "pretokenizers")
    if not pre_tokenizers:
        return False  # the whole text is one pre-token
    first, later = pre_tokenizers[0], pre_tokenizers[1:]
    if bert_normalizer:
        if first.get("type") not in _WHITESPACE_SPLITTERS:
            return False
    elif not (first.get("type") in _WHITESPACE_SPLITTERS or _plain_byte_level(first)):
        return False
    # later members act on each pre-token of the first on its own, so they only need to be deterministic
    if any(p.get("type") not in _PER_SPLIT_PRE_TOKENIZERS or (p.get("type") == "ByteLevel" and not _plain_byte_level(p))
           for p in later):
        return False
    for added in spec.get("added_tokens") or []:
        content = str(added.get("content", ""))
        if added.get("rstrip") or added.get("single_word"):
            return False  # they look past the match: rstrip swallows the cut, single_word asks what precedes it
        if bert_normalizer and any(c.isspace() for c in content):
            return False
        if re.search(r"\S\s", content):
            return False
    return True


def _members(component: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    if not component:
        return []
    if component.get("type") == "Sequence":
        return [m for sub in component.get(key) or [] for m in _members(sub, key)]
    return [component]


def _plain_byte_level(pre_tokenizer: dict[str, Any]) -> bool:
    return (pre_tokenizer.get("type") == "ByteLevel" and not pre_tokenizer.get("add_prefix_space", True)
            and pre_tokenizer.get("use_regex", True))


def resolve_tokenizer_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        folder, path = path, path / "tokenizer.json"
        if not path.is_file():
            slow = [name for name in ("tokenizer.model", "vocab.json", "merges.txt", "vocab.txt", "spiece.model")
                    if (folder / name).is_file()]
            if slow:
                raise TokenizerError(
                    f"folder {folder} has no tokenizer.json, only {', '.join(slow)} (a slow tokenizer); save a "
                    f"fast one there with transformers' AutoTokenizer.from_pretrained('{folder}').save_pretrained"
                    f"('{folder}'), or pass a tokenizer.json"
                )
    if not path.is_file():
        raise TokenizerError(
            f"no tokenizer at {path}: pass --tokenizer a tokenizer.json file or a model folder that "
            "contains one"
        )
    return path


def load_tokenizer(path: str | Path) -> LoadedTokenizer:
    """Load ``path`` (a ``tokenizer.json`` or a folder holding one); never touches a hub.

    Truncation and padding saved in the file are switched off: a corpus holds whole documents, and a
    query is encoded whole (their settings still count in the hash).
    """
    file = resolve_tokenizer_file(path)
    fix = "pass a tokenizer.json saved by Hugging Face tokenizers or transformers"
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TokenizerError(f"cannot read tokenizer {file}: {_first_line(error)}; {fix}") from None
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise TokenizerError(f"{file} is not JSON ({_first_line(error)}); {fix}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise TokenizerError(
            f"{file} is JSON but not a tokenizer.json (Hugging Face tokenizers format); pass a tokenizer.json "
            "or a model folder containing one"
        )
    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as error:  # tokenizers raises plain Exception
        raise TokenizerError(f"cannot read tokenizer {file}: {_first_line(error)}; {fix}") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return LoadedTokenizer(
        tokenizer=tokenizer,
        path=file,
        sha256=sha256_json(spec),
        vocab_size=max(tokenizer.get_vocab_size(with_added_tokens=True), _largest_id(spec, tokenizer) + 1),
        encodes_in_pieces=pieces_are_exact(spec),
    )


def _largest_id(spec: dict[str, Any], tokenizer: Tokenizer) -> int:
    """The largest token id: ids may have gaps (an added token placed past the model's vocabulary), and
    ``get_vocab_size`` counts tokens, not ids. Read from the JSON already parsed (asking ``tokenizers``
    for its vocabulary builds a dict of every token, slow for large vocabularies)."""
    vocab = spec["model"].get("vocab")
    added = [t["id"] for t in spec.get("added_tokens") or [] if isinstance(t, dict) and isinstance(t.get("id"), int)]
    if isinstance(vocab, dict) and all(isinstance(i, int) for i in vocab.values()):
        return max([*vocab.values(), *added], default=-1)
    if isinstance(vocab, list):  # Unigram: [token, score] pairs, ids in order
        return max([len(vocab) - 1, *added])
    return max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1)


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text.strip() else type(error).__name__
