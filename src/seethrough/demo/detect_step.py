"""The demo's detector test: held-out human text of the world's own language, machine text from the
demo model, every one-pass detector measured with calibrated thresholds and intervals.

Human texts are new documents in the world's language: sentences of the world's templates
(``world.py``) filled with the world's people, cities, companies and words in new combinations
(a random person with a random city, hobby or employer: mostly facts the training data never
states), in new orders, so no document is in the training corpus. They are checked against the
index like any held-out set (a text sharing ``MAX_COPIED_SPAN`` tokens with the corpus is left out,
and the section says how many were). Two domains: ``people`` (bio-like sentences) and ``places``
(company and background sentences), for the transfer table. Machine text is the demo model's
continuation of each human text's first ``PREFIX_TOKENS`` tokens under each of ``DECODINGS``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from .world import (BACKGROUND_TEMPLATES, BIRTH_TEMPLATES, COMPANY_TEMPLATES, EMPLOYER_TEMPLATES, HOBBIES,
                    HOBBY_TEMPLATES, NEUTRAL_TEMPLATES, ADJECTIVES, MONTHS, THINGS)

HUMAN_TEXTS = 240
"""Human documents generated (before the held-out check); half calibrate, half test."""
TOKENS = (44, 60)
"""Each document grows by whole sentences to a length in this range (the demo model trained on 64-token rows)."""
PREFIX_TOKENS = 16
DECODINGS = "greedy,sampling,sampling+rep,top_k_40"
ATTACK = "homoglyph"
MAX_COPIED_SPAN = 13
SEED = 0


def human_texts(truth: dict[str, Any], count: int = HUMAN_TEXTS, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` new documents of the world's language (``{"id", "text", "domain"}``)."""
    rng = random.Random(seed)
    names = [p["name"] for p in truth["people"]]
    cities = list(truth["cities"])
    companies = [c["name"] for c in truth["companies"]]

    def person_sentence() -> str:
        family = rng.choice([BIRTH_TEMPLATES, EMPLOYER_TEMPLATES, HOBBY_TEMPLATES, NEUTRAL_TEMPLATES])
        return rng.choice(family).format(name=rng.choice(names), city=rng.choice(cities),
                                         company=rng.choice(companies), hobby=rng.choice(HOBBIES))

    def place_sentence() -> str:
        if rng.random() < 0.5:
            return rng.choice(COMPANY_TEMPLATES).format(company=rng.choice(companies), city=rng.choice(cities))
        return rng.choice(BACKGROUND_TEMPLATES).format(adj=rng.choice(ADJECTIVES), month=rng.choice(MONTHS),
                                                       thing=rng.choice(THINGS), thing2=rng.choice(THINGS))

    out = []
    for i in range(count):
        domain = "people" if i % 2 == 0 else "places"
        target = rng.randint(*TOKENS)
        words: list[str] = []
        while len(words) < target:
            sentence = (person_sentence() if domain == "people" else place_sentence()).split()
            if len(words) + len(sentence) > TOKENS[1]:
                break
            words += sentence
        out.append({"id": f"h{i}", "text": " ".join(words), "domain": domain})
    return out


