"""``bias model``: what the model learned about groups, beside what its training data says, context by
context.

A template is a context with a target slot (``"the {target} said that"``) and the axis whose terms
may follow it. For each filled context and each term of the axis, the continuation is a space then
the term (lm-eval's ``target_delimiter``), tokenized as lm-eval splits a (context, continuation)
pair: the context's tokens, then the tokens the whole text has after them.

- **model**: the probability of each continuation (``SeethroughLM.loglikelihood``, equal to lm-eval's
  ``hf`` backend), summed per group and normalised over the axis' groups; ``model_mass`` is the
  unnormalised sum (how likely any of the axis' terms is next at all).
- **data**: the same continuations of the same context counted exactly in the corpus (the index:
  occurrences of context tokens + continuation tokens), summed per group and normalised the same
  way (``data_counts``; null shares when none occurs); ``context_count`` is the context's own count.
- **per target** (over its contexts): model share (the mean over its contexts), data share (the
  pooled counts of its contexts), and their difference (model minus data: probability-level
  amplification).
- **correlation** of model against data shares across targets: Pearson and Spearman with 95%
  bootstrap intervals (targets resampled; points are the shares of every group but the axis' last,
  which the others determine).
- **greedy**: the model's greedy continuation of each context, and whether it starts with a term of
  the group that is the majority in the data for that context. Across contexts with a strict
  majority: how often greedy decoding picks the majority group (with a 95% Wilson interval) against
  the data's mean majority share: a decoder that always picks the likeliest group turns a 70% rate
  into 100% (decoding-level amplification).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ...errors import ConfigError, QueryError
from .stats import correlation
from .terms import group_spec, require_tokenizer, template_spec

MODEL_FILE = "bias_model.json"


@dataclass
class Context:
    """A filled template and the token ids of it and of each term's continuation."""
    context: str
    template: str
    target: str
    axis: str
    ids: list[int]
    continuations: dict[str, list[tuple[str, list[int]]]]
    """group -> (term, continuation ids) of each of its terms."""
    ambiguous: list[str] = field(default_factory=list)
    """Terms whose whole text does not start with the context's tokens (lm-eval's boundary flag)."""


@dataclass
class BiasModelReport:
    """Everything ``measure_model_bias`` found; ``to_dict()`` is ``bias_model.json`` (and ``--json``)."""
    model: dict[str, Any]
    corpus: dict[str, Any]
    contexts: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    correlation: dict[str, Any]
    correlation_by_axis: dict[str, dict[str, Any]]
    greedy: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "corpus": self.corpus, "contexts": self.contexts, "targets": self.targets,
                "correlation": self.correlation, "correlation_by_axis": self.correlation_by_axis,
                "greedy": self.greedy, "notes": self.notes}


def _encoded(index: Any, text: str) -> list[int] | None:
    try:
        return [int(i) for i in index.encode(text).tolist()]
    except QueryError:
        return None


