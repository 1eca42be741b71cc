"""``index build --ray`` and ``corpus verify --ray``: one task per shard on the cluster.

Each index task runs :func:`seethrough.index.build.build_table`, the function the local build runs
for a shard, so a table is byte for byte the local build's; the driver alone writes ``index.json``
(with :func:`~seethrough.index.build.write_index_manifest`), after every shard as the local build
does, so a build stopped anywhere resumes at the first shard not recorded.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..corpus.layout import INDEX_MANIFEST, SHARD_KINDS, TOKENIZER_FILE, read_manifest, shard_file
from ..corpus.store import check_files, open_token_corpus, own_tokenizer
from ..errors import CorpusError, IndexNotBuiltError
from ..index.build import (IndexProgress, build_table, choose_sort, parse_memory, read_index_manifest,
                           shard_memory_needed, table_name, write_index_manifest)
from .cluster import connect, gather, on_node, remote, require_ray
from .placement import place_shards, probe_nodes, shard_holders

RETRIES = 3
"""Ray retries a task whose worker or node died this many times (application errors are not retried)."""


@dataclass
class ShardTask:
    """What one shard's index task asks of its node."""
    shard: int
    threads: int
    """Sorting threads: requested from Ray as CPUs and passed into the sort (Ray does not limit threads)."""
    encoded: bool
    memory: int
    """Bytes the sort needs (``shard_memory_needed``), requested from Ray so a node runs only what fits."""
    node: str | None
    """The node that holds the shard (node-local storage), or None: anywhere (shared storage)."""


@dataclass
class RayIndexBuild:
    """What ``build_index_on_ray`` did: the index manifest (the local build's, but for ``created``)."""
    manifest: dict[str, Any]
    tasks: list[ShardTask]
    """The shards built now (not those already indexed)."""
    built_on: dict[int, str] = field(default_factory=dict)
    """shard -> id of the node whose task wrote its table."""
    storage: str = "shared"
    """``shared`` (every node sees every shard) or ``node-local``."""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"tables": len(self.manifest["tables"]), "built": len(self.tasks), "storage": self.storage,
                "built_on": {str(k): v for k, v in self.built_on.items()}, "seconds": round(self.seconds, 3),
                "bytes": sum(t["bytes"] for t in self.manifest["tables"].values())}


def _shard_files(manifest: dict[str, Any], shard: int) -> dict[str, dict[str, Any]]:
    entry = next(s for s in manifest["shards"] if s["shard"] == shard)
    return {name: entry["files"][name] for name in (shard_file(kind, shard) for kind in SHARD_KINDS)}


def _open_manifest(folder: Path, sees_every_file: bool) -> dict[str, Any]:
    """The corpus manifest, after the local build's checks where this machine sees every file (the corpus
    opened as the local build opens it), else the manifest alone (each task checks its own shard)."""
    if sees_every_file:
        corpus = open_token_corpus(folder)
        if corpus.foreign:
            raise CorpusError(f"{folder} is an infini-gram folder (read-only); its tables come from infini-gram")
        assert corpus.manifest is not None
        return corpus.manifest
    if not (folder / "manifest.json").exists() and folder.is_dir() and any(p.name.startswith("tokenized")
                                                                         for p in folder.iterdir()):
        raise CorpusError(f"{folder} is an infini-gram folder (read-only); its tables come from infini-gram")
    return read_manifest(folder)


def _sees_every_file(folder: Path) -> bool:
    try:
        manifest = read_manifest(folder)
    except CorpusError:
        return True  # let the local open name what is wrong
    return all((folder / name).exists() for shard in manifest["shards"] for name in shard["files"])


