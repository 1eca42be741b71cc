"""``seethrough report``: every number in report.json equals its source artefact (each file re-read and
re-hashed here; every computed number recomputed by brute force over the documents, or by greedy decoding with
plain forward passes); the same inputs give the same bytes; strings from artefacts are escaped
(hostile document text, metadata and task names); the page opens in Chromium with no request and no
console error; folders of nothing known and other bad input are one-line errors."""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lm_eval")

from test_report_inputs import HOSTILE, SCRIPT, show_inputs  # noqa: E402,F401  (the fixture)

from conftest import brute_count  # noqa: E402


@pytest.fixture(scope="module")
def hostile_eval(show_inputs, tmp_path_factory):
    """A copy of the eval folder whose task is renamed to a script tag (results.json edited)."""
    import shutil

    folder = tmp_path_factory.mktemp("hostile") / "eval"
    shutil.copytree(show_inputs.eval, folder)
    record = json.loads((folder / "results.json").read_text())
    record["results"][SCRIPT] = record["results"].pop("show_mc")
    record["seethrough"]["contamination"][SCRIPT] = record["seethrough"]["contamination"].pop("show_mc")
    (folder / "results.json").write_text(json.dumps(record))
    return folder


@pytest.fixture(scope="module")
def built(show_inputs, hostile_eval):
    from seethrough.show import build_report

    folders = [hostile_eval if f == show_inputs.eval else f for f in show_inputs.folders]
    return build_report(show_inputs.run, results=folders, threads=1), folders


def _read(path: str):
    data = Path(path).read_bytes()
    if path.endswith(".jsonl"):
        value = [json.loads(line) for line in data.decode("utf-8").split("\n") if line.strip()]
    else:
        value = json.loads(data)
    return hashlib.sha256(data).hexdigest(), value


def _at(value, where: str):
    """RFC 6901, written again here rather than imported."""
    for token in where.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        value = value[int(token)] if isinstance(value, list) else value[token]
    return value


def _bins(n: int) -> str:
    if n <= 1:
        return str(n)
    low = 1
    while low * 2 <= n:
        low *= 2
    return f"{low}-{2 * low - 1}"


def _token_docs(show_inputs):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(show_inputs.root / "tokenizer.json"))
    return tok, [tok.encode(d["text"]).ids if d["text"] else [] for d in show_inputs.docs]


def test_the_report_has_a_section_for_each_artefact(built):
    report, _ = built
    assert report.sections == ["provenance", "datasheet", "training", "evaluation", "memorization", "membership",
                               "trace", "facts", "bias", "probe", "lens", "detect", "control", "fmti"]
    keys = {n["key"] for n in report.numbers["numbers"]}
    for key in ("evaluation.bias0.crows.crows_pairs_english.pct_stereotype", "evaluation.bias0.bbq.bbq.amb_bias",
                "control.0.probes.0.after/accuracy", "control.0.cross_entropy.after",
                "control.0.probes.0.before/accuracy_ci.low", "control.0.evals.scores.0.after", "lens.0.model_ce",
                "membership.0.loss.auc", "memorization.0.step-60.extracted"):
        assert key in keys, key
    assert len(report.numbers["fmti"]) == 32
    assert {i["status"] for i in report.numbers["fmti"]} <= {"auto", "user", "n/a"}


def test_every_number_read_from_a_file_is_that_files_value_and_the_hash_is_the_files(built):
    report, _ = built
    numbers = report.numbers["numbers"]
    read = {}
    pointed = 0
    for number in numbers:
        if number["source"] not in read:
            read[number["source"]] = _read(number["source"])
        sha, value = read[number["source"]]
        assert number["sha256"] == sha, number
        assert report.numbers["sources"][number["source"]]["sha256"] == sha
        if "pointer" in number:
            pointed += 1
            assert number["value"] == _at(value, number["pointer"]), number
    assert pointed > 200
    keys = [n["key"] for n in numbers]
    assert len(keys) == len(set(keys))


