"""The lm-eval backend: per-item parity with lm-eval's own ``hf`` backend on local tasks, and
batch invariance."""

from __future__ import annotations

import json
import os
import random

import pytest

pytest.importorskip("lm_eval")
torch = pytest.importorskip("torch")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

TASKS = {
    "st_mc": """
output_type: multiple_choice
doc_to_text: "{{prompt}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{choices.index(answer)}}"
metric_list:
  - metric: acc
  - metric: acc_norm
""",
    "st_lastword": """
output_type: loglikelihood
doc_to_text: "{{context}}"
doc_to_target: "{{' ' + last}}"
metric_list:
  - metric: perplexity
  - metric: acc
""",
    "st_rolling": """
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
""",
    "st_gen": """
output_type: generate_until
doc_to_text: "{{prompt}}"
doc_to_target: "{{answer}}"
generation_kwargs:
  until: ["."]
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
""",
}
TASKS["st_phrase"] = TASKS["st_mc"]  # the same multiple choice, over choices of several tokens


@pytest.fixture(scope="module")
def eval_setup(world_corpus, tmp_path_factory):
    """A briefly trained tiny model (an HF folder) and the four local tasks on its world."""
    from seethrough.train import open_run, train

    root, _, world, docs = world_corpus
    base = tmp_path_factory.mktemp("eval")
    train(root / "corpus", base / "run", {"model_size": "tiny", "seq_len": 32, "batch_size": 16, "steps": 30,
                                          "lr": 2e-2, "threads": 2})
    model = open_run(base / "run").checkpoint()
    rng = random.Random(0)
    items = [i for i in world.eval_items if i["task"] == "birth_city"][:24]
    bios = [d["text"] for d in docs if d["kind"] in ("bio", "background")][:24]
    data = {
        "st_mc": [{"prompt": i["prompt"], "choices": i["choices"], "answer": i["answer"]} for i in items],
        "st_phrase": [_phrases(i, rng) for i in items],  # choices of 2-5 tokens
        "st_lastword": [{"context": " ".join(t.split()[:-2]), "last": t.split()[-2]} for t in bios],
        "st_rolling": [{"text": t} for t in bios[:12]],
        "st_gen": [{"prompt": i["prompt"], "answer": i["answer"]} for i in items[:12]],
    }
    tasks = base / "tasks"
    tasks.mkdir()
    for name, spec in TASKS.items():
        path = tasks / f"{name}.jsonl"
        path.write_text("".join(json.dumps(d) + "\n" for d in data[name]))
        (tasks / f"{name}.yaml").write_text(
            f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {path}\n"
            f"test_split: test\nfewshot_split: test\n{spec}")
    rng.shuffle(items)
    return model, tasks


def _phrases(item, rng):
    """A multiple-choice item whose choices are phrases of different lengths."""
    phrases = [" ".join([c] + rng.choices(item["choices"], k=rng.randint(1, 4))) for c in item["choices"]]
    return {"prompt": item["prompt"], "choices": phrases, "answer": phrases[item["choices"].index(item["answer"])]}


