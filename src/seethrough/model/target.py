"""What a command's MODEL argument names: a run (one or more of its checkpoints) or any Hugging Face
model folder, resolved once into typed values. A checkpoint is a ``Checkpoint`` (step, folder,
weights hash), never a label parsed back from a string.

The checks that a corpus is the model's own live here too, because this is where both are known:
a run records the content hash of the corpus it was trained on; a plain model folder carries its
tokenizer, which must be the corpus's (by hash, or else by identical vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import ModelError


@dataclass(frozen=True)
class Checkpoint:
    """One set of weights: a run's checkpoint (``step`` after that many optimizer steps) or a model folder."""
    path: Path
    step: int | None = None
    """Optimizer steps behind these weights; None for a model folder that is not a run's checkpoint."""
    recorded_sha256: str | None = None
    """The sha256 of ``model.safetensors`` that the run manifest recorded when it saved the checkpoint."""
    intervention: Any = None
    """An ``interventions.Intervention`` (eraser or steering vector) that ``load_model`` installs on the
    loaded model, after checking it was fitted on these weights; None: the model as trained."""

    @property
    def label(self) -> str:
        """``step-N`` (a run's checkpoint folder name) or the model folder's name: for display and sub-folders."""
        return f"step-{self.step}" if self.step is not None else self.path.name

    @cached_property
    def weights_sha256(self) -> str:
        from .weights import weights_sha256

        return weights_sha256(self.path)

    def with_intervention(self, intervention: Any) -> Checkpoint:
        """These weights with ``intervention`` (None: the model as trained); the weights hash, if already
        computed, carries over (``dataclasses.replace`` would drop it and read the weights again)."""
        from dataclasses import replace

        copy = replace(self, intervention=intervention)
        if "weights_sha256" in self.__dict__:
            copy.__dict__["weights_sha256"] = self.__dict__["weights_sha256"]
        return copy

    def to_dict(self) -> dict[str, Any]:
        out = {"path": str(self.path), "step": self.step, "label": self.label}
        if self.intervention is not None:
            out["intervention"] = self.intervention.to_dict()
        return out


@dataclass
class ModelTarget:
    """A resolved MODEL argument: the run (or None) and the checkpoints chosen from it."""
    path: Path
    checkpoints: list[Checkpoint]
    run: Any = None
    """The ``train.Run`` when the target is a run folder."""

    @property
    def last(self) -> Checkpoint:
        return self.checkpoints[-1]

    def check_corpus(self, corpus: Any) -> None:
        """Refuse a corpus that is not this model's: for a run, not the corpus it was trained on (by
        content hash); for a model folder, one whose tokenizer is not the model's. ``corpus`` is a
        ``TokenCorpus`` or an ``IndexedCorpus``."""
        tokens = getattr(corpus, "corpus", corpus)
        if self.run is not None:
            recorded = self.run.manifest["corpus"]["corpus_hash"]
            if tokens.corpus_hash != recorded:
                raise ModelError(f"--corpus {tokens.path} is not the corpus run {self.path} was trained on (corpus "
                                 f"hash {str(tokens.corpus_hash)[:12]}, the run's {recorded[:12]}); pass the run's own "
                                 "corpus")
            return
        check_tokenizer(self.last.path, tokens)


def check_tokenizer(model_folder: Path, corpus: Any) -> None:
    """Refuse a corpus whose tokenizer is not the model folder's (same hash, or the same vocabulary)."""
    from ..corpus.tokenizer import load_tokenizer
    from ..errors import SeethroughError

    if corpus.tokenizer is None:
        raise ModelError(f"corpus {corpus.path} has no tokenizer to compare with model {model_folder}'s; pass "
                         "--tokenizer for an infini-gram folder")
    file = Path(model_folder) / "tokenizer.json"
    if not file.exists():
        raise ModelError(f"model {model_folder} has no tokenizer.json, so it cannot be checked against corpus "
                         f"{corpus.path}'s tokenizer; save the model's fast tokenizer into its folder")
    try:
        mine = load_tokenizer(file)
    except SeethroughError as error:
        raise ModelError(f"model {model_folder}: {error}") from None
    if mine.sha256 == corpus.tokenizer.sha256:
        return
    if mine.tokenizer.get_vocab(with_added_tokens=True) != corpus.tokenizer.tokenizer.get_vocab(with_added_tokens=True):
        raise ModelError(f"model {model_folder}'s tokenizer is not corpus {corpus.path}'s (their vocabularies "
                         "differ), so token ids would mean different things; pass the corpus the model was trained on")


def resolve_target(target: str | Path, checkpoints: str | None = None, intervention: Any = None,
                   flag: str = "--checkpoints") -> ModelTarget:
    """A run folder (``checkpoints``: ``last`` (default), ``all`` or steps like ``64,128,last``) or a
    model folder (a ``config.json``; one model, so ``checkpoints`` must be unset or ``last``).
    ``intervention``: an ``interventions.Intervention`` (``load_intervention(folder)``) attached to every
    checkpoint, so that ``load_model`` installs it; refused here, before anything runs, when it was not
    fitted on every chosen checkpoint. ``flag``: the option that gave ``checkpoints``, for the errors."""
    if intervention is not None:
        if not callable(getattr(intervention, "install", None)):
            raise ModelError(f"intervention {intervention!r} is not an Intervention; load its folder with "
                             "seethrough.model.load_intervention")
        resolved = resolve_target(target, checkpoints, flag=flag)
        resolved.checkpoints = [c.with_intervention(intervention) for c in resolved.checkpoints]
        for checkpoint in resolved.checkpoints:  # not after the first checkpoint's results are written
            intervention.check_model(checkpoint.weights_sha256, f"{checkpoint.path}")
        return resolved
    from ..train.run import RUN_MANIFEST, checkpoint_dir, open_run

    path = Path(target)
    if (path / RUN_MANIFEST).exists():
        run = open_run(path)
        records = {c["step"]: c for c in run.manifest["checkpoints"]}
        steps = sorted(records)
        if not steps:
            raise ModelError(f"run {path} has no checkpoints yet; train it first (seethrough train)")
        chosen = choose_steps(steps, checkpoints, flag)
        return ModelTarget(path, [Checkpoint(checkpoint_dir(path, s), s, records[s].get("sha256")) for s in chosen], run)
    if not (path / "config.json").exists():
        what = "does not exist" if not path.exists() else "is neither a run folder (run.json) nor a model folder (config.json)"
        raise ModelError(f"{path} {what}; pass a run folder written by `seethrough train` or a Hugging Face model folder")
    if checkpoints not in (None, "", "last"):
        raise ModelError(f"{flag} {checkpoints} needs a run folder; {path} is one model folder")
    return ModelTarget(path, [Checkpoint(path)])


def choose_steps(steps: list[int], spec: str | None, flag: str = "--checkpoints") -> list[int]:
    """``last``/None, ``all``, or a comma list of steps and ``last``, each one the run has (in the order given,
    duplicates dropped); ``flag`` names the option in the errors."""
    if spec in (None, "", "last"):
        return [steps[-1]]
    if spec == "all":
        return list(steps)
    chosen: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if part == "last":
            step = steps[-1]
        elif part.isascii() and part.isdigit():
            step = int(part)
        else:
            raise ModelError(f"{flag} {spec!r}: use all, last, or steps like 64,128,last")
        if step not in steps:
            raise ModelError(f"{flag} {spec!r}: the run has no checkpoint at step {step}; it has {steps}")
        if step not in chosen:
            chosen.append(step)
    return chosen