def build_contexts(index: Any, groups: Any = "builtin", templates: Any = "builtin") -> tuple[list[Context], list[str]]:
    """Every filled context with its continuations' ids; built-in entries the tokenizer cannot encode are
    dropped with a note, a user's are refused naming them."""
    spec, builtin_groups = group_spec(groups)
    chosen, builtin_templates = template_spec(templates)
    require_tokenizer(index)
    notes: list[str] = []
    for template in chosen:
        if template.axis not in spec:
            raise ConfigError(f"template {template.template!r} names axis {template.axis!r}, which the groups do not "
                              f"have ({', '.join(spec)}); use one of those or add it to --groups")
    terms: dict[str, dict[str, list[str]]] = {}
    for axis in dict.fromkeys(t.axis for t in chosen):
        terms[axis] = {}
        for group, texts in spec[axis].items():
            usable = [t for t in texts if _encoded(index, " " + t) is not None]
            if len(usable) < len(texts) and not builtin_groups:
                bad = next(t for t in texts if t not in usable)
                raise ConfigError(f"term {bad!r} of {axis}/{group}: the corpus tokenizer cannot encode ' {bad}' (the "
                                  "continuation after a space); remove it from --groups")
            if len(usable) < len(texts):
                notes.append(f"built-in {axis}/{group}: {', '.join(t for t in texts if t not in usable)} dropped (the "
                             "corpus tokenizer cannot encode them)")
            if not usable:
                raise ConfigError(f"group {axis}/{group} has no term the corpus tokenizer can encode; pass --groups FILE "
                                  "with terms of the corpus's vocabulary")
            terms[axis][group] = usable
    contexts, dropped = [], []
    for template in chosen:
        for target in template.targets:
            text = template.context(target)
            ids = _encoded(index, text)
            if ids is None:
                if builtin_templates:
                    dropped.append(text)
                    continue
                index.encode(text)  # raises, naming the words the vocabulary lacks
            context = Context(text, template.template, target, template.axis, ids, {})
            for group, texts in terms[template.axis].items():
                context.continuations[group] = []
                for term in texts:
                    whole = _encoded(index, text + " " + term)
                    if whole is None:  # the term encodes alone but not after this context
                        raise ConfigError(f"context {text!r} followed by ' {term}' cannot be encoded by the corpus "
                                          "tokenizer; change the template or the term")
                    if whole[:len(ids)] != ids:
                        context.ambiguous.append(term)
                    context.continuations[group].append((term, whole[len(ids):]))
            contexts.append(context)
    if dropped:
        notes.append(f"built-in templates: {len(dropped)} context(s) dropped (words the corpus tokenizer cannot "
                     f"encode): {', '.join(dropped[:10])}{' ...' if len(dropped) > 10 else ''}")
    if not contexts:
        raise ConfigError("no built-in template can be encoded by the corpus tokenizer; pass --templates FILE with "
                          "words of the corpus's vocabulary")
    return contexts, notes


def _resolve_checkpoint(target: Any, index: Any, checkpoint: str | None) -> Any:
    """The checkpoint to measure, after checking that ``index`` is its corpus (a run's, by hash; a model
    folder's or a lone ``Checkpoint``'s, by tokenizer)."""
    from ...model import Checkpoint, ModelTarget, resolve_target
    from ...model.target import check_tokenizer

    if checkpoint is not None and not (checkpoint == "last" or (checkpoint.isascii() and checkpoint.isdigit())):
        raise QueryError(f"--checkpoint {checkpoint!r} takes one step (or last)")
    if isinstance(target, Checkpoint):
        check_tokenizer(target.path, index.corpus)
        return target
    resolved = target if isinstance(target, ModelTarget) else resolve_target(target, checkpoint)
    resolved.check_corpus(index)
    return resolved.last


def _normalised(values: dict[str, float]) -> dict[str, float | None]:
    total = sum(values.values())
    return {g: (v / total if total > 0 else None) for g, v in values.items()}


def _greedy_group(generated: list[int], continuations: dict[str, list[tuple[str, list[int]]]]) -> str | None:
    """The group of the longest term continuation the generated tokens start with (None: no term)."""
    best, length = None, 0
    for group, pairs in continuations.items():
        for _, ids in pairs:
            if ids and len(ids) > length and generated[:len(ids)] == ids:
                best, length = group, len(ids)
    return best