def test_every_computed_number_is_recomputed(built, show_inputs):
    """Each ``derived`` number against a brute force over the documents, the log, or a plain generation."""
    report, _ = built
    tok, docs = _token_docs(show_inputs)
    lengths = [len(d) for d in docs]
    log = [json.loads(line) for line in (show_inputs.run / "log.jsonl").read_text().splitlines() if line.strip()]
    manifest = json.loads((show_inputs.run / "run.json").read_text())
    spec = manifest["data_order"]["spec"]
    unigrams = sorted(Counter(t for d in docs for t in d).values(), reverse=True)
    bigrams = sorted(Counter((a, b) for d in docs for a, b in zip(d, d[1:])).values(), reverse=True)
    meta = [{k: v for k, v in d.items() if k != "text"} for d in show_inputs.docs]
    derived = [n for n in report.numbers["numbers"] if "derived" in n]
    traces: dict[str, dict] = {}
    checked = 0
    for n in derived:
        key, value = n["key"], n["value"]
        section, rest = key.split(".", 1)
        if rest.endswith("_sha256") and section == "provenance":
            assert value == hashlib.sha256(Path(n["source"]).read_bytes()).hexdigest()
        elif rest.startswith("length."):
            expected = {"length.min": min(lengths), "length.max": max(lengths), "length.mean": sum(lengths) / len(lengths),
                        "length.median": statistics.median(lengths), "length.empty": lengths.count(0)}
            if rest.startswith("length.histogram."):
                assert value == Counter(_bins(x) for x in lengths)[rest.rsplit(".", 1)[1]]
            else:
                assert value == pytest.approx(expected[rest])
        elif rest.startswith("duplication."):
            counts = [brute_count(docs, d[:32]) for d in docs if d]  # fewer than 2,000 documents: all are sampled
            expected = {"duplication.sampled": len(counts), "duplication.duplicated": sum(c > 1 for c in counts),
                        "duplication.share": sum(c > 1 for c in counts) / len(counts), "duplication.max": max(counts)}
            if rest.startswith("duplication.histogram."):
                assert value == Counter(_bins(c) for c in counts)[rest.rsplit(".", 1)[1]]
            else:
                assert value == pytest.approx(expected[rest])
        elif rest.startswith("top_unigrams."):
            assert value == unigrams[int(rest.split(".")[1])]
        elif rest.startswith("top_bigrams."):
            assert value == bigrams[int(rest.split(".")[1])]
        elif rest.startswith("metadata."):
            field, what = rest[len("metadata."):].rsplit(".", 1)
            having = [m[field] for m in meta if field in m]
            assert value == (len(having) if what == "documents" else len(set(map(str, having))))
        elif section == "training":
            expected_training = {
                "steps_logged": len(log), "median_tokens_per_s": statistics.median(r["tokens_per_s"] for r in log),
                "seconds": sum(r["seconds"] for r in log), "median_mfu": statistics.median(r["mfu"] for r in log)}
            if rest.startswith("checkpoints."):
                i = int(rest.split(".")[1])
                assert value == manifest["checkpoints"][i]["step"] * spec["batch_size"] * spec["seq_len"]
            elif rest == "replay_match":
                from seethrough.train import open_run

                run = open_run(show_inputs.run)
                assert value is True and all(run.batch(r["step"]).sha256 == r["batch_sha256"] for r in log)
            else:
                assert value == pytest.approx(expected_training[rest])
        elif section == "trace":
            number, field = rest.split(".", 1)
            traces.setdefault(number, {})[field] = value
            continue  # checked below, per generation
        elif section == "facts":
            summary = json.loads(Path(n["source"]).read_text())
            step = int(rest.rsplit(".", 1)[1])
            name = rest.split(".by_step.")[1].rsplit(".", 1)[0]
            rows = [r for c in summary["checkpoints"] if c["step"] == step for r in c["aggregates"]
                    if f"{r['category']}/{r['format']}" == name]
            assert value == sum(r["correct"] for r in rows) / sum(r["n"] for r in rows)
        elif section == "fmti":
            if rest == "compute_flops":
                assert value == manifest["model"]["flops_per_token"] * log[-1]["tokens_seen"]
            else:
                assert rest == "training_seconds" and value == pytest.approx(sum(r["seconds"] for r in log))
        else:
            pytest.fail(f"no check for the computed number {key}: add one here")
        checked += 1
    assert checked > 40 and traces
    _check_traces(traces, show_inputs, tok, docs)


