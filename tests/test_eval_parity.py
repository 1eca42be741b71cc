"""`seethrough eval` and the `lm_eval` command render the same prompts: the same four seeds by default
(lm-eval's 0 / 1234 / 1234 / 1234), the same ``--seed`` semantics, and at 3-shot the same requests
and log-likelihoods as ``lm_eval --model hf`` itself."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("torch")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SEED_VALUES = ["0", "42", " 7 ", "-3", "1,2,3,4", "1,None,3,none", "None", "5,6,7", "0,0,0,0", "1_000"]
BAD_SEED_VALUES = ["1,2", "1,2,3,4,5", "x", "1.5", "", "1,,3,4"]


def test_the_default_seeds_are_lm_evals():
    import inspect

    import lm_eval
    from lm_eval.config.evaluate_config import DEFAULT_SEED

    from seethrough.evaluate import DEFAULT_SEEDS, parse_seed

    defaults = inspect.signature(lm_eval.simple_evaluate).parameters
    assert parse_seed(None) == DEFAULT_SEEDS == tuple(DEFAULT_SEED) == tuple(
        defaults[f"{name}_seed"].default for name in ("random", "numpy_random", "torch_random", "fewshot_random"))


@pytest.mark.parametrize("value", SEED_VALUES)
def test_seed_strings_parse_as_lm_evals_seed_flag(value):
    """The same four seeds as ``lm_eval --seed VALUE`` (its own parser, from lm-eval's CLI)."""
    from lm_eval._cli.utils import _int_or_none_list_arg_type

    from seethrough.evaluate import parse_seed

    assert list(parse_seed(value)) == _int_or_none_list_arg_type(3, 4, "0,1234,1234,1234", value)


@pytest.mark.parametrize("value", BAD_SEED_VALUES)
def test_seeds_lm_eval_refuses_are_refused_in_one_line(value):
    from lm_eval._cli.utils import _int_or_none_list_arg_type

    from seethrough.errors import QueryError
    from seethrough.evaluate import parse_seed

    with pytest.raises(ValueError):
        _int_or_none_list_arg_type(3, 4, "0,1234,1234,1234", value)
    with pytest.raises(QueryError, match="^--seed .*lm-eval's --seed$") as caught:
        parse_seed(value)
    assert "\n" not in str(caught.value)


def test_seeds_given_as_python_values():
    from seethrough.errors import QueryError
    from seethrough.evaluate import parse_seed

    assert parse_seed(9) == (9, 9, 9, 9)
    assert parse_seed([1, None, 3, 4]) == (1, None, 3, 4)
    assert parse_seed((5, 6, 7)) == (5, 6, 7, 1234)
    for bad in (True, [1, 2], [1.5, 2, 3, 4], ["a", 1, 2, 3]):
        with pytest.raises(QueryError, match="--seed"):
            parse_seed(bad)


@pytest.fixture(scope="module")
def parity_setup(tmp_path_factory):
    """A random tiny model over the demo world's word-level tokenizer, and a 4-choice task with a
    separate few-shot split, all local."""
    from conftest import world_model_folder
    from seethrough.demo.world import generate_world

    base = tmp_path_factory.mktemp("parity")
    world = generate_world(5, "ci")
    model = world_model_folder(base / "model", 64, seed=3)
    items = [{k: i[k] for k in ("prompt", "choices", "answer")} for i in world.eval_items if i["task"] == "birth_city"]
    tasks = base / "tasks"
    tasks.mkdir()
    for split, rows in (("test", items[:10]), ("train", items[10:24])):
        (tasks / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "par_mc.yaml").write_text(
        f"task: par_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tasks / 'test.jsonl'}\n"
        f"    train: {tasks / 'train.jsonl'}\ntest_split: test\nfewshot_split: train\noutput_type: multiple_choice\n"
        'doc_to_text: "{{prompt}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: "{{choices.index(answer)}}"\n'
        "metric_list:\n  - metric: acc\n  - metric: acc_norm\n")
    return base, model, tasks


def _requests(sample):
    """(context, continuation) of each request, from either file's way of writing them."""
    arguments = sample["arguments"]
    items = arguments.values() if isinstance(arguments, dict) else arguments
    return [(a["arg_0"], a["arg_1"]) if isinstance(a, dict) else tuple(a) for a in items]


def _loglikelihoods(sample):
    """(log-likelihood, is_greedy) per request (lm-eval's tracker writes them as strings)."""
    return [(float(r[0][0]), str(r[0][1]) == "True") for r in sample["resps"]]


@pytest.mark.slow
def test_three_shot_prompts_and_loglikelihoods_match_the_lm_eval_command(parity_setup):
    """Against ``lm_eval --model hf`` run as a user runs it: every request of every item identical
    (the 3-shot prompts, so the few-shot draws), every log-likelihood within 1e-4, is_greedy and
    acc the same. With lm-eval's seeds replaced by 0 (what `seethrough eval` did before), the
    prompts differ: the comparison can fail."""
    from seethrough.evaluate import evaluate_model, write_results

    base, model, tasks = parity_setup
    command = Path(sys.executable).with_name("lm_eval")
    if not command.exists():
        pytest.skip("the lm_eval command is not installed beside this python")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(base / "hf_home"),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([str(command), "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
                           "--tasks", "par_mc", "--include_path", str(tasks), "--num_fewshot", "3", "--log_samples",
                           "--output_path", str(base / "lm_eval_out"), "--device", "cpu", "--batch_size", "1"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=base)
    assert done.returncode == 0, done.stderr[-3000:]
    (reference_file,) = glob.glob(str(base / "lm_eval_out" / "*" / "samples_par_mc_*.jsonl"))
    reference = [json.loads(line) for line in Path(reference_file).read_text().splitlines()]
    (reference_results,) = glob.glob(str(base / "lm_eval_out" / "*" / "results_*.json"))

    result = evaluate_model(model, ["par_mc"], include_path=tasks, num_fewshot=3)
    out = write_results(result, base / "ours")
    ours = [json.loads(line) for line in (out / "samples_par_mc.jsonl").read_text().splitlines()]
    assert [s["doc_id"] for s in ours] == [s["doc_id"] for s in reference] == list(range(10))
    for mine, theirs in zip(ours, reference):
        assert _requests(mine) == _requests(theirs) and len(_requests(mine)) == 4
        assert _requests(mine)[0][0].count("\n\n") == 3  # three shots before the question (lm-eval's delimiter)
        for (a, greedy_a), (b, greedy_b) in zip(_loglikelihoods(mine), _loglikelihoods(theirs)):
            assert a == pytest.approx(b, abs=1e-4) and greedy_a == greedy_b
        assert mine["acc"] == theirs["acc"] and mine["acc_norm"] == theirs["acc_norm"]
    aggregate = json.loads(Path(reference_results).read_text())["results"]["par_mc"]
    assert result.results["par_mc"]["acc,none"] == aggregate["acc,none"]
    assert result.seeds == {"random": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234}

    zeros = evaluate_model(model, ["par_mc"], include_path=tasks, num_fewshot=3, seed=0)
    differ = sum(_requests(z) != _requests(r) for z, r in zip(zeros.samples["par_mc"], reference))
    assert differ >= 5  # most 3-shot draws change with the few-shot seed
