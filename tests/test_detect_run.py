"""``evaluate_detectors`` and ``seethrough detect`` end to end on a tiny trained run: the held-out check
against brute force, tables recomputed from the per-text records, the files, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from seethrough.audit.detect import DetectSettings, evaluate_detectors, write_detection  # noqa: E402
from seethrough.audit.detect.detectors import ONE_PASS  # noqa: E402
from seethrough.audit.detect.texts import Text, word_count  # noqa: E402
from seethrough.cli.app import app  # noqa: E402
from seethrough.demo.detect_step import human_texts  # noqa: E402
from seethrough.errors import SeethroughError  # noqa: E402

SPAN = 13


def trained_ngrams(tokenizer, docs, n=SPAN):
    """Every n-gram of every training document (a plain scan, independent of the index)."""
    grams = set()
    for ids in tokenizer.encode_batch([d["text"] for d in docs]):
        grams.update(tuple(ids[i:i + n]) for i in range(len(ids) - n + 1))
    return grams


@pytest.fixture(scope="module")
def humans(world_corpus):
    """220 new documents of the world's language, and 6 training documents passed off as human text."""
    _, corpus, world, docs = world_corpus
    fresh = [Text(h["id"], "human", h["text"], h["domain"]) for h in human_texts(world.truth, 220, seed=4)]
    long_docs = [d for d in docs if len(d["text"].split()) >= 20][:6]
    planted = [Text(f"trained-{i}", "human", d["text"], "people") for i, d in enumerate(long_docs)]
    return fresh + planted


@pytest.fixture(scope="module")
def report(tiny_run, humans):
    settings = DetectSettings(decoding="greedy,sampling", attacks="homoglyph,zero_width_space", rounds=200,
                              prefix_tokens=8, batch_size=16)
    return evaluate_detectors(tiny_run, human=humans, settings=settings, threads=1)


def test_training_documents_passed_off_as_human_are_caught_by_the_index(report, humans, world_corpus):
    _, corpus, _, docs = world_corpus
    grams = trained_ngrams(corpus.tokenizer, docs)
    expected = {h.id for h, ids in zip(humans, corpus.tokenizer.encode_batch([h.text for h in humans]))
                if any(tuple(ids[i:i + SPAN]) in grams for i in range(len(ids) - SPAN + 1))}
    refused = {r["id"] for r in report.texts["held_out"]["refused"]}
    assert {f"trained-{i}" for i in range(6)} <= refused
    assert refused == expected
    assert report.texts["humans"] == len(humans) - len(refused)


def test_machine_text_pairs_splits_and_trimming(report):
    clean = [r for r in report.records if r.attack is None and r.defence is None]
    humans = {r.source.id: r.source for r in clean if r.source.label == "human"}
    machines = [r.source for r in clean if r.source.label == "machine"]
    assert {m.decoding for m in machines} == {"greedy", "sampling"}
    for m in machines:
        h = humans[m.human_id]
        assert m.split == h.split and m.domain == h.domain
        assert word_count(m.text) == word_count(h.text)
        assert m.text.split()[:8] == h.text.split()[:8]  # the prompt is the human text's first 8 tokens
    splits = [h.split for h in humans.values()]
    assert abs(splits.count("calibration") - splits.count("test")) <= 2  # half each, per domain


def test_headline_recomputed_from_the_per_text_records(report):
    from sklearn.metrics import roc_auc_score

    clean = [r for r in report.records if r.attack is None and r.defence is None]
    for row in report.headline:
        d = row["detector"]
        h = np.array([r.scores[d] for r in clean if r.source.label == "human"])
        m = np.array([r.scores[d] for r in clean if r.source.label == "machine"])
        assert row["auroc"] == pytest.approx(roc_auc_score(np.r_[np.zeros(len(h)), np.ones(len(m))], np.r_[h, m]))
        cal = np.sort([r.scores[d] for r in clean if r.source.label == "human" and r.source.split == "calibration"])
        test_h = np.array([r.scores[d] for r in clean if r.source.label == "human" and r.source.split == "test"])
        test_m = np.array([r.scores[d] for r in clean if r.source.label == "machine" and r.source.split == "test"])
        assert len(cal) >= 100  # floor(0.01 n) >= 1: 1% is estimable, 0.1% is not
        threshold = cal[::-1][int(0.01 * len(cal))]
        assert row["threshold_1pct"] == threshold
        assert row["tpr_at_1pct_fpr"] == pytest.approx((test_m > threshold).mean())
        assert row["fpr_realised"] == pytest.approx((test_h > threshold).mean())
        lo, hi = row["tpr_at_1pct_fpr_ci"]
        assert lo <= row["tpr_at_1pct_fpr"] <= hi and row["auroc_ci"][0] <= row["auroc"] <= row["auroc_ci"][1]
        assert row["tpr_at_0.1pct_fpr"] is None and row["not_estimable"] == ["0.1pct"]


