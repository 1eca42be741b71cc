"""``verify_results``: a recorded evaluation run again, every recorded value compared. Each kind of edit
to a record is found and named; an untouched record verifies; nothing in the folder is changed; a
folder that is not a complete record is a one-line error naming the file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("torch")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

MC_YAML = """output_type: multiple_choice
doc_to_text: "{{prompt}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{choices.index(answer)}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""
CANARY_YAML = """output_type: loglikelihood
doc_to_text: "{{context}}"
doc_to_target: "{{' ' + rest}}"
metric_list:
  - metric: acc
  - metric: perplexity
"""


def tiny_model(folder, tokenizer_json, seed=1):
    """A random 2-layer GPT-NeoX over the world's word-level tokenizer, saved as an HF folder."""
    from tokenizers import Tokenizer

    from seethrough.demo.world import EOD
    from seethrough.train.model import build_model

    folder.mkdir(parents=True)
    shutil.copyfile(tokenizer_json, folder / "tokenizer.json")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOD, "eos_token": EOD, "unk_token": None,
        "model_max_length": 2048, "clean_up_tokenization_spaces": False}))
    vocab = Tokenizer.from_file(str(tokenizer_json)).get_vocab_size()
    build_model("tiny", vocab, 64, 0, seed=seed).save_pretrained(folder)
    return folder


def write_task(folder, name, spec, rows):
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / f"{name}.yaml").write_text(f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                         f"    test: {data}\ntest_split: test\nfewshot_split: test\n{spec}")


@pytest.fixture(scope="module")
def recorded(world_corpus, tmp_path_factory):
    """A record written by ``write_results``: a 2-shot multiple-choice task and a canary task checked
    against the indexed corpus (half the canaries planted in it, half held out)."""
    from seethrough.evaluate import evaluate_model, write_results
    from seethrough.index import open_corpus

    root, _, world, docs = world_corpus
    base = tmp_path_factory.mktemp("verify")
    model = tiny_model(base / "model", root / "tokenizer.json")
    tasks = base / "tasks"
    tasks.mkdir()
    items = [i for i in world.eval_items if i["task"] == "birth_city"][:8]
    write_task(tasks, "vf_mc", MC_YAML, [{k: i[k] for k in ("prompt", "choices", "answer")} for i in items])
    planted = sorted({d["text"] for d in docs if d["kind"] == "canary"})[:4]
    held = [c["text"] for c in world.truth["heldout_canaries"]][:4]
    write_task(tasks, "vf_canary", CANARY_YAML, [
        {"context": " ".join(t.split()[:8]), "rest": " ".join(t.split()[8:]), "planted": t in planted}
        for t in planted + held])
    result = evaluate_model(model, ["vf_mc", "vf_canary"], include_path=tasks, num_fewshot=2,
                            corpus=open_corpus(root / "corpus"), ngram=8)
    out = write_results(result, base / "out")
    return out, result, model, tasks


@pytest.fixture
def copy(recorded, tmp_path):
    """A copy of the record, to edit."""
    out = tmp_path / "record"
    shutil.copytree(recorded[0], out)
    return out


