"""``index build``: one suffix array per shard, in infini-gram's ``table`` format.

Each table is what libdivsufsort (via pydivsufsort) gives for the shard's little-endian token
file, keeping the offsets that fall on token boundaries: exactly the table infini-gram's own
indexer writes (same order, same :func:`pointer_bytes` per entry, ``ceil(log2(file bytes) / 8)``),
so either engine reads it. ``suffix_sort`` gets that table faster (fewer bytes sorted, large shards
on every core).

Shards are built one after another. Each table is written under a temporary name and renamed, and
``index.json`` is rewritten after every shard, so an interrupted build keeps the finished shards
and a rerun builds only what is missing.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write_json, sha256_file
from .._version import code_version
from ..corpus.layout import INDEX_MANIFEST
from ..corpus.store import TokenCorpus, check_files, open_token_corpus
from ..errors import CorpusError, IndexNotBuiltError
from .suffix_sort import sort_suffixes

INDEX_FORMAT = "seethrough.index"


def pointer_bytes(file_bytes: int) -> int:
    """Bytes per suffix-array entry of a shard whose token file has ``file_bytes`` bytes, as infini-gram
    computes it: the fewest whole bytes that hold any byte offset into the file. Called ``pointer_bytes``
    throughout the index (and in ``index.json``)."""
    return max(1, math.ceil(math.log2(file_bytes) / 8)) if file_bytes > 1 else 1


def table_name(shard: int) -> str:
    return f"table.{shard}"


def parse_memory(text: str | int | None) -> int:
    """``"8G"``, ``"512M"``, ``"2.5GiB"`` or a byte count; None means 80% of physical memory."""
    if text is None:
        return int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?B)?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise CorpusError(f"--memory {text!r} is not a size; write it like 8G or 512M")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[match.group(2).upper()]
    return int(float(match.group(1)) * scale)


def shard_memory_needed(file_bytes: int, width: int, threads: int = 1, encoded: bool = True) -> int:
    """Peak bytes to sort one shard (upper bounds; see ``suffix_sort``): the token file, what is
    sorted (the file, or its encoding of at most ``file_bytes`` bytes), its suffix array (4 or 8
    bytes per byte sorted) and the token each entry stands for, the packed table, and on several
    threads the parts' positions and merge keys (16 bytes per token)."""
    sa_entry = 4 if file_bytes < 2**31 else 8
    table = (file_bytes // width) * pointer_bytes(file_bytes)
    if encoded:
        need = file_bytes * (2 + 3 * sa_entry)
    else:
        need = file_bytes * (5 + sa_entry)
    if threads > 1:
        need += 16 * file_bytes // width
    return need + table


@dataclass
class IndexProgress:
    shards_done: int
    shards_total: int
    seconds: float


def read_index_manifest(folder: Path) -> dict[str, Any] | None:
    import json

    path = folder / INDEX_MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        raise CorpusError(f"{path} is unreadable; rerun `seethrough index build --force`") from None
    if manifest.get("format") != INDEX_FORMAT:
        raise CorpusError(f"{path} is not a seethrough index manifest; rerun `seethrough index build --force`")
    return manifest


def check_index(corpus: TokenCorpus, full: bool = False) -> dict[str, Any]:
    """The index manifest of ``corpus``, after checking it belongs to this corpus and its tables are intact."""
    manifest = read_index_manifest(corpus.path)
    if manifest is None or len(manifest["tables"]) < len(corpus.shards):
        raise IndexNotBuiltError(
            f"{corpus.path} has no complete index; run `seethrough index build {corpus.path}`"
        )
    if manifest["corpus_hash"] != corpus.corpus_hash:
        raise IndexNotBuiltError(
            f"the index in {corpus.path} was built on another corpus (hash {manifest['corpus_hash'][:12]}, "
            f"corpus {corpus.corpus_hash[:12]}); rebuild it with `seethrough index build --force {corpus.path}`"
        )
    check_files(corpus.path, manifest["tables"], full=full)
    return manifest


def build_index(corpus_path: str | Path, memory: str | int | None = None, force: bool = False,
                progress: Callable[[IndexProgress], None] | None = None,
                threads: int | None = None) -> dict[str, Any]:
    """Build (or finish building) the suffix arrays of a seethrough corpus; returns ``index.json``.

    ``threads``: sorting threads per shard (default: one per core); the tables are the same for any number.
    """
    if threads is not None and threads < 1:
        raise CorpusError(f"--threads {threads} must be at least 1")
    from .._threads import available_cores

    threads = threads or available_cores()  # a build is a dedicated job: one sorting thread per core
    corpus = open_token_corpus(corpus_path)
    if corpus.foreign:
        raise CorpusError(f"{corpus.path} is an infini-gram folder (read-only); its tables come from infini-gram")
    budget = parse_memory(memory)
    folder = corpus.path
    existing = None if force else read_index_manifest(folder)
    if existing and existing.get("corpus_hash") != corpus.corpus_hash:
        existing = None  # tables of another corpus: rebuild every shard
    tables: dict[str, dict[str, Any]] = dict(existing["tables"]) if existing else {}
    for stale in folder.glob(".table.*.tmp"):
        stale.unlink()
    started = time.perf_counter()
    width = corpus.shards[0].tokens.itemsize
    for done, shard in enumerate(corpus.shards):
        name = table_name(shard.number)
        if name in tables:
            try:
                check_files(folder, {name: tables[name]})
                if progress:
                    progress(IndexProgress(done + 1, len(corpus.shards), time.perf_counter() - started))
                continue
            except CorpusError:
                del tables[name]
        file_bytes = shard.positions * width
        shard_threads, encoded, _ = choose_sort(shard.number, file_bytes, width, threads, budget)
        tables[name] = build_table(folder, shard.number, file_bytes, width, shard_threads, encoded)
        write_index_manifest(folder, corpus.corpus_hash, tables)
        if progress:
            progress(IndexProgress(done + 1, len(corpus.shards), time.perf_counter() - started))
    return write_index_manifest(folder, corpus.corpus_hash, tables)


def choose_sort(shard: int, file_bytes: int, width: int, threads: int, budget: int) -> tuple[int, bool, int]:
    """The fastest way to sort shard ``shard`` (token file of ``file_bytes`` bytes) that fits ``budget``
    bytes: (threads, encoded, bytes needed); parts on every thread, one encoded sort, one raw sort.
    Raises when none fits."""
    ways = [(threads, True), (1, True), (1, False)] if threads > 1 else [(1, True), (1, False)]
    fitting = [w for w in ways if shard_memory_needed(file_bytes, width, *w) <= budget]
    shard_threads, encoded = fitting[0] if fitting else ways[-1]
    need = shard_memory_needed(file_bytes, width, shard_threads, encoded)
    if need > budget:
        raise CorpusError(
            f"shard {shard} needs about {need / 2**30:.1f} GiB to index, over --memory "
            f"{budget / 2**30:.1f} GiB; raise --memory or rebuild the corpus with a smaller --shard-tokens"
        )
    return shard_threads, encoded, need


def build_table(folder: Path, shard: int, file_bytes: int, width: int, threads: int, encoded: bool,
                temporary: str | None = None) -> dict[str, Any]:
    """Sort shard ``shard`` of the corpus in ``folder`` and write its ``table.N``; returns its entry in
    ``index.json`` (bytes, sha256 of the file as written, pointer bytes). The table is written under the
    name ``temporary`` (default ``.table.N.tmp``; it must start with ``.table.`` and end with ``.tmp``, so a
    later build removes it if this one dies) and renamed into place when complete."""
    name = table_name(shard)
    tmp = folder / (temporary or f".{name}.tmp")
    data = np.fromfile(folder / f"tokenized.{shard}", dtype=np.uint8)
    if data.shape[0] != file_bytes:
        raise CorpusError(f"shard {shard}: the token file has {data.shape[0]} bytes, the manifest says "
                          f"{file_bytes}; the token file is corrupted, rebuild the corpus")
    try:
        packed = sort_suffixes(data, width, pointer_bytes(file_bytes), threads, encoded=encoded)
    except ValueError as error:
        raise CorpusError(f"shard {shard}: {error}; the token file is corrupted, rebuild the corpus") from None
    del data
    try:
        packed.tofile(tmp)
        del packed
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name),
            "pointer_bytes": pointer_bytes(file_bytes)}


def write_index_manifest(folder: Path, corpus_hash: str | None, tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write ``index.json`` (atomically) listing ``tables`` (name -> entry), in shard order; returns it."""
    manifest = {
        "format": INDEX_FORMAT,
        "format_version": 1,
        "corpus_hash": corpus_hash,
        "code_version": code_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "suffix_sort": "libdivsufsort (pydivsufsort), byte order of little-endian tokens",
        "tables": dict(sorted(tables.items(), key=lambda kv: int(kv[0].split(".")[1]))),
    }
    atomic_write_json(folder / INDEX_MANIFEST, manifest)
    return manifest