def run_lmeval(lm, tasks, names, fewshot=None):
    """lm-eval's ``simple_evaluate`` with its default seeds, over the local tasks alone (indexing its
    own 14,000 task files as well would take ~20 s and change nothing here)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(model=lm, tasks=names, num_fewshot=fewshot, log_samples=True,
                                   task_manager=TaskManager(include_path=str(tasks), include_defaults=False))


@pytest.mark.parametrize("fewshot", [0, 3])
def test_per_item_parity_with_lm_eval_hf(eval_setup, fewshot):
    from lm_eval.models.huggingface import HFLM

    from seethrough.evaluate.backend import SeethroughLM
    from seethrough.evaluate.harness import faster_lm_eval

    model, tasks = eval_setup
    names = ["st_mc", "st_phrase", "st_lastword", "st_gen"] + (["st_rolling"] if fewshot == 0 else [])
    ref = run_lmeval(HFLM(pretrained=str(model), device="cpu", batch_size=4, dtype="float32"), tasks, names, fewshot)
    ours_lm = SeethroughLM(pretrained=str(model))
    with faster_lm_eval():  # as `seethrough eval` runs lm-eval: the prompts must not change
        ours = run_lmeval(ours_lm, tasks, names, fewshot)
    for task in names:
        a, b = ref["samples"][task], ours["samples"][task]
        assert [s["doc_id"] for s in a] == [s["doc_id"] for s in b]
        for x, y in zip(a, b):
            assert x["arguments"] == y["arguments"]  # the same rendered requests, few-shot included
            for rx, ry in zip(x["resps"], y["resps"]):
                if isinstance(rx[0], (list, tuple)):
                    assert ry[0][0] == pytest.approx(rx[0][0], abs=1e-4) and ry[0][1] == rx[0][1]
                elif isinstance(rx[0], float):
                    assert ry[0] == pytest.approx(rx[0], abs=1e-4)
                else:
                    assert ry[0] == rx[0]  # generated text
            for metric in ("acc", "acc_norm", "exact_match"):
                if metric in x:
                    assert x[metric] == y[metric]
        for metric, value in ref["results"][task].items():
            if metric.endswith(",none") and isinstance(value, float) and "stderr" not in metric:
                if metric.startswith(("acc", "exact_match")):
                    assert ours["results"][task][metric] == value
                else:
                    assert ours["results"][task][metric] == pytest.approx(value, rel=1e-4)
    assert not ours_lm.flags  # nothing ambiguous in these word-level tasks


def test_compiled_templates_render_what_lm_eval_renders():
    from lm_eval import utils as lm_utils

    from seethrough.evaluate.harness import compiled_templates

    original = lm_utils.apply_template
    cases = [("{{prompt}}", {"prompt": "Ada was born in"}),
             ("{{choices.index(answer)}}", {"choices": ["a", "b", "c"], "answer": "c"}),
             ("Q: {{q | regex_replace('x+', 'y')}}\n", {"q": "axxb"}),
             ("{{choices}}", {"choices": ["Paris", "Rome"]})]
    expected = [original(t, d) for t, d in cases]
    with compiled_templates():
        assert lm_utils.apply_template is not original
        got = [lm_utils.apply_template(t, d) for t, d in cases]
        again = [lm_utils.apply_template(t, d) for t, d in cases]  # from the compiled cache
        with compiled_templates():  # nested blocks leave the outer one in place
            pass
        assert lm_utils.apply_template is not original
    assert got == expected == again == ["Ada was born in", "2", "Q: ayb\n", "['Paris', 'Rome']"]
    assert lm_utils.apply_template is original


def test_package_list_in_process_is_what_pip_list_prints():
    """lm-eval's environment report gets the same package lines without the pip subprocess."""
    import subprocess
    import sys

    from torch.utils import collect_env

    from seethrough.evaluate.harness import in_process_package_list, installed_packages

    printed = subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze"], capture_output=True,
                             text=True, check=True).stdout.strip()
    listed = installed_packages()
    assert listed == printed and "torch==" in listed
    original = collect_env.run
    expected = collect_env.get_pip_packages(collect_env.run)  # torch's own filter over the subprocess
    with in_process_package_list():
        assert collect_env.run is not original
        with in_process_package_list():  # nested blocks leave the outer one in place
            inner = collect_env.run
        assert inner is collect_env.run
        assert collect_env.get_pip_packages(collect_env.run) == expected
        assert collect_env.run(["echo", "other commands still run"])[1] == "other commands still run"
    assert collect_env.run is original


@pytest.fixture(scope="module")
def wide_model(eval_setup, tmp_path_factory):
    """The eval model's tokenizer on a wider random model (4 layers, width 128): at the tiny model's
    width 32 the matrix products give each row the same bits at any row count even untiled, so
    only a wider model shows that the tiles are what makes the scores batch-invariant."""
    from transformers import AutoConfig

    from seethrough.train.model import build_model

    model, _ = eval_setup
    folder = tmp_path_factory.mktemp("wide")
    build_model("small", AutoConfig.from_pretrained(model).vocab_size, 128, 0, seed=5).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((model / name).read_bytes())
    return folder


