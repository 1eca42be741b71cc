"""``seethrough doctor --ray ADDRESS [CORPUS]``: what the cluster has, where a corpus's shards are, and
what an index build of it would need per node."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._version import code_version
from ..corpus.layout import TOKEN_WIDTHS, read_manifest, shard_file
from ..index.build import choose_sort, parse_memory, read_index_manifest, shard_memory_needed, table_name
from .cluster import connect, require_ray
from .placement import NodeProbe, place_shards, probe_nodes, shard_holders


@dataclass
class BuildNeeds:
    """What ``index build --ray`` of the corpus would ask of the cluster."""
    shards_to_build: int
    largest_shard_bytes: int
    memory_per_task: int
    """Bytes the largest shard's sort needs, the way the build would sort it."""
    threads_per_task: int
    builds_at_once: dict[str, int]
    """node id -> builds that fit at once (by its memory and CPUs as Ray counts them)."""
    waves: int | None
    """Rounds of builds the cluster needs (None: no node fits one)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ClusterReport:
    """The cluster, node by node, and a corpus on it (:func:`describe_cluster`)."""
    address: str
    driver: dict[str, str]
    """The driver's python, seethrough, numpy and ray versions."""
    nodes: list[NodeProbe]
    corpus: dict[str, Any] | None = None
    """Path, shards, tokens, storage (``shared``, ``node-local``), shard -> nodes holding it, tables built."""
    build: BuildNeeds | None = None
    problems: list[str] = field(default_factory=list)
    """Each a line: what would stop or slow a command, and what to do."""

    @property
    def totals(self) -> dict[str, float]:
        return {"nodes": len(self.nodes), "cpus": sum(p.node.cpus for p in self.nodes),
                "gpus": sum(p.node.gpus for p in self.nodes), "memory": sum(p.node.memory for p in self.nodes),
                "object_store_memory": sum(p.node.object_store_memory for p in self.nodes)}

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "driver": self.driver, "totals": self.totals,
                "nodes": [p.to_dict() for p in self.nodes], "corpus": self.corpus,
                "build": self.build.to_dict() if self.build else None, "problems": self.problems}


def describe_cluster(ray: str | None, corpus: str | Path | None = None, memory: str | int | None = None,
                     threads: int | None = None) -> ClusterReport:
    """Ask every node of the Ray cluster at ``ray`` what it has (CPUs, GPUs, memory, object store,
    versions) and, given ``corpus``, which of its shards and tables it sees; then what an index build
    with ``threads`` sorting threads per shard (default 1) and ``memory`` per shard (as ``index build
    --memory``) would need per node. Problems (versions that differ from the driver's, nodes that do not
    see the corpus, shards on no node, a shard too large for every node) are listed, one line each.

    ``ray=None``: this machine alone, for the local build (one shard after another, ``threads``
    defaulting to one per core and ``memory`` to 80% of its memory, as ``index build`` does)."""
    import numpy

    from ..errors import CorpusError

    if threads is not None and threads < 1:
        raise CorpusError(f"--threads {threads} must be at least 1")
    folder = Path(corpus).resolve() if corpus is not None else None
    if folder is not None and not folder.is_dir():
        raise CorpusError(f"corpus {corpus} does not exist; build it with `seethrough corpus build`")
    manifest = read_manifest(folder) if folder is not None else None
    index = read_index_manifest(folder) if folder is not None else None
    tables = dict(index["tables"]) if index and manifest and index.get("corpus_hash") == manifest["corpus_hash"] else {}
    if ray is None:
        from .._threads import available_cores
        from .placement import probe_this_machine

        probe = probe_this_machine(folder, manifest, tables)
        report = ClusterReport("this machine", {}, [probe])
        if manifest is not None and folder is not None:
            _add_corpus(report, folder, manifest, tables, threads or available_cores(),
                        parse_memory(memory), one_at_a_time=True)
        return report
    ray_module = require_ray()
    driver = {"python": platform.python_version(), "seethrough": code_version(), "numpy": numpy.__version__,
              "ray": ray_module.__version__}
    with connect(ray) as connection:
        probes = probe_nodes(folder, manifest, tables)
    report = ClusterReport(connection.address, driver, probes)
    for probe in probes:
        differ = [f"{name} {getattr(probe, name)}" for name in driver if getattr(probe, name) != driver[name]]
        if differ:
            report.problems.append(f"node {probe.node.address} runs {', '.join(differ)}, the driver "
                                   f"{', '.join(driver[d.split()[0]] for d in differ)}: install the same versions "
                                   "on every node")
    if manifest is not None and folder is not None:
        _add_corpus(report, folder, manifest, tables, threads or 1,
                    parse_memory(memory) if memory is not None else None, one_at_a_time=False)
    return report


