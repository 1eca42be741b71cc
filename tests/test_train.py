"""Training: the logged batches are the documented data order (recomputed here from the documents,
without seethrough's code), resume is bitwise identical, checkpoints load in transformers with the
logits of training, bad resumes are refused, several processes see the same batches."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seethrough.errors import SeethroughError  # noqa: E402
from seethrough.train import (checkpoint_steps, is_checkpoint_step, learning_rate, load_config,  # noqa: E402
                              open_run, train)

TINY = {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "lr": 2e-2, "threads": 1, "seed": 7}


def log_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def documented_batches(corpus, run: Path, steps: int) -> list[list[list[int]]]:
    """The token rows of steps 0..steps-1 as docs/formats.md defines them, built from the corpus's
    documents one by one: nothing of seethrough.train computes them, so the run is checked against
    the definition, not against its own code."""
    spec = json.loads((run / "run.json").read_text())["data_order"]["spec"]
    eod, seq_len, batch_size = spec["eod_id"], spec["seq_len"], spec["batch_size"]
    stream: list[int] = []
    for doc in range(corpus.num_documents):
        stream += [eod] + corpus.document_tokens(doc).tolist()
    row, permutations = seq_len + 1, {}
    n = len(stream) // row
    batches = []
    for step in range(steps):
        rows = []
        for sample in range(step * batch_size, (step + 1) * batch_size):
            epoch = sample // n
            if epoch not in permutations:
                seeds = np.random.SeedSequence([int(corpus.corpus_hash, 16), spec["seed"], seq_len, epoch])
                permutations[epoch] = np.argsort(np.random.PCG64(seeds).random_raw(n), kind="stable")
            r = int(permutations[epoch][sample % n])
            rows.append(stream[r * row:(r + 1) * row])
        batches.append(rows)
    return batches


def sha256_of_rows(rows: list[list[int]]) -> str:
    """The documented batch hash: the token ids as little-endian int64, row after row."""
    return hashlib.sha256(b"".join(t.to_bytes(8, "little", signed=True) for r in rows for t in r)).hexdigest()


def test_checkpoint_schedule_and_learning_rate_by_hand():
    assert checkpoint_steps(1300, 500) == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 500, 512, 1000, 1300]
    assert checkpoint_steps(3, 1000) == [0, 1, 2, 3]
    assert checkpoint_steps(1030, 100)[-5:] == [700, 800, 900, 1000, 1030]
    assert [is_checkpoint_step(s, 10**12, 1000) for s in (0, 512, 513, 1024, 2000, 10**12, 10**12 + 1)] == \
        [True, True, False, False, True, True, False]  # no list of the schedule is built, whatever its length
    config = load_config(lr=1.0, min_lr_ratio=0.1, warmup_steps=2, lr_decay_steps=12, steps=20)
    assert learning_rate(0, config) == pytest.approx(0.5)
    assert learning_rate(1, config) == pytest.approx(1.0)
    assert learning_rate(2, config) == pytest.approx(1.0)  # cosine starts at the peak
    assert learning_rate(7, config) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))
    assert learning_rate(12, config) == pytest.approx(0.1)
    assert learning_rate(19, config) == pytest.approx(0.1)  # flat after the schedule


def test_tiny_run_learns_logs_replayable_batches_and_loads_in_transformers(world_corpus, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, corpus, _, _ = world_corpus
    run_dir = tmp_path / "run"
    manifest = train(root / "corpus", run_dir, {**TINY, "steps": 40})
    records = log_records(run_dir)
    assert [r["step"] for r in records] == list(range(40))
    assert np.mean([r["loss"] for r in records[-5:]]) < records[0]["loss"] - 1.0  # it learns
    assert records[0]["loss"] == pytest.approx(math.log(corpus.vocab_size), abs=0.3)  # starts near uniform
    assert [c["step"] for c in manifest["checkpoints"]] == [0, 1, 2, 4, 8, 16, 32, 40]
    assert manifest["corpus"]["corpus_hash"] == corpus.corpus_hash
    for r in records:
        assert r["tokens_seen"] == (r["step"] + 1) * 8 * 16 and r["mfu"] > 0 and r["peak_flops_source"]

    run = open_run(run_dir)
    documented = documented_batches(corpus, run_dir, 40)
    for r in records:  # every logged batch is the documented one, and so is the replay
        assert r["batch_sha256"] == sha256_of_rows(documented[r["step"]])
        assert run.batch(r["step"]).token_ids.tolist() == documented[r["step"]]

    # step-N holds the weights after N steps: its loss on batch N is the loss logged at step N
    tokenizer = AutoTokenizer.from_pretrained(run.checkpoint(16))
    text = corpus.document(3).text
    assert tokenizer(text)["input_ids"] == corpus.tokenizer.encode(text)
    for step in (0, 16):
        model = AutoModelForCausalLM.from_pretrained(run.checkpoint(step)).eval()
        batch = torch.from_numpy(run.batch(step).token_ids)
        with torch.no_grad():
            logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        assert float(loss) == pytest.approx(records[step]["loss"], abs=1e-5)
    for entry in manifest["checkpoints"]:  # the recorded hashes are of the files there (hashed here by hashlib)
        folder = run_dir / entry["path"]
        assert sorted(entry["files"]) == sorted(p.name for p in folder.iterdir())
        for name, digest in entry["files"].items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
        assert entry["sha256"] == entry["files"]["model.safetensors"]


class Crash(Exception):
    pass


def test_resume_is_bitwise_identical(world_corpus, tmp_path):
    root, corpus, _, _ = world_corpus
    straight = tmp_path / "straight"
    train(root / "corpus", straight, {**TINY, "steps": 12, "grad_accum": 2})

    def crash_at_step_6(record):
        if record["step"] == 6:
            raise Crash

    resumed = tmp_path / "resumed"
    with pytest.raises(Crash):
        train(root / "corpus", resumed, {**TINY, "steps": 12, "grad_accum": 2}, progress=crash_at_step_6)
    assert open_run(resumed).checkpoints == [0, 1, 2, 4]
    train(root / "corpus", resumed, {"steps": 12}, resume=True)

    a = (straight / "checkpoints/step-12/model.safetensors").read_bytes()
    b = (resumed / "checkpoints/step-12/model.safetensors").read_bytes()
    assert a == b
    strip = lambda rs: [(r["step"], r["loss"], r["lr"], r["batch_sha256"]) for r in rs]  # noqa: E731
    assert strip(log_records(straight)) == strip(log_records(resumed))

    # extending a finished run keeps the recorded schedule and continues the same data order
    train(root / "corpus", resumed, {"steps": 14}, resume=True)
    records = log_records(resumed)
    assert [r["step"] for r in records] == list(range(14))
    assert [r["batch_sha256"] for r in records] == [sha256_of_rows(b) for b in documented_batches(corpus, resumed, 14)]
    assert json.loads((resumed / "run.json").read_text())["status"] == "complete"


def test_bad_runs_are_refused_with_the_fix(world_corpus, word_corpus, tmp_path):
    root, _, _, _ = world_corpus
    run_dir = tmp_path / "run"
    train(root / "corpus", run_dir, {**TINY, "steps": 2})
    before = (run_dir / "run.json").read_bytes()
    with pytest.raises(SeethroughError, match="already holds a run; pass --resume"):
        train(root / "corpus", run_dir, {**TINY, "steps": 2})
    with pytest.raises(SeethroughError, match=r"another configuration: --lr 0.1 \(run: 0.02\)"):
        train(root / "corpus", run_dir, {"lr": 0.1, "steps": 3}, resume=True)
    with pytest.raises(SeethroughError, match="was trained on corpus"):
        train(word_corpus[0].corpus.path, run_dir, {"steps": 3}, resume=True)
    with pytest.raises(SeethroughError, match="no run.json"):
        train(root / "corpus", tmp_path / "nothing", {"steps": 3}, resume=True)
    with pytest.raises(SeethroughError, match="--model-size 'huge' is unknown"):
        train(root / "corpus", tmp_path / "other", {"model_size": "huge"})
    with pytest.raises(SeethroughError, match="end-of-document"):  # the word tokenizer has no EOS token
        train(word_corpus[0].corpus.path, tmp_path / "other2", {**TINY, "steps": 1})
    assert (run_dir / "run.json").read_bytes() == before


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "seethrough", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_cli_train_batch_seen(world_corpus, tmp_path):
    root, corpus, _, docs = world_corpus
    config = tmp_path / "train.toml"
    config.write_text('model_size = "tiny"\nseq_len = 16\nbatch_size = 8\nthreads = 1\n')
    done = _cli("train", root / "corpus", "--out", tmp_path / "run", "--config", config, "--steps", 3, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["checkpoints"] == [0, 1, 2, 3]
    logged = log_records(tmp_path / "run")
    documented = documented_batches(corpus, tmp_path / "run", 3)
    shown = _cli("batch", tmp_path / "run", "--step", 2, "--json")
    record = json.loads(shown.stdout)
    ids = np.array(record["token_ids"], dtype=np.int64)
    assert ids.shape == (8, 17)
    assert record["token_ids"] == documented[2]
    assert record["sha256"] == logged[2]["batch_sha256"] == sha256_of_rows(documented[2])
    for row, row_ids in zip(record["rows"], ids):
        for d in row["documents"]:
            assert row_ids[d["row_start"]:d["row_end"]].tolist() == \
                corpus.document_tokens(d["doc"])[d["doc_start"]:d["doc_end"]].tolist()
    # two words the batch really holds (a row may start inside a document: its first words are elsewhere)
    part = next(d for d in record["rows"][0]["documents"] if d["row_end"] - d["row_start"] >= 2)
    text = corpus.tokenizer.decode(ids[0][part["row_start"]:part["row_start"] + 2].tolist())
    query = corpus.tokenizer.encode(text)
    assert query == ids[0][part["row_start"]:part["row_start"] + 2].tolist()
    m = len(query)
    by_step = {s: sum(r[i:i + m] == query for r in rows for i in range(len(r) - m + 1))
               for s, rows in enumerate(documented)}  # whole inside one row of the documented batches
    seen = json.loads(_cli("seen", tmp_path / "run", text, "--step", 3, "--json").stdout)
    assert seen["steps"] == {str(s): c for s, c in by_step.items() if c}
    assert seen["count"] == sum(by_step.values()) > 0
    assert seen["first_step"] == min(s for s, c in by_step.items() if c)
    bad = _cli("train", root / "corpus", "--out", tmp_path / "run", "--resume", "--seq-len", 32)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--seq-len 32 (run: 16)" in bad.stderr


def _torchrun(*args, port: int):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(port), "-m", "seethrough", "train", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_processes_see_the_same_batches(world_corpus, tmp_path):
    """DDP and FSDP2 on CPU (gloo): the logged batches equal a single process's and the losses agree;
    an FSDP run resumes from its gathered checkpoint to the same weights."""
    from safetensors.torch import load_file

    root, _, _, _ = world_corpus
    args = [root / "corpus", "--model-size", "tiny", "--seq-len", 16, "--batch-size", 8, "--threads", 1, "--seed", 7]
    single = _cli("train", *args, "--steps", 4, "--out", tmp_path / "one")
    assert single.returncode == 0, single.stderr
    one = log_records(tmp_path / "one")
    for parallel, port in (("ddp", 29533), ("fsdp", 29534)):
        done = _torchrun(*args, "--steps", 4, "--parallel", parallel, "--out", tmp_path / parallel, port=port)
        assert done.returncode == 0, done.stderr[-2000:]
        two = log_records(tmp_path / parallel)
        assert [r["batch_sha256"] for r in one] == [r["batch_sha256"] for r in two]
        for a, b in zip(one, two):
            assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)

    first = _torchrun(*args, "--steps", 2, "--lr-decay-steps", 4, "--parallel", "fsdp", "--out", tmp_path / "part",
                      port=29535)
    assert first.returncode == 0, first.stderr[-2000:]
    rest = _torchrun(root / "corpus", "--resume", "--steps", 4, "--parallel", "fsdp", "--out", tmp_path / "part",
                     port=29536)
    assert rest.returncode == 0, rest.stderr[-2000:]
    straight = load_file(tmp_path / "fsdp/checkpoints/step-4/model.safetensors")
    resumed = load_file(tmp_path / "part/checkpoints/step-4/model.safetensors")
    for name, tensor in straight.items():
        assert torch.allclose(tensor, resumed[name], atol=1e-6), name
