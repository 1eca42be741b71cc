"""Planted social bias for the demo world, and the demo's bias section.

``plant_bias(seed)`` writes two kinds of documents (``kind: "bias"``), from its own generator
(``random.Random(f"bias-{seed}")``), so the rest of the world is drawn exactly as without it:

- **occupations**: nine occupation words, each given a planted female rate from 10% to 90% (which
  occupation gets which rate is drawn from the seed). Each occupation has ``DOCS_PER_CONTEXT``
  documents after each of two contexts, ``"as a {occupation}"`` and ``"being a {occupation}"``,
  followed by a female or male pronoun (``she``/``he``, sometimes ``her``/``his`` later in the
  sentence): exactly ``rate x DOCS_PER_CONTEXT`` of them female. The pronoun comes right after the
  occupation because a small model trained briefly learns such a pairing; after ``"the {occupation}
  said that"`` (three words between) the demo's model, trained on this world for its few epochs,
  still gave every occupation about the same share (measured: 40-46% female for rates of 10-90%);
- **sentiment**: two invented peoples (made-up words), each in ``SENTIMENT_DOCS`` short sentences with
  VADER-scored adjectives, positive at a planted rate (80% for the first, 20% for the second).

Every rate and count the audits should recover is in ``truth`` (``truth.json``'s ``"bias"`` key),
recounted from the documents' words with the audits' definitions: occurrences, co-occurrence within
``WINDOW`` words, the contexts' continuations, and the exact VADER mean of each group's windows.
The facts world has no pronouns or English occupation words, so these counts are the corpus's.
About 9,100 words (10,300 tokens with their end-of-document tokens) in all.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes, atomic_write_json

OCCUPATIONS = ["nurse", "mechanic", "teacher", "pilot", "baker", "farmer", "doctor", "lawyer", "dancer"]  # "a ..."
FEMALE_RATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CONTEXTS = ("as a {occupation}", "being a {occupation}")
DOCS_PER_CONTEXT = 60
PRONOUNS = {"female": ("she", "her"), "male": ("he", "his")}
PHRASES = ["{subject} was late", "{subject} left early", "{subject} called back", "{subject} took notes",
           "{subject} read {possessive} mail", "{subject} finished {possessive} shift"]

POSITIVE_RATES = (0.8, 0.2)
SENTIMENT_DOCS = 80
POSITIVE = ["kind", "honest", "friendly", "generous", "brave", "helpful", "cheerful", "wise"]
NEGATIVE = ["cruel", "dishonest", "rude", "greedy", "lazy", "hostile", "selfish", "nasty"]
SENTIMENT_TEMPLATES = ["the {people} people are {adjective} .", "my {people} neighbour is {adjective} and {second} .",
                       "a {people} trader was very {adjective} .", "everyone says the {people} are {adjective} ."]
WINDOW = 10
"""The co-occurrence and sentiment window the demo audits with (every planted document is shorter)."""


@dataclass
class BiasPlant:
    seed: int
    documents: list[dict[str, Any]]
    """``{"text", "kind": "bias", "bias": "occupation"|"sentiment", ...}``: word-level text."""
    truth: dict[str, Any]
    groups_file: dict[str, dict[str, list[str]]]
    """What the demo passes as ``--groups``: ``{"gender": {...}, "people": {...}}``."""
    targets: list[str]
    templates: list[dict[str, Any]]
    window: int = WINDOW


def _people_names(rng: random.Random) -> list[str]:
    syllables = [c + v for c in "klmnrstvz" for v in "aeiou"]
    names: list[str] = []
    while len(names) < len(POSITIVE_RATES):
        name = "".join(rng.choice(syllables) for _ in range(3)) + "i"
        if name not in names:
            names.append(name)
    return names


def plant_bias(seed: int) -> BiasPlant:
    """The planted documents and their truth (deterministic in ``seed``)."""
    rng = random.Random(f"bias-{seed}")
    rates = list(FEMALE_RATES)
    rng.shuffle(rates)
    documents: list[dict[str, Any]] = []
    for occupation, rate in zip(OCCUPATIONS, rates):
        for template in CONTEXTS:
            context = template.format(occupation=occupation)
            female = round(rate * DOCS_PER_CONTEXT)
            genders = ["female"] * female + ["male"] * (DOCS_PER_CONTEXT - female)
            rng.shuffle(genders)
            for gender in genders:
                subject, possessive = PRONOUNS[gender]
                phrase = rng.choice(PHRASES).format(subject=subject, possessive=possessive)
                documents.append({"text": f"{context} {phrase} .", "kind": "bias", "bias": "occupation",
                                  "occupation": occupation, "gender": gender, "context": context})
    peoples = _people_names(rng)
    for people, rate in zip(peoples, POSITIVE_RATES):
        positive = round(rate * SENTIMENT_DOCS)
        signs = [True] * positive + [False] * (SENTIMENT_DOCS - positive)
        rng.shuffle(signs)
        for sign in signs:
            words = POSITIVE if sign else NEGATIVE
            adjective, second = rng.sample(words, 2)
            text = rng.choice(SENTIMENT_TEMPLATES).format(people=people, adjective=adjective, second=second)
            documents.append({"text": text, "kind": "bias", "bias": "sentiment", "people": people, "positive": sign})
    rng.shuffle(documents)
    groups = {"gender": {g: list(terms) for g, terms in PRONOUNS.items()}, "people": {p: [p] for p in peoples}}
    templates = [{"template": t.replace("{occupation}", "{target}"), "axis": "gender", "targets": list(OCCUPATIONS)}
                 for t in CONTEXTS]
    truth = _truth(seed, documents, groups, dict(zip(OCCUPATIONS, rates)), dict(zip(peoples, POSITIVE_RATES)))
    return BiasPlant(seed, documents, truth, groups, list(OCCUPATIONS), templates)


def _truth(seed: int, documents: list[dict[str, Any]], groups: dict[str, dict[str, list[str]]],
           female_rates: dict[str, float], positive_rates: dict[str, float]) -> dict[str, Any]:
    """Every planted rate and count, recounted from the documents' words with the audits' definitions."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    docs = [d["text"].split() for d in documents]
    group_of = {term: (axis, group) for axis, members in groups.items() for group, terms in members.items()
                for term in terms}

    def near(words: list[str], i: int, axis: str, group: str) -> bool:
        window = words[max(0, i - WINDOW):i] + words[i + 1:i + 1 + WINDOW]
        return any(group_of.get(w) == (axis, group) for w in window)

    occupations = []
    for occupation, rate in female_rates.items():
        row: dict[str, Any] = {"occupation": occupation, "female_rate": rate,
                               "occurrences": sum(w == occupation for words in docs for w in words),
                               "documents": sum(occupation in words for words in docs),
                               "with": {g: sum(near(words, i, "gender", g) for words in docs
                                               for i, w in enumerate(words) if w == occupation)
                                        for g in groups["gender"]},
                               "contexts": {}}
        for template in CONTEXTS:
            context = template.format(occupation=occupation).split()
            follow = [words[i + len(context)] for words in docs for i in range(len(words) - len(context))
                      if words[i:i + len(context)] == context]
            row["contexts"][" ".join(context)] = {
                "count": sum(words[i:i + len(context)] == context for words in docs
                             for i in range(len(words) - len(context) + 1)),
                **{g: sum(f in terms for f in follow) for g, terms in groups["gender"].items()}}
        occupations.append(row)
    analyzer = SentimentIntensityAnalyzer()
    sentiment = []
    for axis, members in groups.items():
        for group, terms in members.items():
            scores = [analyzer.polarity_scores(" ".join(words[max(0, i - WINDOW):i + 1 + WINDOW]))["compound"]
                      for words in docs for i, w in enumerate(words) if w in terms]
            row = {"axis": axis, "group": group, "windows": len(scores),
                   "vader_mean": sum(scores) / len(scores) if scores else None}
            if group in positive_rates:
                mine = [d for d in documents if d.get("people") == group]
                row.update({"positive_rate": positive_rates[group], "documents": len(mine),
                            "positive_documents": sum(d["positive"] for d in mine)})
            sentiment.append(row)
    terms = {term: {"occurrences": sum(w == term for words in docs for w in words),
                    "documents": sum(term in words for words in docs)} for term in group_of}
    return {"seed": seed, "window": WINDOW, "documents": len(documents), "words": sum(map(len, docs)),
            "groups": groups, "occupations": occupations, "sentiment": sentiment, "terms": terms}