def _check_traces(traces, show_inputs, tok, docs):
    """Each traced generation is the model's greedy continuation (argmax of full forward passes), and
    its spans and novelty are what a brute force over the documents finds."""
    import torch
    from transformers import AutoModelForCausalLM

    manifest = json.loads((show_inputs.run / "run.json").read_text())
    last = manifest["checkpoints"][-1]["path"]
    model = AutoModelForCausalLM.from_pretrained(show_inputs.run / last).eval()
    grams = {}
    traced = 0

    def found(ids):
        n = len(ids)
        if n not in grams:
            grams[n] = {tuple(d[i:i + n]) for d in docs for i in range(len(d) - n + 1)}
        return tuple(ids) in grams[n]

    for number, t in traces.items():
        prompt = [int(x) for x in t["prompt_ids"].split()]
        generated = [int(x) for x in t["generated_ids"].split()]
        bos, eos = model.config.bos_token_id, model.config.eos_token_id
        ids = [bos] + prompt
        with torch.no_grad():  # greedy decoding by full forward passes, no cache
            for _ in range(32):
                ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
        out = ids[len(prompt) + 1:]
        if eos in out:
            out = out[:out.index(eos)]
        assert generated == out
        assert t["tokens"] == len(generated)
        longest = max((j - i for i in range(len(generated)) for j in range(i + 1, len(generated) + 1)
                       if found(generated[i:j])), default=0)
        assert t["longest_copied_span"] == longest
        eights = [generated[i:i + 8] for i in range(len(generated) - 7)]
        if eights:
            assert t["found_share_8"] == pytest.approx(sum(map(found, eights)) / len(eights))
        spans: dict[str, dict] = {}
        for k, v in t.items():
            if k.startswith("spans."):
                spans.setdefault(k.split(".")[1], {})[k.split(".")[2]] = v
        for span in spans.values():
            ids = generated[span["start"]:span["start"] + span["length"]]
            assert span["length"] >= 4 and span["count"] == brute_count(docs, ids) >= 1
        traced += len(spans)
    assert traced, "the document repeated 30 times is reproduced, and its spans traced"


def test_the_same_inputs_give_the_same_bytes(built, show_inputs, tmp_path):
    from seethrough.show import build_report, write_report

    report, folders = built
    again = build_report(show_inputs.run, results=folders, threads=1)
    assert again.html == report.html
    assert again.numbers == report.numbers
    write_report(report, tmp_path / "a")
    write_report(again, tmp_path / "b")
    for name in ("index.html", "report.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_strings_from_artefacts_are_escaped(built):
    report, _ = built
    html = report.html
    lowered = html.lower()
    assert "<script" not in lowered and "<img" not in lowered
    assert "&lt;script&gt;" in html  # the document, metadata, task name and notes are shown as text
    assert 'default-src \'none\'' in html and "http://" not in html and "https://" not in html


def test_the_page_opens_offline_in_chromium_with_no_request_and_no_error(built, tmp_path):
    from _browser import offline_page, require_chromium

    from seethrough.show import write_report

    require_chromium()
    report, _ = built
    out = write_report(report, tmp_path / "report")
    url = (out / "index.html").resolve().as_uri()
    with offline_page() as browser:
        browser.page.goto(url)
        browser.page.wait_for_load_state("load")
        assert browser.page.evaluate("document.scripts.length") == 0
        assert browser.page.evaluate("document.images.length") == 0
        text = browser.page.inner_text("body")
        for hostile in HOSTILE:
            assert hostile in text  # shown as the text it is
        assert browser.page.evaluate("document.querySelectorAll('svg.chart').length") >= 8
        assert browser.page.evaluate("document.querySelectorAll('mark.copied').length") >= 1
        browser.screenshot("report-tiny-run")
        assert browser.requests == [url]
        assert browser.blocked == []
        assert browser.console_errors == []


def test_a_folder_of_nothing_known_is_a_one_line_error(show_inputs, tmp_path):
    from seethrough.errors import ConfigError, RunError
    from seethrough.show import build_report, recognise_folder

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="holds no artefact a report knows") as caught:
        build_report(show_inputs.run, results=[empty], trace=False)
    assert "\n" not in str(caught.value) and str(empty) in str(caught.value)
    with pytest.raises(ConfigError, match="is not a folder"):
        recognise_folder(tmp_path / "missing")
    assert recognise_folder(show_inputs.bias) == ["bias_data", "bias_model"]
    assert recognise_folder(show_inputs.memorization) == ["memorization"]
    with pytest.raises(RunError, match="not a run folder"):
        build_report(show_inputs.corpus, trace=False)


