"""The same builds, queries and audits on a Ray cluster (``--ray ADDRESS``); docs/scale.md.

Everything here wraps the per-unit functions the local code runs, so its results are the local ones:
a corpus build's inputs are tokenized and its shards written by the local build's own writer and
cut rule; an index task per shard runs the local build's ``build_table``; queries send each shard's
part to the engine's own per-shard methods and combine them with the engine's own code.

Public API (Ray is imported only when one of these is called; ``pip install 'seethrough[ray]'``):

- :func:`connect` -> :class:`Connection` (``host:port``, ``auto``, ``ray://...``, ``local``)
- :func:`build_corpus_on_ray` (``corpus build --ray``), :func:`build_index_on_ray` (``index build
  --ray``) -> :class:`RayIndexBuild`, :func:`verify_on_ray` (``corpus verify --ray``)
- ``seethrough.index.open_corpus(path, ray=ADDRESS)``: queries through :class:`ShardServers`
- :func:`map_checkpoints`: one task per checkpoint (audits over many checkpoints), results in order
- :func:`describe_cluster` (``seethrough doctor``) -> :class:`ClusterReport`

Layer 2, beside ``index`` and ``train``: it uses the corpus and index layers and takes audits' work as
callables, so nothing below imports it but the engine's ``open_corpus(ray=...)``.
"""

from .checkpoints import CorpusAt, map_checkpoints
from .cluster import Connection, Node, alive_nodes, connect
from .corpus_build import build_corpus_on_ray
from .doctor import ClusterReport, describe_cluster
from .index_build import RayIndexBuild, ShardTask, build_index_on_ray, verify_on_ray
from .placement import NodeProbe, place_shards, probe_nodes
from .queries import ShardServers, spread_shards, start_shard_servers

__all__ = ["ClusterReport", "Connection", "Node", "NodeProbe", "RayIndexBuild", "ShardServers", "ShardTask",
           "alive_nodes", "build_corpus_on_ray", "build_index_on_ray", "connect", "describe_cluster",
           "CorpusAt", "map_checkpoints", "place_shards", "probe_nodes", "spread_shards", "start_shard_servers",
           "verify_on_ray"]
