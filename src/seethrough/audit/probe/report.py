"""``seethrough probe``: probes of a model's hidden states, per layer and method, on held-out items,
beside the model's own answers to the same items.

    from seethrough.audit.probe import ProbeSettings, probe_model, read_probe_data, write_probe
    report = probe_model("run/", read_probe_data("pairs.jsonl"), ProbeSettings(train_group="ordinary",
                                                                                test_group="quirky"))
    write_probe(report, "out/")      # probe.json, probe.png, directions.safetensors + directions.json

The model is read through the eval backend (``evaluate.backend.SeethroughLM``): its model gives
the hidden states (``model.last_token_hidden_states``), and its log-likelihoods give the model's
own answer to a contrast pair (the choice it finds likelier after the question, as lm-eval scores a
multiple-choice item), so a probe that knows more than the model says shows as a probe accuracy
above the output accuracy on the same items. Statements have no alternative to compare, so they
get no output accuracy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ...errors import ConfigError, ModelError, QueryError
from ..intervals import wilson_interval
from .data import PAIRS, ProbeData, split_items
from .features import SideNormalizer, extract_features, hidden_layers, parse_layers
from .methods import METHODS, FittedProbe, fit_probe, parse_methods
from .metrics import RESAMPLES, accuracy, auroc, bootstrap_intervals, expected_calibration_error, resample_indexes

LAYER_MEANING = ("layer 0 is the embeddings, layer L (1..n) the residual stream leaving block L, read at the last "
                 "token, as transformers' hidden_states; layer n (the last block) is taken after the model's final "
                 "norm, as transformers gives it")
DIRECTIONS_FORMAT = "seethrough-probe-directions"


@dataclass
class ProbeSettings:
    layers: str = "all"
    """Layers to probe: all, or numbers like 0,2,4 or ranges like 1-3 (0 is the embeddings, L the output of block L)."""
    methods: str = "all"
    """Methods, comma-separated: logreg, diffmean, lda, ccs, vinc, random (ccs and vinc need contrast pairs); all: every one the data allows."""
    train_group: str | None = None
    """Fit on the items of this group (with --test-group: test on that group's items; alone: a held-out split of it)."""
    test_group: str | None = None
    """Test on the items of this group (alone: fit on every item outside it)."""
    test_share: float = 0.3
    """Share of the items (of each label) held out for testing when no group pair decides the split."""
    seed: int = 0
    """Seed of the split, the bootstrap resamples, the CCS starts and the random directions."""
    delimiter: str = " "
    """Between a pair's question and each choice."""
    ccs_restarts: int = 10
    """Random starts of CCS (the lowest loss is kept)."""
    logreg_c: float = 1.0
    """Inverse L2 penalty of the logistic regression (scikit-learn's C), on the normalised states."""
    batch_size: int = 64
    """Texts per forward pass (texts of equal length share a pass; nothing is padded)."""

    def __post_init__(self) -> None:
        if not isinstance(self.test_share, (int, float)) or not 0 < self.test_share < 1:
            raise ConfigError(f"--test-share {self.test_share!r}: give a share between 0 and 1, like 0.3")
        for name in ("ccs_restarts", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {value!r}: give a whole number of at least 1")
        if not isinstance(self.logreg_c, (int, float)) or not self.logreg_c > 0:
            raise ConfigError(f"--logreg-c {self.logreg_c!r}: the inverse penalty must be above 0, like 1.0")


class Prober:
    """One checkpoint loaded for probing: its hidden states and its own answers."""

    def __init__(self, checkpoint: Any, threads: int | None = None, device: str = "cpu") -> None:
        from ...evaluate.backend import SeethroughLM

        self.checkpoint = checkpoint
        # transformers: probes read output_hidden_states, which the plain GPT-NeoX does not give
        self.lm = SeethroughLM(checkpoint, threads=threads, device=device, implementation="transformers")
        self.model = self.lm.model
        self.tokenizer = self.lm.tokenizer
        self.blocks = hidden_layers(self.model)

    def features(self, data: ProbeData, layers: list[int], delimiter: str = " ", batch_size: int = 64) -> np.ndarray:
        """Items x sides x layers x width, float32."""
        return extract_features(self.model, self.tokenizer, data, layers, delimiter, batch_size)

    def answers(self, data: ProbeData, delimiter: str = " ") -> np.ndarray | None:
        """For contrast pairs: the index of the choice the model finds likelier after the question (its
        log-likelihood; the first on a tie); None for statements."""
        if data.kind != PAIRS:
            return None
        requests = [SimpleNamespace(args=(item.question, delimiter + choice))
                    for item in data.items for choice in item.choices or ()]
        scores = np.array([float(s) for s, _ in self.lm.loglikelihood(requests)]).reshape(len(data.items), 2)
        return (scores[:, 1] > scores[:, 0]).astype(np.int64)


def fit_probes(z: np.ndarray, labels: np.ndarray, layers: list[int], methods: list[str],
               settings: ProbeSettings) -> dict[tuple[int, str], FittedProbe]:
    """Every method's probe at every layer, from the normalised states ``z`` (items x sides x layers x width)."""
    return {(layer, method): fit_probe(method, layer, z[:, :, k], labels, settings.seed, settings.logreg_c,
                                       settings.ccs_restarts)
            for k, layer in enumerate(layers) for method in methods}


def evaluate_probes(probes: dict[tuple[int, str], FittedProbe], z: np.ndarray, labels: np.ndarray,
                    layers: list[int], answers: np.ndarray | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Per layer and method on the items of ``z`` (normalised; items x sides x layers x width):
    accuracy and AUROC with bootstrap 95% intervals, ECE, and the AUROC against the model's own answers."""
    resamples = resample_indexes(len(labels), seed, RESAMPLES)
    rows = []
    for (layer, method), probe in probes.items():
        states = z[:, :, layers.index(layer)]
        scores, probabilities, predicted = probe.scores(states), probe.probabilities(states), probe.predictions(states)
        row = {"layer": layer, "method": method, "accuracy": accuracy(labels, predicted),
               "auroc": auroc(labels, scores), "ece": expected_calibration_error(labels, probabilities),
               **bootstrap_intervals(labels, scores, predicted, resamples)}
        # 1 - this is how far the probe follows the model's own answer rather than the label
        row["auroc_vs_output"] = auroc(answers, scores) if answers is not None and len(set(answers.tolist())) == 2 \
            else None
        rows.append(row)
    return rows


@dataclass
class ProbeReport:
    checkpoint: Any
    data: ProbeData
    settings: ProbeSettings
    layers: list[int]
    methods: list[str]
    blocks: int
    train: np.ndarray
    test: np.ndarray
    results: list[dict[str, Any]]
    probes: dict[tuple[int, str], FittedProbe]
    normalizer: SideNormalizer
    answers: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def output_accuracy(self, items: np.ndarray) -> tuple[float, list[float]] | None:
        """The model's own accuracy on ``items`` (indexes) with its Wilson 95% interval; None for statements."""
        if self.answers is None:
            return None
        right = int((self.answers[items] == self.data.labels[items]).sum())
        return right / len(items), list(wilson_interval(right, len(items)))

    def to_dict(self) -> dict[str, Any]:
        labels = self.data.labels
        output = self.output_accuracy(self.test)
        output_train = self.output_accuracy(self.train)

        def part(indexes: np.ndarray, group: str | None) -> dict[str, Any]:
            return {"group": group, "items": int(len(indexes)),
                    "labels": {str(v): int((labels[indexes] == v).sum()) for v in (0, 1)}}

        checkpoint = self.checkpoint
        return {
            "model": {"path": str(checkpoint.path), "step": checkpoint.step, "weights_sha256": checkpoint.weights_sha256},
            "data": {"source": self.data.source, "kind": self.data.kind},
            "items": len(self.data.items), "train": part(self.train, self.settings.train_group),
            "test": part(self.test, self.settings.test_group),
            "output_accuracy": output[0] if output else None, "output_accuracy_ci": output[1] if output else None,
            "output_accuracy_train": output_train[0] if output_train else None,
            "layers": self.layers, "blocks": self.blocks, "methods": self.methods, "layer_meaning": LAYER_MEANING,
            "results": self.results, "notes": self.notes, "settings": dataclasses.asdict(self.settings),
        }


def probe_model(target: Any, data: ProbeData, settings: ProbeSettings | None = None, checkpoint: str | None = None,
                threads: int | None = None, device: str = "cpu") -> ProbeReport:
    """Fit every chosen method at every chosen layer of ``target`` (a run, its ``checkpoint`` step, or a
    model folder; or a ``model.Checkpoint``) on the training items of ``data`` and test it on the others.
    Writes nothing."""
    from ...model import Checkpoint, resolve_target

    settings = settings or ProbeSettings()
    methods = parse_methods(settings.methods, data.kind)
    train, test = split_items(data, settings.train_group, settings.test_group, settings.test_share, settings.seed)
    if isinstance(target, Checkpoint):
        chosen = target
    else:
        resolved = resolve_target(target, checkpoint)
        if len(resolved.checkpoints) != 1:
            raise ModelError(f"--checkpoint {checkpoint}: probe one checkpoint at a time; give one step")
        chosen = resolved.last
    prober = Prober(chosen, threads=threads, device=device)
    layers = parse_layers(settings.layers, prober.blocks)
    features = prober.features(data, layers, settings.delimiter, settings.batch_size)
    answers = prober.answers(data, settings.delimiter)
    normalizer = SideNormalizer.fit(features[train])
    z = normalizer.apply(features)
    labels = data.labels
    probes = fit_probes(z[train], labels[train], layers, methods, settings)
    results = evaluate_probes(probes, z[test], labels[test], layers,
                              answers[test] if answers is not None else None, settings.seed)
    for row in results:
        probe = probes[(row["layer"], row["method"])]
        states = z[train][:, :, layers.index(row["layer"])]
        row["train_accuracy"] = accuracy(labels[train], probe.predictions(states))
        row["train_auroc"] = auroc(labels[train], probe.scores(states))
    notes = []
    if data.kind != PAIRS:
        notes.append("statements have no alternative answer to score, so there is no output accuracy; contrast "
                     "pairs have one")
    if prober.blocks in layers:
        notes.append(f"layer {prober.blocks} is the last block's output after the final norm (transformers' "
                     "hidden_states)")
    return ProbeReport(chosen, data, settings, layers, methods, prober.blocks, train, test, results, probes,
                       normalizer, answers, notes)


# ---- writing ---------------------------------------------------------------------------------------------


def write_probe(report: ProbeReport, out: str | Path) -> dict[str, Any]:
    """``out/probe.json`` (the report), ``probe.png`` (AUROC and accuracy per layer, every method, with
    intervals; the model's output accuracy beside them) and the fitted directions
    (``directions.safetensors`` + ``directions.json``); each written under a temporary name, then
    renamed. Returns the report's dictionary."""
    from ..._files import atomic_write_json
    from .plots import plot_probe

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise QueryError(f"--out {out} is a file; give a folder for probe.json, its plot and the directions")
    out.mkdir(parents=True, exist_ok=True)
    summary = report.to_dict()
    save_directions(report, out)
    tmp = out / ".probe.png.tmp.png"
    plot_probe(summary, tmp)
    tmp.replace(out / "probe.png")
    atomic_write_json(out / "probe.json", summary)
    return summary


def save_directions(report: ProbeReport, out: str | Path) -> None:
    """The fitted probes: ``directions.safetensors`` (per layer the normaliser's ``layer.L.mean`` (sides x
    width) and ``layer.L.scale`` (sides); per layer and method ``layer.L.METHOD.direction``, the unit
    direction in the model's hidden space, and ``layer.L.METHOD.weight``, the probe's weights on the
    normalised states) and ``directions.json`` (the model's weights hash, layers, methods, each probe's
    bias, slope, offset and test metrics)."""
    from safetensors.numpy import save

    from ..._files import atomic_write_bytes, atomic_write_json

    out = Path(out)
    tensors: dict[str, np.ndarray] = {}
    for k, layer in enumerate(report.layers):
        tensors[f"layer.{layer}.mean"] = report.normalizer.mean[:, k].astype(np.float32)
        tensors[f"layer.{layer}.scale"] = report.normalizer.scale[:, k].astype(np.float32)
    metrics = {(r["layer"], r["method"]): r for r in report.results}
    probes = []
    for (layer, method), probe in report.probes.items():
        tensors[f"layer.{layer}.{method}.direction"] = probe.direction.astype(np.float32)
        tensors[f"layer.{layer}.{method}.weight"] = probe.weight.astype(np.float32)
        row = metrics.get((layer, method), {})
        probes.append({"layer": layer, "method": method, "bias": probe.bias, "slope": probe.slope,
                       "offset": probe.offset, "flipped": probe.details.get("flipped"),
                       "test_auroc": row.get("auroc"), "test_accuracy": row.get("accuracy")})
    atomic_write_bytes(out / "directions.safetensors", save(tensors))
    checkpoint = report.checkpoint
    atomic_write_json(out / "directions.json", {
        "format": DIRECTIONS_FORMAT, "version": 1,
        "model": {"path": str(checkpoint.path), "step": checkpoint.step, "weights_sha256": checkpoint.weights_sha256},
        "data": report.data.kind, "sides": report.data.sides, "delimiter": report.settings.delimiter,
        "layers": report.layers, "methods": report.methods, "width": int(report.normalizer.mean.shape[-1]),
        "layer_meaning": LAYER_MEANING,
        "score": "z = (h - mean[side]) / scale[side] per side; f = z (statements) or z[1] - z[0] (pairs); "
                 "score = weight . f + bias; probability = sigmoid(slope x score + offset); ccs: "
                 "(sigmoid(weight . z[1] + bias) + 1 - sigmoid(weight . z[0] + bias)) / 2",
        "probes": probes})


@dataclass
class ProbeDirections:
    """Directions saved by ``write_probe``, for erasure and steering."""
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray]

    def direction(self, layer: int, method: str) -> np.ndarray:
        """The unit direction of ``method`` at ``layer`` in the model's hidden space (width,)."""
        key = f"layer.{layer}.{method}.direction"
        if key not in self.tensors:
            have = ", ".join(f"{p['layer']}/{p['method']}" for p in self.meta["probes"])
            raise QueryError(f"no saved direction for layer {layer}, method {method}; the file has {have}")
        return self.tensors[key]

    def probe(self, layer: int, method: str) -> tuple[FittedProbe, SideNormalizer]:
        """The fitted probe and its layer's normaliser, as ``write_probe`` saved them."""
        self.direction(layer, method)
        row = next(p for p in self.meta["probes"] if p["layer"] == layer and p["method"] == method)
        probe = FittedProbe(method, layer, self.tensors[f"layer.{layer}.{method}.weight"].astype(np.float64),
                            row["bias"], row["slope"], row["offset"])
        normalizer = SideNormalizer(self.tensors[f"layer.{layer}.mean"].astype(np.float64)[:, None],
                                    self.tensors[f"layer.{layer}.scale"].astype(np.float64)[:, None])
        return probe, normalizer

    def check_model(self, checkpoint: Any) -> None:
        """Refuse a model other than the one the directions were fitted on (by weights hash)."""
        recorded = self.meta["model"]["weights_sha256"]
        if checkpoint.weights_sha256 != recorded:
            raise ModelError(f"the directions were fitted on model {self.meta['model']['path']} (weights "
                             f"{recorded[:12]}), not {checkpoint.path} ({checkpoint.weights_sha256[:12]}); fit them "
                             "on this model with seethrough probe")


def load_directions(folder: str | Path) -> ProbeDirections:
    """The directions ``write_probe`` saved in ``folder`` (``directions.json`` + ``directions.safetensors``)."""
    import json

    from safetensors.numpy import load_file

    folder = Path(folder)
    meta_file, tensor_file = folder / "directions.json", folder / "directions.safetensors"
    if not meta_file.exists() or not tensor_file.exists():
        raise QueryError(f"{folder} holds no saved directions (directions.json and directions.safetensors); "
                         "write them with seethrough probe --out")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        tensors = load_file(str(tensor_file))
    except (ValueError, OSError) as error:
        raise QueryError(f"{folder}: the saved directions cannot be read ({str(error).splitlines()[0]}); write them "
                         "again with seethrough probe --out") from None
    if not isinstance(meta, dict) or meta.get("format") != DIRECTIONS_FORMAT:
        raise QueryError(f"{meta_file} is not a seethrough probe directions file")
    return ProbeDirections(meta, tensors)


__all__ = ["METHODS", "ProbeDirections", "ProbeReport", "ProbeSettings", "Prober", "evaluate_probes", "fit_probes",
           "load_directions", "probe_model", "save_directions", "write_probe"]