def test_a_report_is_not_written_over_another_folder(built, tmp_path):
    from seethrough.errors import ConfigError
    from seethrough.show import write_report

    report, _ = built
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a report"):
        write_report(report, other)
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        write_report(report, tmp_path / "file")
    write_report(report, tmp_path / "ok")
    write_report(report, tmp_path / "ok")  # a report folder is replaced
    assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == ["index.html", "report.json"]


def test_the_command_writes_the_report_and_refuses_bad_folders(show_inputs, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "seethrough.cli.app", *map(str, args)], capture_output=True,
                              text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})

    empty = tmp_path / "empty"
    empty.mkdir()
    bad = run("report", show_inputs.run, "--results", empty, "--out", tmp_path / "r")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
    good = run("report", show_inputs.run, "--results", show_inputs.memorization, "--results", show_inputs.membership,
               "--out", tmp_path / "r", "--threads", "1", "--json")
    assert good.returncode == 0, good.stderr
    summary = json.loads(good.stdout)
    assert summary["sections"][:3] == ["provenance", "datasheet", "training"] and "membership" in summary["sections"]
    assert (tmp_path / "r" / "index.html").is_file()


def test_an_eval_of_several_checkpoints_shows_the_last_and_the_metric_by_step(show_inputs, tmp_path):
    import shutil

    from seethrough.show import build_report, recognise_folder

    folder = tmp_path / "eval"
    shutil.copytree(show_inputs.eval, folder / "step-60")
    shutil.copytree(show_inputs.eval, folder / "step-8")
    acc = json.loads((show_inputs.eval / "results.json").read_text())["results"]["show_mc"]["acc,none"]
    (folder / "by_checkpoint.json").write_text(json.dumps({"show_mc/acc": {"8": 0.25, "60": acc}}))
    assert recognise_folder(folder) == ["eval"]
    report = build_report(show_inputs.run, results=[folder], trace=False)
    numbers = {n["key"]: n for n in report.numbers["numbers"]}
    assert numbers["evaluation.eval0.show_mc.acc,none"]["source"] == str(folder / "step-60" / "results.json")
    assert numbers["evaluation.eval0.by_checkpoint.show_mc/acc.8"]["value"] == 0.25
    assert numbers["evaluation.eval0.by_checkpoint.show_mc/acc.60"]["pointer"] == "/show_mc~1acc/60"
    assert 'aria-label="metric by checkpoint"' in report.html


def test_without_an_index_the_datasheet_says_so_and_nothing_is_traced(show_inputs, tmp_path):
    """The same corpus (same content hash) without its suffix arrays: no duplication, n-grams or trace."""
    import shutil

    from seethrough.show import build_report

    bare = tmp_path / "corpus"
    shutil.copytree(show_inputs.corpus, bare, ignore=shutil.ignore_patterns("table.*", "index.json", ".verified.json"))
    report = build_report(show_inputs.run, corpus=bare)
    assert "trace" not in report.sections and "No index is built for this corpus" in report.html
    keys = {n["key"] for n in report.numbers["numbers"]}
    assert "datasheet.length.max" in keys and not any(k.startswith("datasheet.duplication") for k in keys)
    queryable = next(i for i in report.numbers["fmti"] if i["indicator"] == "Queryable external data access")
    assert queryable["status"] == "user"


def test_an_artefact_of_the_wrong_shape_is_a_one_line_error_naming_it(show_inputs, tmp_path):
    """Valid JSON that is not what the command writes ([] for a summary, {} for results.json) is refused
    naming the file, not a traceback; nothing is written."""
    import shutil

    from seethrough.errors import RunError
    from seethrough.show import build_report

    memorization, evaluation = tmp_path / "memorization", tmp_path / "eval"
    shutil.copytree(show_inputs.memorization, memorization)
    shutil.copytree(show_inputs.eval, evaluation)
    (memorization / "summary.json").write_text("[1, 2]")
    with pytest.raises(RunError, match="memorization section cannot read .*summary.json") as caught:
        build_report(show_inputs.run, results=[memorization], trace=False)
    assert "\n" not in str(caught.value)
    (evaluation / "results.json").write_text("{}")
    with pytest.raises(RunError, match=r"cannot read [^,]*eval/results.json \(KeyError"):
        build_report(show_inputs.run, results=[evaluation], trace=False)