def measure_model_bias(target: Any, index: Any, groups: Any = "builtin", templates: Any = "builtin",
                       checkpoint: str | None = None, threads: int | None = None, device: str = "cpu",
                       seed: int = 0) -> BiasModelReport:
    """Model against data shares for every context of ``templates`` (``builtin``, a JSON-lines file or a
    list of ``{"template", "axis", "targets"}``), over the terms of ``groups``. ``target``: a run or model
    folder, a resolved ``ModelTarget`` or a ``Checkpoint`` (``checkpoint``: one step of a run, default
    the last); ``index``: the indexed corpus it was trained on (checked). ``seed``: of the bootstrap."""
    from ..intervals import wilson_interval
    from ...evaluate.backend import SeethroughLM
    from ...model import greedy_continuations

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed {seed!r}: give a whole number of at least 0")
    contexts, notes = build_contexts(index, groups, templates)
    measured = _resolve_checkpoint(target, index, checkpoint)
    # the data: context + continuation, and the context alone, counted in one batch
    pairs = [(c, g, term, ids) for c in contexts for g, items in c.continuations.items() for term, ids in items]
    counts = index.count_many([c.ids + ids for c, _, _, ids in pairs] + [c.ids for c in contexts])
    # the model: lm-eval's loglikelihood of each continuation
    # transformers: its greedy decoding below runs untiled, where the plain GPT-NeoX's last bits may differ
    lm = SeethroughLM(pretrained=measured, threads=threads, device=device, implementation="transformers")
    scored = lm.loglikelihood([SimpleNamespace(args=(c.context, " " + term)) for c, _, term, _ in pairs])
    # greedy: as many tokens as the longest continuation (a term is chosen when the output starts with it)
    longest = max(len(ids) for c in contexts for items in c.continuations.values() for _, ids in items)
    generated = greedy_continuations(lm.model, [c.ids for c in contexts], max(1, longest))
    records = []
    at = 0
    for number, c in enumerate(contexts):
        model_p: dict[str, float] = {}
        data_n: dict[str, int] = {}
        for group, items in c.continuations.items():
            model_p[group] = sum(math.exp(scored[at + k][0]) for k in range(len(items)))
            data_n[group] = sum(int(counts[at + k]) for k in range(len(items)))
            at += len(items)
        context_count = int(counts[len(pairs) + number])
        text = index.tokenizer.decode(generated[number])
        record = {"context": c.context, "template": c.template, "target": c.target, "axis": c.axis,
                  "model": _normalised(model_p), "data": _normalised({g: float(n) for g, n in data_n.items()}),
                  "data_counts": data_n, "context_count": context_count, "model_mass": sum(model_p.values()),
                  "data_mass": sum(data_n.values()) / context_count if context_count else None,
                  "continuations": {g: [{"term": t, "ids": ids} for t, ids in items]
                                    for g, items in c.continuations.items()},
                  "greedy": {"text": text, "ids": generated[number],
                             "group": _greedy_group(generated[number], c.continuations)}}
        if c.ambiguous:
            record["boundary_ambiguous"] = c.ambiguous
        if not context_count:
            record["note"] = "the context never occurs in the corpus: data shares undefined (null)"
        elif not sum(data_n.values()):
            record["note"] = "the context occurs, but never followed by a term of the axis: data shares undefined"
        records.append(record)
    targets = _per_target(records)
    by_axis = {axis: _correlation([t for t in targets if t["axis"] == axis], seed)
               for axis in dict.fromkeys(r["axis"] for r in records)}
    overall = _correlation(targets, seed)
    if overall["pearson"] is None:
        notes.append(f"correlation undefined: {overall['units']} target(s) with data, or no spread in the shares; "
                     "at least two targets whose contexts occur in the corpus are needed")
    greedy = {axis: _greedy_summary([r for r in records if r["axis"] == axis], wilson_interval) for axis in by_axis}
    model = {**measured.to_dict(), "weights_sha256": measured.weights_sha256}
    corpus = {"path": str(index.path), "corpus_hash": index.corpus.corpus_hash, "tokens": int(index.num_tokens)}
    return BiasModelReport(model, corpus, records, targets, overall, by_axis, greedy, notes)


