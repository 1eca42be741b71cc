"""``corpus build``: text collections in, token shards and a manifest out.

The build streams: documents are read and tokenized in batches (``tokenizers`` encodes a batch on
all cores) and appended to the current shard's files, so memory is bounded by the batch, not the
corpus. Everything is written into a temporary folder beside ``out`` and renamed into place at the
end, so an interrupted build never leaves a half-written corpus where a finished one is expected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .._files import atomic_write_json, sha256_file, sha256_json
from .._version import code_version
from ..errors import CorpusError, InputError, TokenizerError
from .layout import (FORMAT, FORMAT_VERSION, MANIFEST, SHARD_KINDS, TOKENIZER_FILE, numpy_dtype,
                     separator, shard_file, token_dtype_for_vocab)
from .sources import OnError, SkippedLines, SourceDocument, expand_inputs, read_documents
from .tokenizer import LoadedTokenizer, load_tokenizer


@dataclass
class CorpusBuildConfig:
    text_field: str = "text"
    """Field (JSON lines) or column (Parquet, datasets) holding the document text; other fields become metadata."""
    shard_tokens: int = 500_000_000
    """Start a new shard once a shard holds this many tokens (documents are never split). Index build
    needs up to about 32 bytes of memory per token of the largest shard (48 to sort it on several
    threads, 22 for the plainest sort; it takes the fastest way that fits ``--memory``)."""
    on_error: OnError = "stop"
    """What to do with an unreadable input line: stop the build (`stop`) or skip it and count it (`skip`)."""
    split: str = "train"
    """Split to read from a Hugging Face dataset."""
    batch_documents: int = 2048
    """Documents tokenized per batch (bounds memory, with ``batch_chars``)."""
    batch_chars: int = 1 << 23
    """A batch ends once its texts hold this many characters (a long document makes a batch of its own)."""
    overwrite: bool = False
    """Replace an existing corpus at the output path (the old one stays until the new one is complete).
    Only a seethrough corpus folder is ever replaced (see :func:`check_output`)."""


@dataclass
class BuildProgress:
    inputs_done: int = 0
    inputs_total: int = 0
    documents: int = 0
    tokens: int = 0


ProgressCallback = Callable[[BuildProgress], None]


class _HashingFile:
    """An append-only file that hashes what it writes (so shards are hashed without a re-read)."""

    def __init__(self, path: Path) -> None:
        self.handle: BinaryIO = open(path, "wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {"bytes": self.size, "sha256": self.digest.hexdigest()}


class ShardWriter:
    """Writes one shard's four files, document after document, hashing as it writes.

    ``temporary``: write under ``.<name>.<temporary>.tmp`` and rename each file into place only in
    :meth:`close` (for builds whose folder is not itself temporary)."""

    def __init__(self, folder: Path, shard: int, token_dtype: str, first_document: int,
                 temporary: str | None = None) -> None:
        self.shard = shard
        self.first_document = first_document
        self.dtype = numpy_dtype(token_dtype)
        self.separator = np.array([separator(token_dtype)], dtype=self.dtype).tobytes()
        self.folder = folder
        self.temporary = temporary
        self.files = {kind: _HashingFile(folder / self._written_name(kind)) for kind in SHARD_KINDS}
        self.documents = 0
        self.tokens = 0

    def _written_name(self, kind: str) -> str:
        name = shard_file(kind, self.shard)
        return f".{name}.{self.temporary}.tmp" if self.temporary else name

    def add_batch(self, docs: list[SourceDocument], ids: list[Sequence[int]]) -> None:
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in ids])
        sep = int(np.frombuffer(self.separator, dtype=self.dtype)[0])
        if flat.size and int(flat.max()) >= sep:
            # cannot happen with the vocabulary size load_tokenizer computes; an id equal to the separator
            # (or wrapped around) would silently corrupt the shard
            raise TokenizerError(f"the tokenizer produced token id {int(flat.max())}, which does not fit in "
                                 f"{self.dtype.name} below the document separator {sep}; use a tokenizer "
                                 "whose ids run from 0 to its vocabulary size")
        flat = flat.astype(self.dtype)
        # Interleave separators and documents in one buffer: doc k starts at its separator.
        starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
        buffer = np.empty(len(flat) + len(ids), dtype=self.dtype)
        is_separator = np.zeros(len(buffer), dtype=bool)
        is_separator[starts] = True
        buffer[is_separator] = np.frombuffer(self.separator, dtype=self.dtype)[0]
        buffer[~is_separator] = flat
        lines = [_metadata_line(d) for d in docs]
        self.add_laid_out(buffer.tobytes(), lengths, b"".join(lines),
                          np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)))

    def add_laid_out(self, tokenized: bytes | memoryview, lengths: np.ndarray, metadata: bytes | memoryview,
                     line_lengths: np.ndarray) -> None:
        """Append documents already in shard layout: ``tokenized`` holds each one's separator and tokens
        (``lengths[k]`` tokens for document k), ``metadata`` their metadata lines (``line_lengths`` bytes each)."""
        width = self.dtype.itemsize
        starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)
        offsets = (self.files["tokenized"].size + starts * width).astype("<u8")
        self.files["tokenized"].write(tokenized)
        self.files["offset"].write(offsets.tobytes())
        line_offsets = self.files["metadata"].size + np.concatenate(([0], np.cumsum(line_lengths)[:-1]))
        self.files["metadata"].write(metadata)
        self.files["metaoff"].write(line_offsets.astype("<u8").tobytes())
        self.documents += len(lengths)
        self.tokens += int(np.sum(lengths))

    def close(self) -> dict[str, Any]:
        """Close the files (renamed into place when written under temporary names); returns the shard's
        manifest entry."""
        files = {}
        for kind, f in self.files.items():
            files[shard_file(kind, self.shard)] = f.close()
            if self.temporary:
                os.replace(self.folder / self._written_name(kind), self.folder / shard_file(kind, self.shard))
        return {"shard": self.shard, "first_document": self.first_document, "documents": self.documents,
                "tokens": self.tokens, "files": files}

    def discard(self) -> None:
        """Close and delete what was written (a shard that will not be finished)."""
        for kind, f in self.files.items():
            f.handle.close()
            (self.folder / self._written_name(kind)).unlink(missing_ok=True)


def documents_that_fit(shard_tokens: int, tokens: int, documents: int, lengths: np.ndarray) -> int:
    """How many of the next documents (``lengths``: their token counts, in order) go into the current
    shard, which holds ``documents`` documents of ``tokens`` tokens: a shard takes documents while they
    keep it within ``shard_tokens`` tokens and it is not yet full (an empty document after a full shard
    opens the next one), and always takes one when empty (documents are never split). Reads only as far
    into ``lengths`` as the answer needs, so a build can ask it with every remaining document."""
    room = shard_tokens - tokens
    if room <= 0 and documents:
        return 0
    window = 1024
    while True:
        filled = np.cumsum(lengths[:window])
        fits = int(np.searchsorted(filled, room, side="right"))
        full = int(np.searchsorted(filled, room, side="left")) + 1  # the document that fills the shard, and none after
        take = min(fits, full)
        if take < len(filled) or window >= len(lengths):
            return min(max(1 if documents == 0 else 0, take), len(lengths))
        window *= 4


def shard_sizes(lengths: np.ndarray, shard_tokens: int) -> list[int]:
    """Documents per shard when documents of ``lengths`` tokens (in corpus order) are cut into shards the
    way :func:`build_corpus` cuts them (:func:`documents_that_fit`)."""
    sizes: list[int] = []
    start, tokens, documents = 0, 0, 0
    while start < len(lengths):
        take = documents_that_fit(shard_tokens, tokens, documents, lengths[start:])
        tokens += int(np.sum(lengths[start:start + take]))
        documents += take
        start += take
        if tokens >= shard_tokens or (take == 0 and start < len(lengths)):
            sizes.append(documents)
            tokens, documents = 0, 0
    if documents:
        sizes.append(documents)
    return sizes


def _metadata_line(doc: SourceDocument) -> bytes:
    """``{"path", "linenum", "metadata"}`` as one JSON line: the bytes ``json.dumps`` writes for that
    object, with the metadata's JSON as serialized when it was read."""
    metadata = doc.metadata_json
    if metadata is None:
        metadata = json.dumps(doc.metadata, ensure_ascii=False, default=str)
    head = json.dumps(doc.path, ensure_ascii=False)
    return f'{{"path": {head}, "linenum": {json.dumps(doc.line)}, "metadata": {metadata}}}\n'.encode("utf-8")


