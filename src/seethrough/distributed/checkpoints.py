"""Audits over many checkpoints or models on a cluster: one task per checkpoint.

``memorization``, ``membership --evaluate`` and ``eval --checkpoints`` measure each checkpoint on its
own, so their cluster form is the same loop with each iteration a task: :func:`map_checkpoints` runs a
per-checkpoint function as one Ray task per checkpoint (one GPU each when the cluster has GPUs) and
returns the results in checkpoint order, exactly what the loop returns on one machine. A task opens
the indexed corpus again where it runs, by path, through :class:`CorpusAt`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CorpusError, ModelError
from .cluster import alive_nodes, connect, gather, remote, require_ray
from .index_build import RETRIES


@dataclass(frozen=True)
class CorpusAt:
    """An indexed corpus as a task reopens it on its node: the absolute path, the tokenizer an infini-gram
    folder was opened with, and the content hash to check, so that a node holding other data at the same
    path fails naming it instead of measuring against the wrong corpus."""
    path: Path
    token_dtype: str
    corpus_hash: str | None
    tokenizer: Path | None = None

    @classmethod
    def of(cls, index: Any) -> CorpusAt:
        tokens = index.corpus
        tokenizer = index.tokenizer.path.resolve() if tokens.foreign and index.tokenizer is not None else None
        return cls(Path(tokens.path).resolve(), tokens.token_dtype, tokens.corpus_hash, tokenizer)

    def open(self) -> Any:
        from ..index import open_corpus

        index = open_corpus(self.path, tokenizer=self.tokenizer, token_dtype=self.token_dtype)
        if index.corpus.corpus_hash != self.corpus_hash:
            raise CorpusError(f"corpus {self.path} on this node is not the driver's (corpus hash "
                              f"{str(index.corpus.corpus_hash)[:12]}, the driver's {str(self.corpus_hash)[:12]}); "
                              "every node must see the same corpus at the same path")
        return index


def _run(work: Callable[[Any], Any], checkpoint: Any) -> Any:
    """The task: ``work`` travels as an argument (Ray makes tasks of plain functions only, not partials)."""
    return work(checkpoint)


def _absolute(checkpoint: Any) -> Any:
    """A checkpoint dataclass with a relative ``path`` travels with it made absolute: a worker's working
    folder is not the driver's."""
    if dataclasses.is_dataclass(checkpoint) and isinstance(getattr(checkpoint, "path", None), Path):
        return dataclasses.replace(checkpoint, path=checkpoint.path.resolve())
    return checkpoint


def _label(checkpoint: Any) -> str:
    return str(getattr(checkpoint, "label", checkpoint))


def map_checkpoints(work: Callable[[Any], Any], checkpoints: Sequence[Any], ray: str, gpus: float | None = None,
                    cpus: float = 1) -> list[Any]:
    """``[work(c) for c in checkpoints]``, each call a task on the Ray cluster at ``ray``, as many at once as
    the cluster has slots (``gpus`` GPUs and ``cpus`` CPUs per task; ``gpus`` defaults to 1 when the
    cluster has GPUs, else 0: Ray makes one GPU visible to the task, as ``cuda:0``).

    ``work`` must be picklable (a module-level function, or a ``functools.partial`` of one) and its
    results too; it runs where seethrough is installed and the checkpoints are at the same paths. It
    should write nothing, or write atomically: a task whose worker dies is run again. Results come
    in checkpoint order; a checkpoint whose work raises a library error raises that error here (the
    first such checkpoint's, in order), as the loop would."""
    if cpus < 0 or (gpus is not None and gpus < 0):
        raise ModelError(f"cpus={cpus}, gpus={gpus}: a task asks for 0 or more of each")
    with connect(ray):
        if gpus is None:
            gpus = 1 if any(node.gpus >= 1 for node in alive_nodes()) else 0
        task = remote(_run, num_cpus=cpus, num_gpus=gpus, max_retries=RETRIES)
        shared = require_ray().put(work)  # once, whatever the number of checkpoints
        refs = [task.remote(shared, _absolute(checkpoint)) for checkpoint in checkpoints]
        return gather(refs, unit=lambda i: f"checkpoint {_label(checkpoints[i])}", error=ModelError)