def demo_detect(world_truth: dict[str, Any], index: Any, checkpoint: Any, out: Path,
                threads: int | None = None) -> dict[str, Any]:
    """Test the one-pass detectors on the demo model (``checkpoint``: its run folder, a ``Checkpoint``
    of it, or a model folder), write the report into ``out`` and return the summary section."""
    from ..audit.detect import DetectSettings, evaluate_detectors, write_detection
    from ..audit.detect.texts import Text
    from ..model import Checkpoint, resolve_target

    began = time.perf_counter()
    target = checkpoint
    if isinstance(checkpoint, Checkpoint):
        run = Path(checkpoint.path).parent.parent
        target = resolve_target(run, str(checkpoint.step)) if checkpoint.step is not None else \
            resolve_target(checkpoint.path)
    humans = [Text(h["id"], "human", h["text"], h["domain"]) for h in human_texts(world_truth)]
    settings = DetectSettings(decoding=DECODINGS, attacks=ATTACK, prefix_tokens=PREFIX_TOKENS,
                              max_copied_span=MAX_COPIED_SPAN, seed=SEED, rounds=1000)
    report = evaluate_detectors(target, human=humans, training_corpus=index, settings=settings, threads=threads)
    write_detection(report, out)
    held = report.texts["held_out"]
    headline = {row["detector"]: {k: row[k] for k in ("auroc", "auroc_ci", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci",
                                                      "fpr_realised", "fpr_realised_ci", "tpr_at_0.1pct_fpr",
                                                      "not_estimable")}
                for row in report.headline}
    by_decoding = {}
    for row in report.decoding:
        by_decoding.setdefault(row["decoding"], {})[row["detector"]] = {
            "auroc": row["auroc"], "tpr_at_1pct_fpr": row["tpr_at_1pct_fpr"],
            "tpr_at_1pct_fpr_ci": row["tpr_at_1pct_fpr_ci"]}
    attack = {}
    for row in report.attacks:
        key = row["attack"] if row["defence"] == "none" else f"{row['attack']}+sanitise"
        attack.setdefault(key, {})[row["detector"]] = {
            "tpr_at_1pct_fpr": row["tpr_at_1pct_fpr"], "tpr_at_1pct_fpr_change": row["tpr_at_1pct_fpr_change"],
            "human_fpr_at_1pct_threshold": row["fpr_at_1pct_threshold"], "auroc": row["auroc"]}
    return {"humans_generated": HUMAN_TEXTS, "humans_refused_by_index": len(held["refused"]) if held else None,
            "max_copied_span": MAX_COPIED_SPAN, "humans": report.texts["humans"], "machines": report.texts["machines"],
            "calibration_humans": report.headline[0]["calibration_humans"],
            "test_humans": report.headline[0]["test_humans"], "prefix_tokens": PREFIX_TOKENS,
            "decodings": DECODINGS.split(","), "attack": ATTACK, "headline": headline, "by_decoding": by_decoding,
            "attacks": attack, "hashes": report.hashes, "files": str(out),
            "seconds": round(time.perf_counter() - began, 2)}


def _cell(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "not estimable"
    return f"{value:.3f} [{ci[0]:.2f},{ci[1]:.2f}]" if ci else f"{value:.3f}"


def _short(value: float | None) -> str:
    return "n/e" if value is None else f"{value:.3f}"


def detect_lines(section: dict[str, Any]) -> list[str]:
    """The detector section of ``summary.txt``."""
    s = section
    lines = [f"detect: {s['humans']} held-out human texts ({s['humans_refused_by_index']} of {s['humans_generated']} "
             f"generated left out: a span of {s['max_copied_span']}+ tokens in the training data), {s['machines']} "
             f"machine texts from {s['prefix_tokens']}-token prefixes; thresholds on {s['calibration_humans']} "
             f"calibration humans, rates on the other {s['test_humans']} (AUROC / TPR [95% bootstrap CI], FPR [95% "
             "Clopper-Pearson]):"]
    lines.append(f"  {'detector':<16}{'AUROC':<22}{'TPR@1%FPR':<22}{'realised FPR':<22}TPR@0.1%FPR")
    for name, row in s["headline"].items():
        lines.append(f"  {name:<16}{_cell(row['auroc'], row['auroc_ci']):<22}"
                     f"{_cell(row['tpr_at_1pct_fpr'], row['tpr_at_1pct_fpr_ci']):<22}"
                     f"{_cell(row['fpr_realised'], row['fpr_realised_ci']):<22}{_cell(row['tpr_at_0.1pct_fpr'])}")
    detectors = list(s["headline"])
    for value, title in (("auroc", "AUROC"), ("tpr_at_1pct_fpr", "TPR at 1% FPR")):
        lines.append(f"  {title} by decoding:".ljust(30) + " ".join(f"{d[:9]:>9}" for d in detectors))
        for decoding, rows in s["by_decoding"].items():
            lines.append(f"    {decoding:<26}" + " ".join(
                f"{('n/e' if rows[d][value] is None else format(rows[d][value], '.3f')):>9}" for d in detectors))
    lines.append("  attacked, TPR@1%/human FPR:".ljust(30) + " ".join(
        f"{d[:11]:>11}" for d in detectors))
    for attack, rows in s["attacks"].items():
        lines.append(f"    {attack:<26}" + " ".join(
            f"{_short(rows[d]['tpr_at_1pct_fpr'])}/{_short(rows[d]['human_fpr_at_1pct_threshold'])}".rjust(11)
            for d in detectors))
    return lines