def _batches(sources: list[Path | str], source_names: dict[Path | str, str], config: CorpusBuildConfig,
             skipped: SkippedLines, progress: BuildProgress,
             report: ProgressCallback | None) -> Iterator[list[SourceDocument]]:
    batch: list[SourceDocument] = []
    chars = 0
    for source in sources:
        name = source_names.get(source, str(source))
        for doc in read_documents(source, config.text_field, config.on_error, skipped, config.split):
            doc.path = name  # recorded relative to the input given, so the corpus hash ignores where it lay
            if batch and chars + len(doc.text) > config.batch_chars:
                yield batch
                batch, chars = [], 0
            batch.append(doc)
            chars += len(doc.text)
            if len(batch) >= config.batch_documents:
                yield batch
                batch, chars = [], 0
        progress.inputs_done += 1
        if report:
            report(progress)
    if batch:
        yield batch


def _relative_names(inputs: list[str | Path], sources: list[Path | str]) -> dict[Path | str, str]:
    """Each input file's name as recorded in document metadata: relative to the folder it was found in,
    or its file name when given directly; dataset names as given."""
    names: dict[Path | str, str] = {}
    folders = [Path(i).resolve() for i in inputs if Path(i).is_dir()]
    for source in sources:
        if isinstance(source, str):
            names[source] = source
            continue
        resolved = source.resolve()
        root = next((f for f in folders if resolved.is_relative_to(f) and resolved != f), None)
        names[source] = str(resolved.relative_to(root)) if root else source.name
    return names


