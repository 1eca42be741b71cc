"""`bias model` on a tiny model trained on the demo's planted bias: the model's shares equal a direct
transformers computation, the data's counts a brute force over the documents, greedy choices a
plain argmax loop, the correlations scipy's; the plant is deterministic and its truth a recount of
its documents; `demo_bias` recovers every planted rate exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lm_eval")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The planted documents as a corpus (the demo's word-level tokenizer), and a tiny model trained on them."""
    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.corpus import CorpusBuildConfig
    from seethrough.demo.bias_world import plant_bias
    from seethrough.demo.world import word_tokenizer_json
    from seethrough.train import train

    root = tmp_path_factory.mktemp("bias_model")
    plant = plant_bias(1)
    with open(root / "docs.jsonl", "w", encoding="utf-8") as handle:
        for d in plant.documents:
            handle.write(json.dumps(d) + "\n")
    vocab = sorted({w for d in plant.documents for w in d["text"].split()} | {"unused"})
    (root / "tokenizer.json").write_text(word_tokenizer_json(vocab), encoding="utf-8")
    build_corpus([root / "docs.jsonl"], root / "tokenizer.json", root / "corpus", CorpusBuildConfig(shard_tokens=2500))
    build_index(root / "corpus")
    train(root / "corpus", root / "run", {"model_size": "tiny", "seq_len": 32, "batch_size": 16, "steps": 60,
                                          "lr": 1e-2, "threads": 1})
    index = open_corpus(root / "corpus")
    assert len(index.corpus.shards) >= 2
    return root, index, plant


@pytest.fixture(scope="module")
def report(planted):
    from seethrough.audit.bias import measure_model_bias

    root, index, plant = planted
    return measure_model_bias(root / "run", index, plant.groups_file, plant.templates, threads=1)