def _build_table_task(folder: str, task: ShardTask, file_bytes: int, width: int,
                      corpus_files: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Runs on a node: check the shard's files, sort it, write ``table.N``; returns its index entry and the node."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    path = Path(folder)
    check_files(path, corpus_files)  # sizes, and sha256 where a file changed since its last check
    for stale in path.glob(f".{table_name(task.shard)}.*.tmp"):
        stale.unlink(missing_ok=True)  # an earlier attempt's, on a worker or node that died
    # the temporary name says which node works on the shard while it does (a listing shows the build)
    temporary = f".{table_name(task.shard)}.{node[:12]}-{uuid.uuid4().hex[:8]}.tmp"
    (path / temporary).write_text(f"{node} {os.getpid()}\n")  # until the table is written over it
    entry = build_table(path, task.shard, file_bytes, width, task.threads, task.encoded, temporary=temporary)
    return entry, node


def plan_index_tasks(manifest: dict[str, Any], shards: list[int], threads: int, budget: int | None,
                     largest_node: int, placement: dict[int, str | None]) -> list[ShardTask]:
    """One task per shard: the way to sort it that fits ``budget`` (--memory) or, without one, the
    largest node's memory, and the node it runs on."""
    width = {"uint8": 1, "uint16": 2, "uint32": 4}[manifest["token_dtype"]]
    entries = {s["shard"]: s for s in manifest["shards"]}
    tasks = []
    for shard in shards:
        file_bytes = entries[shard]["files"][shard_file("tokenized", shard)]["bytes"]
        if budget is None:
            leanest = shard_memory_needed(file_bytes, width, 1, encoded=False)
            if leanest > largest_node:
                raise CorpusError(
                    f"shard {shard} needs about {leanest / 2**30:.1f} GiB to index, more than any node of the "
                    f"cluster offers Ray (largest {largest_node / 2**30:.1f} GiB); add larger nodes or rebuild "
                    "the corpus with a smaller --shard-tokens")
        shard_threads, encoded, need = choose_sort(shard, file_bytes, width, threads,
                                                   largest_node if budget is None else budget)
        tasks.append(ShardTask(shard, shard_threads, encoded, need, placement.get(shard)))
    return tasks


def build_index_on_ray(corpus_path: str | Path, ray: str, memory: str | int | None = None, force: bool = False,
                       threads: int | None = None, progress: Callable[[IndexProgress], None] | None = None,
                       placement: dict[int, str] | None = None) -> RayIndexBuild:
    """:func:`seethrough.index.build_index` on the Ray cluster at ``ray``: one task per shard not yet
    indexed, each requesting the memory its sort needs and ``threads`` CPUs (default 1: many shards
    sort side by side; the tables do not depend on it), retried by Ray if its worker or node dies.

    ``memory``: the most one shard's sort may use (default: the largest node's memory as Ray counts it).
    ``placement``: shard -> node id, to choose nodes yourself; by default shards go anywhere on shared
    storage and to a node that holds them on node-local storage (see :mod:`.placement`)."""
    require_ray()  # before anything else: without Ray nothing here can run
    if threads is not None and threads < 1:
        raise CorpusError(f"--threads {threads} must be at least 1")
    threads = threads or 1
    folder = Path(corpus_path)
    if not folder.is_dir():
        raise CorpusError(f"corpus {corpus_path} does not exist; build it with `seethrough corpus build`")
    folder = folder.resolve()  # the tasks' working folder is not this process's
    sees_all = _sees_every_file(folder)
    manifest = _open_manifest(folder, sees_all)
    budget = parse_memory(memory) if memory is not None else None
    started = time.perf_counter()
    with connect(ray):
        existing = None if force else read_index_manifest(folder)
        if existing and existing.get("corpus_hash") != manifest["corpus_hash"]:
            existing = None  # tables of another corpus: rebuild every shard
        tables: dict[str, dict[str, Any]] = dict(existing["tables"]) if existing else {}
        probes = probe_nodes(folder, manifest, tables)
        nodes = [p.node.node_id for p in probes]
        holders = shard_holders(probes)
        shards = [s["shard"] for s in manifest["shards"]]
        done = []
        for shard in shards:
            name = table_name(shard)
            if name not in tables:
                continue
            try:
                if sees_all:
                    check_files(folder, {name: tables[name]})
                elif not any(shard in p.tables for p in probes):
                    raise CorpusError(name)
                done.append(shard)
            except CorpusError:
                del tables[name]
        if sees_all:
            for stale in folder.glob(".table.*.tmp"):
                stale.unlink(missing_ok=True)
        todo = [s for s in shards if s not in done]
        sizes = {s["shard"]: s["files"][shard_file("tokenized", s["shard"])]["bytes"] for s in manifest["shards"]}
        where: dict[int, str | None] = (dict(placement) if placement is not None
                                        else place_shards(holders, nodes, {s: sizes[s] for s in todo}))
        storage = "shared" if all(v is None for v in place_shards(holders, nodes, sizes).values()) else "node-local"
        largest = max((p.node.memory for p in probes), default=0)
        tasks = plan_index_tasks(manifest, todo, threads, budget, largest, where)
        width = {"uint8": 1, "uint16": 2, "uint32": 4}[manifest["token_dtype"]]
        if progress:
            progress(IndexProgress(len(done), len(shards), time.perf_counter() - started))
        build = remote(_build_table_task, max_retries=RETRIES)
        refs = [build.options(num_cpus=task.threads, memory=task.memory,
                              scheduling_strategy=on_node(task.node) if task.node else "SPREAD").remote(
                    str(folder), task, sizes[task.shard], width, _shard_files(manifest, task.shard))
                for task in tasks]
        built_on: dict[int, str] = {}

        def record(i: int, result: tuple[dict[str, Any], str]) -> None:
            entry, node = result
            tables[table_name(tasks[i].shard)] = entry
            built_on[tasks[i].shard] = node
            write_index_manifest(folder, manifest["corpus_hash"], tables)  # resumable after every shard
            if progress:
                progress(IndexProgress(len(tables), len(shards), time.perf_counter() - started))

        gather(refs, unit=lambda i: f"shard {tasks[i].shard}'s index build", on_result=record, error=CorpusError)
        final = write_index_manifest(folder, manifest["corpus_hash"], tables)
        if storage == "node-local":
            _share_index_manifest(folder, probes)
        if sees_all:
            for stale in folder.glob(".table.*.tmp"):  # left by attempts whose node died
                stale.unlink(missing_ok=True)
    return RayIndexBuild(final, tasks, built_on, storage, time.perf_counter() - started)


def _write_file_task(folder: str, name: str, data: bytes) -> None:
    from .._files import atomic_write_bytes

    path = Path(folder)
    if (path / name).exists() and (path / name).read_bytes() == data:
        return
    atomic_write_bytes(path / name, data)


def _share_index_manifest(folder: Path, probes: list[Any]) -> None:
    """Node-local storage: every node that holds shards gets the driver's ``index.json``, byte for byte."""
    data = (folder / INDEX_MANIFEST).read_bytes()
    write = remote(_write_file_task, num_cpus=0)
    holding = [p for p in probes if p.corpus_seen and p.shards]
    gather([write.options(scheduling_strategy=on_node(p.node.node_id)).remote(str(folder), INDEX_MANIFEST, data)
            for p in holding], unit=lambda i: f"writing {INDEX_MANIFEST} on node {holding[i].node.address}",
           error=CorpusError)


# ---- corpus verify --ray -------------------------------------------------------------------------------
def _verify_shard_task(folder: str, files: dict[str, dict[str, Any]]) -> list[str]:
    return check_files(Path(folder), files, full=True)


def verify_on_ray(path: str | Path, ray: str) -> dict[str, Any]:
    """:func:`seethrough.index.verify` on the cluster: every shard's files (and its table, when the index
    is built) re-hashed by one task per shard, on a node that holds the shard. The same report, and on a
    mismatch the same error (of the first shard in order that has one)."""
    require_ray()
    folder = Path(path).resolve()  # the tasks' working folder is not this process's
    if not folder.is_dir():
        raise CorpusError(f"corpus {path} does not exist; build it with `seethrough corpus build`")
    manifest = read_manifest(folder)
    own_tokenizer(folder, manifest, required=True)  # on the driver: the copy text queries are encoded with
    index = read_index_manifest(folder)
    tables = dict(index["tables"]) if index is not None else {}
    if index is not None and len(tables) < len(manifest["shards"]):  # the messages of index.check_index
        raise IndexNotBuiltError(f"{path} has no complete index; run `seethrough index build {path}`")
    if index is not None and index["corpus_hash"] != manifest["corpus_hash"]:
        raise IndexNotBuiltError(
            f"the index in {path} was built on another corpus (hash {index['corpus_hash'][:12]}, corpus "
            f"{manifest['corpus_hash'][:12]}); rebuild it with `seethrough index build --force {path}`")
    shards = [s["shard"] for s in manifest["shards"]]
    with connect(ray):
        probes = probe_nodes(folder, manifest, tables)
        nodes = [p.node.node_id for p in probes]
        sizes = {s["shard"]: sum(e["bytes"] for e in s["files"].values()) for s in manifest["shards"]}
        where = place_shards(shard_holders(probes), nodes, sizes)
        files = {shard: {**_shard_files(manifest, shard),
                         **({table_name(shard): tables[table_name(shard)]} if table_name(shard) in tables else {})}
                 for shard in shards}
        check = remote(_verify_shard_task, num_cpus=1, max_retries=RETRIES)
        refs = [check.options(scheduling_strategy=on_node(where[s]) if where[s] else "SPREAD").remote(
            str(folder), files[s]) for s in shards]
        gather(refs, unit=lambda i: f"shard {shards[i]}'s check", error=CorpusError)
    corpus_files = sorted([*(n for s in shards for n in _shard_files(manifest, s)), TOKENIZER_FILE])
    return {"corpus": str(folder), "corpus_hash": manifest["corpus_hash"], "index": index is not None,
            "files_checked": corpus_files + (sorted(tables) if index is not None else [])}
