"""``seethrough lens``: per layer, how close each lens comes to the model's final prediction on
held-out corpus text, and for given texts a layers x positions picture of the top token.

    from seethrough.audit.probe import LensSettings, measure_lenses, write_lens
    report = measure_lenses("run/", corpus=open_token_corpus("corpus/"), texts=["the cat sat"])
    write_lens(report, "out/")   # lens.json, lens.png, pictures, tuned_lens/ (reusable: --lens out/tuned_lens)

Corpus text is cut into windows of ``seq_len`` tokens at document boundaries: the first documents of a
seeded draw give ``heldout_tokens`` for measuring, the next ones ``train_tokens`` for training the
tuned lens, so no measured token was trained on. A run's windows start with its end-of-document
token, as every document did in training. Per layer: the mean KL(final || lens) over every held-out
position, and the cross-entropy of the next token (every position but a window's last).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, ModelError, QueryError

MAX_PICTURE_TOKENS = 64
"""Positions a picture shows (the first ones of a longer text)."""


@dataclass
class LensSettings:
    train_tokens: int = 65_536
    """Tokens of --corpus text the tuned lens is trained on (0: only the logit lens)."""
    heldout_tokens: int = 16_384
    """Tokens of --corpus text, apart from the training tokens, that the lenses are measured on."""
    seq_len: int = 128
    """Tokens per window of corpus text."""
    epochs: int = 4
    """Passes over the training tokens."""
    batch_rows: int = 8
    """Windows per optimizer step."""
    lr: float = 1e-3
    """Adam's learning rate for the translators."""
    seed: int = 0
    """Seed of the documents drawn and of the training order."""

    def __post_init__(self) -> None:
        for name in ("heldout_tokens", "seq_len", "epochs", "batch_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {value!r}: give a whole number of at least 1")
        if isinstance(self.train_tokens, bool) or not isinstance(self.train_tokens, int) or self.train_tokens < 0:
            raise ConfigError(f"--train-tokens {self.train_tokens!r}: give a number of tokens (0: no tuned lens)")
        if self.seq_len < 2:
            raise ConfigError("--seq-len must be at least 2: a window needs a next token to score")
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ConfigError(f"--lr {self.lr!r}: the learning rate must be above 0")