def _invariance_pairs(words, rng):
    pairs = [(" ".join(rng.choices(words, k=rng.randint(1, 20))), " " + " ".join(rng.choices(words, k=rng.randint(1, 4))))
             for _ in range(64)]
    pairs += [(pairs[0][0], " " + w) for w in words[:6]]  # a shared context, as in multiple choice
    pairs += [(pairs[1][0], " " + " ".join(rng.choices(words, k=k))) for k in (2, 3, 4, 2, 1)]  # choices of 1-4 words
    pairs += [(pairs[2][0], " " + " ".join(rng.choices(words, k=k))) for k in (3, 3, 2)]
    # equal-length contexts with equal-length continuations: these share forward passes when batched
    pairs += [(" ".join(rng.choices(words, k=8)), " " + " ".join(rng.choices(words, k=3))) for _ in range(16)]
    return pairs


def _loglikelihoods(scorer, pairs):
    from lm_eval.api.instance import Instance

    return scorer.loglikelihood([Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)], disable_tqdm=True)


def _brute_force(model, tokenizer, pairs):
    """Each pair on its own, lm-eval's way: the whole row through the model, log_softmax, the
    continuation's tokens read off and summed, greedy if each is its row's argmax."""
    import torch

    out = []
    for context, continuation in pairs:
        whole = tokenizer.encode(context + continuation)
        cont = whole[len(tokenizer.encode(context.rstrip())):]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([whole[:-1]])).logits[0, -len(cont):], dim=-1)
        target = torch.tensor(cont)
        out.append((float(logp.gather(1, target[:, None]).sum()), bool((logp.argmax(-1) == target).all())))
    return out


@pytest.mark.parametrize("batch_size", ["1", "64", "auto"])
def test_batch_invariance(wide_model, batch_size):
    """An item's log-likelihoods do not depend on what else is scored with them or in which order:
    bit for bit against each item (the requests that share one context: a question's choices, which
    are scored together in one packed row) scored alone with batch size 1, for continuations of one
    token and of several, at any batch size (the issue asks for 1e-6; float32 cannot resolve that
    for sums below -8, so only identical arithmetic meets it)."""
    from seethrough.evaluate.backend import SeethroughLM

    model = wide_model
    lm = SeethroughLM(pretrained=str(model), batch_size=batch_size)
    rng = random.Random(1)
    pairs = _invariance_pairs(lm.tokenizer.convert_ids_to_tokens(list(range(2, 200))), rng)
    reference = SeethroughLM(pretrained=str(model), batch_size=1)
    items: dict[str, list[int]] = {}
    for k, (context, _) in enumerate(pairs):
        items.setdefault(context, []).append(k)
    alone = [None] * len(pairs)
    for members in items.values():
        for k, result in zip(members, _loglikelihoods(reference, [pairs[k] for k in members])):
            alone[k] = result
    together = _loglikelihoods(lm, pairs)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    shuffled = _loglikelihoods(lm, [pairs[i] for i in order])
    assert [shuffled[k] for k in sorted(range(len(order)), key=order.__getitem__)] == alone
    assert together == alone
    # packed rows compute what each pair computes on its own, up to float32 rounding
    assert lm._packing_works() and sum(len(members) > 1 for members in items.values()) == 3
    expected = _brute_force(reference.model, reference.tokenizer, pairs)
    assert max(abs(a[0] - b[0]) for a, b in zip(alone, expected)) <= 1e-4
    assert [a[1] for a in alone] == [b[1] for b in expected]


def test_a_model_that_cannot_take_packed_rows_scores_each_continuation_alone(wide_model):
    """A model that ignores the position ids it is given (as one that derives positions itself
    would) fails the packing probe, and then every continuation gets a row of its own: the scores
    are still right, and still the same at any batch size."""
    from seethrough.evaluate.backend import SeethroughLM

    lms = [SeethroughLM(pretrained=str(wide_model), batch_size=b) for b in ("1", "auto")]
    for lm in lms:
        forward = lm.model.forward
        lm.model.forward = lambda *args, _forward=forward, **kwargs: _forward(
            *args, **{k: v for k, v in kwargs.items() if k != "position_ids"})
    pairs = _invariance_pairs(lms[0].tokenizer.convert_ids_to_tokens(list(range(2, 200))), random.Random(2))
    one_at_a_time, batched = (_loglikelihoods(lm, pairs) for lm in lms)
    assert not lms[0]._packing_works() and not lms[1]._packing_works()
    assert one_at_a_time == batched
    expected = _brute_force(lms[0].model, lms[0].tokenizer, pairs)
    assert max(abs(a[0] - b[0]) for a, b in zip(batched, expected)) <= 1e-4
    assert [a[1] for a in batched] == [b[1] for b in expected]


