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


_MANIFEST_KEYS = ("corpus", "config", "data_order", "checkpoints", "status")


def read_run_manifest(run: str | Path) -> dict[str, Any]:
    path = Path(run) / RUN_MANIFEST
    if not path.is_file():
        raise RunError(f"{run} is not a run folder (no {RUN_MANIFEST}); train one with `seethrough train`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError covers bad JSON and bytes that are not UTF-8
        raise RunError(f"{path} cannot be read as JSON ({error}); the run manifest is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "seethrough.run":
        raise RunError(f"{path} is not a seethrough run manifest")
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    if missing:
        raise RunError(f"{path} lacks {', '.join(missing)}; the run manifest is damaged or from another tool")
    checkpoints = manifest["checkpoints"]
    if not isinstance(checkpoints, list) or not all(
            isinstance(c, dict) and isinstance(c.get("step"), int) and isinstance(c.get("path"), str)
            and isinstance(c.get("sha256"), str) for c in checkpoints):
        raise RunError(f"{path}: its list of checkpoints is damaged (each needs a step, a path and a sha256)")
    if [c["step"] for c in checkpoints] != sorted({c["step"] for c in checkpoints}):
        raise RunError(f"{path}: its checkpoints are not listed once each in step order; the manifest is damaged")
    return manifest


def _log_lines(path: Path) -> list[tuple[dict[str, Any], bytes]]:
    """``(record, raw line with its newline)`` for each complete line of ``log.jsonl``.

    The trainer appends one whole line per step, so a process killed mid-write can only leave a
    last line without its newline. That line is dropped: its step is at or past the newest checkpoint
    (a step's line is written before the checkpoint after it), and a resumed run logs it again. A
    damaged line anywhere else is not something a crash leaves, and is refused."""
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RunError(f"cannot read {path}: {error.strerror or error}") from None
    lines = data.split(b"\n")
    lines.pop()  # b"" after the final newline, or the torn last line
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise RunError(f"{path}:{number} is not a log record (damaged?); restore the file, or delete that "
                           "line and the ones after it to resume from the checkpoint before")
        out.append((record, line + b"\n"))
    return out


def read_log(run: str | Path) -> list[dict[str, Any]]:
    """The training log's records, one per step trained (a torn last line, left by a crash, is skipped)."""
    return [record for record, _ in _log_lines(Path(run) / LOG)]


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

    @property
    def steps_trained(self) -> int:
        """Optimizer steps whose updates the run has kept: its newest checkpoint's step (0 before any).

        A crashed run may have logged a few steps past it; those updates were lost, and a resumed run
        trains the same batches again."""
        steps = self.checkpoints
        return steps[-1] if steps else 0

    @property
    def steps_planned(self) -> int:
        """The optimizer steps the run is configured to reach (``--steps``), trained or not."""
        return int(self.manifest["config"]["steps"])

    def require_steps(self, steps: int, flag: str, value: int, planned: bool = False) -> None:
        """Refuse a question about the first ``steps`` steps unless the run has trained them (or, with
        ``planned``, is configured to): past its end the data order still answers, but with batches
        the model never saw. ``flag`` and ``value`` are the request as the user gave it, for the message
        (``value - steps`` is how the flag counts: -1 for a step, 0 for "before step")."""
        limit = self.steps_planned if planned else self.steps_trained
        if steps <= limit:
            return
        highest = limit + (value - steps)
        fix = f"; {flag} may be at most {highest}" if highest >= 0 else ""
        if planned:
            raise RunError(f"{flag} {value} is past the end of run {self.path}, which is configured for {limit} "
                           f"step(s){fix} (the data order beyond a run is DataOrder's)")
        done = (f"has trained steps 0..{limit - 1} (newest checkpoint: step-{limit})" if limit
                else "has not trained any step yet (no checkpoint past step-0)")
        raise RunError(f"{flag} {value} is past the end of run {self.path}: it {done}, and batches past them "
                       f"were never trained{fix}")

    def checkpoint(self, step: int | None = None) -> Path:
        """The folder of checkpoint ``step`` (default: the newest); loadable by ``from_pretrained``."""
        steps = self.checkpoints
        if not steps:
            raise RunError(f"run {self.path} has no checkpoints yet")
        chosen = steps[-1] if step is None else step
        if chosen not in steps:
            raise RunError(f"run {self.path} has no checkpoint at step {step}; it has {steps}")
        return checkpoint_dir(self.path, chosen)

    def batch(self, step: int, planned: bool = False) -> Batch:
        """The batch step ``step`` trained on; refused past the run's trained steps (see ``require_steps``)."""
        if step >= 0:  # a negative step gets the data order's own message
            self.require_steps(step + 1, "--step", step, planned)
        return self.order.batch(step)

    def batch_record(self, step: int, planned: bool = False) -> dict[str, Any]:
        """``seethrough batch --json``: token ids, and for each row the documents it came from."""
        batch = self.batch(step, planned)
        rows = []
        for sample, row in zip(batch.samples, batch.rows):
            rows.append({
                "sample": sample, "epoch": sample // self.order.sequences_per_epoch, "row": row,
                "stream_start": row * self.order.row_len,
                "documents": [s.to_dict() for s in self.order.row_sources(row)],
            })
        return {"step": step, "sha256": batch.sha256, "token_ids": batch.token_ids.tolist(), "rows": rows,
                "trained": step < self.steps_trained}

    def logged_batch_sha256(self) -> dict[int, str]:
        return {r["step"]: r["batch_sha256"] for r in read_log(self.path)}


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
