"""``corpus build --ray``: inputs tokenized in parallel on the cluster, shards assembled by tasks, the
manifest written by the driver alone after checking every shard's size and hash.

1. One task per input reads and tokenizes it as the local build does (``write_source_run``: the
   local reader, batches and shard writer) into a run: the input's documents in shard layout.
2. The driver cuts the documents into shards by the local build's own rule (``shard_sizes``, from the
   runs' document lengths), so every shard holds the documents it holds in a local build.
3. One task per shard copies its documents out of the runs with the local shard writer, under
   temporary names renamed when complete; one task per shard re-reads and hashes what was written.
4. The driver writes the manifest (``finish_build``, the local build's) and renames the folder into
   place. The shard files and the manifest are the local build's, but for its ``created`` time.

The work folder ``.<out>.ray-<key>`` sits beside ``out`` on storage every node sees; ``key`` names
the inputs (paths, sizes, change times), tokenizer and settings, so a rerun of the same build after a
crash or Ctrl-C finds the runs and shards already written and does only what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write_json, sha256_json
from .._version import code_version
from ..corpus.build import (BuildProgress, CorpusBuildConfig, PreparedBuild, ProgressCallback, ShardWriter,
                            finish_build, prepare_build, replace_folder, shard_sizes, write_source_run)
from ..corpus.layout import SHARD_KINDS, TOKEN_WIDTHS, shard_file
from ..corpus.sources import SkippedLines
from ..corpus.tokenizer import LoadedTokenizer
from ..errors import CorpusError, SeethroughError
from .cluster import connect, gather, remote, require_ray
from .index_build import RETRIES, _verify_shard_task

COPY_BYTES = 64 << 20
"""Token bytes an assembly task copies at a time (bounds its memory whatever the shard size)."""


def _work_key(prepared: PreparedBuild) -> str:
    """What makes two builds the same build: inputs (as found, with size and change time), tokenizer,
    settings and code. A rerun with any of them changed starts afresh."""
    inputs = []
    for source in prepared.sources:
        if isinstance(source, Path):
            stat = source.stat()
            inputs.append([str(source.resolve()), stat.st_size, stat.st_mtime_ns])
        else:
            inputs.append([source])
    config = {k: v for k, v in vars(prepared.config).items() if k != "overwrite"}
    return sha256_json({"inputs": inputs, "tokenizer": prepared.tokenizer.sha256, "config": config,
                        "code": code_version()})[:16]


def _tokenize_task(source: Path | str, prepared: PreparedBuild, runs: str, number: int) -> dict[str, Any]:
    """Runs on a node: one input tokenized into run ``number`` (see ``write_source_run``)."""
    # one task per CPU: the tokenizer's own thread pool would otherwise take every core of the node
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    return write_source_run(source, prepared, Path(runs), number, temporary=uuid.uuid4().hex[:12])


def _run_lengths(runs: Path, run: dict[str, Any], width: int) -> np.ndarray:
    """Token count of every document of a run, from its offsets."""
    number = run["shard"]
    offsets = np.fromfile(runs / shard_file("offset", number), dtype="<u8").astype(np.int64)
    ends = np.append(offsets[1:], run["files"][shard_file("tokenized", number)]["bytes"])
    return (ends - offsets) // width - 1


def _assemble_task(work: str, runs: str, pieces: list[tuple[int, int, int]], shard: int, first_document: int,
                   token_dtype: str) -> dict[str, Any]:
    """Runs on a node: shard ``shard`` written from ``pieces`` (run, first document in it, documents),
    by the local build's shard writer; returns its manifest entry."""
    width = TOKEN_WIDTHS[token_dtype]
    folder, source = Path(work), Path(runs)
    for kind in SHARD_KINDS:
        for stale in folder.glob(f".{shard_file(kind, shard)}.*.tmp"):
            stale.unlink(missing_ok=True)  # an earlier attempt's, whose worker or node died
    writer = ShardWriter(folder, shard, token_dtype, first_document, temporary=uuid.uuid4().hex[:12])
    try:
        for run, first, count in pieces:
            offsets = np.fromfile(source / shard_file("offset", run), dtype="<u8").astype(np.int64)
            metaoff = np.fromfile(source / shard_file("metaoff", run), dtype="<u8").astype(np.int64)
            token_end = os.path.getsize(source / shard_file("tokenized", run))
            meta_end = os.path.getsize(source / shard_file("metadata", run))
            starts = np.append(offsets, token_end)
            lines = np.append(metaoff, meta_end)
            with open(source / shard_file("tokenized", run), "rb") as tokens, \
                    open(source / shard_file("metadata", run), "rb") as metadata:
                doc = first
                while doc < first + count:
                    # as many documents as fit in COPY_BYTES, at least one
                    stop = int(np.searchsorted(starts, starts[doc] + COPY_BYTES, side="right")) - 1
                    stop = min(max(stop, doc + 1), first + count)
                    tokens.seek(int(starts[doc]))
                    metadata.seek(int(lines[doc]))
                    writer.add_laid_out(tokens.read(int(starts[stop] - starts[doc])),
                                        (np.diff(starts[doc:stop + 1]) // width - 1).astype(np.int64),
                                        metadata.read(int(lines[stop] - lines[doc])), np.diff(lines[doc:stop + 1]))
                    doc = stop
    except BaseException:
        writer.discard()
        raise
    return writer.close()


def _lock(work: Path) -> None:
    """Claim the work folder for this driver; refuse while another live driver on this machine holds it."""
    lock = work / "driver.json"
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        holder = None
    if holder and holder.get("host") == socket.gethostname() and holder.get("pid") != os.getpid():
        try:
            os.kill(int(holder["pid"]), 0)
        except (ProcessLookupError, ValueError, TypeError):
            pass
        except PermissionError:
            raise CorpusError(f"another build into the same corpus is running (process {holder['pid']}); wait for "
                              "it to finish or stop it") from None
        else:
            raise CorpusError(f"another build into the same corpus is running (process {holder['pid']}); wait for "
                              "it to finish or stop it")
    atomic_write_json(lock, {"host": socket.gethostname(), "pid": os.getpid()})


def _done(folder: Path, record: Path) -> dict[str, Any] | None:
    """A unit's record when it and all its files are there with their recorded sizes, else None."""
    try:
        entry = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    try:
        if all(os.path.getsize(folder / name) == f["bytes"] for name, f in entry["files"].items()):
            return entry
    except (OSError, KeyError, TypeError):
        return None
    return None


def build_corpus_on_ray(inputs: list[str | Path], tokenizer: str | Path | LoadedTokenizer, out: str | Path,
                        config: CorpusBuildConfig | None = None, ray: str = "auto",
                        progress: ProgressCallback | None = None) -> dict[str, Any]:
    """:func:`seethrough.corpus.build_corpus` on the Ray cluster at ``ray``: the same checks, the same
    shard files and manifest (but ``created``). Inputs, tokenizer and ``out`` must be on storage every
    node sees at the same paths. Parallel across inputs (one task per input file or dataset), then
    across shards; a rerun after a crash resumes (see the module's notes)."""
    require_ray()  # before anything else: without Ray nothing here can run
    prepared = prepare_build(inputs, tokenizer, out, config)
    out = prepared.out
    width = TOKEN_WIDTHS[prepared.token_dtype]
    work = out.parent / f".{out.name}.ray-{_work_key(prepared)}"
    runs, records = work / "runs", work / "records"
    try:
        for folder in (runs, records):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CorpusError(f"cannot create {out}: {error.strerror or error}; choose another --out") from None
    _lock(work)
    # the tasks read absolute paths (their working folder is not this process's); the manifest keeps the given ones
    absolute = {source: source.resolve() if isinstance(source, Path) else source for source in prepared.sources}
    remote_prepared = replace(prepared, sources=list(absolute.values()),
                              source_names={absolute[s]: name for s, name in prepared.source_names.items()})
    state = BuildProgress(inputs_total=len(prepared.sources))
    try:
        with connect(ray):
            run_entries = _tokenize(prepared, remote_prepared, absolute, runs, records, state, progress)
            lengths = np.concatenate([_run_lengths(runs, run, width) for run in run_entries])
            shards = _assemble(work, runs, records, run_entries, shard_sizes(lengths, prepared.config.shard_tokens),
                               prepared.token_dtype)
            check = remote(_verify_shard_task, num_cpus=1, max_retries=RETRIES)
            refs = [check.options(scheduling_strategy="SPREAD").remote(str(work), shard["files"]) for shard in shards]
            gather(refs, unit=lambda i: f"shard {i}'s check", error=CorpusError)  # re-read: size and sha256
        for shard in shards:  # and the sizes as this machine sees them
            for name, entry in shard["files"].items():
                seen = (work / name).stat().st_size if (work / name).exists() else None
                if seen != entry["bytes"]:
                    raise CorpusError(f"{work / name} has {seen if seen is not None else 'no'} bytes here, its writer "
                                      f"wrote {entry['bytes']}: the nodes do not share storage at {out.parent}; put "
                                      "--out on storage every node sees at the same path")
        skipped = SkippedLines()
        documents_per_input: dict[str, int] = {}
        described = []
        for source, run in zip(prepared.sources, run_entries):
            skipped.count += run["skipped"]["count"]
            skipped.examples.extend(run["skipped"]["examples"][:max(0, 20 - len(skipped.examples))])
            described.append({**run["input"], "path": str(source)})
            documents_per_input[run["input"]["name"]] = documents_per_input.get(run["input"]["name"], 0) + run["documents"]
        manifest = finish_build(work, prepared, shards, documents_per_input, skipped, described)
    except SeethroughError:
        shutil.rmtree(work, ignore_errors=True)  # bad input or settings: nothing worth resuming
        raise
    shutil.rmtree(runs)
    shutil.rmtree(records)
    (work / "driver.json").unlink()
    replace_folder(work, out)
    return manifest


def _tokenize(prepared: PreparedBuild, remote_prepared: PreparedBuild, absolute: dict[Path | str, Path | str],
              runs: Path, records: Path, state: BuildProgress, progress: ProgressCallback | None) -> list[dict[str, Any]]:
    """Every input's run, tokenized by one task per input not already done; in input order."""
    entries: list[dict[str, Any] | None] = [_done(runs, records / f"run.{k}.json") for k in range(len(prepared.sources))]
    todo = [k for k, entry in enumerate(entries) if entry is None]
    for stale in runs.glob(".*.tmp"):
        stale.unlink(missing_ok=True)

    def record(i: int, entry: dict[str, Any]) -> None:
        k = todo[i]
        atomic_write_json(records / f"run.{k}.json", entry)
        entries[k] = entry
        report(entry)

    def report(entry: dict[str, Any]) -> None:
        state.inputs_done += 1
        state.documents += entry["documents"]
        state.tokens += entry["tokens"]
        if progress:
            progress(state)

    for entry in entries:
        if entry is not None:
            report(entry)
    tokenize = remote(_tokenize_task, num_cpus=1, max_retries=RETRIES)
    shared = remote_prepared
    refs = [tokenize.remote(absolute[prepared.sources[k]], shared, str(runs), k) for k in todo]
    gather(refs, unit=lambda i: f"input {prepared.sources[todo[i]]}", on_result=record, error=CorpusError)
    return [entry for entry in entries if entry is not None]


def _pieces(run_entries: list[dict[str, Any]], first: int, count: int) -> list[tuple[int, int, int]]:
    """The documents [first, first + count) of the corpus as (run, first document in the run, documents)."""
    pieces, start = [], 0
    for run in run_entries:
        end = start + run["documents"]
        lo, hi = max(first, start), min(first + count, end)
        if lo < hi:
            pieces.append((run["shard"], lo - start, hi - lo))
        start = end
    return pieces


def _assemble(work: Path, runs: Path, records: Path, run_entries: list[dict[str, Any]], sizes: list[int],
              token_dtype: str) -> list[dict[str, Any]]:
    """Every shard, written by one task per shard not already done; their manifest entries in order."""
    firsts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(int).tolist() if sizes else []
    entries: list[dict[str, Any] | None] = []
    for shard, (first, count) in enumerate(zip(firsts, sizes)):
        entry = _done(work, records / f"shard.{shard}.json")
        same = entry is not None and entry["first_document"] == first and entry["documents"] == count
        entries.append(entry if same else None)
    todo = [s for s, entry in enumerate(entries) if entry is None]
    assemble = remote(_assemble_task, num_cpus=1, max_retries=RETRIES)
    refs = [assemble.options(scheduling_strategy="SPREAD").remote(
        str(work), str(runs), _pieces(run_entries, firsts[s], sizes[s]), s, firsts[s], token_dtype) for s in todo]

    def record(i: int, entry: dict[str, Any]) -> None:
        atomic_write_json(records / f"shard.{todo[i]}.json", entry)
        entries[todo[i]] = entry

    gather(refs, unit=lambda i: f"shard {todo[i]}", on_result=record, error=CorpusError)
    for stale in work.glob(".*.tmp"):  # left by attempts whose worker or node died
        stale.unlink(missing_ok=True)
    # shards past the last one of this cut (a rerun whose cut changed) must not stay in the corpus
    for kind in SHARD_KINDS:
        for path in work.glob(f"{kind}.*"):
            if path.name.split(".")[1].isdigit() and int(path.name.split(".")[1]) >= len(sizes):
                path.unlink()
    return [entry for entry in entries if entry is not None]
