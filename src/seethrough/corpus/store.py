"""Read access to a corpus folder: memory-mapped shards, documents, integrity checks.

Opening checks every file's size against the manifest at once, and its sha256 whenever the file
changed since it was last verified (a stamp of size, mtime and inode per file, kept in
``.verified.json``), so a corrupted or swapped shard is refused before any query while an unchanged
corpus opens in milliseconds. The corpus's ``tokenizer.json`` (one small file) is hashed on every
open. The quick check cannot see a change that keeps a file's size, mtime and inode (a bit flip on
disk, an edit that restores the mtime): ``verify()`` (``seethrough corpus verify``) and
``open_token_corpus(..., verify_hashes=True)`` (``--verify`` on queries) re-hash every file.

Folders written by infini-gram's own indexer (no ``manifest.json``) open read-only, without hashes.
"""

from __future__ import annotations

import json
import math

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write_json, sha256_file
from ..errors import CorpusError, QueryError, TokenizerError
from .layout import (MANIFEST, SHARD_KINDS, TOKEN_WIDTHS, TOKENIZER_FILE, VERIFIED_STAMPS, numpy_dtype,
                     read_manifest, separator, shard_file)
from .tokenizer import LoadedTokenizer, load_tokenizer


def map_file(path: Path, dtype: str | np.dtype = np.uint8) -> np.ndarray:
    """A read-only memory map as a plain ndarray (numba takes plain arrays without recompiling)."""
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r").view(np.ndarray)


