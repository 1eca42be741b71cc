"""Where a corpus's shards are on the cluster, and on which node each shard's work runs.

Every node is asked (one small task pinned to it) which of the corpus's files it sees at the corpus's
path with the size the manifest records. When every live node sees every shard, storage is shared (a
network filesystem mounted at the same path everywhere) and a shard's work may run anywhere; when
not, storage is node-local and each shard's work runs on a node that holds it.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._version import code_version
from ..corpus.layout import SHARD_KINDS, shard_file
from ..errors import CorpusError
from .cluster import Node, alive_nodes, on_node, remote


@dataclass
class NodeProbe:
    """What one node has: software versions, and which of the corpus's files it sees."""
    node: Node
    hostname: str
    python: str
    seethrough: str
    numpy: str
    ray: str
    corpus_seen: bool
    """The corpus folder exists there and holds a ``manifest.json`` byte for byte the driver's."""
    shards: list[int] = field(default_factory=list)
    """Shards whose four files are there with the manifest's sizes."""
    tables: list[int] = field(default_factory=list)
    """Shards whose ``table.N`` is there with the size ``index.json`` records."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _probe_node(folder: str | None, manifest_bytes: bytes | None, sizes: dict[str, int]) -> dict[str, Any]:
    """Runs on a node: its versions and which of ``sizes`` (file name -> bytes) it sees in ``folder``."""
    import numpy

    try:
        import ray

        ray_version = ray.__version__
    except ImportError:  # the local machine's report (doctor without --ray)
        ray_version = "not installed"
    report: dict[str, Any] = {"hostname": socket.gethostname(), "python": platform.python_version(),
                              "seethrough": code_version(), "numpy": numpy.__version__,
                              "ray": ray_version, "corpus_seen": False, "present": []}
    if folder is None:
        return report
    path = Path(folder)
    try:
        report["corpus_seen"] = manifest_bytes is not None and (path / "manifest.json").read_bytes() == manifest_bytes
    except OSError:
        return report
    present = []
    for name, size in sizes.items():
        try:
            if os.stat(path / name).st_size == size:
                present.append(name)
        except OSError:
            continue
    report["present"] = present
    return report


def _expected(folder: Path | None, manifest: dict[str, Any] | None,
              tables: dict[str, dict[str, Any]] | None) -> tuple[bytes | None, dict[str, int]]:
    sizes: dict[str, int] = {}
    if folder is None or manifest is None:
        return None, sizes
    for shard in manifest["shards"]:
        sizes.update({name: entry["bytes"] for name, entry in shard["files"].items()})
    sizes.update({name: entry["bytes"] for name, entry in (tables or {}).items()})
    return (folder / "manifest.json").read_bytes(), sizes


def probe_nodes(folder: Path | None = None, manifest: dict[str, Any] | None = None,
                tables: dict[str, dict[str, Any]] | None = None) -> list[NodeProbe]:
    """Ask every live node what it has (see :class:`NodeProbe`); ``folder`` and its ``manifest`` (and the
    ``tables`` of its ``index.json``) to say which shards it sees."""
    nodes = alive_nodes()
    manifest_bytes, sizes = _expected(folder, manifest, tables)
    probe = remote(_probe_node, num_cpus=0, max_retries=1)
    refs = [probe.options(scheduling_strategy=on_node(n.node_id)).remote(
        str(folder) if folder is not None else None, manifest_bytes, sizes) for n in nodes]
    import ray
    from ray.exceptions import RayError, RayTaskError

    probes = []
    for node, ref in zip(nodes, refs):
        try:
            report = ray.get(ref)
        except RayTaskError as error:
            raise CorpusError(f"the probe of node {node.address} failed ({type(error.cause).__name__}: "
                              f"{str(error.cause).splitlines()[0] if str(error.cause) else ''}); check that "
                              "seethrough is installed there, the same version as here") from None
        except RayError:
            continue  # the node left the cluster after it was listed: it is not one of the cluster's nodes now
        probes.append(_as_probe(node, report, manifest))
    if not probes:
        raise CorpusError("no node of the Ray cluster answered; check the cluster with `ray status` on its head")
    return probes


def probe_this_machine(folder: Path | None = None, manifest: dict[str, Any] | None = None,
                       tables: dict[str, dict[str, Any]] | None = None) -> NodeProbe:
    """This machine as one node (``doctor`` without ``--ray``): its cores, GPUs, physical memory, and the
    corpus files it sees."""
    from .._threads import available_cores

    manifest_bytes, sizes = _expected(folder, manifest, tables)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    node = Node("local", socket.gethostname(), float(available_cores()), float(_local_gpus()), int(memory), 0, True)
    return _as_probe(node, _probe_node(str(folder) if folder is not None else None, manifest_bytes, sizes), manifest)


def _local_gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _as_probe(node: Node, report: dict[str, Any], manifest: dict[str, Any] | None) -> NodeProbe:
    present = set(report.pop("present"))
    shards = [s["shard"] for s in (manifest or {}).get("shards", [])
              if all(shard_file(kind, s["shard"]) in present for kind in SHARD_KINDS)]
    held = sorted(int(name.split(".")[1]) for name in present if name.startswith("table."))
    return NodeProbe(node, shards=shards, tables=held, **report)


def place_shards(holders: dict[int, list[str]], nodes: list[str], sizes: dict[int, int]) -> dict[int, str | None]:
    """On which node each shard's work runs: None (anywhere) for every shard when every node holds every
    shard (shared storage); else a node that holds it, the one with the fewest bytes placed so far
    (shards taken largest first, ties by node order), so the work spreads over the holders.
    ``holders``: shard -> ids of the nodes that hold it; ``nodes``: the live nodes' ids, in order;
    ``sizes``: shard -> bytes of its work."""
    if all(set(nodes) <= set(holders.get(shard, [])) for shard in sizes):
        return {shard: None for shard in sizes}
    placed: dict[str, int] = {node: 0 for node in nodes}
    out: dict[int, str | None] = {}
    for shard in sorted(sizes, key=lambda s: (-sizes[s], s)):
        options = [node for node in nodes if node in holders.get(shard, [])]
        if not options:
            raise CorpusError(f"shard {shard} is on no live node of the cluster (no node sees tokenized.{shard} with "
                              "the manifest's size); copy it to a node under the corpus's path, or mount shared "
                              "storage there, and check with `seethrough doctor --ray ADDRESS CORPUS`")
        best = min(options, key=lambda node: (placed[node], nodes.index(node)))
        placed[best] += sizes[shard]
        out[shard] = best
    return dict(sorted(out.items()))


def shard_holders(probes: list[NodeProbe]) -> dict[int, list[str]]:
    """shard -> ids of the nodes that hold all its files."""
    holders: dict[int, list[str]] = {}
    for probe in probes:
        for shard in probe.shards:
            holders.setdefault(shard, []).append(probe.node.node_id)
    return holders