def _files(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def edit_results(folder, change):
    data = json.loads((folder / "results.json").read_text())
    change(data)
    (folder / "results.json").write_text(json.dumps(data, indent=2))


def edit_sample(folder, task, line, change):
    """Apply ``change`` to one line of a samples file; returns that sample's doc_id."""
    path = folder / f"samples_{task}.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    change(rows[line])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows[line]["doc_id"]


def test_the_record_has_the_files_and_fields_scripts_read(recorded):
    """The on-disk format: results.json with lm-eval's output and the seethrough block (the four seeds
    among its fields), one samples_<task>.jsonl per task with lm-eval's sample fields and seethrough's."""
    from seethrough.evaluate import read_results

    out, result, model, _ = recorded
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "samples_vf_canary.jsonl", "samples_vf_mc.jsonl"]
    data = json.loads((out / "results.json").read_text())
    assert {"results", "configs", "versions", "n-shot", "n-samples", "seethrough"} <= set(data)
    assert {"code_version", "versions", "model", "corpus", "tasks", "requests_sha256", "seed", "seeds", "num_fewshot",
            "limit", "include_path", "ngram", "batch_size", "cache", "flagged_items", "contamination", "hardware",
            "backend", "timing"} <= set(data["seethrough"])
    assert data["seethrough"]["seeds"] == {"random": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234}
    assert data["seethrough"]["seed"] == [0, 1234, 1234, 1234]
    assert data["config"]["random_seed"] == 0 and data["config"]["fewshot_seed"] == 1234  # what lm-eval was given
    weights = hashlib.sha256(b"model.safetensors:" + hashlib.sha256((model / "model.safetensors").read_bytes())
                             .hexdigest().encode() + b"\n").hexdigest()
    assert data["seethrough"]["model"]["weights_sha256"] == weights
    for task in ("vf_mc", "vf_canary"):
        lines = [json.loads(x) for x in (out / f"samples_{task}.jsonl").read_text().splitlines()]
        assert len(lines) == 8
        for line in lines:
            assert {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics", "doc_hash",
                    "prompt_hash", "target_hash", "acc", "request_sha256", "flags", "contamination"} <= set(line)
    back = read_results(out)
    assert back.to_dict() == data and back.results == data["results"]
    assert [s.to_dict() for s in back.scores()] == [s.to_dict() for s in result.scores()]


def test_clean_subset_metrics_are_lm_evals_aggregations_over_the_clean_items(recorded):
    """The contamination block: exactly the planted canaries flagged; over all items each metric is
    what lm-eval reports; over the clean ones, lm-eval's own aggregation of their values (the mean of
    acc; exp(-mean log-likelihood) for perplexity)."""
    import math

    out, result, _, _ = recorded
    rows = result.samples["vf_canary"]
    assert [r["contamination"]["flagged"] for r in rows] == [r["doc"]["planted"] for r in rows]
    report = result.contamination["vf_canary"]
    assert report["items"] == 8 and report["flagged"] == 4 and report["clean_items"] == 4
    for metric in ("acc", "perplexity"):
        assert report["all"][metric] == pytest.approx(result.results["vf_canary"][f"{metric},none"], rel=1e-12)
    clean = [r for r in rows if not r["doc"]["planted"]]
    assert report["clean"]["acc"] == pytest.approx(sum(r["acc"] for r in clean) / 4)
    assert report["clean"]["perplexity"] == pytest.approx(math.exp(-sum(r["perplexity"] for r in clean) / 4))


def test_an_untouched_record_verifies_and_nothing_in_it_changes(recorded, copy):
    from seethrough.evaluate import verify_results

    before = _files(copy)
    report = verify_results(copy)
    assert report.ok and report.differences == []
    assert report.items_checked == 16 and report.values_checked > 16 * 20
    assert _files(copy) == before
    assert report.to_dict()["ok"] is True


def _set(mapping, key, value):
    mapping[key] = value


def raised_acc(f):
    edit_results(f, lambda d: _set(d["results"]["vf_mc"], "acc,none", d["results"]["vf_mc"]["acc,none"] + 0.1))
    return [("results.json", "results.vf_mc.acc,none", None)]


def changed_stderr(f):
    edit_results(f, lambda d: _set(d["results"]["vf_canary"], "acc_stderr,none", 0.01))
    return [("results.json", "results.vf_canary.acc_stderr,none", None)]


def changed_perplexity(f):
    edit_results(f, lambda d: _set(d["results"]["vf_canary"], "perplexity,none",
                                   d["results"]["vf_canary"]["perplexity,none"] * 1.001))
    return [("results.json", "results.vf_canary.perplexity,none", None)]


