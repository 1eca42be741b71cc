"""No flag accepted and ignored: options that would have no effect together are refused with a
one-line error naming them, and the lm-eval backend refuses every argument it would not honour."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from seethrough.cli.app import app  # noqa: E402
from seethrough.errors import ModelError, QueryError  # noqa: E402


def refused(*args: str) -> str:
    """The one-line error a command raises (the CLI's main prints it and exits 2)."""
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, (QueryError, ModelError)), result.output
    message = str(result.exception)
    assert "\n" not in message
    return message


def test_flags_without_effect_are_refused(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"text": "a"}\n')
    m = str(tmp_path / "m.jsonl")
    assert "--reference-set has no effect with --evaluate" in refused(
        "membership", "run", "--corpus", "c", "--evaluate", m, m, "--reference-set", m)
    assert "--out has no effect with TEXT or --file" in refused("membership", "run", "--corpus", "c", "a text",
                                                               "--out", str(tmp_path / "o"))
    for flag, value in (("--checkpoints", "all"), ("--ray", "auto")):
        assert f"{flag} has no effect with TEXT or --file" in refused("membership", "run", "--corpus", "c", "a text",
                                                                     flag, value)
    assert "not both" in refused("membership", "run", "--corpus", "c", "--evaluate", m, m, "--checkpoint", "1",
                                 "--checkpoints", "all")
    assert "--ray has no effect with --verify" in refused("eval", "--verify", str(tmp_path), "--ray", "auto")
    assert "--sample, --seed have no effect with --sequences" in refused(
        "memorization", "run", "--corpus", "c", "--sequences", m, "--sample", "5", "--seed", "3")
    assert "--max-new-tokens has no effect with --text" in refused("trace", "run", "--corpus", "c", "--text", "x",
                                                                  "--max-new-tokens", "5")
    for flag, value in (("--tasks", "t"), ("--out", str(tmp_path / "o")), ("--limit", "3"), ("--corpus", "c"),
                        ("--cache", "d"), ("--batch-size", "8"), ("--seed", "1")):
        assert f"{flag} has no effect with --verify" in refused("eval", "--verify", str(tmp_path), flag, value)
    assert not (tmp_path / "o").exists()


def test_trace_of_a_given_text_checks_the_corpus_against_the_model(tiny_run, world_corpus, tmp_path):
    """With --text, TARGET is not ignored: the corpus searched must be that model's training data."""
    from seethrough import build_corpus, build_index

    root, _, _, docs = world_corpus
    result = CliRunner().invoke(app, ["trace", str(tiny_run), "--corpus", str(root / "corpus"), "--text",
                                      docs[0]["text"], "--json"])
    assert result.exit_code == 0, result.output
    traced = json.loads(result.stdout)
    assert traced["spans"] and traced["novelty"]["longest_copied_span"] == traced["tokens"]  # a training document
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": d["text"]}) + "\n" for d in docs[:40]))
    build_corpus([tmp_path / "d.jsonl"], root / "tokenizer.json", tmp_path / "other")
    build_index(tmp_path / "other")
    assert "is not the corpus run" in refused("trace", str(tiny_run), "--corpus", str(tmp_path / "other"),
                                              "--text", docs[0]["text"])


def test_the_backend_refuses_what_it_would_ignore(tiny_run):
    from types import SimpleNamespace

    from seethrough.evaluate.backend import SeethroughLM

    folder = str(tiny_run / "checkpoints/step-4")
    with pytest.raises(ModelError, match="does not take parallelize, trust_remote_code"):
        SeethroughLM(pretrained=folder, trust_remote_code=True, parallelize=True)
    with pytest.raises(ModelError, match="batch_size='auto:4'"):
        SeethroughLM(pretrained=folder, batch_size="auto:4")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="--device cuda: no CUDA device"):
            SeethroughLM.create_from_arg_string(f"pretrained={folder}", {"device": "cuda", "batch_size": 8})
    lm = SeethroughLM.create_from_arg_string(f"pretrained={folder},dtype=bfloat16", {"max_batch_size": 3})
    assert lm.model.dtype == torch.bfloat16 and lm._rows_per_call(4, 1) == 3
    request = SimpleNamespace(args=("a b", {"until": ["\n"], "max_gen_toks": 3, "top_p": 0.9}))
    with pytest.raises(ModelError, match="top_p=0.9 is not supported"):
        lm.generate_until([request])
    request = SimpleNamespace(args=("a b", {"until": ["\n"], "do_sample": True}))
    with pytest.raises(ModelError, match="do_sample=True: the seethrough backend decodes greedily"):
        lm.generate_until([request])
    greedy = SimpleNamespace(args=("a b", {"until": ["\n"], "max_gen_toks": 3, "do_sample": False,
                                           "temperature": 0.0}))
    assert isinstance(lm.generate_until([greedy])[0], str)


def test_verify_on_a_query_rehashes_what_the_quick_check_trusts(tmp_path):
    """A bit flip that keeps size, mtime and inode passes the quick check on open; --verify catches it."""
    import os

    from conftest import generated_documents, word_tokenizer, write_jsonl
    from seethrough import CorpusError, build_corpus, build_index

    tok = word_tokenizer(tmp_path / "tokenizer.json")
    write_jsonl(tmp_path / "d.jsonl", generated_documents(seed=4, n_docs=30))
    build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    build_index(tmp_path / "c")
    counted = CliRunner().invoke(app, ["count", str(tmp_path / "c"), "the", "--json"])
    assert counted.exit_code == 0, counted.output
    shard = next((tmp_path / "c").glob("tokenized.*"))
    stat = shard.stat()
    data = bytearray(shard.read_bytes())
    data[10] ^= 1
    with open(shard, "r+b") as handle:  # in place: same inode and size
        handle.write(bytes(data))
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert CliRunner().invoke(app, ["count", str(tmp_path / "c"), "the", "--json"]).exit_code == 0
    result = CliRunner().invoke(app, ["count", str(tmp_path / "c"), "the", "--json", "--verify"])
    assert isinstance(result.exception, CorpusError), result.output
    assert "\n" not in str(result.exception)


def test_zero_is_a_value_given_and_single_step_options_take_one_step(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"text": "a"}\n')
    m = str(tmp_path / "m.jsonl")
    assert "--num-fewshot has no effect with --verify" in refused("eval", "--verify", str(tmp_path), "--num-fewshot", "0")
    assert "--seed has no effect with --sequences" in refused("memorization", "r", "--corpus", "c", "--sequences", m,
                                                             "--seed", "0")
    assert "--ngram has no effect" in refused("eval", "r", "--tasks", "t", "--out", str(tmp_path / "o"), "--ngram", "5")
    assert "give --step S" in refused("seen", "r", "the")


def test_membership_checkpoint_is_one_step_and_threads_are_checked(tiny_run, world_corpus):
    root, _, _, _ = world_corpus
    assert "takes one step" in refused("membership", str(tiny_run), "--corpus", str(root / "corpus"), "a b",
                                       "--checkpoint", "all")
    assert "--threads 0" in refused("membership", str(tiny_run), "--corpus", str(root / "corpus"), "a b",
                                    "--threads", "0")