def test_an_evaluation_of_another_run_is_refused(show_inputs, tmp_path):
    """results.json records the weights hash and the model's corpus: another run's (weights none of this
    run's checkpoints, or another corpus) would be shown as this run's evaluation; refused, naming it."""
    import shutil

    from seethrough.errors import ConfigError
    from seethrough.show import build_report
    from seethrough.show.artefacts import checkpoint_weights_hashes
    from seethrough.model.weights import weights_sha256
    from seethrough.train.run import open_run

    run = open_run(show_inputs.run)
    recorded = checkpoint_weights_hashes(run)  # from run.json's file hashes: the same as hashing the weights
    assert {weights_sha256(run.checkpoint(step)): step for step in run.checkpoints} == recorded
    foreign = tmp_path / "eval"
    shutil.copytree(show_inputs.eval, foreign)
    record = json.loads((foreign / "results.json").read_text())
    record["seethrough"]["model"]["weights_sha256"] = "ab" * 32
    (foreign / "results.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="results.json measured weights that are none of run .* checkpoints"):
        build_report(show_inputs.run, results=[foreign], trace=False)
    record["seethrough"]["model"]["corpus_hash"] = "cd" * 32
    (foreign / "results.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="results.json measured another corpus"):
        build_report(show_inputs.run, results=[foreign], trace=False)
    # bias data over another corpus, bias model of other weights: refused the same way
    bias = tmp_path / "bias"
    shutil.copytree(show_inputs.bias, bias)
    data = json.loads((bias / "bias_data.json").read_text())
    model = json.loads((bias / "bias_model.json").read_text())
    for name, record, where, value, message in (
            ("bias_data.json", data, ("corpus", "corpus_hash"), "ef" * 32, "bias_data.json measured another corpus"),
            ("bias_model.json", model, ("model", "weights_sha256"), "ab" * 32, "bias_model.json measured weights")):
        original = json.dumps(record)
        record.setdefault(where[0], {})[where[1]] = value
        (bias / name).write_text(json.dumps(record))
        with pytest.raises(ConfigError, match=message):
            build_report(show_inputs.run, results=[bias], trace=False)
        (bias / name).write_text(original)
    build_report(show_inputs.run, results=[bias], trace=False)  # restored: accepted


def test_a_report_inside_the_run_or_its_corpus_is_refused(built, show_inputs):
    from seethrough.errors import ConfigError
    from seethrough.show import write_report

    report, _ = built
    for inside, made in ((show_inputs.run / "report", show_inputs.run / "report"),
                         (show_inputs.corpus / "sub" / "report", show_inputs.corpus / "sub")):
        with pytest.raises(ConfigError, match="is inside .* which it describes"):
            write_report(report, inside)
        assert not made.exists()


def test_a_damaged_run_file_is_named_with_its_line_and_the_right_fix(show_inputs, tmp_path):
    """log.jsonl is the run's own file: the error names its bad line and does not advise leaving out a
    --results folder (it is in none)."""
    import shutil

    from seethrough.errors import ConfigError
    from seethrough.show import build_report

    run = tmp_path / "run"
    shutil.copytree(show_inputs.run, run)
    lines = (run / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text("\n".join(lines[:3] + ['{"step": broken'] + lines[3:]) + "\n")
    with pytest.raises(ConfigError, match=r"log.jsonl is not valid JSON \(line 4: .*\); restore it from a copy or "
                                          r"rerun the command that wrote it$"):
        build_report(run, trace=False)


def test_metric_pairs_skip_a_stderr_that_lm_eval_gives_as_na():
    """lm-eval writes ``"N/A"`` where it has no stderr: no stderr key then (a release's model card
    formatted it as a number and failed)."""
    from seethrough.show.sections import metric_pairs

    metrics = {"alias": "t", "acc,none": 0.5, "acc_stderr,none": "N/A", "exact_match,strict": 0.25,
               "exact_match_stderr,strict": 0.01, "samples": 7}
    assert metric_pairs(metrics) == [("acc,none", None), ("exact_match,strict", "exact_match_stderr,strict")]