def _add_corpus(report: ClusterReport, folder: Path, manifest: dict[str, Any], tables: dict[str, Any], threads: int,
                budget: int | None, one_at_a_time: bool) -> None:
    """The corpus's part of the report: where its shards are and what its index build needs."""
    probes = report.nodes
    shards = [s["shard"] for s in manifest["shards"]]
    holders = shard_holders(probes)
    nodes = [p.node.node_id for p in probes]
    for probe in probes:
        if not probe.corpus_seen:
            report.problems.append(f"node {probe.node.address} does not see {folder}/manifest.json as the driver does: "
                                   "mount the corpus there at the same path (or copy its manifest.json, "
                                   "tokenizer.json and the shards it should hold)")
    sizes = {s["shard"]: s["files"][shard_file("tokenized", s["shard"])]["bytes"] for s in manifest["shards"]}
    unplaced = [s for s in shards if not holders.get(s)]
    storage = "unreachable" if unplaced else (
        "shared" if all(v is None for v in place_shards(holders, nodes, sizes).values()) else "node-local")
    if unplaced:
        report.problems.append(f"{len(unplaced)} shard(s) ({', '.join(map(str, unplaced[:5]))}"
                               f"{'...' if len(unplaced) > 5 else ''}) are on no node: they cannot be built or queried")
    report.corpus = {"path": str(folder), "corpus_hash": manifest["corpus_hash"], "shards": len(shards),
                     "tokens": manifest["counts"]["tokens"], "documents": manifest["counts"]["documents"],
                     "storage": storage, "tables_built": sum(table_name(s) in tables for s in shards),
                     "shard_nodes": {str(s): len(holders.get(s, [])) for s in shards}}
    width = TOKEN_WIDTHS[manifest["token_dtype"]]
    todo = [s for s in shards if table_name(s) not in tables] or shards  # a rebuild (--force) when all are built
    largest = max(sizes[s] for s in todo)
    largest_node = max((p.node.memory for p in probes), default=0)
    limit = budget if budget is not None else largest_node
    leanest = shard_memory_needed(largest, width, 1, encoded=False)
    if leanest > limit:
        report.problems.append(f"the largest shard needs about {leanest / 2**30:.1f} GiB to index, more than "
                               f"{'--memory' if budget is not None else 'any node offers'} "
                               f"({limit / 2**30:.1f} GiB): add larger nodes or rebuild with a smaller --shard-tokens")
        report.build = BuildNeeds(len(todo), largest, leanest, 1, {p.node.node_id: 0 for p in probes}, None)
        return
    task_threads, _, need = choose_sort(0, largest, width, threads, limit)
    if one_at_a_time:  # the local build sorts one shard after another
        at_once = {p.node.node_id: 1 for p in probes}
    else:
        at_once = {p.node.node_id: int(min(p.node.memory // need, p.node.cpus // task_threads)) for p in probes}
    slots = sum(at_once.values())
    report.build = BuildNeeds(len(todo), largest, need, task_threads, at_once,
                              math.ceil(len(todo) / slots) if slots else None)
    if not slots:
        report.problems.append(f"no node has {task_threads} CPU(s) and {need / 2**30:.1f} GiB free for one shard's "
                               "index build; add nodes, or pass a smaller --threads")