def test_attack_rows_use_the_clean_threshold_and_attacked_humans(report):
    clean = {row["detector"]: row for row in report.headline}
    attacked = [r for r in report.records if r.attack == "zero_width_space" and r.defence is None]
    for row in (r for r in report.attacks if r["attack"] == "zero_width_space" and r["defence"] == "none"):
        d = row["detector"]
        t = clean[d]["threshold_1pct"]
        humans = np.array([r.scores[d] for r in attacked if r.source.label == "human" and r.source.split == "test"])
        machines = np.array([r.scores[d] for r in attacked if r.source.label == "machine" and r.source.split == "test"])
        assert row["threshold_1pct"] == t
        assert row["fpr_at_1pct_threshold"] == pytest.approx((humans > t).mean())
        assert row["tpr_at_1pct_fpr"] == pytest.approx((machines > t).mean())
        assert row["tpr_at_1pct_fpr_change"] == pytest.approx(row["tpr_at_1pct_fpr"] - clean[d]["tpr_at_1pct_fpr"])
    sanitised = {(r.source.id, r.source.label): r.scores for r in report.records
                 if r.attack == "zero_width_space" and r.defence == "sanitise"}
    plain = {(r.source.id, r.source.label): r.scores for r in report.records if r.attack is None and r.defence is None}
    assert sanitised == plain  # the sanitiser removes every zero-width space: the clean texts' scores again


def test_summary_and_files(report, tmp_path):
    summary = report.summary()
    keys = {"auroc", "auroc_ci", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci", "tpr_at_0.1pct_fpr", "fpr_realised",
            "fpr_realised_ci"}
    assert list(summary["detectors"]) == list(ONE_PASS)
    assert all(keys <= set(v) for v in summary["detectors"].values())
    files = write_detection(report, tmp_path)
    assert {"scores.jsonl", "detect.json", "headline.csv", "decoding.csv", "attacks.csv", "length.csv",
            "domain_transfer.csv", "report.txt", "roc.png", "roc_by_decoding.png"} <= set(files)
    rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == len(report.records)
    assert {r["label"] for r in rows} == {"human", "machine"} and {r["split"] for r in rows} == {"calibration", "test"}
    assert all(set(r["scores"]) == set(ONE_PASS) for r in rows)
    assert {r.get("attack") for r in rows} == {None, "homoglyph", "zero_width_space"}
    machine = next(r for r in rows if r["label"] == "machine")
    assert machine["decoding"] in ("greedy", "sampling") and machine["human_id"]
    detect = json.loads((tmp_path / "detect.json").read_text())
    for table in ("headline", "decoding", "attacks", "length", "domain_transfer"):
        assert detect[table] and all({"models_sha256", "texts_sha256", "config_sha256"} <= set(r)
                                     for r in detect[table])
    transfer = {(r["calibration_domain"], r["test_domain"]) for r in detect["domain_transfer"]}
    assert transfer == {(a, b) for a in ("people", "places") for b in ("people", "places")}
    assert "not estimable" in (tmp_path / "report.txt").read_text()


