"""``seethrough steer``: contrastive activation addition (Rimsky et al. 2023, "CAA"), and what it does.

The pairs file: one JSON object a line, ``{"prompt": P, "matching": A, "not_matching": B}``: A is the
answer that shows the behaviour, B the one that does not; each answer is appended to the prompt
after ``delimiter`` (a space by default), as lm-eval joins a context and its continuation. The
prompt and the delimited answer are tokenized apart and joined, so the prompt's tokens are exactly
its own.

- **vector** at layer L: the mean over the fit pairs of state(P + A) - state(P + B), the state leaving
  block L at the answer's last token (``model.block_output_states``).
- **deployment**: ``multiplier x vector`` added to the state leaving block L at every position from
  the prompt's last token on (the positions whose outputs predict the answer and what follows it).
- **behaviour**: on held-out pairs, the probability of the matching answer against the other,
  P(A | P) / (P(A | P) + P(B | P)), with the vector of one layer at a time times each multiplier:
  the mean with a 95% bootstrap interval, and the share of pairs where A is the likelier (Wilson).
- **cost**: the change in perplexity on corpus text (``corpus``), the vector added at every position.
- **probe**: the cosine of each layer's vector with the directions ``seethrough probe`` saved.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..._files import read_json_lines
from ...errors import ModelError, QueryError
from ...model.tokenizer import load_model_tokenizer
from .common import (block_layers, check_fit_settings, corpus_cross_entropy, heldout_windows,
                     mean_interval, resolve_checkpoint)

PAIR_FIELDS = ("prompt", "matching", "not_matching")


@dataclass(frozen=True)
class SteerPair:
    prompt: str
    matching: str
    not_matching: str
    line: int = 0


def parse_pairs(records: list[Any], source: str = "the pairs", lines: list[int] | None = None) -> list[SteerPair]:
    """Pairs from decoded JSON records; a record without a prompt or one of its two answers is refused."""
    pairs = []
    for number, record in zip(lines or range(1, len(records) + 1), records):
        where = f"{source}:{number}"
        if not isinstance(record, dict):
            raise QueryError(f"{where}: each line must be a JSON object {{\"prompt\", \"matching\", \"not_matching\"}}")
        missing = [k for k in PAIR_FIELDS if not isinstance(record.get(k), str) or not record.get(k).strip()]
        if missing:
            raise QueryError(f"{where}: the pair has no {' and no '.join(missing)} (a non-empty string each); write "
                             "{\"prompt\", \"matching\", \"not_matching\"}")
        if record["matching"] == record["not_matching"]:
            raise QueryError(f"{where}: the two answers are the same text, so the pair contrasts nothing")
        pairs.append(SteerPair(record["prompt"], record["matching"], record["not_matching"], number))
    if len(pairs) < 2:
        raise QueryError(f"{source} holds {len(pairs)} pair(s); steering needs at least 2 (some to fit, some to test)")
    return pairs


def read_pairs(path: str | Path) -> list[SteerPair]:
    """The ``--pairs`` file (JSON lines, blank lines skipped)."""
    records, lines = read_json_lines(path, "--pairs")
    return parse_pairs(records, str(path), lines)


@dataclass
class SteerSettings:
    layers: str = "all"
    """Block outputs to steer at, each on its own in the curve: all, or numbers like 1,3 or ranges like 1-3."""
    multipliers: str = "-4,-2,0,2,4"
    """Multipliers of the vector in the behaviour curve, comma-separated numbers (0: the model as it is)."""
    test_share: float = 0.3
    """Share of the pairs held out for the behaviour curve (the vector is fitted on the others)."""
    seed: int = 0
    """Seed of the held-out split, the corpus documents drawn and the bootstrap."""
    delimiter: str = " "
    """Between the prompt and each answer."""
    heldout_tokens: int = 2048
    """Corpus tokens on which the perplexity change is measured (with --corpus)."""
    seq_len: int = 64
    """Tokens per window of corpus text."""
    batch_size: int = 64
    """Texts per forward pass."""

    def __post_init__(self) -> None:
        from ...model.interventions import parse_multipliers

        self.multiplier_values = parse_multipliers(self.multipliers)
        check_fit_settings(self)


@dataclass
class SteerReport:
    checkpoint: Any
    settings: SteerSettings
    layers: list[int]
    width: int
    vectors: dict[int, np.ndarray]
    pairs: dict[str, Any]
    curve: list[dict[str, Any]]
    perplexity: dict[str, Any] | None = None
    probe_cosines: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def meta(self) -> dict[str, Any]:
        c = self.checkpoint
        return {"model": {"path": str(c.path), "step": c.step, "weights_sha256": c.weights_sha256},
                "width": self.width, "pairs": self.pairs, "delimiter": self.settings.delimiter,
                "read_at": "the state leaving block L at the answer's last token (prompt + delimiter + answer)",
                "added_at": "every position from the prompt's last token on (multiplier x vector)",
                "layer_meaning": "layer L (1..n) is the hidden state leaving block L, as transformers' "
                                 "hidden_states[L]; for the last block, before the model's final norm"}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "steer", **self.meta(), "layers": self.layers,
                "multipliers": self.settings.multiplier_values,
                "vector_norms": {str(k): float(np.linalg.norm(v)) for k, v in self.vectors.items()},
                "curve": self.curve, "perplexity": self.perplexity, "probe_cosines": self.probe_cosines,
                "notes": self.notes, "seconds": round(self.seconds, 3)}


def _split(count: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    held = min(max(int(round(share * count)), 1), count - 1)
    return np.sort(order[held:]), np.sort(order[:held])


def encode_pairs(tokenizer: Any, pairs: list[SteerPair], delimiter: str) -> list[tuple[list[int], list[int], list[int]]]:
    """(prompt ids, matching answer ids, other answer ids) per pair; each part encoded on its own."""
    texts = [t for p in pairs for t in (p.prompt, delimiter + p.matching, delimiter + p.not_matching)]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    out = []
    for k, pair in enumerate(pairs):
        prompt, a, b = (list(x) for x in ids[3 * k:3 * k + 3])
        if not prompt or not a or not b:
            raise ModelError(f"pairs:{pair.line}: the prompt or an answer encodes to no token; give it some text")
        out.append((prompt, a, b))
    return out


def steering_vectors(model: Any, encoded: list[tuple[list[int], list[int], list[int]]], layers: list[int],
                     batch_size: int = 64) -> dict[int, np.ndarray]:
    """Per layer: the mean over pairs of state(prompt + matching) - state(prompt + other), last tokens."""
    from ...model.interventions import block_output_states

    matching = block_output_states(model, [p + a for p, a, _ in encoded], layers, batch_size=batch_size).double()
    other = block_output_states(model, [p + b for p, _, b in encoded], layers, batch_size=batch_size).double()
    difference = (matching - other).mean(dim=0).numpy()
    return {layer: difference[k].astype(np.float32) for k, layer in enumerate(layers)}


def answer_logprobs(model: Any, prompt: list[int], answers: list[list[int]]) -> list[float]:
    """log P(answer | prompt) for each answer (one forward pass per answer length)."""
    import torch

    from ...model.generation import batches_by_length, model_device

    rows = [prompt + a for a in answers]
    out = [0.0] * len(rows)
    device = model_device(model)
    with torch.inference_mode():
        for group in batches_by_length(rows, 64):
            ids = torch.tensor([rows[i] for i in group], dtype=torch.long, device=device)
            logp = torch.log_softmax(model(input_ids=ids, use_cache=False).logits.double(), dim=-1)
            for j, i in enumerate(group):
                answer = answers[i]
                at = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(answer), device=device)
                out[i] = float(logp[j, at, torch.tensor(answer, device=device)].sum())
    return out


def matching_probability(model: Any, encoded: list[tuple[list[int], list[int], list[int]]],
                         steering: Any = None) -> np.ndarray:
    """Per pair P(A) / (P(A) + P(B)) after the prompt; ``steering`` (an ``Intervention``) added from the
    prompt's last token on."""
    out = np.empty(len(encoded))
    for k, (prompt, a, b) in enumerate(encoded):
        scope = steering.installed(model, start=len(prompt) - 1) if steering is not None else contextlib.nullcontext()
        with scope:
            la, lb = answer_logprobs(model, prompt, [a, b])
        out[k] = 1.0 / (1.0 + math.exp(lb - la))
    return out


