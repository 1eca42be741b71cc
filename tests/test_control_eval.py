"""``--erase`` at deployment: an eval records the eraser's hash (and --verify re-applies it, checked),
the response cache never answers an erased model with unerased answers, and memorization,
membership and trace run with the eraser on and say so."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

pytest.importorskip("lm_eval")
torch = pytest.importorskip("torch")
pytest.importorskip("concept_erasure")

from test_control import city_statements, folder_digest, write_lines  # noqa: E402
from test_eval_verify import MC_YAML, tiny_model, write_task  # noqa: E402

from seethrough.errors import ConfigError, ModelError, QueryError  # noqa: E402


@pytest.fixture(scope="module")
def setup(world_corpus, tmp_path_factory):
    from seethrough.audit.control import EraseSettings, erase_model, write_eraser
    from seethrough.audit.probe import parse_probe_records
    from seethrough.model import Checkpoint

    torch.set_num_threads(1)
    root, _, world, _ = world_corpus
    base = tmp_path_factory.mktemp("erase_eval")
    model = tiny_model(base / "model", root / "tokenizer.json")
    tasks = base / "tasks"
    tasks.mkdir()
    items = [i for i in world.eval_items if i["task"] == "birth_city"][:8]
    write_task(tasks, "vf_mc", MC_YAML, [{k: i[k] for k in ("prompt", "choices", "answer")} for i in items])
    data = parse_probe_records(city_statements(world, 12), "cities")
    report = erase_model(Checkpoint(model), data, EraseSettings(layers="1,2"), threads=1)
    eraser = base / "eraser"
    write_eraser(report, eraser)
    return model, tasks, eraser, base


def invoke(*args):
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_an_eval_with_erase_records_the_erasers_hash_and_verify_reapplies_it(setup, tmp_path):
    from seethrough.evaluate import evaluate_model
    from seethrough.model import Checkpoint, load_intervention

    model, tasks, eraser, _ = setup
    before = folder_digest(model)
    got = invoke("eval", model, "--tasks", "vf_mc", "--include-path", tasks, "--out", tmp_path / "erased", "--erase",
                 eraser, "--threads", "1", "--json")
    assert got.exit_code == 0, got.output
    recorded = json.loads((tmp_path / "erased" / "results.json").read_text())["seethrough"]["model"]["intervention"]
    loaded = load_intervention(eraser)
    assert recorded == loaded.to_dict() and recorded["sha256"] == loaded.sha256 and recorded["kind"] == "eraser"
    # the numbers are the erased model's: equal to an in-memory evaluation with the eraser on, not the plain one's
    erased = evaluate_model(replace(Checkpoint(model), intervention=loaded), ["vf_mc"], include_path=tasks, threads=1)
    plain = evaluate_model(Checkpoint(model), ["vf_mc"], include_path=tasks, threads=1)
    rows = [json.loads(x) for x in (tmp_path / "erased" / "samples_vf_mc.jsonl").read_text().splitlines()]
    assert [r["resps"] for r in rows] == [r["resps"] for r in json.loads(json.dumps(erased.samples["vf_mc"]))]
    assert [r["resps"] for r in rows] != [r["resps"] for r in json.loads(json.dumps(plain.samples["vf_mc"]))]
    assert "intervention" not in plain.provenance["model"]
    # --verify re-applies the recorded eraser: the record reproduces
    got = invoke("eval", "--verify", tmp_path / "erased", "--threads", "1", "--json")
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["ok"] is True
    got = invoke("eval", "--verify", tmp_path / "erased", "--erase", eraser)
    assert isinstance(got.exception, QueryError) and "--erase has no effect with --verify" in str(got.exception)
    # an eraser changed since the evaluation: the record cannot be re-run
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "erased", moved)
    data = json.loads((moved / "results.json").read_text())
    data["seethrough"]["model"]["intervention"]["sha256"] = "0" * 64
    (moved / "results.json").write_text(json.dumps(data))
    got = invoke("eval", "--verify", moved)
    assert isinstance(got.exception, QueryError) and "missing or changed since" in str(got.exception)
    assert folder_digest(model) == before


def test_the_response_cache_is_keyed_by_the_eraser(setup, tmp_path):
    from seethrough.evaluate.backend import SeethroughLM
    from seethrough.model import Checkpoint, load_intervention

    model, tasks, eraser, _ = setup
    loaded = load_intervention(eraser)
    plain = SeethroughLM(Checkpoint(model), threads=1, cache_dir=str(tmp_path / "cache"))
    erased = SeethroughLM(replace(Checkpoint(model), intervention=loaded), threads=1, cache_dir=str(tmp_path / "cache"))
    request = {"context": [3, 4, 5], "continuation": [6]}
    assert plain.cache.key("loglikelihood", **request) != erased.cache.key("loglikelihood", **request)
    # an eval filling the cache unerased, then one erased on the same cache: the erased answers, not the cached ones
    cache = tmp_path / "cache2"
    for name, extra in (("plain", []), ("erased", ["--erase", eraser]), ("fresh", ["--erase", eraser])):
        got = invoke("eval", model, "--tasks", "vf_mc", "--include-path", tasks, "--out", tmp_path / name,
                     *(["--cache", cache] if name != "fresh" else []), *extra, "--threads", "1", "--json")
        assert got.exit_code == 0, got.output

    def resps(name):
        return [json.loads(x)["resps"] for x in (tmp_path / name / "samples_vf_mc.jsonl").read_text().splitlines()]

    assert resps("erased") == resps("fresh") != resps("plain")
    hits = json.loads((tmp_path / "erased" / "results.json").read_text())["seethrough"]["cache"]
    assert hits["hits"] == 0


def test_a_foreign_or_wrong_kind_of_eraser_is_refused(setup, world_corpus, tmp_path):
    model, tasks, eraser, base = setup
    other = tiny_model(tmp_path / "other", world_corpus[0] / "tokenizer.json", seed=2)
    got = invoke("eval", other, "--tasks", "vf_mc", "--include-path", tasks, "--out", tmp_path / "o", "--erase", eraser)
    assert isinstance(got.exception, ModelError), got.output
    assert "was fitted on model" in str(got.exception) and "fit one for this model with seethrough erase" in \
        str(got.exception) and "\n" not in str(got.exception)
    assert not (tmp_path / "o").exists()
    (tmp_path / "vector").mkdir()
    (tmp_path / "vector" / "vector.json").write_text("{}")
    got = invoke("eval", model, "--tasks", "vf_mc", "--include-path", tasks, "--out", tmp_path / "o", "--erase",
                 tmp_path / "vector")
    assert isinstance(got.exception, ConfigError) and "is a steering vector" in str(got.exception)


def test_memorization_membership_and_trace_run_erased_and_record_it(tiny_run, world_corpus, tmp_path):
    from seethrough.audit.control import EraseSettings, erase_model, write_eraser
    from seethrough.audit.probe import parse_probe_records
    from seethrough.model import load_intervention, resolve_target

    root, _, world, docs = world_corpus
    data = parse_probe_records(city_statements(world, 12), "cities")
    write_eraser(erase_model(tiny_run, data, EraseSettings(layers="1"), threads=1), tmp_path / "e")
    expected = load_intervention(tmp_path / "e").to_dict()
    corpus = root / "corpus"
    got = invoke("memorization", tiny_run, "--corpus", corpus, "--sample", "6", "--prompt-len", "4", "--cont-len", "4",
                 "--erase", tmp_path / "e", "--out", tmp_path / "mem", "--threads", "1")
    assert got.exit_code == 0, got.output
    summary = json.loads((tmp_path / "mem" / "summary.json").read_text())
    assert all(row["intervention"] == expected for row in summary.values())
    # the erased model's own greedy continuations
    from seethrough.audit.memorization import evaluate_memorization
    from seethrough.index import open_corpus

    index = open_corpus(corpus)
    erased = evaluate_memorization(resolve_target(tiny_run, intervention=load_intervention(tmp_path / "e")), index,
                                   sample=6, prompt_len=4, cont_len=4, threads=1)
    rows = json.loads(json.dumps([r.to_dict() for r in next(iter(erased.results.values()))]))
    table = [json.loads(x) for x in invoke("memorization", tiny_run, "--corpus", corpus, "--sample", "6",
                                           "--prompt-len", "4", "--cont-len", "4", "--erase", tmp_path / "e",
                                           "--threads", "1", "--json").stdout.splitlines()]
    assert [t["generated_ids"] for t in table] == [r["generated_ids"] for r in rows]
    assert all(t["intervention"] == expected for t in table)

    members = write_lines(tmp_path / "m.jsonl", [{"text": d["text"]} for d in docs[:4]])
    nonmembers = write_lines(tmp_path / "n.jsonl", [{"text": " ".join(reversed(d["text"].split()))} for d in docs[:4]])
    got = invoke("membership", tiny_run, "--corpus", corpus, "--evaluate", members, nonmembers, "--erase",
                 tmp_path / "e", "--out", tmp_path / "mship", "--threads", "1")
    assert got.exit_code == 0, got.output
    assert json.loads((tmp_path / "mship" / "evaluation.json").read_text())["intervention"] == expected
    got = invoke("membership", tiny_run, docs[0]["text"], "--corpus", corpus, "--erase", tmp_path / "e", "--json",
                 "--threads", "1")
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["intervention"] == expected

    traced = None
    for doc in docs[:40]:  # the tiny model ends some answers at once (the trace's own one-line error): try others
        got = invoke("trace", tiny_run, "--corpus", corpus, "--prompt", " ".join(doc["text"].split()[:3]),
                     "--max-new-tokens", "6", "--erase", tmp_path / "e", "--json", "--threads", "1")
        if got.exit_code == 0:
            traced = json.loads(got.stdout)
            break
        assert "ended its response at once" in str(got.exception)
    assert traced is not None and traced["intervention"] == expected
    got = invoke("trace", tiny_run, "--corpus", corpus, "--text", "a b", "--erase", tmp_path / "e")
    assert isinstance(got.exception, QueryError) and "--erase has no effect" in str(got.exception)


def setup_data(world_corpus):
    from seethrough.audit.probe import parse_probe_records

    return parse_probe_records(city_statements(world_corpus[2], 12), "cities")


def test_erase_reports_each_tasks_scores_before_and_after(setup, world_corpus):
    from seethrough.audit.control import EraseSettings, erase_model
    from seethrough.evaluate import evaluate_model
    from seethrough.model import Checkpoint, load_intervention

    model, tasks, eraser, _ = setup
    loaded = load_intervention(eraser)
    report = erase_model(Checkpoint(model), setup_data(world_corpus), EraseSettings(layers="1,2"), tasks=["vf_mc"], include_path=tasks,
                         threads=1)
    plain = {s.label: s.value for s in evaluate_model(Checkpoint(model), ["vf_mc"], include_path=tasks,
                                                      threads=1).scores()}
    erased = {s.label: s.value for s in evaluate_model(replace(Checkpoint(model), intervention=loaded), ["vf_mc"],
                                                       include_path=tasks, threads=1).scores()}
    assert {r["metric"]: r["before"] for r in report.evals["scores"]} == plain
    assert {r["metric"]: r["after"] for r in report.evals["scores"]} == erased


def test_a_relative_erase_path_is_recorded_so_verify_runs_from_any_directory(setup, tmp_path, monkeypatch):
    model, tasks, eraser, _ = setup
    monkeypatch.chdir(eraser.parent)
    got = invoke("eval", model, "--tasks", "vf_mc", "--include-path", tasks, "--out", tmp_path / "erased", "--erase",
                 eraser.name, "--threads", "1")
    assert got.exit_code == 0, got.output
    recorded = json.loads((tmp_path / "erased" / "results.json").read_text())["seethrough"]["model"]["intervention"]
    assert recorded["path"] == str(eraser.absolute())
    monkeypatch.chdir(tmp_path)  # where "eraser" names nothing
    got = invoke("eval", "--verify", tmp_path / "erased", "--threads", "1", "--json")
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["ok"] is True


def test_an_eraser_of_one_checkpoint_is_refused_before_any_checkpoint_is_evaluated(setup, tiny_run, world_corpus,
                                                                                   tmp_path):
    from seethrough.audit.control import EraseSettings, erase_model, write_eraser

    _, tasks, _, _ = setup
    write_eraser(erase_model(tiny_run, setup_data(world_corpus), EraseSettings(layers="1"), threads=1), tmp_path / "e")
    got = invoke("eval", tiny_run, "--checkpoints", "last,0", "--tasks", "vf_mc", "--include-path", tasks, "--out",
                 tmp_path / "o", "--erase", tmp_path / "e", "--threads", "1")
    assert isinstance(got.exception, ModelError) and "step-0" in str(got.exception), got.output
    assert not (tmp_path / "o").exists()  # the last step's results were not written before the refusal
