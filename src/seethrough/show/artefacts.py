"""What a report or release is made from: the run, its corpus (and index), and the ``--results``
folders, each recognised by the files it holds.

A results folder is recognised by the file names its command writes (``KINDS``): a folder may hold
several kinds (``bias data`` and ``bias model`` into one folder, ``eval``'s ``bias_summary.json``
beside its ``results.json``). A folder that holds none of them is refused with a one-line error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError, RunError
from .sources import Sources


def _has(*names: str) -> Callable[[Path], bool]:
    return lambda folder: all((folder / name).is_file() for name in names)


def _multi_checkpoint_eval(folder: Path) -> bool:
    return (folder / "by_checkpoint.json").is_file() and any(folder.glob("step-*/results.json"))


KINDS: dict[str, tuple[str, Callable[[Path], bool]]] = {
    "eval": ("results.json with its seethrough block (seethrough eval --out)",
             lambda f: _has("results.json")(f) or _multi_checkpoint_eval(f)),
    "bias_benchmarks": ("bias_summary.json (seethrough eval with CrowS-Pairs / BBQ)", _has("bias_summary.json")),
    "memorization": ("memorization.parquet + summary.json (seethrough memorization --out)",
                     _has("memorization.parquet", "summary.json")),
    "membership": ("evaluation.json (seethrough membership --evaluate --out)", _has("evaluation.json")),
    "facts": ("facts.parquet + summary.json (seethrough facts --out)", _has("facts.parquet", "summary.json")),
    "bias_data": ("bias_data.json (seethrough bias data --out)", _has("bias_data.json")),
    "bias_model": ("bias_model.json (seethrough bias model --out)", _has("bias_model.json")),
    "probe": ("probe.json (seethrough probe --out, or the demo's probe step)", _has("probe.json")),
    "lens": ("lens.json (seethrough lens --out)", _has("lens.json")),
    "detect": ("detect.json (seethrough detect --out)", _has("detect.json")),
    "control": ("summary.json of kind erase or steer (seethrough erase / steer --out)",
                lambda f: _control_summary(f) is not None),
}
"""Kind -> (what identifies it, the test on a folder)."""


def _control_summary(folder: Path) -> Path | None:
    """``summary.json`` written by the control audits (erase / steer), recognised by its ``format``."""
    path = folder / "summary.json"
    if not path.is_file() or (folder / "memorization.parquet").is_file() or (folder / "facts.parquet").is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = value.get("kind") if isinstance(value, dict) else None
    return path if kind in CONTROL_KINDS else None


CONTROL_KINDS = ("erase", "steer")
"""``kind`` of the summary.json that ``seethrough erase`` / ``steer --out`` write beside their tensors."""


def recognise_folder(folder: str | Path) -> list[str]:
    """The kinds of artefact ``folder`` holds (in ``KINDS`` order); a folder with none is refused."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--results {folder} is not a folder; pass a folder an audit or eval wrote with --out")
    kinds = [kind for kind, (_, test) in KINDS.items() if test(folder)]
    if not kinds:
        raise ConfigError(f"--results {folder} holds no artefact a report knows (results.json, summary.json + "
                          "memorization.parquet or facts.parquet, evaluation.json, bias_data.json, bias_model.json, "
                          "probe.json, lens.json, detect.json, an erase or steer summary.json); pass a folder an audit wrote")
    return kinds


@dataclass
class Artefacts:
    """Everything a section may read: the run (a ``train.Run``), the corpus opened with its index when
    built (an ``IndexedCorpus``, else the ``TokenCorpus``), the results folders by kind, and the
    ``Sources`` every file is read through (so each is hashed once and every number can name it)."""
    run_path: Path
    run: Any
    corpus: Any
    indexed: bool
    results: dict[str, list[Path]] = field(default_factory=dict)
    sources: Sources = field(default_factory=Sources)
    options: dict[str, Any] = field(default_factory=dict)
    built: dict[str, Any] = field(default_factory=dict)
    """Sections built so far, by id (the transparency checklist reads them)."""

    @property
    def corpus_path(self) -> Path:
        return Path(self.run.corpus.path)

    def run_manifest(self):
        return self.sources.json(self.run_path / "run.json")

    def log(self):
        return self.sources.jsonl(self.run_path / "log.jsonl")

    def corpus_manifest(self):
        return self.sources.json(self.corpus_path / "manifest.json")

    def index_manifest(self):
        return self.sources.json(self.corpus_path / "index.json") if self.indexed else None

    def folders(self, kind: str) -> list[Path]:
        return self.results.get(kind, [])