def steer_model(target: Any, pairs: list[SteerPair], settings: SteerSettings | None = None, *,
                checkpoint: str | None = None, corpus: Any = None, directions: Any = None,
                threads: int | None = None, device: str = "cpu") -> SteerReport:
    """Fit the steering vector of ``pairs`` at each of ``settings.layers`` of ``target`` and measure the
    behaviour against the multiplier on held-out pairs; ``corpus``: perplexity change on its text;
    ``directions``: a ``seethrough probe --out`` folder (or loaded ``ProbeDirections``) to compare with.
    Writes nothing; ``write_vector`` writes the folder."""
    from ...model import load_model, transformer_layers
    from ...model.interventions import STEERING, in_memory
    from ..intervals import wilson_interval

    began = time.perf_counter()
    settings = settings or SteerSettings()
    # without an intervention, and loaded as it is: load_model remembers a run checkpoint's weights hash on it
    chosen = resolve_checkpoint(target, checkpoint, corpus).with_intervention(None)
    if directions is not None and not hasattr(directions, "direction"):
        from ..probe.report import load_directions

        directions = load_directions(directions)
    if directions is not None:
        directions.check_model(chosen)
    model = load_model(chosen, device=device, threads=threads)
    layers = block_layers(settings.layers, len(transformer_layers(model)))
    encoded = encode_pairs(load_model_tokenizer(chosen.path), pairs, settings.delimiter)
    fit, test = _split(len(pairs), settings.test_share, settings.seed)
    vectors = steering_vectors(model, [encoded[i] for i in fit], layers, settings.batch_size)
    width = int(next(iter(vectors.values())).shape[0])
    held = [encoded[i] for i in test]
    bases = {layer: in_memory(STEERING, {layer: {"vector": vectors[layer]}}, chosen.weights_sha256, multiplier=0.0)
             for layer in layers}
    # multiplier 0 is the model as it is, to the bit (tested): computed once, not once per layer
    unsteered = matching_probability(model, held, None) if 0.0 in settings.multiplier_values else None
    curve = []
    for layer in layers:
        for m in settings.multiplier_values:
            p = unsteered if m == 0.0 else matching_probability(model, held, bases[layer].with_multiplier(m))
            check_finite(p, layer, m)
            preferred = int((p > 0.5).sum())
            curve.append({"layer": layer, "multiplier": m, "p_matching": float(p.mean()),
                          "p_matching_ci": list(mean_interval(p, settings.seed)),
                          "matching_preferred": preferred / len(p),
                          "matching_preferred_ci": list(wilson_interval(preferred, len(p))), "pairs": len(p)})
    report = SteerReport(chosen, settings, layers, width, vectors,
                         {**_pairs_record(pairs), "fit_pairs": int(len(fit)), "heldout_pairs": int(len(test))}, curve)
    if corpus is not None:
        windows = heldout_windows(corpus, settings.heldout_tokens, settings.seq_len, settings.seed)
        plain = math.exp(corpus_cross_entropy(model, windows))
        rows = []
        for layer in layers:
            for m in settings.multiplier_values:
                if m == 0.0:
                    steered = plain
                else:
                    with bases[layer].with_multiplier(m).installed(model):
                        steered = math.exp(corpus_cross_entropy(model, windows))
                check_finite(np.array([steered]), layer, m)
                rows.append({"layer": layer, "multiplier": m, "perplexity": steered, "change": steered - plain})
        report.perplexity = {"tokens": sum(len(w) - 1 for w in windows), "before": plain, "steered": rows}
    if directions is not None:
        report.probe_cosines = probe_cosines(vectors, directions)
        if any(r["layer"] == len(transformer_layers(model)) for r in report.probe_cosines):
            report.notes.append("the probe's last layer is read after the final norm, the vector before it")
    report.seconds = time.perf_counter() - began
    return report


