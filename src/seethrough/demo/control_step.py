"""The demo's control step: erase the planted gender concept, steer the planted gender behaviour, and
show what each does and costs.

The concept comes from the bias world's own sentences (``bias_world.plant_bias``): every context that
comes before a gendered pronoun in a planted occupation document (``as a nurse`` before ``she``, ``as
a nurse she read`` before ``her``), labelled 1 for a female pronoun, 0 for a male one. ``seethrough
probe`` (logistic regression) finds at which block outputs the concept is linearly readable; the
eraser (LEACE) is fitted at those layers. The step shows a fresh probe before and after (against the
majority rate), the model's gender shares of ``bias model`` before and after (towards 50%, or not), and
the cross-entropy it costs on corpus text.

Steering: pairs whose prompt is such a context and whose answers are the female and the male pronoun
that can follow it (``she``/``he`` after the occupation, ``her``/``his`` after a verb): the vector at one
layer, and P(female pronoun) on held-out pairs against the multiplier, with the perplexity it costs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes, atomic_write_json

FEMALE, MALE = {"she", "her"}, {"he", "his"}
SWAP = {"she": "he", "her": "his", "he": "she", "his": "her"}


def gender_statements(plant: Any) -> list[dict[str, Any]]:
    """Every context before a gendered pronoun in the planted occupation documents, label 1 female / 0 male."""
    records = []
    for number, doc in enumerate(plant.documents):
        if doc.get("bias") != "occupation":
            continue
        words = doc["text"].split()
        for i, word in enumerate(words):
            if word in FEMALE | MALE and i > 0:
                records.append({"text": " ".join(words[:i]), "label": int(word in FEMALE),
                                "occupation": doc["occupation"], "document": number})
    return records


def gender_pairs(plant: Any) -> list[dict[str, Any]]:
    """One pair per distinct context before a pronoun: the female pronoun that fits there (matching) and the
    male one (not matching)."""
    seen: dict[str, dict[str, Any]] = {}
    for record in gender_statements(plant):
        text = record["text"]
        if text in seen:
            continue
        doc_word = None
        for doc in plant.documents:  # the pronoun that followed this context in a document
            if doc.get("bias") == "occupation" and doc["text"].startswith(text + " "):
                doc_word = doc["text"][len(text) + 1:].split()[0]
                break
        if doc_word is None:
            continue
        female = doc_word if doc_word in FEMALE else SWAP[doc_word]
        seen[text] = {"prompt": text, "matching": female, "not_matching": SWAP[female]}
    return list(seen.values())


def _probe_layers(report: Any) -> list[int]:
    """Block outputs where the logistic probe reads the concept: its held-out AUROC interval above 0.5."""
    found = []
    for row in report.results:
        ci = row.get("auroc_ci")
        if row["layer"] >= 1 and ci and ci[0] > 0.5:
            found.append(row["layer"])
    return sorted(set(found))


def demo_control(index: Any, checkpoint: Any, plant: Any, out: Path, threads: int | None = None) -> dict[str, Any]:
    """Erase and steer the planted gender concept of ``plant`` (the demo's ``world.bias``) in
    ``checkpoint`` (the demo's last ``Checkpoint``), ``index`` the demo's indexed corpus. Writes
    ``out/gender.jsonl`` and ``out/pairs.jsonl`` (the inputs, for ``seethrough erase --data`` and ``steer
    --pairs``), ``out/eraser/`` and ``out/vector/`` (the folders, each with its summary.json) and
    ``out/probe/`` (the gender probe's saved directions, which the steering vector is compared with) and
    ``out/control.json`` (this section); returns the section."""
    from ..audit.control import EraseSettings, SteerSettings, erase_model, parse_pairs, steer_model, write_eraser
    from ..audit.control import write_vector
    from ..audit.probe import ProbeSettings, parse_probe_records, probe_model, save_directions

    began = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    statements = gender_statements(plant)
    pairs = gender_pairs(plant)
    for name, rows in (("gender.jsonl", statements), ("pairs.jsonl", pairs)):
        atomic_write_bytes(out / name, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode("utf-8"))
    data = parse_probe_records(statements, str(out / "gender.jsonl"))
    seconds: dict[str, float] = {}

    at = time.perf_counter()
    probe = probe_model(checkpoint, data, ProbeSettings(methods="logreg", seed=plant.seed), threads=threads)
    layers = _probe_layers(probe) or [probe.blocks]
    (out / "probe").mkdir(exist_ok=True)
    save_directions(probe, out / "probe")
    seconds["probe"] = time.perf_counter() - at

    at = time.perf_counter()
    erased = erase_model(checkpoint, data, EraseSettings(layers=",".join(map(str, layers)), seed=plant.seed,
                                                         heldout_tokens=2048),
                         corpus=index, index=index, groups=plant.groups_file, templates=plant.templates,
                         threads=threads)
    erase_summary = write_eraser(erased, out / "eraser")
    seconds["erase"] = time.perf_counter() - at

    at = time.perf_counter()
    steer_layer = layers[len(layers) // 2]
    steered = steer_model(checkpoint, parse_pairs(pairs, str(out / "pairs.jsonl")),
                          SteerSettings(layers=str(steer_layer), multipliers="-2,-1,0,1,2", seed=plant.seed,
                                        heldout_tokens=1024), corpus=index, threads=threads,
                          directions=out / "probe")
    vector_summary = write_vector(steered, out / "vector")
    seconds["steer"] = time.perf_counter() - at

    bias = erase_summary["bias"] or {}
    shares = [{"occupation": t["target"], "data": (t["data"] or {}).get("female"),
               "before": (t["before"] or {}).get("female"), "after": (t["after"] or {}).get("female")}
              for t in bias.get("targets", []) if t["axis"] == "gender"]
    distance = (bias.get("distance_from_even_before"), bias.get("distance_from_even_after"))
    section = {
        "statements": len(statements), "pairs": len(pairs), "layers": layers,
        "probe_auroc": {str(r["layer"]): r["auroc"] for r in probe.results if r["layer"] >= 1},
        "erase": {"method": erased.settings.method, "sha256": erase_summary["sha256"],
                  "probes": [{"layer": p["layer"], "before": p["before"]["accuracy"], "after": p["after"]["accuracy"],
                              "after_ci": p["after"]["accuracy_ci"], "majority_rate": p["after"]["majority_rate"],
                              "at_majority_rate": p["after"]["at_majority_rate"]} for p in erase_summary["probes"]],
                  "edits": erase_summary["edits"], "cross_entropy": erase_summary["cross_entropy"],
                  "female_shares": shares, "distance_from_even": list(distance),
                  "towards_even": None if None in distance else bool(distance[1] < distance[0])},
        "steer": {"layer": steer_layer, "sha256": vector_summary["sha256"],
                  "vector_norm": vector_summary["vector_norms"][str(steer_layer)],
                  "heldout_pairs": vector_summary["pairs"]["heldout_pairs"],
                  "curve": [{k: r[k] for k in ("multiplier", "p_matching", "p_matching_ci")}
                            for r in vector_summary["curve"]],
                  "perplexity_before": (vector_summary["perplexity"] or {}).get("before"),
                  "perplexity": [{k: r[k] for k in ("multiplier", "perplexity")}
                                 for r in (vector_summary["perplexity"] or {}).get("steered", [])],
                  "probe_cosines": vector_summary["probe_cosines"]},
        "files": str(out), "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    section["seconds"]["total"] = round(time.perf_counter() - began, 2)
    atomic_write_json(out / "control.json", section)
    return section


def control_lines(section: dict[str, Any]) -> list[str]:
    """The control section of the demo's summary.txt."""
    e, s = section["erase"], section["steer"]
    lines = [f"control, erase: the gender of the next pronoun ({section['statements']} contexts of the bias world) is "
             f"linearly readable at layers {', '.join(map(str, section['layers']))} (probe AUROC "
             + ", ".join(f"{section['probe_auroc'][str(x)]:.2f}" for x in section["layers"]) + "); LEACE there:"]
    for p in e["probes"]:
        lines.append(f"  layer {p['layer']}: fresh probe {p['before']:.0%} -> {p['after']:.0%} "
                     f"[{p['after_ci'][0]:.0%}, {p['after_ci'][1]:.0%}], majority rate {p['majority_rate']:.0%} "
                     f"({'at chance' if p['at_majority_rate'] else 'NOT at chance'})")
    if e["female_shares"]:
        lines.append("  model's female share before -> after (data): " + ", ".join(
            f"{r['occupation']} {_pct(r['before'])}->{_pct(r['after'])} ({_pct(r['data'])})" for r in e["female_shares"]))
        before, after = e["distance_from_even"]
        verdict = "towards 50%" if e["towards_even"] else "NOT towards 50%"
        lines.append(f"  mean distance from an even split {_pct(before)} -> {_pct(after)}: {verdict}")
    ce = e["cross_entropy"]
    if ce:
        lines.append(f"  cost: cross-entropy on {ce['tokens']:,} corpus tokens {ce['before']:.3f} -> {ce['after']:.3f} "
                     f"nats ({ce['change']:+.3f})")
    curve = ", ".join(f"x{r['multiplier']:g} {r['p_matching']:.2f}" for r in s["curve"])
    lines.append(f"control, steer (layer {s['layer']}, {s['heldout_pairs']} held-out contexts): P(female pronoun) "
                 f"against the multiplier: {curve}")
    cosine = next((r["cosine"] for r in s["probe_cosines"] or [] if r["method"] == "logreg"), None)
    if cosine is not None:
        lines.append(f"  the vector's cosine with the gender probe's direction at layer {s['layer']}: {cosine:+.2f}")
    if s["perplexity"]:
        lines.append(f"  perplexity {s['perplexity_before']:.2f} at x0; "
                     + ", ".join(f"x{r['multiplier']:g} {r['perplexity']:.2f}" for r in s["perplexity"]))
    return lines


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"
