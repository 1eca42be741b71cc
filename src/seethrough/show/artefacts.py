"""What a report or release is made from: the run, its corpus (and index), and the ``--results``
folders, each recognised by the files it holds.

A results folder is recognised by the file names its command writes (``KINDS``): a folder may hold
several kinds (``bias data`` and ``bias model`` into one folder, ``eval``'s ``bias_summary.json``
beside its ``results.json``). A folder that holds none of them is refused with a one-line error.
"""

from __future__ import annotations

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
        import json

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
        for kind in recognise_folder(folder):
            by_kind.setdefault(kind, []).append(folder)
    return Artefacts(run_path, opened, corpus_view, indexed, by_kind, options=options)
