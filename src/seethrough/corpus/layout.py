"""The on-disk layout of a corpus folder.

A shard ``S`` is stored exactly as infini-gram (v4) stores one, so that each engine opens the
other's folders:

- ``tokenized.S``: for every document, a separator (all bits set: ``0xFFFF`` for uint16 tokens)
  followed by its token ids, little-endian.
- ``offset.S``: uint64 byte offset of every document's separator in ``tokenized.S``.
- ``metadata.S`` / ``metaoff.S``: one JSON line per document ``{"path", "linenum", "metadata"}``
  and the uint64 byte offset of each line.
- ``table.S`` (written by ``index build``): the suffix array; see :mod:`seethrough.index.build`.

seethrough adds ``manifest.json`` (inputs, shards and their sha256, tokenizer hash, counts),
``tokenizer.json`` (a copy of the tokenizer) and, after ``index build``, ``index.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorpusError

MANIFEST = "manifest.json"
INDEX_MANIFEST = "index.json"
TOKENIZER_FILE = "tokenizer.json"
VERIFIED_STAMPS = ".verified.json"
FORMAT = "seethrough.corpus"
FORMAT_VERSION = 1
SHARD_KINDS = ("tokenized", "offset", "metadata", "metaoff")

TOKEN_WIDTHS = {"uint8": 1, "uint16": 2, "uint32": 4}


def shard_file(kind: str, shard: int) -> str:
    return f"{kind}.{shard}"


def separator(token_dtype: str) -> int:
    """The document separator: the largest value of the token type, never a valid token id."""
    return (1 << (8 * TOKEN_WIDTHS[token_dtype])) - 1


def token_dtype_for_vocab(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 0xFFFF else "uint32"


def numpy_dtype(token_dtype: str) -> np.dtype:
    return np.dtype(token_dtype).newbyteorder("<")


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(
            f"{folder} is not a corpus (no {MANIFEST}); build one with `seethrough corpus build`"
        ) from None
    except (OSError, ValueError) as error:
        raise CorpusError(f"{path} is unreadable ({error}); rebuild the corpus") from None
    if manifest.get("format") != FORMAT:
        raise CorpusError(f"{path} is not a seethrough corpus manifest; rebuild the corpus")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise CorpusError(
            f"{folder} was written by a newer seethrough (format {manifest['format_version']}); upgrade seethrough"
        )
    return manifest
