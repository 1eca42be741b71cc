"""``seethrough erase``: fit a LEACE eraser of a concept layer by layer (concept scrubbing), and measure
what it removes and what it costs.

The concept comes as probe statements (``{"text", "label": 0|1}``, the ``seethrough probe`` file):
the state read is the one leaving block L at each text's last token, where a hook on layer L edits
(``model.block_output_states``). Layers are fitted in ascending order, each on the states the model
gives with the erasers of the layers before it already on, so that a later layer cannot recover what
an earlier one removed from what it reads (Belrose et al. 2023, "concept scrubbing").
``concept_erasure.LeaceFitter`` does the fitting (``method``: ``leace``, or ``orth``, the plain
orthogonal projection), in float64 on the fit items; the eraser is stored in float32.

The report, on the held-out items (``test_share`` of each label, seeded):

- a fresh scikit-learn logistic probe per erased layer, fitted on the fit items' states and tested on
  the held-out ones, before and after erasure (after: with every layer's eraser on), with a Wilson
  interval, against the majority rate (always answering the fit items' majority label);
- the mean norm of the edit at each layer (and the mean norm of the state it edits);
- the change in mean next-token cross-entropy on held-out corpus text (``corpus``);
- the change in the model-vs-data group shares of ``bias model`` (``index``, groups, templates);
- the change in the scores of eval tasks (``tasks``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, QueryError
from ...model.interventions import (ERASER, ERASER_METHODS, block_output_states, folder_sha256, in_memory,
                                    write_intervention)
from ...model.tokenizer import load_model_tokenizer
from .common import (block_layers, check_fit_settings, corpus_cross_entropy, heldout_windows,
                     resolve_checkpoint)


@dataclass
class EraseSettings:
    layers: str = "all"
    """Block outputs to erase at: all, or numbers like 1,3 or ranges like 1-3 (1..n; layer L is the output of block L)."""
    method: str = "leace"
    """leace (least-squares concept erasure) or orth (the orthogonal projection off the class-mean directions)."""
    test_share: float = 0.3
    """Share of the items (of each label) held out for the report's fresh probe."""
    seed: int = 0
    """Seed of the held-out split, of the corpus documents drawn and of the intervals."""
    heldout_tokens: int = 4096
    """Corpus tokens on which the cross-entropy change is measured (with --corpus)."""
    seq_len: int = 64
    """Tokens per window of corpus text."""
    batch_size: int = 64
    """Texts per forward pass (texts of equal length share a pass; nothing is padded)."""

    def __post_init__(self) -> None:
        if self.method not in ERASER_METHODS:
            raise ConfigError(f"--method {self.method!r}: use leace or orth")
        check_fit_settings(self)


@dataclass
class EraseReport:
    """An eraser fitted and measured (``to_dict`` is the ``summary.json`` of its folder)."""
    checkpoint: Any
    settings: EraseSettings
    layers: list[int]
    width: int
    tensors: dict[int, dict[str, np.ndarray]]
    data: dict[str, Any]
    probes: list[dict[str, Any]]
    edits: list[dict[str, Any]]
    cross_entropy: dict[str, Any] | None = None
    bias: dict[str, Any] | None = None
    evals: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def meta(self) -> dict[str, Any]:
        """``eraser.json`` without its format fields."""
        c = self.checkpoint
        return {"model": {"path": str(c.path), "step": c.step, "weights_sha256": c.weights_sha256},
                "method": self.settings.method, "width": self.width, "data": self.data,
                "layer_meaning": LAYER_MEANING, "formula": FORMULA}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "erase", **self.meta(), "layers": self.layers,
                "settings": {k: getattr(self.settings, k) for k in ("method", "test_share", "seed",
                                                                     "heldout_tokens", "seq_len")},
                "probes": self.probes, "edits": self.edits, "cross_entropy": self.cross_entropy,
                "bias": self.bias, "evals": self.evals, "notes": self.notes, "seconds": round(self.seconds, 3)}


LAYER_MEANING = ("layer L (1..n) is the hidden state leaving block L, as transformers' hidden_states[L]; for the "
                 "last block it is the block's output before the model's final norm")
FORMULA = "x - ((x - bias) @ proj_right.T) @ proj_left.T, at every position of the state leaving block L"


def data_record(data: Any) -> dict[str, Any]:
    """What the eraser records of its data: the file and its sha256 (or, for items made in memory, the
    sha256 of their canonical JSON), the number of items."""
    from ..._files import sha256_file, sha256_json

    source = Path(data.source) if data.source else None
    if source is not None and source.is_file():
        return {"path": str(source), "sha256": sha256_file(source), "items": len(data.items)}
    return {"path": None, "items_sha256": sha256_json([[i.text, i.label] for i in data.items]),
            "items": len(data.items)}