@dataclass
class Shard:
    number: int
    first_document: int
    tokens: np.ndarray
    """Token ids and separators, native dtype (uint8/16/32)."""
    offsets: np.ndarray
    """uint64 byte offset of each document's separator in ``tokenized.S``."""
    metadata: np.ndarray | None
    metaoff: np.ndarray | None
    path: Path
    suffix: str
    """File name suffix: ``tokenized.{suffix}``; empty for infini-gram's unsuffixed single-shard files."""

    def file(self, kind: str) -> str:
        return f"{kind}.{self.suffix}" if self.suffix else kind

    @property
    def documents(self) -> int:
        return len(self.offsets)

    @property
    def positions(self) -> int:
        """Token positions, separators included (the length of the suffix array)."""
        return len(self.tokens)

    @property
    def doc_starts(self) -> np.ndarray:
        """Token index of each document's separator."""
        return (self.offsets // self.tokens.itemsize).astype(np.int64)


@dataclass
class Document:
    index: int
    token_ids: list[int]
    text: str | None
    metadata: dict[str, Any]
    path: str | None = None
    line: int | None = None


@dataclass
class TokenCorpus:
    """A corpus folder opened for reading. Use :func:`open_token_corpus`."""

    path: Path
    manifest: dict[str, Any] | None
    token_dtype: str
    shards: list[Shard]
    tokenizer: LoadedTokenizer | None
    vocab_size: int
    foreign: bool = False
    """True for a folder written by infini-gram (no seethrough manifest)."""
    hashes_verified: bool = False
    """True when this open re-hashed every file; False when unchanged files were trusted by their stamps
    (see :data:`QUICK_CHECK_NOTE`)."""
    _doc_bounds: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._doc_bounds = np.cumsum([0] + [s.documents for s in self.shards])

    @property
    def corpus_hash(self) -> str | None:
        return self.manifest["corpus_hash"] if self.manifest else None

    @property
    def separator(self) -> int:
        return separator(self.token_dtype)

    @property
    def num_documents(self) -> int:
        return int(self._doc_bounds[-1])

    @cached_property
    def num_tokens(self) -> int:
        """Tokens of all documents, separators excluded."""
        return sum(s.positions - s.documents for s in self.shards)

    def shard_of_document(self, index: int) -> tuple[Shard, int]:
        if not 0 <= index < self.num_documents:
            raise QueryError(f"document {index} does not exist; the corpus has documents 0..{self.num_documents - 1}")
        s = int(np.searchsorted(self._doc_bounds, index, side="right")) - 1
        return self.shards[s], index - int(self._doc_bounds[s])

    def document_tokens(self, index: int) -> np.ndarray:
        shard, local = self.shard_of_document(index)
        start = int(shard.offsets[local]) // shard.tokens.itemsize + 1
        end = (int(shard.offsets[local + 1]) // shard.tokens.itemsize if local + 1 < shard.documents
               else shard.positions)
        return shard.tokens[start:end]

    def document_metadata(self, index: int) -> dict[str, Any]:
        shard, local = self.shard_of_document(index)
        if shard.metadata is None or shard.metaoff is None:
            return {}
        start = int(shard.metaoff[local])
        end = int(shard.metaoff[local + 1]) if local + 1 < shard.documents else len(shard.metadata)
        return json.loads(bytes(shard.metadata[start:end]).decode("utf-8"))

    def document(self, index: int) -> Document:
        """Document ``index``: its token ids, text (when the tokenizer is known) and metadata."""
        ids = self.document_tokens(index).tolist()
        record = self.document_metadata(index)
        return Document(
            index=index,
            token_ids=ids,
            text=self.tokenizer.decode(ids) if self.tokenizer else None,
            metadata=record.get("metadata", {}) if isinstance(record, dict) else {},
            path=record.get("path") if isinstance(record, dict) else None,
            line=record.get("linenum") if isinstance(record, dict) else None,
        )

    def require_tokenizer(self) -> LoadedTokenizer:
        if self.tokenizer is None:
            raise TokenizerError(
                f"{self.path} has no tokenizer, so text cannot be encoded; pass --tokenizer or query with --ids"
            )
        return self.tokenizer

    def verify(self) -> list[str]:
        """Re-hash every file, the tokenizer included, against the manifest; returns the files checked
        (raises on a mismatch)."""
        if self.manifest is None:
            raise CorpusError(f"{self.path} has no seethrough manifest (an infini-gram folder): nothing to verify against")
        files = check_files(self.path, _expected_files(self.manifest), full=True)
        own_tokenizer(self.path, self.manifest, required=True)
        self.hashes_verified = True
        return sorted([*files, TOKENIZER_FILE])


def _expected_files(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    expected: dict[str, dict[str, Any]] = {}
    for shard in manifest["shards"]:
        expected.update(shard["files"])
    return expected


QUICK_CHECK_NOTE = ("files were checked by size and change stamps; a change that keeps a file's size, mtime and "
                    "inode (a bit flip) is caught only by `seethrough corpus verify` or --verify, which re-hash "
                    "every file")
"""What an open without ``verify_hashes`` did and did not check, in a sentence for users."""


def check_files(folder: Path, expected: dict[str, dict[str, Any]], full: bool = False) -> list[str]:
    """Size check always; sha256 check when ``full`` or when the file changed since its last check
    (see :data:`QUICK_CHECK_NOTE` for what that cannot see)."""
    stamps_path = folder / VERIFIED_STAMPS
    try:
        stamps = json.loads(stamps_path.read_text())
    except (OSError, ValueError):
        stamps = {}
    changed = False
    for name, want in expected.items():
        path = folder / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise CorpusError(f"{path} is missing; the corpus is incomplete: rebuild it with `seethrough corpus build`") from None
        if stat.st_size != want["bytes"]:
            raise CorpusError(
                f"{path} has {stat.st_size} bytes, the manifest says {want['bytes']}: the file is truncated "
                "or replaced; rebuild the corpus (or the index) or restore the file"
            )
        stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino, want["sha256"]]
        if not full and stamps.get(name) == stamp:
            continue
        if sha256_file(path) != want["sha256"]:
            raise CorpusError(
                f"{path} does not match its sha256 in the manifest: the file is corrupted or comes from "
                "another build; rebuild it or restore the file"
            )
        stamps[name] = stamp
        changed = True
    if changed:
        try:
            atomic_write_json(stamps_path, stamps)
        except OSError:
            pass  # a read-only corpus is re-hashed on every open, which is slower but still correct
    return sorted(expected)


def _open_shard(folder: Path, number: int, first_document: int, token_dtype: str,
                suffix: str | None = None) -> Shard:
    suffix = str(number) if suffix is None else suffix
    name = (lambda kind: f"{kind}.{suffix}") if suffix else (lambda kind: kind)
    tokens = map_file(folder / name("tokenized"), numpy_dtype(token_dtype))
    offsets = map_file(folder / name("offset"), np.dtype("<u8"))
    metadata = metaoff = None
    if (folder / name("metadata")).exists() and (folder / name("metaoff")).exists():
        metadata = map_file(folder / name("metadata"))
        metaoff = map_file(folder / name("metaoff"), np.dtype("<u8"))
    sep = separator(token_dtype)
    if len(offsets) == 0 or len(tokens) == 0 or tokens[0] != sep or offsets[0] != 0:
        raise CorpusError(
            f"shard {number} of {folder} does not start with a document separator; the shard is corrupted "
            "or --token-dtype is wrong"
        )
    last = int(offsets[-1]) // tokens.itemsize
    if last >= len(tokens) or tokens[last] != sep:
        raise CorpusError(f"shard {number} of {folder}: document offsets do not point at separators; the shard is corrupted")
    return Shard(number, first_document, tokens, offsets, metadata, metaoff, folder, suffix)


def _foreign_shard_suffixes(folder: Path) -> list[str]:
    """Shard suffixes of an infini-gram folder: ``tokenized.0, tokenized.1, ...`` or a single ``tokenized``."""
    suffixes = []
    for path in folder.iterdir():
        if path.name.startswith("tokenized"):
            suffixes.append(path.name[len("tokenized") + 1:] if "." in path.name else "")
    return sorted(suffixes, key=lambda s: (len(s), s))


def detect_token_dtype(folder: Path, suffix: str) -> str:
    """Guess an infini-gram folder's token type from file sizes (table = positions x pointer width)."""
    name = (lambda kind: f"{kind}.{suffix}") if suffix else (lambda kind: kind)
    tok_size = (folder / name("tokenized")).stat().st_size
    table = folder / name("table")
    first = (folder / name("tokenized")).open("rb").read(4)
    for dtype in ("uint16", "uint8", "uint32"):
        width = TOKEN_WIDTHS[dtype]
        if tok_size % width or first[:width] != b"\xff" * width:
            continue
        positions = tok_size // width
        ratio = math.ceil(math.log2(tok_size) / 8) if tok_size > 1 else 1
        if not table.exists() or table.stat().st_size == positions * ratio:
            return dtype
    raise CorpusError(f"cannot tell the token type of {folder}; pass --token-dtype uint8|uint16|uint32")


def own_tokenizer(folder: Path, manifest: dict[str, Any], required: bool = False) -> LoadedTokenizer | None:
    """The corpus's copy of its tokenizer, after checking it hashes as the manifest records (a replaced
    or edited ``tokenizer.json`` would encode queries into other ids and answer wrongly). ``None`` when
    the file is missing, unless ``required``."""
    file = folder / TOKENIZER_FILE
    source = manifest.get("tokenizer", {}).get("source")
    restore = f"copy the original back (it was built from {source})" if source else "copy the original back"
    if not file.exists():
        if required:
            raise CorpusError(f"{file} is missing; {restore} or rebuild the corpus with `seethrough corpus build`")
        return None
    try:
        tok = load_tokenizer(file)
    except TokenizerError as error:
        raise TokenizerError(f"the corpus's own {TOKENIZER_FILE} is damaged ({str(error).split(';')[0]}); {restore}, "
                             "or rebuild the corpus") from None
    recorded = manifest["tokenizer"]["sha256"]
    if tok.sha256 != recorded:
        raise TokenizerError(
            f"{file} is not the tokenizer corpus {folder} was built with (sha256 {tok.sha256[:12]}, the manifest "
            f"records {recorded[:12]}): it was replaced or edited; {restore}, or rebuild the corpus"
        )
    return tok


def open_token_corpus(path: str | Path, tokenizer: str | Path | None = None,
                      token_dtype: str | None = None, verify_hashes: bool = False) -> TokenCorpus:
    """Open a corpus folder (seethrough's, or infini-gram's read-only).

    ``tokenizer`` overrides the corpus's own copy and must hash the same as the one it was built with;
    the corpus's own ``tokenizer.json`` is checked against the manifest's hash. Shard files are trusted
    by their size and change stamps when unchanged since their last check; ``verify_hashes`` re-hashes
    every one (what ``corpus verify`` does; see :data:`QUICK_CHECK_NOTE`).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CorpusError(f"corpus {folder} does not exist; build it with `seethrough corpus build`")
    if not (folder / MANIFEST).exists() and any(p.name.startswith("tokenized") for p in folder.iterdir()):
        return _open_foreign(folder, tokenizer, token_dtype)
    manifest = read_manifest(folder)
    check_files(folder, _expected_files(manifest), full=verify_hashes)
    dtype = manifest["token_dtype"]
    if token_dtype and token_dtype != dtype:
        raise CorpusError(f"{folder} holds {dtype} tokens, not {token_dtype}; drop --token-dtype")
    tok: LoadedTokenizer | None = None
    if tokenizer is not None:
        tok = load_tokenizer(tokenizer)
        if tok.sha256 != manifest["tokenizer"]["sha256"]:
            raise TokenizerError(
                f"tokenizer {tok.path} is not the one corpus {folder} was built with (sha256 "
                f"{tok.sha256[:12]} vs {manifest['tokenizer']['sha256'][:12]}); use the corpus's own "
                f"{TOKENIZER_FILE} or rebuild the corpus with this tokenizer"
            )
    else:
        tok = own_tokenizer(folder, manifest)
    shards = [_open_shard(folder, s["shard"], s["first_document"], dtype) for s in manifest["shards"]]
    for shard, entry in zip(shards, manifest["shards"]):
        if shard.documents != entry["documents"]:
            raise CorpusError(f"shard {shard.number} of {folder} has {shard.documents} documents, the manifest "
                              f"says {entry['documents']}; rebuild the corpus")
    return TokenCorpus(folder, manifest, dtype, shards, tok, manifest["tokenizer"]["vocab_size"],
                       hashes_verified=verify_hashes)


def _open_foreign(folder: Path, tokenizer: str | Path | None, token_dtype: str | None) -> TokenCorpus:
    suffixes = _foreign_shard_suffixes(folder)
    dtype = token_dtype or detect_token_dtype(folder, suffixes[0])
    if dtype not in TOKEN_WIDTHS:
        raise CorpusError(f"unknown token type {dtype}; pass --token-dtype uint8, uint16 or uint32")
    shards, first = [], 0
    for number, suffix in enumerate(suffixes):
        shard = _open_shard(folder, number, first, dtype, suffix=suffix)
        shards.append(shard)
        first += shard.documents
    tok = load_tokenizer(tokenizer) if tokenizer is not None else None
    vocab = tok.vocab_size if tok else separator(dtype)
    return TokenCorpus(folder, None, dtype, shards, tok, vocab, foreign=True)


def verify_corpus(path: str | Path) -> dict[str, Any]:
    """Full integrity check of a corpus (without its index): every file re-hashed, the tokenizer included."""
    corpus = open_token_corpus(path)
    files = corpus.verify()
    return {"corpus": str(corpus.path), "corpus_hash": corpus.corpus_hash, "files_checked": files}


__all__ = ["Document", "QUICK_CHECK_NOTE", "Shard", "TokenCorpus", "open_token_corpus", "verify_corpus", "map_file",
           "check_files", "own_tokenizer", "SHARD_KINDS", "shard_file"]