def test_an_empty_continuation_is_flagged_not_a_crash(eval_setup):
    """lm-eval's hf backend asserts on an empty continuation (e.g. a target rendered without its
    leading space, so it merges into the context's last word); seethrough flags the item."""
    from lm_eval.api.instance import Instance

    from seethrough.evaluate.backend import SeethroughLM

    model, _ = eval_setup
    lm = SeethroughLM(pretrained=str(model))
    context = " ".join(lm.tokenizer.convert_ids_to_tokens([20, 21, 22]))
    got = lm.loglikelihood([Instance("loglikelihood", {}, (context, "small"), 0),
                            Instance("loglikelihood", {}, (context, " small"), 1)], disable_tqdm=True)
    assert got[0] == (0.0, True) and lm.flags[(context, "small")] == ["boundary_ambiguous", "empty_continuation"]
    assert got[1][0] < 0 and (context, " small") not in lm.flags


def test_eval_records_provenance_flags_contamination_and_verifies(eval_setup, world_corpus, tmp_path):
    """An evaluation of a run's checkpoint: lm-eval's files plus provenance (the weights hash as sha256
    of the weights file, computed here); planted items flagged, held-out ones not; verify finds nothing
    to report, then finds a tampered item."""
    import hashlib

    from seethrough.evaluate import evaluate_model, run_provenance, verify_results, write_results
    from seethrough.index import open_corpus
    from seethrough.model import resolve_target

    model, tasks = eval_setup
    root, _, world, docs = world_corpus
    planted = sorted({d["text"] for d in docs if d["kind"] == "canary"})[:6]
    held = [c["text"] for c in world.truth["heldout_canaries"]][:6]
    rows = [{"context": " ".join(t.split()[:8]), "rest": " ".join(t.split()[8:]), "planted": t in planted}
            for t in planted + held]
    (tasks / "st_canary.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "st_canary.yaml").write_text(
        f"task: st_canary\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tasks / 'st_canary.jsonl'}\n"
        "test_split: test\noutput_type: loglikelihood\ndoc_to_text: \"{{context}}\"\ndoc_to_target: \"{{' ' + rest}}\"\n"
        "metric_list:\n  - metric: acc\n")
    target = resolve_target(model.parent.parent)  # the run the checkpoint belongs to
    checkpoint = target.last
    assert checkpoint.path == model and checkpoint.step is not None
    result = evaluate_model(checkpoint, ["st_canary", "st_mc"], include_path=tasks, corpus=open_corpus(root / "corpus"),
                            extra_provenance=run_provenance(target.run, checkpoint))
    out = write_results(result, tmp_path / "results")
    results = json.loads((out / "results.json").read_text())
    assert results == json.loads(json.dumps(result.to_dict(), default=str))
    info = results["seethrough"]
    weights = hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest()
    assert info["model"]["weights_sha256"] == hashlib.sha256(f"model.safetensors:{weights}\n".encode()).hexdigest()
    assert info["model"]["checkpoint_step"] == checkpoint.step and info["model"]["run"] == str(target.path.resolve())
    assert set(info["requests_sha256"]) == {"st_canary", "st_mc"} and info["versions"]["lm_eval"]
    assert set(info["tasks"]) == {"st_canary", "st_mc"} and "acc,none" in results["results"]["st_canary"]
    assert info["timing"]["model_load_s"] > 0 and info["timing"]["evaluation_s"] > 0
    samples = [json.loads(x) for x in (out / "samples_st_canary.jsonl").read_text().splitlines()]
    for s in samples:
        assert {"doc_id", "arguments", "resps", "filtered_resps", "doc_hash"} <= set(s)
        assert s["contamination"]["flagged"] == s["doc"]["planted"]  # exactly the planted items
    report = info["contamination"]["st_canary"]
    assert report["flagged"] == 6 and report["clean_items"] == 6
    accs = [s["acc"] for s in samples if not s["doc"]["planted"]]
    assert report["clean"]["acc"] == pytest.approx(sum(accs) / len(accs))

    assert verify_results(out).ok
    lines = (out / "samples_st_mc.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["resps"][0][0][0] += 0.5  # tamper with one recorded log-likelihood
    (out / "samples_st_mc.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    differences = verify_results(out).to_dict()["differences"]
    assert [(d["task"], d["doc_id"], d["field"]) for d in differences] == [("st_mc", first["doc_id"], "resps[0][0][0]")]


def test_a_replaced_checkpoint_is_refused(eval_setup):
    from seethrough.errors import ModelError
    from seethrough.evaluate import evaluate_model
    from seethrough.model import Checkpoint

    model, tasks = eval_setup
    with pytest.raises(ModelError, match="does not match the weights hash its run recorded"):
        evaluate_model(Checkpoint(model, 30, "0" * 64), ["st_mc"], include_path=tasks)


def test_response_cache_is_keyed_by_content(eval_setup, tmp_path):
    """A second run answers from the cache with identical results; another model's weights never hit."""
    from lm_eval.api.instance import Instance

    from seethrough.evaluate.backend import SeethroughLM
    from seethrough.train.model import build_model

    model, _ = eval_setup
    requests = [Instance("loglikelihood", {}, ("Kiga Nufu was born in", " " + w), i)
                for i, w in enumerate(["the", "a", "of"])]
    generation = [Instance("generate_until", {}, ("the weather in", {"until": ["."], "max_gen_toks": 4}), 0)]
    first = SeethroughLM(pretrained=str(model), cache_dir=str(tmp_path / "cache"))
    a, ga = first.loglikelihood(requests, disable_tqdm=True), first.generate_until(generation)
    assert first.cache.hits == 0
    second = SeethroughLM(pretrained=str(model), cache_dir=str(tmp_path / "cache"))

    def no_model_call(*args, **kwargs):
        raise AssertionError("the model was called: the cache did not answer")

    second.model.forward = no_model_call
    assert second.loglikelihood(requests, disable_tqdm=True) == a and second.generate_until(generation) == ga
    assert second.cache.hits == 4 and second.cache.misses == 0
    other_dir = tmp_path / "other"  # same config and tokenizer, different weights
    build_model("tiny", second.model.config.vocab_size, 64, 0, seed=99).save_pretrained(other_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (other_dir / name).write_bytes((model / name).read_bytes())
    third = SeethroughLM(pretrained=str(other_dir), cache_dir=str(tmp_path / "cache"))
    third.loglikelihood(requests, disable_tqdm=True)
    assert third.cache.hits == 0 and third.cache.misses == 3


def test_checkpoint_table_by_hand(tmp_path):
    """One series per task and metric (per filter: two filters of one metric never share a name), from
    results.json content or an EvalResult; stderr and non-metric keys left out."""
    from seethrough.evaluate import EvalResult, write_checkpoint_table

    per_step = {0: {"results": {"t": {"acc,none": 0.25, "acc_stderr,none": 0.1, "alias": "t"}}},
                64: EvalResult({"results": {"t": {"acc,none": 0.5, "acc_stderr,none": 0.1, "alias": "t"},
                                            "g": {"exact_match,strict": 0.1, "exact_match,flexible": 0.3,
                                                  "exact_match_stderr,strict": "N/A"}}}, {})}
    table = write_checkpoint_table(per_step, tmp_path)
    assert table == {"t/acc": {"0": 0.25, "64": 0.5}, "g/exact_match,strict": {"64": 0.1},
                     "g/exact_match,flexible": {"64": 0.3}}
    assert json.loads((tmp_path / "by_checkpoint.json").read_text()) == table
    assert (tmp_path / "by_checkpoint.png").exists()


def test_lm_eval_metric_keys_are_parsed_in_one_place():
    from seethrough.evaluate import Score, metric_label, split_metric_key, task_scores

    assert split_metric_key("acc,none") == ("acc", "none")
    assert split_metric_key("acc_stderr,none") == ("acc_stderr", "none")
    assert split_metric_key("exact_match,strict-match") == ("exact_match", "strict-match")
    for other in ("alias", "samples", ",none", "acc,", "", None, 3):
        assert split_metric_key(other) is None
    assert metric_label("acc", "none") == "acc" and metric_label("exact_match", "flex") == "exact_match,flex"
    metrics = {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.05, "perplexity,none": 7.5,
               "perplexity_stderr,none": "N/A", "flag,none": True, "note,none": "text"}
    assert task_scores("t", metrics) == [Score("t", "acc", "none", 0.5, 0.05),
                                         Score("t", "perplexity", "none", 7.5, None)]


def test_eval_bad_input_is_one_line(eval_setup, tmp_path):
    from seethrough.errors import QueryError
    from seethrough.evaluate import evaluate_model

    model, tasks = eval_setup
    bad = tmp_path / "tasks"
    bad.mkdir()
    (bad / "bad.yaml").write_text((tasks / "st_mc.yaml").read_text().replace("task: st_mc", "task: st_bad")
                                  .replace(str(tasks / "st_mc.jsonl"), str(bad / "missing.jsonl")))
    with pytest.raises(QueryError, match="could not be found .*missing.jsonl"):
        evaluate_model(model, ["st_bad"], include_path=bad)
    with pytest.raises(QueryError, match="unknown task"):
        evaluate_model(model, ["no_such_task"], include_path=tasks)
    with pytest.raises(QueryError, match="^--num-fewshot 100: a task's few-shot split holds fewer documents"):
        evaluate_model(model, ["st_mc"], include_path=tasks, num_fewshot=100, limit=1)  # 24 documents


@pytest.mark.parametrize("setting, flag", [
    ({"limit": 0}, "--limit 0"), ({"limit": -1}, "--limit -1"), ({"limit": True}, "--limit True"),
    ({"limit": 2.5}, "--limit 2.5"), ({"num_fewshot": -1}, "--num-fewshot -1"), ({"ngram": 0}, "--ngram 0"),
    ({"threads": 0}, "--threads 0"), ({"batch_size": "0"}, "--batch-size '0'"),
    ({"batch_size": "x"}, "--batch-size 'x'"),
    ({"seed": "1,2"}, "--seed 1,2"), ({"include_path": "/nowhere/at/all"}, "--include-path /nowhere/at/all"),
    ({"tasks": []}, "--tasks is empty"), ({"tasks": [" "]}, "--tasks is empty")])
def test_each_bad_setting_is_a_one_line_error_naming_its_flag(tmp_path, setting, flag):
    """Checked before anything is loaded: the model here does not even exist."""
    from seethrough.errors import QueryError
    from seethrough.evaluate import evaluate_model

    settings = dict(setting)
    tasks = settings.pop("tasks", ["st_mc"])
    with pytest.raises(QueryError) as caught:
        evaluate_model(tmp_path / "no_model", tasks, **settings)
    assert str(caught.value).startswith(flag) and "\n" not in str(caught.value)


def test_tiled_linear_layers_make_a_row_independent_of_its_batch():
    """The same rows give the same bits in products of any size inside the block (not so outside),
    match the untiled product within float rounding, and the layers are restored afterwards."""
    from seethrough.evaluate.invariant import tiled_linear_layers

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.GELU(), torch.nn.Linear(96, 80, bias=False))
    x = torch.randn(300, 64)
    plain = model(x)
    with torch.inference_mode(), tiled_linear_layers(model, rows=32) as changed:
        assert changed == 2
        alone = torch.cat([model(x[i:i + 1]) for i in range(0, 300, 37)])
        together = model(x)[::37]
        in_threes = torch.cat([model(x[i:i + 3])[:1] for i in range(0, 300, 37)])
    assert torch.equal(alone, together) and torch.equal(alone, in_threes)
    assert torch.allclose(together, plain[::37], atol=1e-5)
    assert all("forward" not in vars(m) for m in model.modules())


class _WithHead(torch.nn.Sequential):
    """A stack of layers whose last is its output layer, as a causal LM names it."""

    def get_output_embeddings(self):
        return self[-1]


def test_the_output_layer_has_its_own_tile_size():
    """A model's output layer (get_output_embeddings) multiplies output_rows rows at a time, the
    other layers rows at a time: each gives a row the same bits alone and among 300 others."""
    from seethrough.evaluate.invariant import tiled_linear_layers

    torch.manual_seed(0)
    model = _WithHead(torch.nn.Linear(64, 96), torch.nn.GELU(), torch.nn.Linear(96, 500))
    x = torch.randn(300, 64)
    calls = []
    real_addmm = torch.addmm

    def counting_addmm(bias, rows, weight, **kwargs):
        calls.append((weight.shape[1], rows.shape[0]))
        return real_addmm(bias, rows, weight, **kwargs)

    with torch.inference_mode(), tiled_linear_layers(model, rows=128, output_rows=16):
        torch.addmm = counting_addmm
        try:
            together = model(x)[::37]
        finally:
            torch.addmm = real_addmm
        alone = torch.cat([model(x[i:i + 1]) for i in range(0, 300, 37)])
    assert torch.equal(alone, together)
    assert sorted(set(calls)) == [(96, 128), (500, 16)]
    assert calls.count((96, 128)) == 3 and calls.count((500, 16)) == 19  # 300 rows: 3 tiles of 128, 19 of 16


def test_a_kept_output_buffer_gives_the_same_results_and_is_reused():
    """With reuse_output the output layer's results are the bits it gives without (computed outside
    the block here, tiled alike), each written into the one buffer: a call no larger than the biggest
    so far writes where the first did, a larger one grows it. The other layers allocate as before."""
    from seethrough.evaluate.invariant import tiled_linear_layers

    torch.manual_seed(0)
    model = _WithHead(torch.nn.Linear(64, 96), torch.nn.GELU(), torch.nn.Linear(96, 500))
    batches = [torch.randn(n, 64) for n in (40, 17, 90, 5)]
    with torch.inference_mode(), tiled_linear_layers(model, rows=16):
        expected = [model(x).clone() for x in batches]
    got, where = [], []
    with torch.inference_mode(), tiled_linear_layers(model, rows=16, reuse_output=True):
        hidden = model[0](batches[0])
        for x in batches:
            out = model(x)
            got.append(out.clone())
            where.append(out.data_ptr())
        assert torch.equal(hidden, model[0](batches[0]))  # not written over by the later calls
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert where[1] == where[0] and where[3] == where[2]  # 17 and 5 rows fit the buffer already there
    assert where[2] != where[0]  # 90 rows did not: a new buffer, allocated while the old one was held
    assert all("forward" not in vars(m) for m in model.modules())


def test_choices_that_do_not_fit_one_row_are_split_across_rows(wide_model):
    """A question whose context and choices together exceed ``max_length`` is packed into several
    rows, each starting with the context; the scores are still each pair's own."""
    from seethrough.evaluate.backend import SeethroughLM

    lm = SeethroughLM(pretrained=str(wide_model), max_length=12)
    words = lm.tokenizer.convert_ids_to_tokens(list(range(2, 200)))
    rng = random.Random(3)
    context = " ".join(rng.choices(words, k=5))
    pairs = [(context, " " + " ".join(rng.choices(words, k=k))) for k in (3, 4, 3, 2, 4)]
    encoded = [lm._encode_pair(c, x) for c, x in pairs]
    rows = lm._pack(tuple(encoded[0][0]), [(i, cont) for i, (_, cont) in enumerate(encoded)])
    assert len(rows) >= 2 and all(len(row.tokens) <= 16 for row in rows)  # 12, padded to a multiple of 16
    assert sorted(i for row in rows for i, _, _ in row.requests) == list(range(len(pairs)))
    scores = _loglikelihoods(lm, pairs)
    expected = _brute_force(lm.model, lm.tokenizer, pairs)
    assert max(abs(a[0] - b[0]) for a, b in zip(scores, expected)) <= 1e-4
    assert [a[1] for a in scores] == [b[1] for b in expected]