def fit_erasers(model: Any, rows: list[list[int]], labels: np.ndarray, layers: list[int], method: str,
                model_sha256: str, batch_size: int = 64) -> dict[int, dict[str, np.ndarray]]:
    """Per layer (ascending) concept-erasure's eraser tensors, each fitted on the last-token states the
    model gives with the erasers of the layers before it on."""
    import torch
    from concept_erasure import LeaceFitter

    fitted: dict[int, dict[str, np.ndarray]] = {}
    z = torch.as_tensor(labels, dtype=torch.float64).reshape(-1, 1)
    for layer in layers:
        partial = in_memory(ERASER, dict(fitted), model_sha256)
        with partial.installed(model):
            x = block_output_states(model, rows, [layer], batch_size=batch_size)[:, 0].double()
        eraser = LeaceFitter.fit(x, z, method=method).eraser
        bias = eraser.bias if eraser.bias is not None else torch.zeros(x.shape[1], dtype=torch.float64)
        fitted[layer] = {"proj_left": eraser.proj_left.float().numpy(), "proj_right": eraser.proj_right.float().numpy(),
                         "bias": bias.float().numpy()}
    return fitted


def fresh_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> dict[str, Any]:
    """A scikit-learn logistic regression (standardised inputs) fitted on train, its held-out accuracy
    with a Wilson interval, and the majority rate (the fit items' majority label, on the held-out)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..intervals import wilson_interval

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    probe.fit(train_x.astype(np.float64), train_y)
    right = int((probe.predict(test_x.astype(np.float64)) == test_y).sum())
    majority = int(np.bincount(train_y, minlength=2).argmax())
    majority_right = int((test_y == majority).sum())
    low, high = wilson_interval(right, len(test_y))
    return {"accuracy": right / len(test_y), "accuracy_ci": [low, high], "items": int(len(test_y)),
            "majority_rate": majority_right / len(test_y), "majority_label": majority,
            "at_majority_rate": bool(low <= majority_right / len(test_y) <= high)}


def measure_edits(model: Any, eraser: Any, rows: list[list[int]], batch_size: int = 64) -> list[dict[str, Any]]:
    """Per layer of ``eraser``: the mean norm of its edit of the last-token state of ``rows`` and of that
    state, taken as it arrives at the layer (the earlier layers' erasers on, as when deployed)."""
    import torch

    edits = []
    for k, layer in enumerate(eraser.layers):
        earlier = in_memory(ERASER, {x: eraser.tensors[x] for x in eraser.layers[:k]}, eraser.model_sha256)
        with earlier.installed(model):
            arriving = block_output_states(model, rows, [layer], batch_size=batch_size)[:, 0]
        norms = torch.linalg.vector_norm(eraser.edit(layer, arriving) - arriving, dim=-1).double()
        state = torch.linalg.vector_norm(arriving, dim=-1).double()
        edits.append({"layer": layer, "mean_edit_norm": float(norms.mean()), "mean_state_norm": float(state.mean()),
                      "relative": float(norms.mean() / state.mean()) if float(state.mean()) > 0 else None,
                      "rank": int(eraser.tensors[layer]["proj_right"].shape[0])})
    return edits


def erase_model(target: Any, data: Any, settings: EraseSettings | None = None, *, checkpoint: str | None = None,
                corpus: Any = None, index: Any = None, groups: Any = None, templates: Any = None,
                tasks: list[str] | None = None, include_path: Any = None, limit: int | None = None,
                threads: int | None = None, device: str = "cpu") -> EraseReport:
    """Fit the eraser of ``data``'s concept (probe statements) at ``settings.layers`` of ``target`` and
    measure it. Optional costs: ``corpus`` (cross-entropy on its text), ``index`` with ``groups`` and
    ``templates`` (``bias model`` shares before/after), ``tasks`` (eval scores before/after, with
    ``include_path`` and ``limit``). Writes nothing; ``write_eraser`` writes the folder."""
    from ...model import load_model, transformer_layers
    from ..probe.data import STATEMENTS, split_items
    from ..probe.features import encode_sides

    began = time.perf_counter()
    settings = settings or EraseSettings()
    if data.kind != STATEMENTS:
        raise QueryError(f"{data.source or 'the data'} holds contrast pairs; erase takes statements "
                         "{\"text\", \"label\": 0|1} labelled with the concept")
    if index is not None and (groups is None or templates is None):
        raise ConfigError("the bias shares need --templates and --groups beside the indexed --corpus; give both")
    labels = data.labels
    try:  # before the model loads
        train, test = split_items(data, test_share=settings.test_share, seed=settings.seed)
    except QueryError:  # probe's wording speaks of its own groups; say what erase needs
        counts = np.bincount(labels, minlength=2)
        raise QueryError(f"{data.source or 'the data'}: {counts[0]} statements of label 0 and {counts[1]} of label 1 "
                         f"do not split into fit and held-out items of both labels at --test-share "
                         f"{settings.test_share}; give more statements of each label, or another --test-share") from None
    # loaded as it is: load_model remembers a run checkpoint's weights hash on it, read below and carried
    # over by with_intervention
    chosen = resolve_checkpoint(target, checkpoint, corpus if corpus is not None else index).with_intervention(None)
    model = load_model(chosen, device=device, threads=threads)
    layers = block_layers(settings.layers, len(transformer_layers(model)))
    rows = encode_sides(load_model_tokenizer(chosen.path), data)
    tensors = fit_erasers(model, [rows[i] for i in train], labels[train], layers, settings.method,
                          chosen.weights_sha256, settings.batch_size)
    eraser = in_memory(ERASER, tensors, chosen.weights_sha256, str(chosen.path), settings.method)
    before = block_output_states(model, rows, layers, batch_size=settings.batch_size).numpy()
    with eraser.installed(model):
        after = block_output_states(model, rows, layers, batch_size=settings.batch_size).numpy()
    probes = [{"layer": layer,
               "before": fresh_probe(before[train, k], labels[train], before[test, k], labels[test]),
               "after": fresh_probe(after[train, k], labels[train], after[test, k], labels[test])}
              for k, layer in enumerate(layers)]
    edits = measure_edits(model, eraser, [rows[i] for i in test], settings.batch_size)
    report = EraseReport(chosen, settings, layers, int(before.shape[-1]), tensors, data_record(data), probes, edits)
    report.data.update({"fit_items": int(len(train)), "heldout_items": int(len(test))})
    if corpus is not None:
        windows = heldout_windows(corpus, settings.heldout_tokens, settings.seq_len, settings.seed)
        base = corpus_cross_entropy(model, windows)
        with eraser.installed(model):
            erased = corpus_cross_entropy(model, windows)
        report.cross_entropy = {"tokens": sum(len(w) - 1 for w in windows), "windows": len(windows),
                                "before": base, "after": erased, "change": erased - base}
    del model  # freed before the bias and eval measurements load their own copies
    if index is not None:
        report.bias = bias_change(chosen, eraser, index, groups, templates, threads, device)
    if tasks:
        report.evals = eval_change(chosen, eraser, tasks, include_path, limit, threads, device)
    report.seconds = time.perf_counter() - began
    return report


def share_distance(targets: list[dict[str, Any]]) -> float | None:
    """Mean over targets of the distance of the model's group shares from an even split (half the L1
    distance: 0 when every group has 1/k, 1 when one group has everything)."""
    distances = []
    for t in targets:
        shares = [s for s in (t.get("model") or {}).values() if s is not None]
        if shares:
            distances.append(0.5 * sum(abs(s - 1 / len(shares)) for s in shares))
    return float(np.mean(distances)) if distances else None


def bias_change(checkpoint: Any, eraser: Any, index: Any, groups: Any, templates: Any, threads: int | None,
                device: str) -> dict[str, Any]:
    """``bias model`` before and after (the eraser installed by ``load_model``): per target the model's
    group shares, and their mean distance from an even split."""
    from ..bias.model import measure_model_bias

    plain = measure_model_bias(checkpoint.with_intervention(None), index, groups, templates, threads=threads,
                               device=device)
    erased = measure_model_bias(checkpoint.with_intervention(eraser), index, groups, templates, threads=threads,
                                device=device)
    after = {(t["axis"], t["target"]): t for t in erased.targets}
    rows = [{"axis": t["axis"], "target": t["target"], "data": t.get("data"), "before": t.get("model"),
             "after": after[(t["axis"], t["target"])].get("model")} for t in plain.targets]
    return {"targets": rows, "distance_from_even_before": share_distance(plain.targets),
            "distance_from_even_after": share_distance(erased.targets),
            "correlation_before": plain.correlation, "correlation_after": erased.correlation}


def eval_change(checkpoint: Any, eraser: Any, tasks: list[str], include_path: Any, limit: int | None,
                threads: int | None, device: str) -> dict[str, Any]:
    """Each task's scores before and after (``evaluate_model`` on the checkpoint, then with the eraser)."""
    from ...evaluate.run import evaluate_model

    out: dict[str, Any] = {"tasks": list(tasks), "scores": []}
    results = {}
    for name, chosen in (("before", checkpoint.with_intervention(None)),
                         ("after", checkpoint.with_intervention(eraser))):
        results[name] = evaluate_model(chosen, tasks, include_path=include_path, limit=limit, threads=threads,
                                       device=device)
    after = {(s.task, s.label): s for s in results["after"].scores()}
    for score in results["before"].scores():
        other = after.get((score.task, score.label))
        out["scores"].append({"task": score.task, "metric": score.label, "before": score.value,
                              "after": other.value if other else None})
    return out


def write_eraser(report: EraseReport, out: str | Path) -> dict[str, Any]:
    """The ERASER folder: ``layer-L.safetensors`` per layer, ``eraser.json`` (written after them, so a
    folder with its JSON is complete) and ``summary.json`` (the report, with the eraser's sha256)."""
    from ..._files import atomic_write_json, finite_json

    folder = write_intervention(out, ERASER, report.meta(), report.tensors)
    summary = {**report.to_dict(), "path": str(folder), "sha256": folder_sha256(folder)}
    atomic_write_json(Path(folder) / "summary.json", finite_json(summary))
    return summary