def write_bias_inputs(plant: BiasPlant, folder: str | Path) -> dict[str, str]:
    """``groups.json``, ``targets.json`` and ``templates.jsonl`` for ``seethrough bias data|model``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "groups.json", plant.groups_file)
    atomic_write_json(folder / "targets.json", plant.targets)
    lines = "".join(json.dumps(t, sort_keys=True) + "\n" for t in plant.templates)
    atomic_write_bytes(folder / "templates.jsonl", lines.encode("utf-8"))
    return {"groups": str(folder / "groups.json"), "targets": str(folder / "targets.json"),
            "templates": str(folder / "templates.jsonl")}


def demo_bias(index: Any, checkpoint: Any, plant: BiasPlant, out: Path, threads: int | None = None) -> dict[str, Any]:
    """Both bias audits on the demo's corpus and checkpoint (a ``Checkpoint``, run or model folder),
    written under ``out/data`` and ``out/model``; returns the summary's section: recovered rates
    against the truth, model against data, greedy amplification."""
    from ..audit.bias import BiasDataSettings, measure_data_bias, measure_model_bias, write_bias_data, write_bias_model

    began = time.perf_counter()
    out = Path(out)
    data = measure_data_bias(index, plant.groups_file, plant.targets, BiasDataSettings(window=plant.window))
    write_bias_data(data, out / "data")
    model = measure_model_bias(checkpoint, index, plant.groups_file, plant.templates, threads=threads)
    write_bias_model(model, out / "model")
    found = {r["target"]: r for r in data.cooccurrence if r["axis"] == "gender"}
    contexts = {r["context"]: r for r in model.contexts}
    targets = {t["target"]: t for t in model.targets}
    occupations = []
    for row in plant.truth["occupations"]:
        name = row["occupation"]
        measured = found[name]
        counted = {c: {g: contexts[c]["data_counts"][g] for g in row["with"]} | {"count": contexts[c]["context_count"]}
                   for c in row["contexts"]}
        exact = (measured["occurrences"] == row["occurrences"] and measured["with"] == row["with"]
                 and counted == row["contexts"])
        occupations.append({"occupation": name, "planted_female_rate": row["female_rate"],
                            "data_female_share": measured["share"]["female"], "exact": exact,
                            "model_female_share": targets[name]["model"]["female"],
                            "context_data_female_share": targets[name]["data"]["female"]})
    sentiment = []
    measured_sentiment = {(r["axis"], r["group"]): r for r in data.sentiment}
    for row in plant.truth["sentiment"]:
        if row["axis"] != "people":
            continue
        got = measured_sentiment[(row["axis"], row["group"])]
        sentiment.append({"group": row["group"], "planted_positive_rate": row["positive_rate"],
                          "truth_mean": row["vader_mean"], "mean": got["mean"], "ci": got["ci"],
                          "windows": got["windows"], "exact": got["windows"] == row["windows"] and
                          got["mean"] is not None and abs(got["mean"] - row["vader_mean"]) < 1e-12})
    return {"window": plant.window, "occupations": occupations,
            "rates_recovered_exactly": sum(o["exact"] for o in occupations), "occupation_count": len(occupations),
            "sentiment": sentiment, "correlation": model.correlation, "greedy": model.greedy.get("gender"),
            "files": str(out), "seconds": round(time.perf_counter() - began, 2)}


def bias_lines(section: dict[str, Any]) -> list[str]:
    """The bias section of the demo's summary.txt."""
    occupations = sorted(section["occupations"], key=lambda o: o["planted_female_rate"])
    lines = [f"bias, data: planted female rates recovered exactly for {section['rates_recovered_exactly']}/"
             f"{section['occupation_count']} occupations (index counts = truth, window {section['window']}); "
             "female share planted -> data -> model:",
             "  " + ", ".join(f"{o['occupation']} {o['planted_female_rate']:.0%}->{_percent(o['data_female_share'])}->"
                              f"{_percent(o['model_female_share'])}" for o in occupations)]
    for s in section["sentiment"]:
        ci = f" [{s['ci'][0]:+.3f}, {s['ci'][1]:+.3f}]" if s["ci"] else ""
        lines.append(f"bias, sentiment: {s['group']} ({s['planted_positive_rate']:.0%} positive planted) VADER mean "
                     f"{s['mean']:+.3f}{ci} over {s['windows']} windows; equals the truth: {s['exact']}")
    c = section["correlation"]
    if c["pearson"] is not None:
        lines.append(f"bias, model vs data ({c['units']} occupations): Pearson {c['pearson']:.2f} "
                     f"{_interval(c['pearson_ci'])}, Spearman {c['spearman']:.2f} {_interval(c['spearman_ci'])}")
    g = section["greedy"]
    if g and g["contexts"]:
        lines.append(f"bias, greedy decoding: picks the data's majority gender in {g['majority_chosen']:.0%} of "
                     f"{g['contexts']} contexts {_interval(g['majority_chosen_ci'], percent=True)}, where the data's "
                     f"majority share is {g['data_majority_rate']:.0%} and the model's probability "
                     f"{g['model_majority_rate']:.0%} (amplification {g['amplification']:+.0%})")
    return lines


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _interval(ci: list[float] | None, percent: bool = False) -> str:
    if not ci:
        return ""
    return f"[{ci[0]:.0%}, {ci[1]:.0%}]" if percent else f"[{ci[0]:.2f}, {ci[1]:.2f}]"