def corpus_windows(corpus: Any, seq_len: int, heldout_tokens: int, train_tokens: int, seed: int = 0,
                   prefix: int | None = None) -> tuple[list[list[int]], list[list[int]]]:
    """(held-out windows, training windows) of ``seq_len`` tokens from documents drawn at random without
    replacement (``prefix``, when given, first in every document); the held-out documents come first and
    no document gives windows to both."""
    rng = np.random.default_rng(seed)
    total = corpus.num_documents
    needs = [-(-heldout_tokens // seq_len), -(-train_tokens // seq_len) if train_tokens else 0]
    parts: list[list[list[int]]] = [[], []]
    seen: set[int] = set()
    part, buffer = 0, []
    while part < 2:
        if len(parts[part]) >= needs[part]:
            part, buffer = part + 1, []
            continue
        if len(seen) >= total:
            have = sum(len(p) for p in parts) * seq_len
            raise QueryError(f"the corpus has too few tokens for {heldout_tokens:,} held-out and {train_tokens:,} "
                             f"training tokens in windows of {seq_len} (about {have:,} found); ask for fewer "
                             "--heldout-tokens/--train-tokens or a shorter --seq-len")
        doc = int(rng.integers(total))
        if doc in seen:
            continue
        seen.add(doc)
        tokens = corpus.document_tokens(doc).tolist()
        buffer.extend(([prefix] if prefix is not None else []) + tokens)
        while len(buffer) >= seq_len and len(parts[part]) < needs[part]:
            parts[part].append(buffer[:seq_len])
            buffer = buffer[seq_len:]
        if len(parts[part]) >= needs[part]:
            buffer = []  # the rest of this document goes to neither part
    return parts[0], parts[1]


def lens_metrics(logit_lens: Any, windows: list[list[int]], tuned: Any = None, batch_rows: int = 8) -> dict[str, Any]:
    """Per layer the mean KL(final || lens) over every position and the next-token cross-entropy, for the
    logit lens (and the tuned lens when given); and the model's own cross-entropy."""
    import torch

    from ...model.generation import model_device

    model = logit_lens.model
    device = model_device(model)
    layers = list(range(logit_lens.blocks + 1))
    sums = {f"{lens}_{m}": np.zeros(len(layers)) for lens in ("logit", "tuned") for m in ("kl", "ce")}
    positions = scored = 0
    model_ce = 0.0
    with torch.inference_mode():
        for start in range(0, len(windows), batch_rows):
            ids = torch.tensor(windows[start:start + batch_rows], dtype=torch.long, device=device)
            out = model(input_ids=ids, output_hidden_states=True)
            target = torch.log_softmax(out.logits.float(), dim=-1)
            p = target.exp()
            following = ids[:, 1:]
            model_ce += float(-target[:, :-1].gather(-1, following[..., None]).sum())
            for lens, translator in (("logit", None), ("tuned", tuned)):
                if lens == "tuned" and tuned is None:
                    continue
                for k, layer in enumerate(layers):
                    q = lens_log_probs(logit_lens, out.hidden_states, layer, translator)
                    sums[f"{lens}_kl"][k] += float((p * (target - q)).sum())
                    sums[f"{lens}_ce"][k] += float(-q[:, :-1].gather(-1, following[..., None]).sum())
            positions += ids.numel()
            scored += following.numel()
    rows = []
    for k, layer in enumerate(layers):
        row: dict[str, Any] = {"layer": layer}
        for lens in ("logit", "tuned"):
            present = lens == "logit" or tuned is not None
            row[f"{lens}_kl"] = sums[f"{lens}_kl"][k] / positions if present else None
            row[f"{lens}_ce"] = sums[f"{lens}_ce"][k] / scored if present else None
        rows.append(row)
    return {"layers": rows, "model_ce": model_ce / scored, "heldout_tokens": positions}


def lens_log_probs(logit_lens: Any, hidden_states: Any, layer: int, tuned: Any = None) -> Any:
    from .lens import lens_log_probs as decode

    return decode(logit_lens, hidden_states, layer, tuned)


def lens_picture(logit_lens: Any, tokenizer: Any, text: str, tuned: Any = None) -> dict[str, Any]:
    """For each layer and input position (the first ``MAX_PICTURE_TOKENS``): the top next token and its
    probability under the logit lens (and the tuned lens when given)."""
    import torch

    from ...model.generation import model_device

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise QueryError("the text to picture encodes to no token; give some text")
    shown = ids[:MAX_PICTURE_TOKENS]
    layers = list(range(logit_lens.blocks + 1))
    picture: dict[str, Any] = {"text": text, "tokens": [tokenizer.decode([i]) for i in shown], "ids": shown,
                               "layers": layers, "truncated": len(ids) > len(shown)}
    with torch.inference_mode():
        out = logit_lens.model(input_ids=torch.tensor([shown], device=model_device(logit_lens.model)),
                               output_hidden_states=True)
        for lens, translator in (("logit", None), ("tuned", tuned)):
            if lens == "tuned" and tuned is None:
                continue
            grid = []
            for layer in layers:
                probabilities = lens_log_probs(logit_lens, out.hidden_states, layer, translator)[0].exp()
                top, which = probabilities.max(dim=-1)
                grid.append([{"token": tokenizer.decode([int(t)]), "id": int(t), "p": float(p)}
                             for p, t in zip(top.tolist(), which.tolist())])
            picture[lens] = grid
    return picture


@dataclass
class LensReport:
    checkpoint: Any
    settings: LensSettings
    blocks: int
    last_normed: bool
    metrics: dict[str, Any] | None = None
    pictures: list[dict[str, Any]] = field(default_factory=list)
    training: dict[str, Any] | None = None
    tuned: Any = None
    lens_source: str | None = None
    """Where the tuned lens came from: trained here, or the --lens folder it was loaded from."""
    corpus: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.checkpoint
        return {"model": {"path": str(c.path), "step": c.step, "weights_sha256": c.weights_sha256},
                "blocks": self.blocks, "last_layer_normed": self.last_normed, "corpus": self.corpus,
                "layers": self.metrics["layers"] if self.metrics else [],
                "model_ce": self.metrics["model_ce"] if self.metrics else None,
                "heldout_tokens": self.metrics["heldout_tokens"] if self.metrics else 0,
                "tuned_lens": self.lens_source, "training": self.training, "pictures": self.pictures,
                "settings": dataclasses.asdict(self.settings)}


def measure_lenses(target: Any, corpus: Any = None, texts: list[str] | None = None,
                   settings: LensSettings | None = None, lens: str | Path | None = None, checkpoint: str | None = None,
                   threads: int | None = None, device: str = "cpu",
                   progress: Callable[[dict[str, Any]], None] | None = None) -> LensReport:
    """The logit lens of ``target`` (a run, its ``checkpoint`` step, or a model folder), and a tuned lens:
    loaded from ``lens`` (a folder ``write_lens`` wrote), or trained on ``corpus`` (a ``TokenCorpus`` the
    model was trained on, checked) when ``settings.train_tokens`` > 0. With ``corpus``: per-layer KL and
    cross-entropy on held-out text; for each of ``texts``: a picture. Writes nothing."""
    from transformers import AutoTokenizer

    from ...model import Checkpoint, load_model, resolve_target
    from .lens import LogitLens, load_tuned_lens, train_tuned_lens

    settings = settings or LensSettings()
    texts = list(texts or [])
    if corpus is None and not texts:
        raise QueryError("give --corpus (per-layer KL and cross-entropy on held-out text, and a tuned lens) or a "
                         "text to picture (--text or --file), or both")
    if isinstance(target, Checkpoint):
        chosen, run = target, None
    else:
        resolved = resolve_target(target, checkpoint)
        if len(resolved.checkpoints) != 1:
            raise ModelError(f"--checkpoint {checkpoint}: one checkpoint at a time; give one step")
        chosen, run = resolved.last, resolved.run
        if corpus is not None:
            resolved.check_corpus(corpus)
    model = load_model(chosen, device=device, threads=threads)
    logit_lens = LogitLens(model)
    report = LensReport(chosen, settings, logit_lens.blocks, logit_lens.last_normed)
    tuned = None
    if lens is not None:
        tuned, _ = load_tuned_lens(lens, chosen.weights_sha256)
        if tuned.blocks != logit_lens.blocks or tuned.width != int(logit_lens.head.weight.shape[1]):
            raise ModelError(f"--lens {lens} has {tuned.blocks} translators of width {tuned.width}; this model has "
                             f"{logit_lens.blocks} blocks of width {int(logit_lens.head.weight.shape[1])}")
        tuned = tuned.to(next(model.parameters()).device)
        report.lens_source = str(lens)
    if corpus is not None:
        max_positions = getattr(model.config, "max_position_embeddings", None)
        if max_positions and settings.seq_len > max_positions:
            raise ConfigError(f"--seq-len {settings.seq_len} is longer than the model's {max_positions} positions")
        prefix = run.order.spec.eod_id if run is not None else None
        train_tokens = settings.train_tokens if lens is None else 0
        heldout, training = corpus_windows(corpus, settings.seq_len, settings.heldout_tokens, train_tokens,
                                           settings.seed, prefix)
        report.corpus = {"path": str(corpus.path), "corpus_hash": corpus.corpus_hash}
        if training:
            began = time.perf_counter()
            tuned, history = train_tuned_lens(logit_lens, training, settings.epochs, settings.batch_rows, settings.lr,
                                              settings.seed, progress)
            report.training = {"tokens": len(training) * settings.seq_len, "windows": len(training),
                               "epochs": settings.epochs, "steps": settings.epochs * -(-len(training) // settings.batch_rows),
                               "history": history, "seconds": round(time.perf_counter() - began, 2)}
            report.lens_source = "trained"
        report.metrics = lens_metrics(logit_lens, heldout, tuned, settings.batch_rows)
    report.tuned = tuned
    if texts:
        tokenizer = AutoTokenizer.from_pretrained(str(chosen.path))
        report.pictures = [lens_picture(logit_lens, tokenizer, text, tuned) for text in texts]
    return report


def write_lens(report: LensReport, out: str | Path) -> dict[str, Any]:
    """``out/lens.json`` (the report), ``lens.png`` (KL and cross-entropy per layer, with a corpus),
    ``picture_N_logit.png`` / ``picture_N_tuned.png`` per text, and ``tuned_lens/`` when one was trained
    (reusable with ``--lens``); each written under a temporary name, then renamed."""
    from ..._files import atomic_write_json
    from .lens import save_tuned_lens
    from .plots import plot_lens_metrics, plot_lens_picture

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise QueryError(f"--out {out} is a file; give a folder for lens.json, its plots and the tuned lens")
    out.mkdir(parents=True, exist_ok=True)
    summary = report.to_dict()
    if report.tuned is not None and report.lens_source == "trained":
        c = report.checkpoint
        save_tuned_lens(report.tuned, out / "tuned_lens", {
            "model": {"path": str(c.path), "step": c.step, "weights_sha256": c.weights_sha256},
            "corpus": report.corpus, "settings": dataclasses.asdict(report.settings), "training": report.training,
            "heldout": {"layers": summary["layers"], "model_ce": summary["model_ce"]}})
    plots: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = []
    if report.metrics is not None:
        plots.append(("lens.png", plot_lens_metrics, (summary,)))
    for number, picture in enumerate(report.pictures):
        for lens in ("logit", "tuned"):
            if lens in picture:
                plots.append((f"picture_{number}_{lens}.png", plot_lens_picture, (picture, lens)))
    for name, plot, arguments in plots:
        tmp = out / f".{name}.tmp.png"
        plot(*arguments, tmp)
        tmp.replace(out / name)
    atomic_write_json(out / "lens.json", summary)
    return summary
