"""A run folder: its manifest, log and checkpoints, and the data order it recorded.

Opening a run needs only ``run.json`` and the corpus it names (by path, checked by content hash):
``batch`` and the audits replay the data order without torch and without any checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..corpus.store import TokenCorpus, open_token_corpus
from ..errors import CorpusError, RunError
from .order import Batch, DataOrder, OrderSpec

RUN_MANIFEST = "run.json"
LOG = "log.jsonl"
CHECKPOINTS = "checkpoints"


def checkpoint_dir(run: Path, step: int) -> Path:
    return Path(run) / CHECKPOINTS / f"step-{step}"


def read_run_manifest(run: str | Path) -> dict[str, Any]:
    path = Path(run) / RUN_MANIFEST
    if not path.exists():
        raise RunError(f"{run} is not a run folder (no {RUN_MANIFEST}); train one with `seethrough train`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise RunError(f"{path} is not valid JSON ({error}); the run manifest is damaged") from None
    if manifest.get("format") != "seethrough.run":
        raise RunError(f"{path} is not a seethrough run manifest")
    return manifest


@dataclass
class Run:
    path: Path
    manifest: dict[str, Any]
    corpus: TokenCorpus
    order: DataOrder

    @cached_property
    def index(self) -> Any:
        """The corpus's suffix-array index (opened once), or None when it has not been built."""
        from ..index import open_corpus
        from ..index.build import read_index_manifest

        return open_corpus(self.corpus.path) if read_index_manifest(self.corpus.path) is not None else None

    @property
    def checkpoints(self) -> list[int]:
        return [c["step"] for c in self.manifest["checkpoints"]]

    def checkpoint(self, step: int | None = None) -> Path:
        """The folder of checkpoint ``step`` (default: the newest); loadable by ``from_pretrained``."""
        steps = self.checkpoints
        if not steps:
            raise RunError(f"run {self.path} has no checkpoints yet")
        chosen = steps[-1] if step is None else step
        if chosen not in steps:
            raise RunError(f"run {self.path} has no checkpoint at step {step}; it has {steps}")
        return checkpoint_dir(self.path, chosen)

    def batch(self, step: int) -> Batch:
        return self.order.batch(step)

    def batch_record(self, step: int) -> dict[str, Any]:
        """``seethrough batch --json``: token ids, and for each row the documents it came from."""
        batch = self.order.batch(step)
        rows = []
        for sample, row in zip(batch.samples, batch.rows):
            rows.append({
                "sample": sample, "epoch": sample // self.order.sequences_per_epoch, "row": row,
                "stream_start": row * self.order.row_len,
                "documents": [s.to_dict() for s in self.order.row_sources(row)],
            })
        return {"step": step, "sha256": batch.sha256, "token_ids": batch.token_ids.tolist(), "rows": rows}

    def logged_batch_sha256(self) -> dict[int, str]:
        path = self.path / "log.jsonl"
        if not path.exists():
            return {}
        records = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        return {r["step"]: r["batch_sha256"] for r in records}


def open_run(run: str | Path, corpus: str | Path | None = None) -> Run:
    """Open a run folder; ``corpus`` overrides the corpus path it recorded (same content hash required)."""
    run = Path(run)
    manifest = read_run_manifest(run)
    where = Path(corpus) if corpus is not None else Path(manifest["corpus"]["path"])
    if corpus is None and not where.exists() and manifest["corpus"].get("relative_path"):
        where = run / manifest["corpus"]["relative_path"]  # the run and its corpus moved together
    try:
        tokens = open_token_corpus(where)
    except CorpusError as error:
        raise RunError(f"run {run}: its corpus cannot be opened ({error}); pass --corpus with its location") from None
    if tokens.corpus_hash != manifest["corpus"]["corpus_hash"]:
        raise RunError(f"{where} is not the corpus run {run} was trained on (hash {str(tokens.corpus_hash)[:12]} vs "
                       f"{manifest['corpus']['corpus_hash'][:12]}); pass --corpus with the run's own corpus")
    return Run(run, manifest, tokens, DataOrder(tokens, OrderSpec(**manifest["data_order"]["spec"])))