def raised_clean_acc(f):
    edit_results(f, lambda d: _set(d["seethrough"]["contamination"]["vf_canary"]["clean"], "acc", 0.99))
    return [("results.json", "seethrough.contamination.vf_canary.clean.acc", None)]


def flipped_item_acc(f):
    doc = edit_sample(f, "vf_mc", 3, lambda r: _set(r, "acc", 1.0 - r["acc"]))
    return [("samples_vf_mc.jsonl", "acc", doc)]


def edited_filtered_resps(f):
    doc = edit_sample(f, "vf_mc", 5, lambda r: _set(r["filtered_resps"][1], 0, r["filtered_resps"][1][0] + 0.25))
    return [("samples_vf_mc.jsonl", "filtered_resps[1][0]", doc)]


def edited_loglikelihood(f):
    doc = edit_sample(f, "vf_canary", 2, lambda r: _set(r["resps"][0][0], 0, r["resps"][0][0][0] - 1.0))
    return [("samples_vf_canary.jsonl", "resps[0][0][0]", doc)]


def flipped_is_greedy(f):
    doc = edit_sample(f, "vf_canary", 6, lambda r: _set(r["resps"][0][0], 1, not r["resps"][0][0][1]))
    return [("samples_vf_canary.jsonl", "resps[0][0][1]", doc)]


def flipped_contamination_flag(f):
    doc = edit_sample(f, "vf_canary", 0, lambda r: _set(r["contamination"], "flagged", False))  # a planted canary
    return [("samples_vf_canary.jsonl", "contamination.flagged", doc)]


def edited_doc(f):
    doc = edit_sample(f, "vf_mc", 0, lambda r: _set(r["doc"], "prompt", r["doc"]["prompt"] + " x"))
    return [("samples_vf_mc.jsonl", "doc.prompt", doc)]


EDITS = [raised_acc, changed_stderr, changed_perplexity, raised_clean_acc, flipped_item_acc, edited_filtered_resps,
         edited_loglikelihood, flipped_is_greedy, flipped_contamination_flag, edited_doc]
"""Each edits a copy of the record and returns the differences verify must name: (file, field, doc_id)."""


@pytest.mark.parametrize("edit", EDITS, ids=[e.__name__ for e in EDITS])
def test_each_edit_is_found_and_named(copy, edit):
    from seethrough.evaluate import verify_results

    expected = edit(copy)
    before = _files(copy)
    report = verify_results(copy)
    assert not report.ok and report.to_dict()["ok"] is False
    assert [(d.file, d.field, d.doc_id) for d in report.differences] == expected
    assert all(d.recorded != d.now for d in report.differences)
    assert _files(copy) == before


def test_every_difference_is_reported_and_a_missing_line_is_one(copy):
    from seethrough.evaluate import verify_results

    edit_results(copy, lambda d: d["results"]["vf_mc"].__setitem__("acc_norm,none", 0.0123))
    flipped = edit_sample(copy, "vf_mc", 1, lambda r: r.__setitem__("acc_norm", 1.0 - r["acc_norm"]))
    path = copy / "samples_vf_canary.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))  # the last item dropped
    report = verify_results(copy)
    named = [(d.file, d.field, d.doc_id) for d in report.differences]
    assert named == [("results.json", "results.vf_mc.acc_norm,none", None),
                     ("samples_vf_mc.jsonl", "acc_norm", flipped),
                     ("samples_vf_canary.jsonl", "line 8", 7)]
    assert report.differences[-1].recorded == "(absent)" and report.items_checked == 15
    assert "line 8 recorded (absent)" in str(report.differences[-1])