def gather(run: str | Path, corpus: str | Path | None = None, results: Sequence[str | Path] = (),
           **options: Any) -> Artefacts:
    """Open the run (and its corpus: ``corpus`` when it moved, checked by content hash) and recognise
    each results folder. Raises a one-line error for a run that is not one or a folder of nothing known."""
    from ..index.build import read_index_manifest
    from ..train.run import open_run

    run_path = Path(run)
    if not (run_path / "run.json").is_file():
        raise RunError(f"{run_path} is not a run folder (no run.json); pass a folder written by `seethrough train`")
    opened = open_run(run_path, corpus)
    indexed = read_index_manifest(opened.corpus.path) is not None
    if indexed:
        from ..index import open_corpus

        corpus_view: Any = open_corpus(opened.corpus.path)
    else:
        corpus_view = opened.corpus
    by_kind: dict[str, list[Path]] = {}
    seen: set[Path] = set()
    for folder in results:
        folder = Path(folder)
        key = folder.resolve()
        if key in seen:
            continue
        seen.add(key)
        kinds = recognise_folder(folder)
        _check_made_from_this_run(folder, kinds, opened)
        for kind in kinds:
            by_kind.setdefault(kind, []).append(folder)
    return Artefacts(run_path, opened, corpus_view, indexed, by_kind,
                     Sources(tuple(folder for folders in by_kind.values() for folder in folders)), options=options)


def refuse_out_inside(out: Path, *folders: Path) -> None:
    """A report or bundle written inside the run or corpus folder it describes would change what it
    describes (and a release would copy the weights into the run); refused, naming the folder."""
    where = out.resolve()
    for folder in folders:
        if where.is_relative_to(folder.resolve()):
            raise ConfigError(f"--out {out} is inside {folder}, which it describes; pass a folder outside it "
                              f"(the default is beside the run)")


def checkpoint_weights_hashes(run: Any) -> dict[str, int]:
    """The weights hash of each checkpoint (as ``model.weights_sha256`` and results record it) -> its step,
    from the file hashes run.json lists, so no weights are read."""
    from ..model.weights import combine_weights_hashes

    hashes = {}
    for entry in run.manifest["checkpoints"]:
        files = entry.get("files") or {}
        weights = {name: sha for name, sha in files.items() if name.endswith((".safetensors", ".bin"))}
        if weights:
            hashes[combine_weights_hashes(weights)] = entry["step"]
    return hashes


RECORDED_ORIGIN: dict[str, tuple[tuple[str, ...], str | None, str | None]] = {
    "eval": (("results.json", "step-*/results.json"), "/seethrough/model/corpus_hash", "/seethrough/model/weights_sha256"),
    "bias_data": (("bias_data.json",), "/corpus/corpus_hash", None),
    "bias_model": (("bias_model.json",), "/corpus/corpus_hash", "/model/weights_sha256"),
    "lens": (("lens.json",), "/corpus/corpus_hash", "/model/weights_sha256"),
}
"""Kind -> (its files, where each records the corpus it measured or the model was trained on, where the
weights hash of the model it measured): what ties a results folder to a run. The other kinds record
neither (memorization, facts, probe) or may measure other models by design (detect's reference model)."""


def _check_made_from_this_run(folder: Path, kinds: list[str], run: Any) -> None:
    """A results folder that records another corpus, or weights that are none of the run's checkpoints, is
    refused: the report and the model card would show another run's numbers as this run's."""
    known = checkpoint_weights_hashes(run)
    own_corpus = run.manifest["corpus"]["corpus_hash"]
    for kind in kinds:
        if kind not in RECORDED_ORIGIN:
            continue
        names, corpus_at, weights_at = RECORDED_ORIGIN[kind]
        for path in [path for name in names for path in sorted(folder.glob(name))]:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # an unreadable file is refused, naming it, where its section reads it
            corpus, weights = _recorded(record, corpus_at), _recorded(record, weights_at)
            if corpus is not None and corpus != own_corpus:
                raise ConfigError(f"--results {folder}: {path.name} measured another corpus (corpus hash "
                                  f"{str(corpus)[:12]}; run {run.path}'s is {own_corpus[:12]}); pass results of this run")
            if weights is not None and known and weights not in known:
                raise ConfigError(f"--results {folder}: {path.name} measured weights that are none of run "
                                  f"{run.path}'s checkpoints (weights sha256 {str(weights)[:12]}); pass results of "
                                  "this run")


def _recorded(record: Any, where: str | None) -> Any:
    """The value at JSON pointer ``where`` (plain keys), or None where the record does not hold it."""
    if where is None:
        return None
    for key in where.strip("/").split("/"):
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record if isinstance(record, str) else None