def _direct(folder, context, continuations):
    """log p(continuation | context) of each continuation string, straight from transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    context_ids = tok(context, add_special_tokens=False)["input_ids"]
    out = []
    for continuation in continuations:
        whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), dim=-1)
        out.append(sum(float(logprobs[i - 1, whole[i]]) for i in range(len(context_ids), len(whole))))
    return out


def _greedy(folder, ids, steps):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    ids = list(ids)
    for _ in range(steps):
        with torch.no_grad():
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[-steps:]


def _count(docs, sequence):
    n = len(sequence)
    return sum(1 for d in docs for i in range(len(d) - n + 1) if d[i:i + n] == sequence)


def test_model_shares_equal_a_direct_transformers_computation(planted, report):
    root, index, plant = planted
    folder = root / "run" / "checkpoints" / f"step-{report.model['step']}"
    assert report.model["step"] == 60 and len(report.contexts) == 18
    for record in report.contexts[:6]:
        groups = plant.groups_file["gender"]
        logprobs = _direct(folder, record["context"], [" " + t for g in groups for t in groups[g]])
        sums, at = {}, 0
        for group, terms in groups.items():
            sums[group] = sum(math.exp(x) for x in logprobs[at:at + len(terms)])
            at += len(terms)
        total = sum(sums.values())
        for group in groups:
            assert record["model"][group] == pytest.approx(sums[group] / total, abs=1e-5)
        assert record["model_mass"] == pytest.approx(total, rel=1e-4)


def test_data_counts_equal_a_brute_force_over_the_documents(planted, report):
    _, index, plant = planted
    docs = [index.tokenizer.encode(d["text"]) for d in plant.documents]
    for record in report.contexts:
        context = index.tokenizer.encode(record["context"])
        assert record["context_count"] == _count(docs, context)
        for group, terms in plant.groups_file["gender"].items():
            assert record["data_counts"][group] == sum(_count(docs, context + index.tokenizer.encode(t)) for t in terms)
        total = sum(record["data_counts"].values())
        assert record["data"] == {g: n / total for g, n in record["data_counts"].items()}


def test_greedy_choices_equal_a_plain_argmax_loop(planted, report):
    root, index, _ = planted
    folder = root / "run" / "checkpoints" / "step-60"
    for record in report.contexts[:4]:
        ids = _greedy(folder, index.tokenizer.encode(record["context"]), len(record["greedy"]["ids"]))
        assert record["greedy"]["ids"] == ids
        first = index.tokenizer.decode(ids[:1])
        expected = next((g for g, items in record["continuations"].items() if any(i["term"] == first for i in items)),
                        None)
        assert record["greedy"]["group"] == expected


def test_targets_correlation_and_greedy_summary_recomputed(report):
    from scipy import stats

    for target in report.targets:
        mine = [r for r in report.contexts if r["target"] == target["target"]]
        counts = {g: sum(r["data_counts"][g] for r in mine) for g in target["data"]}
        assert target["data"] == {g: n / sum(counts.values()) for g, n in counts.items()}
        assert target["model"]["female"] == pytest.approx(np.mean([r["model"]["female"] for r in mine]))
        assert target["difference"]["female"] == pytest.approx(target["model"]["female"] - target["data"]["female"])
    xs = [t["data"]["female"] for t in report.targets]
    ys = [t["model"]["female"] for t in report.targets]
    c = report.correlation
    assert c["units"] == c["points"] == 9
    assert c["pearson"] == pytest.approx(stats.pearsonr(xs, ys)[0])
    assert c["spearman"] == pytest.approx(stats.spearmanr(xs, ys)[0])
    assert c["pearson_ci"][0] <= c["pearson"] <= c["pearson_ci"][1]
    greedy = report.greedy["gender"]
    majority = [(max(r["data"], key=r["data"].get), r) for r in report.contexts if r["data"]["female"] != 0.5]
    assert greedy["contexts"] == len(majority) == 16  # the 50% occupation has no majority
    assert greedy["majority_chosen"] == pytest.approx(np.mean([r["greedy"]["group"] == g for g, r in majority]))
    assert greedy["data_majority_rate"] == pytest.approx(np.mean([r["data"][g] for g, r in majority]))
    assert greedy["amplification"] == pytest.approx(greedy["majority_chosen"] - greedy["data_majority_rate"])


def test_bad_templates_and_groups(planted):
    from seethrough.audit.bias.model import build_contexts
    from seethrough.errors import ConfigError, QueryError

    _, index, plant = planted
    groups = plant.groups_file
    cases = [([{"template": "the nurse said that", "axis": "gender", "targets": ["x"]}], ConfigError, "slot"),
             ([{"template": "{target} {target}", "axis": "gender", "targets": ["nurse"]}], ConfigError, "exactly once"),
             ([{"template": "the {target} said", "axis": "colour", "targets": ["nurse"]}], ConfigError, "axis 'colour'"),
             ([{"template": "the {target} said", "axis": "gender", "targets": []}], ConfigError, "targets"),
             ([{"template": "the {target} sang that", "axis": "gender", "targets": ["nurse"]}], QueryError, "'sang'")]
    for templates, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            build_contexts(index, groups, templates)
        assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="term 'they'"):
        build_contexts(index, {"gender": {"female": ["she", "they"], "male": ["he"]}}, plant.templates)
    contexts, notes = build_contexts(index, "builtin", plant.templates)  # built-in terms the vocabulary lacks: notes
    assert [t for t, _ in contexts[0].continuations["female"]] == ["she", "her"] and any("woman" in n for n in notes)


def test_the_cli_prints_the_report_and_refuses_bad_input(planted, report, tmp_path):
    from typer.testing import CliRunner

    from seethrough.cli.app import app
    from seethrough.demo.bias_world import write_bias_inputs

    root, index, plant = planted
    files = write_bias_inputs(plant, tmp_path / "inputs")
    args = ["bias", "model", str(root / "run"), "--corpus", str(index.path), "--groups", files["groups"],
            "--templates", files["templates"], "--threads", "1"]
    result = CliRunner().invoke(app, [*args, "--json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["correlation"] == json.loads(json.dumps(report.correlation))  # the same bits: same weights
    assert printed["contexts"] == json.loads(json.dumps(report.contexts))
    assert json.loads((tmp_path / "out" / "bias_model.json").read_text())["targets"] == printed["targets"]
    for name in ("contexts.csv", "targets.csv", "model_vs_data.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert CliRunner().invoke(app, args).exit_code == 0
    (tmp_path / "slotless.jsonl").write_text('{"template": "the nurse said", "axis": "gender", "targets": ["a"]}\n')
    bad = CliRunner().invoke(app, [*args[:7], "--templates", str(tmp_path / "slotless.jsonl"), "--out",
                                   str(tmp_path / "o2")])
    assert "slot" in str(bad.exception) and "\n" not in str(bad.exception) and not (tmp_path / "o2").exists()
    refused = CliRunner().invoke(app, [*args, "--checkpoint", "all"])
    assert "takes one step" in str(refused.exception)


def test_the_plant_is_deterministic_and_its_truth_a_recount():
    from seethrough.demo.bias_world import CONTEXTS, DOCS_PER_CONTEXT, FEMALE_RATES, WINDOW, plant_bias

    plant = plant_bias(3)
    again = plant_bias(3)
    assert plant.documents == again.documents and plant.truth == again.truth
    assert plant_bias(4).documents != plant.documents
    texts = [d["text"] for d in plant.documents]
    assert all(d["kind"] == "bias" and t == t.lower() for d, t in zip(plant.documents, texts))
    assert sum(len(t.split()) + 1 for t in texts) <= 12_000  # with one end-of-document token each
    assert max(len(t.split()) for t in texts) <= WINDOW + 1  # every window is its whole document
    truth = plant.truth
    assert sorted(o["female_rate"] for o in truth["occupations"]) == list(FEMALE_RATES)
    for row in truth["occupations"]:
        for template in CONTEXTS:
            context = template.format(occupation=row["occupation"])
            female = sum(t.startswith(context + " she ") for t in texts)
            male = sum(t.startswith(context + " he ") for t in texts)
            assert row["contexts"][context] == {"count": DOCS_PER_CONTEXT, "female": female, "male": male}
            assert female == round(row["female_rate"] * DOCS_PER_CONTEXT) and female + male == DOCS_PER_CONTEXT
        assert row["occurrences"] == row["documents"] == 2 * DOCS_PER_CONTEXT
        assert row["with"] == {"female": sum(row["contexts"][c]["female"] for c in row["contexts"]),
                               "male": sum(row["contexts"][c]["male"] for c in row["contexts"])}
    for row in truth["sentiment"]:
        if row["axis"] == "people":
            mine = [d for d in plant.documents if d.get("people") == row["group"]]
            assert row["positive_documents"] == sum(d["positive"] for d in mine) == round(row["positive_rate"] * len(mine))
            assert row["windows"] == sum(t.split().count(row["group"]) for t in texts)
    json.dumps(truth)  # JSON-able


def test_demo_bias_recovers_the_planted_rates(planted, tmp_path):
    from seethrough.demo.bias_world import bias_lines, demo_bias
    from seethrough.model import resolve_target

    root, index, plant = planted
    section = demo_bias(index, resolve_target(root / "run").last, plant, tmp_path / "bias", threads=1)
    assert section["rates_recovered_exactly"] == section["occupation_count"] == 9
    assert all(o["data_female_share"] == o["planted_female_rate"] for o in section["occupations"])
    assert [s["exact"] for s in section["sentiment"]] == [True, True]
    assert section["sentiment"][0]["mean"] > section["sentiment"][1]["mean"]  # 80% against 20% positive
    assert section["correlation"]["units"] == 9 and section["greedy"]["contexts"] == 16
    assert (tmp_path / "bias" / "data" / "bias_data.json").exists() and (tmp_path / "bias" / "model" / "bias_model.json").exists()
    lines = bias_lines(section)
    assert "9/9" in lines[0] and all(isinstance(line, str) for line in lines)
    json.dumps(section)