def describe_input(source: Path | str, name: str, documents: int) -> dict[str, Any]:
    """An input's entry in the manifest: path, name, documents, and its size and sha256 (a file) or its name
    (a dataset)."""
    entry: dict[str, Any] = {"path": str(source), "name": name, "documents": documents}
    if isinstance(source, Path) and source.is_file():
        entry.update(bytes=source.stat().st_size, sha256=sha256_file(source))
    else:
        entry.update(dataset=str(source))
    return entry


def corpus_hash(tokenizer_sha256: str | None, token_dtype: str, shards: list[dict[str, Any]]) -> str:
    """Content hash of a corpus: tokenizer, token type and every shard file's sha256 (not names or sizes)."""
    return sha256_json({
        "tokenizer": tokenizer_sha256,
        "token_dtype": token_dtype,
        "shards": [[shard["files"][shard_file(kind, shard["shard"])]["sha256"] for kind in SHARD_KINDS]
                   for shard in shards],
    })


def build_corpus(inputs: list[str | Path], tokenizer: str | Path | LoadedTokenizer, out: str | Path,
                 config: CorpusBuildConfig | None = None,
                 progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Tokenize ``inputs`` into a corpus folder at ``out`` and return its manifest.

    Documents are numbered 0.. in input order and encoded without special tokens. Inputs are named
    as :func:`~seethrough.corpus.sources.expand_inputs` describes; ``out`` must pass :func:`check_output`.
    """
    prepared = prepare_build(inputs, tokenizer, out, config)
    out, config = prepared.out, prepared.config
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_work(out)
        work = out.parent / f".{out.name}.building-{os.getpid()}"
        work.mkdir()
    except OSError as error:
        raise CorpusError(f"cannot create {out}: {error.strerror or error}; choose another --out") from None
    try:
        manifest = _build_into(work, prepared, progress)
        replace_folder(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


@dataclass
class PreparedBuild:
    """A corpus build's checked settings and inputs (:func:`prepare_build`)."""
    out: Path
    """The corpus folder to write, resolved."""
    config: CorpusBuildConfig
    sources: list[Path | str]
    """Input files (sorted as :func:`~seethrough.corpus.sources.expand_inputs` lists them) and dataset names."""
    source_names: dict[Path | str, str]
    """Each source's name in document metadata (see :func:`_relative_names`)."""
    tokenizer: LoadedTokenizer
    token_dtype: str


def prepare_build(inputs: list[str | Path], tokenizer: str | Path | LoadedTokenizer, out: str | Path,
                  config: CorpusBuildConfig | None = None) -> PreparedBuild:
    """Every check :func:`build_corpus` makes before reading a document (settings, inputs, ``out``,
    tokenizer), and what they resolve to; one-line errors."""
    config = config or CorpusBuildConfig()
    if config.shard_tokens < 1:
        raise CorpusError(f"--shard-tokens {config.shard_tokens}: a shard holds at least 1 token; pass a positive "
                          "number (the default is 500000000)")
    for flag, value in (("--batch-documents", config.batch_documents), ("--batch-chars", config.batch_chars)):
        if value < 1:
            raise CorpusError(f"{flag} {value}: a batch holds at least 1; pass a positive number")
    if config.on_error not in ("stop", "skip"):
        raise CorpusError(f"--on-error {config.on_error!r}: use stop or skip")
    if not inputs:
        raise InputError("no inputs given; pass one or more files, folders or dataset names")
    out = Path(out)
    check_output(out, list(inputs), config.overwrite)
    sources = expand_inputs(list(inputs))
    source_names = _relative_names(list(inputs), sources)
    tok = tokenizer if isinstance(tokenizer, LoadedTokenizer) else load_tokenizer(tokenizer)
    # out resolved: a name of its own even for "sub/.."-style paths: the temporary folder sits beside it
    return PreparedBuild(out.resolve(), config, sources, source_names, tok, token_dtype_for_vocab(tok.vocab_size))


_CORPUS_ENTRY = re.compile(
    r"manifest\.json|tokenizer\.json|index\.json|\.verified\.json|(tokenized|offset|metadata|metaoff|table)\.\d+"
    r"|\..+\.tmp")
"""Names a corpus folder holds: its files, the index's, and the temporary names of their atomic writes."""


def check_output(out: Path, inputs: list[str | Path], overwrite: bool) -> None:
    """Refuse an ``out`` whose writing would destroy or tangle something (one-line :class:`CorpusError`):

    - the current folder or a folder above it;
    - a folder that holds an input, or lies inside an input folder (its own files would be read as
      input by the next build of that folder);
    - an existing path without ``overwrite``; with it, anything but a seethrough corpus folder (its
      ``manifest.json`` readable, and no files a corpus does not have) or an empty folder: a plain
      file, a symbolic link, an unrelated folder are never replaced.
    """
    target = out.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise CorpusError(f"--out {out} is the current folder or holds it; a corpus is written as a folder of its "
                          "own: pass a new folder name, such as --out corpus")
    for item in inputs:
        given = Path(item)
        if isinstance(item, str) and not given.exists():
            continue  # a dataset name; expand_inputs judges it
        source = given.resolve()
        if source == target or source.is_relative_to(target):
            raise CorpusError(f"--out {out} holds the input {item}; writing the corpus there would replace it: "
                              "choose another --out")
        if source.is_dir() and target.is_relative_to(source):
            raise CorpusError(f"--out {out} is inside the input folder {item}: the corpus's own files would be read "
                              "as input by the next build of that folder; choose --out outside it")
    if not (out.exists() or out.is_symlink()):
        return
    if not overwrite:
        raise CorpusError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    refuse = "--overwrite replaces only a seethrough corpus folder"
    if out.is_symlink():
        raise CorpusError(f"--out {out} is a symbolic link; {refuse}: pass the folder it points to, {target}")
    if not out.is_dir():
        raise CorpusError(f"--out {out} is a file, not a corpus folder; {refuse}: choose another --out")
    try:
        entries = sorted(p.name for p in out.iterdir())
    except OSError as error:
        raise CorpusError(f"cannot read --out {out}: {error.strerror or error}; choose another --out") from None
    if not entries:
        return
    if not _is_corpus_manifest(out / MANIFEST):
        raise CorpusError(f"--out {out} exists and is not a seethrough corpus (no readable {MANIFEST} of one); "
                          f"{refuse}: choose another --out, or move the folder away yourself")
    foreign = [name for name in entries if not _CORPUS_ENTRY.fullmatch(name)]
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise CorpusError(f"corpus {out} also holds {listed}, which --overwrite would delete; move them out of it "
                          "or choose another --out")


def _is_corpus_manifest(path: Path) -> bool:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def remove_stale_work(out: Path) -> None:
    """Remove the temporary folders of builds into ``out`` that were interrupted (their process is gone);
    a build still running keeps its own."""
    for stale in out.parent.glob(f".{out.name}.building-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _process_alive(int(pid)):
            continue
        shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _build_into(work: Path, prepared: PreparedBuild, report: ProgressCallback | None) -> dict[str, Any]:
    config, tok, token_dtype = prepared.config, prepared.tokenizer, prepared.token_dtype
    skipped = SkippedLines()
    progress = BuildProgress(inputs_total=len(prepared.sources))
    shards: list[dict[str, Any]] = []
    documents_per_input: dict[str, int] = {}
    writer = ShardWriter(work, 0, token_dtype, 0)
    for batch in _batches(prepared.sources, prepared.source_names, config, skipped, progress, report):
        ids = tok.encode_documents([d.text for d in batch])
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        start = 0
        while start < len(batch):
            take = documents_that_fit(config.shard_tokens, writer.tokens, writer.documents, lengths[start:])
            if take:
                writer.add_batch(batch[start:start + take], ids[start:start + take])
                start += take
            if writer.tokens >= config.shard_tokens or (take == 0 and start < len(batch)):
                shards.append(writer.close())
                writer = ShardWriter(work, len(shards), token_dtype, progress.documents + start)
        for doc in batch:
            documents_per_input[doc.path] = documents_per_input.get(doc.path, 0) + 1
        progress.documents += len(batch)
        progress.tokens += int(lengths.sum())
        if report:
            report(progress)
    if writer.documents:
        shards.append(writer.close())
    else:
        writer.discard()
    return finish_build(work, prepared, shards, documents_per_input, skipped)


def finish_build(work: Path, prepared: PreparedBuild, shards: list[dict[str, Any]],
                 documents_per_input: dict[str, int], skipped: SkippedLines,
                 described: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Copy the tokenizer into ``work`` (the shards written there) and write its manifest; returns it.
    ``described``: the inputs' entries (:func:`describe_input`) when already made, else made here."""
    tok, token_dtype = prepared.tokenizer, prepared.token_dtype
    documents = sum(shard["documents"] for shard in shards)
    if documents == 0:
        detail = f" ({skipped.count} lines skipped, first: {skipped.examples[0]})" if skipped.count else ""
        raise InputError(f"the inputs hold no documents{detail}; check the inputs and --text-field")
    shutil.copyfile(tok.path, work / TOKENIZER_FILE)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "code_version": code_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "corpus_hash": corpus_hash(tok.sha256, token_dtype, shards),
        "tokenizer": {"sha256": tok.sha256, "vocab_size": tok.vocab_size, "file": TOKENIZER_FILE,
                      "source": str(tok.path)},
        "token_dtype": token_dtype,
        "separator": separator(token_dtype),
        "config": asdict(prepared.config),
        "counts": {"documents": documents, "tokens": sum(shard["tokens"] for shard in shards), "shards": len(shards),
                   "inputs": len(prepared.sources), "skipped_lines": skipped.count},
        "skipped_examples": skipped.examples,
        "inputs": described or [describe_input(source, prepared.source_names[source],
                                               documents_per_input.get(prepared.source_names[source], 0))
                                for source in prepared.sources],
        "shards": shards,
    }
    atomic_write_json(work / MANIFEST, manifest)
    return manifest


def write_source_run(source: Path | str, prepared: PreparedBuild, folder: Path, number: int,
                     temporary: str | None = None) -> dict[str, Any]:
    """Read and tokenize one input as :func:`build_corpus` does and write its documents, in order, as one
    shard numbered ``number`` in ``folder`` (what a cluster build cuts into the corpus's shards, see
    ``seethrough.distributed``). Returns that shard's entry plus ``skipped`` (count and examples) and
    ``input`` (the input's manifest entry, :func:`describe_input`)."""
    skipped = SkippedLines()
    progress = BuildProgress(inputs_total=1)
    writer = ShardWriter(folder, number, prepared.token_dtype, 0, temporary=temporary)
    try:
        for batch in _batches([source], prepared.source_names, prepared.config, skipped, progress, None):
            writer.add_batch(batch, prepared.tokenizer.encode_documents([d.text for d in batch]))
    except BaseException:
        writer.discard()
        raise
    entry = writer.close()
    entry["skipped"] = {"count": skipped.count, "examples": skipped.examples}
    entry["input"] = describe_input(source, prepared.source_names[source], entry["documents"])
    return entry


def replace_folder(new: Path, target: Path) -> None:
    """Rename the finished folder ``new`` to ``target``, moving an existing ``target`` aside first."""
    if not target.exists():
        os.replace(new, target)
        return
    # a fresh name each time: a folder left by a build killed between the two renames is never in the way
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-{os.getpid()}-", dir=target.parent))
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
