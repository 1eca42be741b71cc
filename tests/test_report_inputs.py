"""Inputs of the report and release tests (imported by test_report.py and test_release.py): a small
corpus whose documents and metadata hold hostile HTML, its index, a 60-step tiny run, and results
folders: eval, memorization and membership written by the real audits, and facts, bias, probe, lens,
detect, erase and CrowS-Pairs/BBQ summary files written here in their documented formats (docs/formats.md), small, with hostile
strings where a page would show text."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SCRIPT = '<script>alert("x")</script>'
IMG = '"><img src=x onerror=alert(1)>'
HOSTILE = [SCRIPT, IMG]

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "a", "big", "red", "blue", "house", "and", "of", "to",
         "in", "river", "stone", "tree", "bird"]
REPEATED = "the big red house of the blue river and the stone tree"

MC_YAML = """output_type: multiple_choice
doc_to_text: "{{prompt}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{choices.index(answer)}}"
metric_list:
  - metric: acc
"""


def _documents() -> list[dict]:
    rng = random.Random(7)
    docs = []
    for i in range(120):
        text = " ".join(rng.choices(WORDS, k=rng.randint(3, 40)))
        meta = {"source": "web" if i % 3 else SCRIPT, "license": "cc-by-4.0" if i % 2 else IMG}
        docs.append({"text": text, **meta})
    for i in range(0, 120, 4):  # a document 30 times over: the model repeats it, the trace finds it
        docs[i]["text"] = REPEATED
    docs[5]["text"] = f"the cat {SCRIPT} sat on {IMG} the mat"
    docs[6]["text"] = ""
    return docs


def _write_task(folder: Path, name: str, rows: list[dict]) -> None:
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / f"{name}.yaml").write_text(f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                         f"    test: {data}\ntest_split: test\nfewshot_split: test\n{MC_YAML}")


def _hand_written(root: Path) -> dict[str, Path]:
    """facts, bias data, bias model, probe, lens and detect folders in their formats, small."""
    out = {}
    facts = root / "facts"
    facts.mkdir()
    (facts / "facts.parquet").write_bytes(b"")  # the report reads summary.json; the table only marks the kind
    row = {"category": "stated", "format": "direct", "group": SCRIPT, "relation": "birth_city", "n": 8, "correct": 6,
           "accuracy": 0.75, "accuracy_ci": [0.41, 0.93], "chance": 0.25, "p_vs_chance": 0.004,
           "control": {"group": "C", "n": 8, "correct": 2, "accuracy": 0.25, "accuracy_ci": [0.07, 0.59]},
           "difference": 0.5, "difference_ci": [0.02, 0.76], "baseline": "control", "verdict": IMG}
    (facts / "summary.json").write_text(json.dumps({
        "settings": {"window": None, "max_documents": 100, "delimiter": " ", "control": "C", "max_new_tokens": 32},
        "questions": 16, "categories": {"stated": 8, "unknowable": 8},
        "checkpoints": [{"checkpoint": "step-2", "step": 2, "aggregates": [dict(row, correct=3, accuracy=0.375)]},
                        {"checkpoint": "step-6", "step": 6, "aggregates": [row]}],
        "first_learned": {"items": [], "by_group": []}}))
    out["facts"] = facts
    bias = root / "bias"
    bias.mkdir()
    (bias / "bias_data.json").write_text(json.dumps({
        "corpus": {}, "settings": {}, "terms": [], "groups": [],
        "cooccurrence": [{"axis": "gender", "target": SCRIPT, "occurrences": 12, "documents": 10, "per_million": 3.5,
                          "with": {"female": 9, "male": 3}, "share": {"female": 0.75, "male": 0.25},
                          "pmi": {"female": 0.2, "male": -0.4},
                          "log_odds": {"female": {"value": 0.3, "z": 2.1}, "male": {"value": -0.3, "z": -2.1}}}],
        "most_associated": [],
        "sentiment": [{"axis": "gender", "group": IMG, "occurrences": 40, "windows": 40, "sampled": False,
                       "mean": 0.125, "ci": [0.01, 0.24]}],
        "notes": [SCRIPT]}))
    (bias / "bias_model.json").write_text(json.dumps({
        "model": {}, "corpus": {}, "contexts": [],
        "targets": [{"axis": "gender", "target": IMG, "contexts": 2, "model": {"female": 0.6, "male": 0.4},
                     "data": {"female": 0.75, "male": 0.25}, "data_counts": {"female": 9, "male": 3},
                     "difference": {"female": -0.15, "male": 0.15}}],
        "correlation": {"points": 4, "units": 4, "pearson": 0.81, "pearson_ci": [0.2, 0.99], "spearman": 0.8,
                        "spearman_ci": [0.0, 1.0]},
        "correlation_by_axis": {},
        "greedy": {"gender": {"contexts": 4, "majority_chosen": 0.75, "majority_chosen_ci": [0.3, 0.95],
                              "other_group_chosen": 0.25, "no_group_term": 0.0, "data_majority_rate": 0.5,
                              "model_majority_rate": 0.55, "amplification": 0.25, "probability_amplification": 0.05}},
        "notes": []}))
    out["bias"] = bias
    probe = root / "probe"
    probe.mkdir()
    results = [{"layer": layer, "method": method, "accuracy": 0.5 + 0.1 * layer, "accuracy_ci": [0.3, 0.9],
                "auroc": 0.55 + 0.1 * layer, "auroc_ci": [0.4, 0.95], "ece": 0.1, "auroc_vs_output": None,
                "train_accuracy": 0.9, "train_auroc": 0.95}
               for layer in range(3) for method in ("logreg", "random")]
    (probe / "probe.json").write_text(json.dumps({
        "model": {}, "data": {}, "items": 40, "train": {}, "test": {}, "output_accuracy": None, "layers": [0, 1, 2],
        "methods": ["logreg", "random"], "layer_meaning": "", "results": results, "notes": [SCRIPT]}))
    out["probe"] = probe
    lens = root / "lens"
    lens.mkdir()
    (lens / "lens.json").write_text(json.dumps({
        "model": {}, "blocks": 2, "layers": [{"layer": i, "logit_kl": 3.0 - i, "logit_ce": 4.0, "tuned_kl": None,
                                              "tuned_ce": None} for i in range(3)],
        "model_ce": 2.5, "heldout_tokens": 512, "tuned_lens": None}))
    out["lens"] = lens
    detect = root / "detect"
    detect.mkdir()
    (detect / "detect.json").write_text(json.dumps({
        "detectors": ["likelihood"], "notes": [IMG],
        "headline": [{"detector": SCRIPT, "auroc": 0.9, "auroc_ci": [0.8, 0.97], "tpr_at_1pct_fpr": 0.4,
                      "tpr_at_1pct_fpr_ci": [0.2, 0.6], "fpr_realised": 0.01, "fpr_realised_ci": [0.0, 0.05],
                      "test_humans": 100, "test_machines": 100}]}))
    out["detect"] = detect
    control = root / "erase"
    control.mkdir()
    (control / "summary.json").write_text(json.dumps({
        "kind": "erase", "model": {"path": SCRIPT, "step": 60, "weights_sha256": "0" * 64}, "method": "leace",
        "width": 16, "layers": [1], "path": str(control), "sha256": "1" * 64, "seconds": 1.5,
        "probes": [{"layer": 1, "split": IMG,
                    "before": {"accuracy": 0.9, "accuracy_ci": [0.8, 0.95], "items": 40, "majority_rate": 0.5},
                    "after": {"accuracy": 0.5, "accuracy_ci": [0.35, 0.65], "items": 40, "majority_rate": 0.5}}],
        "edits": [{"layer": 1, "mean_edit_norm": 0.5, "mean_state_norm": 4.0, "relative": 0.125, "rank": 1}],
        "cross_entropy": {"tokens": 512, "windows": 8, "before": 2.125, "after": 2.25, "change": 0.125},
        "bias": None, "evals": {"tasks": ["t"], "scores": [{"task": SCRIPT, "metric": "acc", "before": 0.5,
                                                              "after": 0.25}]},
        "notes": [IMG]}))
    out["control"] = control
    crows = root / "crows"
    crows.mkdir()
    (crows / "bias_summary.json").write_text(json.dumps({
        "crows_pairs": {"crows_pairs_english": {"items": 40, "pct_stereotype": {"value": 0.575, "ci": [0.42, 0.72]},
                                                "likelihood_diff": {"value": 1.5, "ci": [1.1, 1.9]},
                                                "no_preference": 0.5, "by_category": {}}},
        "bbq": {"bbq": {"items": 60, "accuracy": {"value": 0.45, "ci": [0.33, 0.58]},
                        "ambiguous": {"items": 30, "accuracy": {"value": 0.4, "ci": [0.23, 0.57]},
                                      "bias_score": {"value": 0.1, "ci": [-0.05, 0.25]}},
                        "disambiguated": {"items": 30, "accuracy": {"value": 0.5, "ci": [0.33, 0.67]},
                                          "bias_score": {"value": 0.05, "ci": [-0.1, 0.2]}},
                        "by_category": {}}},
        "caveats": [SCRIPT], "intervals": {"method": "percentile bootstrap", "rounds": 1000, "seed": 0,
                                           "level": 0.95}}))
    out["crows"] = crows
    return out


@pytest.fixture(scope="session")
def show_inputs(tmp_path_factory):
    """The run, corpus and results folders a report and a release are made from."""
    from seethrough import build_corpus, build_index
    from seethrough.audit.membership import MembershipAuditor, write_evaluation
    from seethrough.audit.memorization import evaluate_memorization, write_report
    from seethrough.corpus import CorpusBuildConfig
    from seethrough.demo.world import word_tokenizer_json
    from seethrough.evaluate import evaluate_model, run_provenance, write_results
    from seethrough.index import open_corpus
    from seethrough.model import resolve_target
    from seethrough.train import train

    root = tmp_path_factory.mktemp("show")
    docs = _documents()
    with open(root / "docs.jsonl", "w", encoding="utf-8") as handle:
        for d in docs:
            handle.write(json.dumps(d, ensure_ascii=False) + "\n")
    vocabulary = sorted({w for d in docs for w in d["text"].split()})
    (root / "tokenizer.json").write_text(word_tokenizer_json(vocabulary), encoding="utf-8")
    build_corpus([root / "docs.jsonl"], root / "tokenizer.json", root / "corpus", CorpusBuildConfig(shard_tokens=1500))
    build_index(root / "corpus")
    run = root / "run"
    train(root / "corpus", run, {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 60, "threads": 1,
                                 "lr": 1e-2, "seed": 3})
    index = open_corpus(root / "corpus")
    memorization = root / "memorization"
    write_report(evaluate_memorization(run, index, sample=12, prompt_len=4, cont_len=4, threads=1), memorization)
    membership = root / "membership"
    auditor = MembershipAuditor(run, index, threads=1)
    members = [d["text"] for d in docs if len(d["text"].split()) > 8][:10]
    nonmembers = [" ".join(random.Random(i).choices(WORDS, k=12)) for i in range(10)]
    write_evaluation(auditor.evaluate(members, nonmembers), membership)
    tasks = root / "tasks"
    tasks.mkdir()
    _write_task(tasks, "show_mc", [{"prompt": " ".join(d["text"].split()[:4]), "answer": w,
                                    "choices": [w, "dog", "bird", "stone"] if w not in ("dog", "bird", "stone")
                                    else [w, "cat", "tree", "mat"]}
                                   for d in docs[10:22] if len(d["text"].split()) > 5
                                   for w in [d["text"].split()[4]]])
    target = resolve_target(run)
    result = evaluate_model(target.last, ["show_mc"], include_path=tasks, num_fewshot=0, corpus=index, ngram=4,
                            threads=1, extra_provenance=run_provenance(target.run, target.last))
    evaluation = write_results(result, root / "eval")
    hand = _hand_written(root)
    folders = [evaluation, memorization, membership, *hand.values()]
    return SimpleNamespace(root=root, run=run, corpus=root / "corpus", docs=docs, index=index, eval=evaluation,
                           memorization=memorization, membership=membership, folders=folders, **hand)