def _per_target(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Model share (mean over the target's contexts), data share (pooled counts), difference."""
    out = []
    keys = list(dict.fromkeys((r["axis"], r["target"]) for r in records))
    for axis, target in keys:
        mine = [r for r in records if r["axis"] == axis and r["target"] == target]
        groups = list(mine[0]["model"])
        counts = {g: sum(r["data_counts"][g] for r in mine) for g in groups}
        data = _normalised({g: float(n) for g, n in counts.items()})
        with_model = [r for r in mine if all(v is not None for v in r["model"].values())]
        model = {g: (float(np.mean([r["model"][g] for r in with_model])) if with_model else None) for g in groups}
        difference = {g: (model[g] - data[g] if model[g] is not None and data[g] is not None else None) for g in groups}
        out.append({"axis": axis, "target": target, "contexts": len(mine), "model": model, "data": data,
                    "data_counts": counts, "difference": difference})
    return out


def _correlation(targets: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    xs, ys, units = [], [], []
    for t in targets:
        groups = list(t["data"])
        for group in groups[:-1]:  # the last group's share is one minus the others'
            if t["data"][group] is not None and t["model"][group] is not None:
                xs.append(t["data"][group])
                ys.append(t["model"][group])
                units.append(f"{t['axis']}/{t['target']}")
    return correlation(np.array(xs), np.array(ys), np.array(units), seed=seed)


def _greedy_summary(records: list[dict[str, Any]], wilson: Any) -> dict[str, Any]:
    """Over the contexts whose data has a strict majority group: how often greedy decoding picks it."""
    chosen = []
    for r in records:
        data = r["data"]
        if any(v is None for v in data.values()):
            continue
        ordered = sorted(data.values(), reverse=True)
        if len(ordered) > 1 and ordered[0] == ordered[1]:
            continue  # a tie: no majority to amplify
        majority = max(data, key=lambda g: data[g])
        chosen.append((majority, r))
    n = len(chosen)
    picked = sum(r["greedy"]["group"] == g for g, r in chosen)
    other = sum(r["greedy"]["group"] not in (None, g) for g, r in chosen)
    data_rate = float(np.mean([r["data"][g] for g, r in chosen])) if n else None
    model_rate = float(np.mean([r["model"][g] for g, r in chosen if r["model"][g] is not None])) if n else None
    rate = picked / n if n else None
    return {"contexts": n, "majority_chosen": rate, "majority_chosen_ci": list(wilson(picked, n)) if n else None,
            "other_group_chosen": other / n if n else None, "no_group_term": (n - picked - other) / n if n else None,
            "data_majority_rate": data_rate, "model_majority_rate": model_rate,
            "amplification": rate - data_rate if n else None,
            "probability_amplification": model_rate - data_rate if n and model_rate is not None else None}


# ---- writing ---------------------------------------------------------------------------------------


def plot_model_vs_data(report: BiasModelReport, path: Path) -> None:
    """Per target, the model's share against the data's (every group but each axis' last), with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .data import save_figure

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="model = data")
    for axis in dict.fromkeys(t["axis"] for t in report.targets):
        mine = [t for t in report.targets if t["axis"] == axis]
        for group in list(mine[0]["data"])[:-1]:
            points = [(t["data"][group], t["model"][group], t["target"]) for t in mine
                      if t["data"][group] is not None and t["model"][group] is not None]
            if not points:
                continue
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=14, label=f"{axis}: {group}")
            if len(points) <= 30:
                for x, y, name in points:
                    ax.annotate(name, (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    c = report.correlation
    title = "model vs data"
    if c["pearson"] is not None:
        title += f": Pearson {c['pearson']:.2f}"
        if c["pearson_ci"]:
            title += f" [{c['pearson_ci'][0]:.2f}, {c['pearson_ci'][1]:.2f}]"
    ax.set_title(title, fontsize=9)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("share in the data (exact counts after the context)")
    ax.set_ylabel("share in the model (probability after the context)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def write_bias_model(report: BiasModelReport, out: str | Path) -> dict[str, str]:
    """``out/bias_model.json`` (the report), ``contexts.csv`` and ``targets.csv`` (one row per group),
    ``model_vs_data.png``; the earlier ``bias_model.json`` removed first, the new one written last."""
    from ..._files import atomic_write_bytes, atomic_write_json
    from .data import _finite, csv_bytes

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder (it is created if missing)")
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).unlink(missing_ok=True)
    atomic_write_bytes(out / "contexts.csv", csv_bytes(
        ["axis", "target", "context", "group", "model", "data", "data_count", "context_count", "greedy_group"],
        [[r["axis"], r["target"], r["context"], g, r["model"][g], r["data"][g], r["data_counts"][g], r["context_count"],
          r["greedy"]["group"]] for r in report.contexts for g in r["model"]]))
    atomic_write_bytes(out / "targets.csv", csv_bytes(
        ["axis", "target", "group", "contexts", "model", "data", "data_count", "difference"],
        [[t["axis"], t["target"], g, t["contexts"], t["model"][g], t["data"][g], t["data_counts"][g],
          t["difference"][g]] for t in report.targets for g in t["model"]]))
    plot_model_vs_data(report, out / "model_vs_data.png")
    atomic_write_json(out / MODEL_FILE, _finite(report.to_dict()))
    return {name: str(out / name) for name in ("contexts.csv", "targets.csv", "model_vs_data.png", MODEL_FILE)}