def test_a_folder_that_is_not_a_complete_record_is_a_one_line_error(copy, tmp_path):
    from seethrough.errors import QueryError
    from seethrough.evaluate import verify_results

    def refused(folder, match):
        with pytest.raises(QueryError, match=match) as caught:
            verify_results(folder)
        assert "\n" not in str(caught.value)

    refused(tmp_path / "nowhere", "is not a folder")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "is not a results folder .*no results.json")
    samples = copy / "samples_vf_canary.jsonl"
    kept = samples.read_bytes()
    lines = kept.decode().splitlines(keepends=True)
    samples.write_text(lines[0] + "{not json\n" + "".join(lines[2:]))
    refused(copy, "samples_vf_canary.jsonl line 2 is not a JSON object")
    samples.unlink()
    refused(copy, r"samples_vf_canary.jsonl is missing.*restore the file")
    samples.write_bytes(kept)
    results = copy / "results.json"
    data = json.loads(results.read_text())
    results.write_text(json.dumps({k: v for k, v in data.items() if k != "seethrough"}))  # lm-eval's own file
    refused(copy, "not a seethrough eval record")
    results.write_text("{")
    refused(copy, "results.json is not valid JSON")
    results.write_text(json.dumps(data))
    edit_results(copy, lambda d: d["seethrough"]["corpus"].__setitem__("corpus_hash", "0" * 64))
    refused(copy, "is not the corpus the evaluation used .*restore that corpus")
    edit_results(copy, lambda d: d["seethrough"]["model"].__setitem__("weights_sha256", "0" * 64))
    refused(copy, "its weights changed since the evaluation.*restore the model folder")


def test_results_are_not_written_over_a_file(recorded, tmp_path):
    from seethrough.errors import QueryError
    from seethrough.evaluate import write_results

    (tmp_path / "taken").write_text("mine")
    with pytest.raises(QueryError, match="--out .*taken is a file"):
        write_results(recorded[1], tmp_path / "taken")
    assert (tmp_path / "taken").read_text() == "mine"


def test_a_record_made_before_the_four_seeds_verifies_with_its_one_seed(recorded, tmp_path):
    """Records written before the seeds were recorded say ``"seed": 0`` (all four 0) and no task names:
    verify reads them so."""
    from seethrough.evaluate import evaluate_model, verify_results, write_results

    _, _, model, tasks = recorded
    result = evaluate_model(model, ["vf_mc"], include_path=tasks, num_fewshot=2, seed=0)
    assert result.seeds == {"random": 0, "numpy": 0, "torch": 0, "fewshot": 0} and result.provenance["seed"] == 0
    out = write_results(result, tmp_path / "old")
    edit_results(out, lambda d: [d["seethrough"].pop(k) for k in ("seeds", "task_names", "device", "dtype")])
    assert verify_results(out).ok


def test_an_evaluation_prints_nothing_of_its_own(recorded, tmp_path, monkeypatch, capfd):
    """The console shows seethrough's output only: no datasets "Generating split" bar, no lm-eval progress
    bar, no git "fatal: not a git repository" from lm-eval's hash of a working folder outside a checkout
    (all seen in the demo's console before). Checked at the file descriptors, where subprocesses write."""
    from seethrough.evaluate import evaluate_model

    _, _, model, tasks = recorded
    monkeypatch.chdir(tmp_path)
    capfd.readouterr()
    result = evaluate_model(model, ["vf_mc"], include_path=tasks, num_fewshot=0, limit=3)
    out, err = capfd.readouterr()
    assert result.results["vf_mc"]["acc,none"] is not None
    assert out == "" and err == "", (out, err)


def test_a_record_made_with_a_relative_include_path_verifies_from_another_folder(recorded, tmp_path, monkeypatch):
    """lm-eval records each task's config_source as given and the config hash covers it: the include
    path is made absolute first, so verify re-runs the same configs from any working folder."""
    from seethrough.evaluate import evaluate_model, verify_results, write_results

    _, _, model, tasks = recorded
    monkeypatch.chdir(tasks.parent)
    result = evaluate_model(model, ["vf_mc"], include_path=tasks.name, num_fewshot=0, limit=2)
    out = write_results(result, tmp_path / "rel")
    monkeypatch.chdir(tmp_path)
    report = verify_results(out)
    assert report.ok, [str(d) for d in report.differences]