def check_finite(values: np.ndarray, layer: int, multiplier: float) -> None:
    """Refuse a multiplier under which the model's outputs overflow: a NaN probability or an infinite
    perplexity is no point of a curve."""
    if not np.isfinite(values).all():
        raise ModelError(f"--multipliers: at x{multiplier:g} on layer {layer} the model's outputs are not finite "
                         "(the steered hidden states overflow); give smaller multipliers")


def probe_cosines(vectors: dict[int, np.ndarray], directions: Any) -> list[dict[str, Any]]:
    """Cosine of each layer's vector with every direction saved for that layer."""
    rows = []
    for probe in directions.meta.get("probes", []):
        layer, method = probe["layer"], probe["method"]
        if layer in vectors:
            d = directions.direction(layer, method).astype(np.float64)
            v = vectors[layer].astype(np.float64)
            denominator = float(np.linalg.norm(v) * np.linalg.norm(d))
            rows.append({"layer": layer, "method": method,
                         "cosine": float(v @ d) / denominator if denominator > 0 else None})
    return rows


def _pairs_record(pairs: list[SteerPair]) -> dict[str, Any]:
    from ..._files import sha256_json

    return {"count": len(pairs), "sha256": sha256_json([[p.prompt, p.matching, p.not_matching] for p in pairs])}


def write_vector(report: SteerReport, out: str | Path) -> dict[str, Any]:
    """The VECTOR folder: ``layer-L.safetensors`` (``vector``) per layer, ``vector.json`` and ``summary.json``."""
    from ..._files import atomic_write_json, finite_json
    from ...model.interventions import STEERING, folder_sha256, write_intervention

    folder = write_intervention(out, STEERING, report.meta(), {k: {"vector": v} for k, v in report.vectors.items()})
    summary = {**report.to_dict(), "path": str(folder), "sha256": folder_sha256(folder)}
    atomic_write_json(Path(folder) / "summary.json", finite_json(summary))
    return summary


__all__ = ["SteerPair", "SteerReport", "SteerSettings", "parse_pairs", "read_pairs", "steer_model", "write_vector"]