def run_cli(*args):
    return CliRunner().invoke(app, ["detect", *map(str, args)])


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_with_given_machine_text_and_json(tiny_run, humans, tmp_path):
    human_file = write_jsonl(tmp_path / "h.jsonl", [{"id": h.id, "text": h.text, "domain": h.domain}
                                                    for h in humans[:40]])
    machine_file = write_jsonl(tmp_path / "m.jsonl", [{"text": h.text[::-1], "human_id": h.id, "decoding": "reversed"}
                                                      for h in humans[:40]])
    result = run_cli(tiny_run, "--human", human_file, "--machine", machine_file, "--attacks", "none",
                     "--detectors", "likelihood,gltr", "--rounds", "50", "--json", "--out", tmp_path / "out",
                     "--threads", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert list(summary["detectors"]) == ["likelihood", "gltr"]
    row = summary["detectors"]["likelihood"]
    assert row["tpr_at_1pct_fpr"] is None and row["not_estimable"] == ["1pct", "0.1pct"]  # 20 calibration humans
    assert (tmp_path / "out" / "scores.jsonl").exists()
    decoding = json.loads((tmp_path / "out" / "detect.json").read_text())["decoding"]
    assert {r["decoding"] for r in decoding} == {"reversed"}


def test_cli_corpus_of_human_documents_is_checked_against_the_run(tiny_run, humans, world_corpus, tmp_path):
    from seethrough import build_corpus

    root, _, _, _ = world_corpus
    write_jsonl(tmp_path / "held.jsonl", [{"text": h.text} for h in humans[:30]] + [{"text": h.text}
                                                                                    for h in humans[-6:]])
    build_corpus([tmp_path / "held.jsonl"], root / "tokenizer.json", tmp_path / "held")
    result = run_cli(tiny_run, "--corpus", tmp_path / "held", "--decoding", "greedy", "--attacks", "none",
                     "--detectors", "likelihood", "--rounds", "20", "--prefix-tokens", "8", "--out", tmp_path / "o",
                     "--threads", "1")
    assert result.exit_code == 0, result.output
    refused = json.loads((tmp_path / "o" / "detect.json").read_text())["texts"]["held_out"]["refused"]
    assert {r["id"] for r in refused} >= {f"doc-{i}" for i in range(30, 36)}  # the 6 training documents


def refused(*args):
    """The one-line error of a bad detect command (the CLI's main prints it and exits 2)."""
    result = run_cli(*args)
    assert isinstance(result.exception, SeethroughError), result.output
    message = str(result.exception)
    assert "\n" not in message
    return message


def test_bad_input_gets_one_line(tiny_run, humans, tmp_path, monkeypatch):
    from seethrough.train.model import build_model

    from conftest import word_tokenizer

    h = write_jsonl(tmp_path / "h.jsonl", [{"id": x.id, "text": x.text, "domain": "news"} for x in humans[:30]])
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": x.text, "domain": "poetry"} for x in humans[30:60]])
    out = tmp_path / "out"
    common = ["--attacks", "none", "--rounds", "10", "--out", out, "--threads", "1"]
    assert "'homoglyphs' is not an attack" in refused(tiny_run, "--human", h, "--attacks", "homoglyphs")
    assert "no domain has both human and machine text (human: news; machine: poetry)" in refused(
        tiny_run, "--human", h, "--machine", m, *common)
    assert "--decoding has no effect with --machine" in refused(tiny_run, "--human", h, "--machine", m, "--decoding",
                                                               "greedy")
    assert "exactly one of them" in refused(tiny_run, "--human", h, "--corpus", tmp_path, *common)
    assert "exactly one of them" in refused(tiny_run, *common)
    other = tmp_path / "other-model"
    build_model("tiny", 26, 64, 0, seed=1).save_pretrained(other)
    word_tokenizer(other / "tokenizer.json")
    assert "reads text with another vocabulary" in refused(tiny_run, "--human", h, "--reference", other,
                                                           "--decoding", "greedy", *common)
    assert "binoculars need(s) a reference model" in refused(tiny_run, "--human", h, "--detectors", "binoculars")
    (tmp_path / "bad_detector.py").write_text("def score(texts):\n    return [0.5]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "detector bad_detector:score returned 1 score(s)" in refused(
        tiny_run, "--human", h, "--detectors", "bad_detector:score", "--decoding", "greedy", "--prefix-tokens", "8",
        *common)
    assert "give a share strictly between 0 and 1" in refused(tiny_run, "--human", h, "--calibration-share", "1")
    few = write_jsonl(tmp_path / "few.jsonl", [{"text": x.text} for x in humans[:1]])
    assert "cannot fill both a calibration and a test split" in refused(tiny_run, "--human", few, "--decoding",
                                                                       "greedy", "--prefix-tokens", "8", *common)
    assert "--corpus documents must be checked against the training data" in refused(
        tiny_run / "checkpoints" / "step-4", "--corpus", tmp_path / "nothing", *common)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a"}\n{"txt": "b"}\n')
    assert "broken.jsonl:2: each line must be a JSON object with a string \"text\"" in refused(
        tiny_run, "--human", broken)
    assert not out.exists()  # nothing half-written


def test_a_bad_command_exits_2_with_one_line(tiny_run, tmp_path):
    (tmp_path / "h.jsonl").write_text('{"text": "the weather was cold"}\n')
    done = subprocess.run([sys.executable, "-m", "seethrough", "detect", str(tiny_run), "--human",
                           str(tmp_path / "h.jsonl"), "--attacks", "nope"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "'nope' is not an attack" in done.stderr
    assert "Traceback" not in done.stderr


def test_another_generator_and_the_paired_detectors(tiny_run, humans, tmp_path):
    """--generator writes the machine text (not the scored model); --reference feeds the paired detectors,
    whose scores equal the detector set's own on the same texts."""
    from seethrough.audit.detect import DetectorSet
    from seethrough.audit.detect.detectors import PAIRED
    from seethrough.model import load_model, resolve_target

    other = tiny_run / "checkpoints" / "step-2"
    settings = DetectSettings(decoding="greedy", attacks="none", rounds=20, prefix_tokens=8,
                              detectors="likelihood,paired")
    both = evaluate_detectors(tiny_run, human=humans[:40], generator=other, reference=other, settings=settings,
                              threads=1)
    own = evaluate_detectors(tiny_run, human=humans[:40], settings=DetectSettings(
        decoding="greedy", attacks="none", rounds=20, prefix_tokens=8, detectors="likelihood"), threads=1)
    assert both.models["generator"]["path"] == str(other) and both.models["reference"]["path"] == str(other)
    assert both.hashes["models_sha256"] != own.hashes["models_sha256"]
    machine = {r.source.id: r.source.text for r in both.records if r.source.label == "machine"}
    mine = {r.source.id: r.source.text for r in own.records if r.source.label == "machine"}
    assert machine.keys() == mine.keys() and machine != mine  # step 2 and step 4 continue differently
    texts = [r.text for r in both.records]
    scored = DetectorSet(("likelihood", *PAIRED), load_model(resolve_target(tiny_run).last, threads=1),
                         resolve_target(tiny_run).run.corpus.tokenizer, load_model(other, threads=1)).score(texts)
    for name in ("likelihood", *PAIRED):
        assert [r.scores[name] for r in both.records] == pytest.approx(list(scored[name]))
