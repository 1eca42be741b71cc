"""Queries on a cluster: ``open_corpus(path, ray=ADDRESS)`` spreads the shards over query servers, one
Ray actor per node, each holding the corpus opened on its node and answering for its shards.

A query is split exactly as the local engine splits it: every shard's part is a method of the
engine's per-shard index, and the engine's own code combines the parts in shard order. A server gets
one call per query batch, covering all its shards (the batch sent once through the object store),
so a batch costs one round trip per node, not per shard or per query. Every shard must answer: a
server that died fails the query with a one-line error naming its shards, never a partial count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import QueryError
from .cluster import Connection, Node, alive_nodes, connect, on_node, require_ray


class ShardServer:
    """Runs in a Ray actor: the corpus opened on its node (by ``opener``, the engine's ``open_corpus``
    with the caller's arguments) and the shards it answers for."""

    def __init__(self, opener: Callable[[], Any], shards: list[int], threads: int) -> None:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        self.index = opener()
        indexes = self.index.shard_indexes  # the index's checks, on this node
        self.shards = {shard: indexes[shard] for shard in shards}

    def answer(self, op: str, common: tuple, each: list[tuple | None] | None) -> list[Any]:
        """``op`` on each of this server's shards (see ``IndexedCorpus._per_shard``), in its shard order."""
        parts = []
        for i, ix in enumerate(self.shards.values()):
            own = () if each is None else each[i]
            parts.append(None if own is None else getattr(ix, op)(*own, *common))
        return parts

    def pid(self) -> int:
        import os

        return os.getpid()


@dataclass
class ServerPlace:
    """One query server: its actor, its node and its shards (in order)."""
    actor: Any
    node: Node
    shards: list[int]


def spread_shards(sizes: Sequence[int], servers: int) -> list[list[int]]:
    """Shards for each of ``servers`` servers: contiguous runs of shards of about equal total size
    (``sizes[s]``: shard s's token positions), so a server's shards lie together in corpus order."""
    total = sum(sizes)
    groups: list[list[int]] = [[] for _ in range(servers)]
    done, group = 0, 0
    for shard, size in enumerate(sizes):
        # move to the next server once this one has its share, keeping at least one shard for each after
        remaining_shards = len(sizes) - shard
        remaining_servers = servers - group - 1
        if groups[group] and (done >= total * (group + 1) / servers or remaining_shards <= remaining_servers):
            group += 1
        groups[group].append(shard)
        done += size
    return [g for g in groups if g]


class ShardServers:
    """The query servers of one opened corpus; :class:`~seethrough.index.IndexedCorpus` sends them each
    shard's part of a query (``answer``) and combines what they return."""

    def __init__(self, connection: Connection, places: list[ServerPlace], shard_count: int) -> None:
        self.connection = connection
        self.places = places
        self.shard_count = shard_count
        self._closed = False

    @property
    def address(self) -> str:
        return self.connection.address

    def answer(self, op: str, common: tuple, each: Sequence[tuple | None] | None) -> list[Any]:
        """Every shard's answer to ``op``, in shard order: one call per server, for all its shards."""
        ray = require_ray()
        from ray.exceptions import RayActorError, RayTaskError

        if self._closed:
            raise QueryError("this corpus was closed: its query servers are stopped; open it again with "
                             "open_corpus(path, ray=ADDRESS)")
        # a large batch goes once into the object store, whichever the number of servers; a small one
        # travels inside each call (putting it costs each server a fetch: ~10 ms a query, measured)
        shared = ray.put(common) if _payload_bytes(common) > INLINE_BYTES else common
        calls = []
        for place in self.places:
            own = None if each is None else [each[s] for s in place.shards]
            if own is not None and all(o is None for o in own):
                calls.append(None)  # nothing asked of this server's shards
                continue
            calls.append(place.actor.answer.remote(op, shared, own))
        answers: list[Any] = [None] * self.shard_count
        for place, call in zip(self.places, calls):
            if call is None:
                continue
            try:
                parts = ray.get(call)
            except RayActorError as error:
                raise QueryError(self._died(place, error)) from None
            except RayTaskError as error:
                cause = error.cause
                raise (type(cause)(*cause.args) if isinstance(cause, QueryError) else
                       QueryError(f"{_shards(place.shards)} could not answer ({type(cause).__name__}: "
                                  f"{str(cause).splitlines()[0] if str(cause) else ''}); no partial answer is "
                                  "returned")) from None
            for shard, part in zip(place.shards, parts):
                answers[shard] = part
        return answers

    def _died(self, place: ServerPlace, error: Exception) -> str:
        return (f"{_shards(place.shards)} did not answer: the query server on node {place.node.address} is gone "
                f"({type(error).__name__}), so no partial answer is returned; open the corpus again "
                f"(open_corpus(..., ray=ADDRESS), or rerun the command) once the node is back, and see "
                f"`seethrough doctor --ray {self.address}`")

    def pids(self) -> list[int]:
        """The servers' process ids, in server order (to see them, or stop one in a test)."""
        ray = require_ray()
        return ray.get([place.actor.pid.remote() for place in self.places])

    def close(self) -> None:
        """Stop the servers and disconnect (when this opened the connection); the cluster stays up."""
        if self._closed:
            return
        self._closed = True
        ray = require_ray()
        for place in self.places:
            try:
                ray.kill(place.actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.connection.close()


INLINE_BYTES = 1 << 20
"""Query arguments up to this size travel inside each server call; larger ones go once into the object store."""


def _payload_bytes(value: Any) -> int:
    """Bytes of the arrays in ``value`` (the queries' ids and bounds dominate a call's arguments)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (list, tuple)):
        return sum(_payload_bytes(v) for v in value) + 8 * len(value)
    return 8


def _shards(shards: list[int]) -> str:
    return f"shard {shards[0]}" if len(shards) == 1 else "shards " + ", ".join(map(str, shards))


def start_shard_servers(address: str, opener: Callable[[], Any], sizes: Sequence[int],
                        threads: int | None = None) -> ShardServers:
    """One query server per live node (at most one per shard), each opening the corpus with ``opener``
    on its node and answering for a contiguous run of shards (``sizes``: each shard's positions).
    ``threads``: threads per server for large batches (default: the node's CPUs)."""
    connection = connect(address)
    try:
        ray = require_ray()
        nodes = alive_nodes()
        groups = spread_shards(sizes, min(len(nodes), len(sizes)))
        server = ray.remote(ShardServer)
        places = []
        for node, shards in zip(nodes, groups):
            count = threads or max(1, int(node.cpus))
            # no CPU reserved: a query server waits most of the time, and must not keep builds off its node
            actor = server.options(num_cpus=0, max_restarts=0, max_task_retries=0,
                                   scheduling_strategy=on_node(node.node_id)).remote(opener, shards, count)
            places.append(ServerPlace(actor, node, shards))
        servers = ShardServers(connection, places, len(sizes))
        # each server opened the corpus (the index's checks on its node) before the first query
        ray.get([place.actor.pid.remote() for place in places])
    except BaseException as error:
        connection.close()
        from ray.exceptions import RayActorError

        if isinstance(error, RayActorError):
            cause = getattr(error, "cause", None) or error
            raise QueryError(f"a query server could not open the corpus on its node ({str(cause).splitlines()[-1][:300]}); "
                             "check that every node sees the corpus at the same path: `seethrough doctor --ray "
                             f"{address} CORPUS`") from None
        raise
    return servers
