"""The connection to a Ray cluster and what every distributed step shares: the cluster's nodes, tasks
pinned to a node, and waiting for many tasks (results in unit order, the first failing unit's own
one-line error, Ctrl-C cancelling the command's tasks while the cluster stays up).

Ray is imported here, when a ``--ray`` address is given, never at ``import seethrough``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError, SeethroughError

INSTALL_HINT = "pip install 'seethrough[ray]'"


def require_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


_lock = threading.Lock()
_users = 0
"""Connections open in this process through :func:`connect` while it owns the driver's connection."""
_owned = False
"""Whether :func:`connect` started this process's connection (and so ends it when the last user closes)."""


class Connection:
    """This process connected to a Ray cluster as a driver (see :func:`connect`); ``close()`` disconnects
    the driver (when :func:`connect` connected it), never the cluster."""

    def __init__(self, address: str, owned: bool) -> None:
        self.address = address
        """The cluster's GCS address (host:port)."""
        self._owned = owned
        self._open = True

    def close(self) -> None:
        global _users, _owned
        if not self._open:
            return
        self._open = False
        if not self._owned:
            return
        with _lock:
            _users -= 1
            if _users == 0 and _owned:
                import ray

                _owned = False
                ray.shutdown()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def connect(address: str) -> Connection:
    """Connect this process to the Ray cluster at ``address`` as a driver: ``host:port`` of its head
    (``ray start --head`` prints it), ``auto`` (``RAY_ADDRESS``, or the cluster started on this
    machine), ``ray://host:10001`` (Ray Client: every call is slower), or ``local`` (a throwaway
    one-machine cluster, to try the commands).

    A process already connected (by an earlier :func:`connect`, or by its own ``ray.init``) reuses that
    connection when ``address`` names the same cluster (or is ``auto``), and refuses another."""
    global _users, _owned
    ray = require_ray()
    if not isinstance(address, str) or not address.strip():
        raise ConfigError("--ray needs the cluster's address: host:port of its head node, or auto")
    with _lock:
        if ray.is_initialized():
            current = ray.get_runtime_context().gcs_address
            if address not in ("auto", current):
                raise ConfigError(f"this process is already connected to the Ray cluster at {current}, not {address}; "
                                  f"pass --ray {current}, or use another process for the other cluster")
            if _owned:
                _users += 1
            return Connection(current, owned=_owned)
        _check_listening(address)
        try:
            # the driver's own log lines would mix with a command's output; task errors still come back
            options = {"include_dashboard": False} if address == "local" else {}
            ray.init(address=address, log_to_driver=False, logging_level="warning", **options)
        except Exception as error:  # noqa: BLE001 - Ray raises ConnectionError, ValueError, RuntimeError...
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"cannot connect to the Ray cluster at {address} ({reason}); start one with "
                              "`ray start --head` and pass the address it prints (host:port), or check --ray") from None
        _owned, _users = True, 1
        return Connection(ray.get_runtime_context().gcs_address, owned=True)


def _check_listening(address: str) -> None:
    """For a ``host:port`` address, refuse at once when nothing listens there: Ray itself waits minutes
    for a head that is not running, printing its retries."""
    import socket

    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # auto, local, ray://...: Ray resolves them; a malformed one gets Ray's own reason
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ConfigError(f"nothing answers at --ray {address} ({reason}); start the head with `ray start --head` "
                          "and pass the address it prints (host:port)") from None


@dataclass
class Node:
    """A live node of the cluster, with what Ray counts on it."""
    node_id: str
    address: str
    cpus: float
    gpus: float
    memory: int
    """Bytes of Ray's ``memory`` resource (what tasks may request; about the node's free RAM at start)."""
    object_store_memory: int
    head: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alive_nodes() -> list[Node]:
    """The cluster's live nodes, head first, then by address and id (a stable order for placing work)."""
    import ray

    nodes = []
    for entry in ray.nodes():
        if not entry.get("Alive"):
            continue
        resources = entry.get("Resources", {})
        nodes.append(Node(entry["NodeID"], entry["NodeManagerAddress"], float(resources.get("CPU", 0)),
                          float(resources.get("GPU", 0)), int(resources.get("memory", 0)),
                          int(resources.get("object_store_memory", 0)), "node:__internal_head__" in resources))
    return sorted(nodes, key=lambda n: (not n.head, n.address, n.node_id))


def on_node(node_id: str) -> Any:
    """The scheduling strategy that runs a task or actor on that node only."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def remote(function: Callable, **options: Any) -> Any:
    """``function`` as a Ray task with ``options`` (imported and wrapped only when a command uses Ray)."""
    ray = require_ray()
    return ray.remote(**options)(function) if options else ray.remote(function)


def gather(refs: Sequence[Any], unit: Callable[[int], str], on_result: Callable[[int, Any], None] | None = None,
           error: type[SeethroughError] = SeethroughError) -> list[Any]:
    """The results of ``refs`` (one task per unit, in unit order), calling ``on_result(i, value)`` as each
    arrives. A unit that fails raises as the local code would: the lowest-numbered failing unit's own
    error (its one-line message; units after it are cancelled, those before it awaited), or for a
    failure of the cluster itself (a worker or node that died after Ray's retries) an ``error`` naming
    ``unit(i)``. Ctrl-C (or any other interruption) cancels every task not finished and re-raises:
    the cluster stays up, only this command's work stops."""
    import ray

    results: list[Any] = [None] * len(refs)
    index = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    failed: tuple[int, BaseException] | None = None
    cancelled: list[Any] = []
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                try:
                    value = ray.get(ref)  # read even when not needed: Ray logs errors never read
                except Exception as problem:  # noqa: BLE001 - judged below
                    if failed is not None and i > failed[0]:
                        continue
                    if failed is None or i < failed[0]:
                        failed = (i, problem)
                        later = [p for p in pending if index[p] > i]
                        _cancel(later)
                        cancelled.extend(later)
                        pending = [p for p in pending if index[p] < i]
                    continue
                if failed is not None and i > failed[0]:
                    continue
                results[i] = value
                if on_result is not None and failed is None:
                    on_result(i, value)
    except BaseException:
        _cancel(pending)
        raise
    if failed is not None:
        _drain(cancelled)
        raise _as_error(failed[1], unit(failed[0]), error) from None
    return results


def _drain(refs: Sequence[Any], seconds: float = 5.0) -> None:
    """Read the outcome of cancelled tasks (Ray logs an error never read), waiting at most ``seconds``."""
    import ray

    if not refs:
        return
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=seconds)
    for ref in ready:
        try:
            ray.get(ref)
        except Exception:  # noqa: BLE001 - cancelled or failed: nothing more to say
            pass


def _cancel(refs: Sequence[Any]) -> None:
    import ray

    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 - already finished, or its worker already gone
            pass


def _as_error(problem: BaseException, unit: str, error: type[SeethroughError]) -> BaseException:
    """The error a user sees for a unit's failure: the unit's own library error as raised on the worker, or
    one line for the cluster's failure."""
    from ray.exceptions import RayTaskError

    cause = problem.cause if isinstance(problem, RayTaskError) else problem
    if isinstance(cause, SeethroughError):
        return type(cause)(*cause.args)
    if isinstance(cause, (KeyboardInterrupt, SystemExit)):
        return cause
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    kind = type(cause).__name__
    return error(f"{unit} failed on the cluster ({kind}{': ' + reason[:300] if reason else ''}) after Ray's "
                 "retries; rerun the command (finished units are kept), and see `seethrough doctor --ray ADDRESS`")
