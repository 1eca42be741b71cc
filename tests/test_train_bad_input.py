"""Bad input to training and to the run it writes: each is refused with a one-line error naming the
flag and the fix (or gets the correct answer), and leaves every file that existed before unchanged.

Bad settings are refused before a run folder exists; a diverging run stops with its good checkpoints
kept; a resume checks what it is about to load (the step reached, the log, every checkpoint file) and
cleans what a killed run left; questions about steps a run never trained are refused."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from seethrough.errors import ConfigError, RunError, SeethroughError  # noqa: E402
from seethrough.train import TrainConfig, load_config, open_run, read_log, train  # noqa: E402

TINY = {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "lr": 2e-2, "threads": 1, "seed": 7}


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots`` (hidden ones too), files by content hash."""
    found = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
    return found


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def cli(*args):
    return subprocess.run([sys.executable, "-m", "seethrough", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ}, timeout=600)


def assert_cli_refused(done, *needles: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)
    assert done.stdout == ""  # nothing half-printed, no invalid JSON on --json
    return done.stderr


class Crash(Exception):
    pass


def crash_at(step: int):
    def progress(record):
        if record["step"] == step:
            raise Crash

    return progress


@pytest.fixture(scope="module")
def corpus(world_corpus):
    return world_corpus[0] / "corpus"


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory):
    """A complete 4-step run (checkpoints 0, 1, 2, 4); tests work on copies of it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train(corpus, run, {**TINY, "steps": 4})
    return run


@pytest.fixture(scope="module")
def crashed_run(corpus, tmp_path_factory):
    """An 8-step run killed after logging step 5: checkpoints 0, 1, 2, 4; log lines for steps 0..5."""
    run = tmp_path_factory.mktemp("crashed") / "run"
    with pytest.raises(Crash):
        train(corpus, run, {**TINY, "steps": 8}, progress=crash_at(5))
    return run


def copy_run(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


# -- 1. settings: refused by the config layer before a folder exists -------------------------------

BAD_SETTINGS = [
    ({"lr": math.inf}, "--lr must be a finite number above 0"),
    ({"lr": math.nan}, "--lr must be a finite number above 0"),
    ({"lr": 0.0}, "--lr must be a finite number above 0"),
    ({"lr": -1e-3}, "--lr must be a finite number above 0"),
    ({"min_lr_ratio": math.nan}, "--min-lr-ratio must be between 0 and 1"),
    ({"min_lr_ratio": 1.5}, "--min-lr-ratio must be between 0 and 1"),
    ({"weight_decay": -0.1}, "--weight-decay must be a finite number, 0 or more"),
    ({"weight_decay": math.inf}, "--weight-decay must be a finite number"),
    ({"beta1": 1.0}, "--beta1 must be at least 0 and below 1"),
    ({"beta2": math.nan}, "--beta2 must be at least 0 and below 1"),
    ({"grad_clip": math.inf}, "--grad-clip must be a finite number, 0 or more, not inf (0 turns clipping off)"),
    ({"grad_clip": -1.0}, "--grad-clip must be"),
    ({"peak_flops": 0.0}, "--peak-flops must be a finite number of FLOP/s above 0"),
    ({"peak_flops": math.nan}, "--peak-flops must be"),
    ({"steps": 0}, "--steps must be at least 1, not 0"),
    ({"steps": -3}, "--steps must be at least 1"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"seq_len": 0}, "--seq-len must be at least 1"),
    ({"grad_accum": 0}, "--grad-accum must be at least 1"),
    ({"save_every": 0}, "--save-every must be at least 1"),
    ({"lr_decay_steps": 0}, "--lr-decay-steps must be at least 1"),
    ({"warmup_steps": -1}, "--warmup-steps must be at least 0"),
    ({"warmup_steps": 5}, "--warmup-steps 5 is longer than the learning-rate schedule it warms up (2 steps"),
    ({"warmup_steps": 3, "lr_decay_steps": 2}, "make it at most 2"),
    ({"threads": 0}, "--threads must be at least 1"),
    ({"seed": -1}, "--seed must be in 0..2**64-1"),
    ({"seed": 2**64}, "--seed must be in 0..2**64-1"),
    ({"steps": 2.5}, "--steps must be a whole number, not 2.5"),
    ({"steps": True}, "--steps must be a whole number, not True"),
    ({"lr": "fast"}, "--lr must be a number, not 'fast'"),
    ({"compile": "yes"}, "--compile must be true or false"),
    ({"model_size": 3}, "--model-size must be a string"),
    ({"model_size": "huge"}, "--model-size 'huge' is unknown"),
    ({"grad_accum": 3}, "--batch-size 8 does not divide by --grad-accum 3"),
    ({"precision": "fp8"}, "--precision 'fp8' is not one of"),
    ({"seq_len": 10**6}, "use a shorter --seq-len"),  # the corpus holds no row of that length
    ({"eod_token": "<nope>"}, "--eod-token '<nope>' is not in the tokenizer"),
    ({"no_such_setting": 1}, "unknown training setting(s) no_such_setting"),
]


@pytest.mark.parametrize("bad,needle", BAD_SETTINGS, ids=[str(b) for b, _ in BAD_SETTINGS])
def test_bad_settings_are_refused_before_a_folder_exists(corpus, tmp_path, bad, needle):
    before = snapshot(corpus, tmp_path)
    with pytest.raises(SeethroughError) as error:
        train(corpus, tmp_path / "out", {**TINY, "steps": 2, **bad})
    assert needle in one_line(error)
    assert not (tmp_path / "out").exists()
    assert snapshot(corpus, tmp_path) == before


def test_a_config_object_is_checked_too(corpus, tmp_path):
    with pytest.raises(ConfigError) as error:  # in a mapping None means "not given"; in a TrainConfig it is wrong
        train(corpus, tmp_path / "out", TrainConfig(**{**TINY, "lr": None}))
    assert "--lr needs a value" in one_line(error)
    with pytest.raises(ConfigError, match="--steps must be at least 1"):
        train(corpus, tmp_path / "out", TrainConfig(**{**TINY, "steps": 0}))
    assert not (tmp_path / "out").exists()


def test_cli_lr_inf_and_nan_are_one_line_errors_and_create_nothing(corpus, tmp_path):
    """Before: --lr inf trained to a NaN loss, said "complete", exit 0, and --json printed NaN (not
    JSON); --lr nan gave a traceback and left an empty run folder."""
    before = snapshot(corpus, tmp_path)
    for value in ("inf", "nan", "-inf"):
        done = cli("train", corpus, "--out", tmp_path / "out", "--model-size", "tiny", "--steps", 2, "--lr", value,
                   "--json")
        assert_cli_refused(done, f"--lr must be a finite number above 0, not {value}")
        assert not (tmp_path / "out").exists()
    assert snapshot(corpus, tmp_path) == before


def test_bad_config_files_are_one_line_errors(corpus, tmp_path):
    cases = {
        "unknown.toml": (b'model_size = "tiny"\nlearning_rate = 0.1\n', "unknown field(s) learning_rate"),
        "type.toml": (b'lr = "fast"\n', "--lr must be a number, not 'fast'"),
        "float_steps.toml": (b"steps = 1.5\n", "--steps must be a whole number, not 1.5"),
        "bool_steps.toml": (b"steps = true\n", "--steps must be a whole number, not True"),
        "table.toml": (b"[lr]\npeak = 0.1\n", "--lr must be a number"),
        "nan.toml": (b"lr = nan\n", "--lr must be a finite number above 0, not nan"),
        "broken.toml": (b"lr = \n", "is not valid TOML"),
        "latin1.toml": (b'model_size = "t\xefny"\n', "is not UTF-8 text"),
    }
    for name, (text, needle) in cases.items():
        (tmp_path / name).write_bytes(text)
    (tmp_path / "folder.toml").mkdir()
    cases["folder.toml"] = (None, "cannot read --config")
    before = snapshot(corpus, tmp_path)
    for name, (_, needle) in cases.items():
        with pytest.raises(ConfigError) as error:
            load_config(tmp_path / name)
        assert needle in one_line(error), name
    # and through the command, which reads the file itself
    done = cli("train", corpus, "--out", tmp_path / "out", "--config", tmp_path / "type.toml")
    assert_cli_refused(done, "--lr must be a number, not 'fast'")
    assert not (tmp_path / "out").exists()
    assert snapshot(corpus, tmp_path) == before


# -- 2. a diverging run stops, its good checkpoints kept ---------------------------------------------

def strict_json(line: str):
    def refuse(constant):
        raise AssertionError(f"{constant} in the log: not JSON")

    return json.loads(line, parse_constant=refuse)


def test_a_non_finite_loss_stops_the_run_and_keeps_the_good_checkpoints(corpus, tmp_path):
    """lr 1e30 is finite, so allowed; its first update makes the weights ~1e30 (still finite, saved as
    step-1), and step 1's forward pass overflows to a NaN loss."""
    before = snapshot(corpus)
    run = tmp_path / "run"
    with pytest.raises(RunError) as error:
        train(corpus, run, {**TINY, "steps": 6, "lr": 1e30})
    message = one_line(error)
    assert message.startswith("training diverged at step 1: the loss is nan")
    assert "checkpoints up to step-1 kept" in message and "lower --lr" in message
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "diverged" and manifest["error"] == message
    assert [c["step"] for c in manifest["checkpoints"]] == [0, 1]
    for entry in manifest["checkpoints"]:  # what is listed is there, whole (hashed here, not by seethrough)
        folder = run / entry["path"]
        assert sorted(entry["files"]) == sorted(p.name for p in folder.iterdir())
        for name, digest in entry["files"].items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-0", "step-1"]  # no temporaries
    lines = (run / "log.jsonl").read_text().splitlines()
    assert [strict_json(line)["step"] for line in lines] == [0]  # the diverged step is not logged
    assert open_run(run).steps_trained == 1
    assert snapshot(corpus) == before


def test_an_update_that_overflows_the_weights_is_not_saved(corpus, tmp_path):
    """lr 1e39 overflows float32 in the first update: the weights are inf/NaN although step 0's loss
    and gradient were finite. Checkpoint step-1 would hold them: it is not written."""
    run = tmp_path / "run"
    with pytest.raises(RunError) as error:
        train(corpus, run, {**TINY, "steps": 6, "lr": 1e39})
    message = one_line(error)
    assert message.startswith("training diverged at step 0: its update made some weights infinite or NaN")
    assert "checkpoint step-1 was not written" in message
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "diverged" and [c["step"] for c in manifest["checkpoints"]] == [0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-0"]


def test_cli_divergence_is_a_one_line_error_with_nothing_on_stdout(corpus, tmp_path):
    done = cli("train", corpus, "--out", tmp_path / "run", "--model-size", "tiny", "--seq-len", 16, "--batch-size", 8,
               "--threads", 1, "--steps", 4, "--lr", "1e30", "--json")
    assert_cli_refused(done, "training diverged at step 1", "lower --lr")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "diverged"


# -- 3. resume with fewer steps than reached ------------------------------------------------------

def test_resume_with_fewer_steps_than_reached_is_refused(corpus, finished_run, tmp_path):
    """Before: --resume --steps 2 on a 4-step run rewrote run.json (steps 2, status "stopped")."""
    run = copy_run(finished_run, tmp_path)
    before = snapshot(corpus, run)
    with pytest.raises(RunError) as error:
        train(corpus, run, {"steps": 2}, resume=True)
    assert "is already at step 4; --steps must be at least 4 to resume it" in one_line(error)
    done = cli("train", corpus, "--out", run, "--resume", "--steps", 2)
    assert_cli_refused(done, "already at step 4; --steps must be at least 4")
    # --steps equal to the step reached: nothing to train, and a finished run is left exactly as it is
    manifest = train(corpus, run, {"steps": 4}, resume=True)
    assert manifest["status"] == "complete" and manifest["config"]["steps"] == 4
    train(corpus, run, None, resume=True)
    assert snapshot(corpus, run) == before


# -- 4. a torn last log line ---------------------------------------------------------------------

def test_resume_after_a_torn_log_line_is_bitwise_identical(corpus, crashed_run, tmp_path):
    """A crash mid-write leaves a last line without its newline; before, --resume died on it with a
    JSONDecodeError. It is dropped (it is past the newest checkpoint) and the run resumes bit-identical."""
    straight = tmp_path / "straight"
    train(corpus, straight, {**TINY, "steps": 8})
    run = copy_run(crashed_run, tmp_path)
    with open(run / "log.jsonl", "ab") as handle:
        handle.write(b'{"step": 6, "loss": 3.0, "lr": 0.0')
    assert [r["step"] for r in read_log(run)] == list(range(6))  # readers skip the torn line too
    assert sorted(open_run(run).logged_batch_sha256()) == list(range(6))
    train(corpus, run, {"steps": 8}, resume=True)

    assert (run / "checkpoints/step-8/model.safetensors").read_bytes() == \
        (straight / "checkpoints/step-8/model.safetensors").read_bytes()
    strip = lambda path: [(r["step"], r["loss"], r["lr"], r["grad_norm"], r["batch_sha256"])  # noqa: E731
                          for r in map(strict_json, (path / "log.jsonl").read_text().splitlines())]
    assert strip(run) == strip(straight)
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def test_a_damaged_log_line_before_the_end_is_refused(corpus, finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    lines = (run / "log.jsonl").read_bytes().split(b"\n")
    lines[1] = lines[1][:20]  # not something a crash leaves: the line has its newline
    (run / "log.jsonl").write_bytes(b"\n".join(lines))
    before = snapshot(corpus, run)
    with pytest.raises(RunError) as error:
        train(corpus, run, {"steps": 6}, resume=True)
    assert "log.jsonl:2 is not a log record" in one_line(error)
    with pytest.raises(RunError):
        open_run(run).logged_batch_sha256()
    assert snapshot(corpus, run) == before


# -- 5. a damaged or hostile trainer state ---------------------------------------------------------

def test_a_corrupt_trainer_state_is_refused_by_its_recorded_hash(corpus, finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    state = run / "checkpoints/step-4/trainer_state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit: the size and the zip structure stay as they were
    state.write_bytes(bytes(data))
    before = snapshot(corpus, run)
    with pytest.raises(RunError) as error:
        train(corpus, run, {"steps": 6}, resume=True)
    assert "trainer_state.pt is missing or does not match the sha256 run.json records" in one_line(error)
    done = cli("train", corpus, "--out", run, "--resume", "--steps", 6)
    assert_cli_refused(done, "trainer_state.pt is missing or does not match")
    state.unlink()
    with pytest.raises(RunError, match="trainer_state.pt is missing or does not match"):
        train(corpus, run, {"steps": 6}, resume=True)
    assert snapshot(corpus, run) == {k: v for k, v in before.items() if k != str(state)}


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_trainer_state_that_would_run_code_is_refused(corpus, finished_run, tmp_path):
    """Even with its hash updated in run.json (as someone replacing both would), a pickle that calls a
    function is not unpickled: the trainer state is loaded with weights_only=True."""
    run = copy_run(finished_run, tmp_path)
    marker = tmp_path / "code-ran"
    state = run / "checkpoints/step-4/trainer_state.pt"
    torch.save({"step": 4, "optimizer": None, "torch_rng": _RunsCode(marker)}, state)
    manifest = json.loads((run / "run.json").read_text())
    manifest["checkpoints"][-1]["files"]["trainer_state.pt"] = hashlib.sha256(state.read_bytes()).hexdigest()
    (run / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError) as error:
        train(corpus, run, {"steps": 6}, resume=True)
    assert "trainer_state.pt cannot be loaded safely" in one_line(error)
    assert not marker.exists()
    assert json.loads((run / "run.json").read_text()) == manifest


# -- 6. what killed runs leave behind ---------------------------------------------------------------

def test_resume_removes_stale_temporaries_and_nothing_else(corpus, finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    stale = [run / "checkpoints/.step-8.tmp-999999", run / "checkpoints/.step-5.tmp-1"]
    for folder in stale:
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half written")
    stale_files = [run / ".run.json.k2j3h4.tmp", run / ".log.jsonl.x8y7.tmp"]
    for path in stale_files:
        path.write_text("half written")
    kept = [run / "notes.txt", run / "checkpoints/notes.txt", run / "checkpoints/step-5.tmp-notes"]
    for path in kept:
        path.write_text("mine")
    train(corpus, run, {"steps": 5}, resume=True)
    assert not any(p.exists() for p in stale + stale_files)
    assert all(p.read_text() == "mine" for p in kept)
    assert open_run(run).checkpoints == [0, 1, 2, 4, 5]


# -- 7. steps past the run's end --------------------------------------------------------------------

def test_steps_past_the_run_are_refused_unless_planned(corpus, crashed_run, tmp_path):
    """Before: `seen --step 100000` on a short run counted tens of thousands of sightings, and `batch
    --step` returned batches never trained. The crashed run trained (and kept) 4 of its 8 steps."""
    from seethrough.audit.seen import seen_before

    run = copy_run(crashed_run, tmp_path)
    before = snapshot(corpus, run)
    opened = open_run(run)
    assert (opened.steps_trained, opened.steps_planned) == (4, 8)
    ids = opened.batch(3).token_ids[0, 1:3].tolist()

    with pytest.raises(RunError) as error:
        opened.batch(4)
    message = one_line(error)
    assert "--step 4 is past the end of run" in message and "trained steps 0..3" in message
    assert "--step may be at most 3" in message
    with pytest.raises(RunError, match="--step 100000 is past the end"):
        opened.batch_record(100000)
    with pytest.raises(RunError) as error:
        seen_before(opened, ids, 5)
    assert "--step may be at most 4" in one_line(error)
    with pytest.raises(RunError, match="--step 100000 is past the end"):
        seen_before(opened, ids, 100000)

    # the planned order, asked for explicitly, reaches the configured end and says so
    assert opened.batch(7, planned=True).sha256 == opened.order.batch(7).sha256
    assert opened.batch_record(7, planned=True)["trained"] is False
    assert opened.batch_record(3)["trained"] is True
    with pytest.raises(RunError, match="configured for 8 step"):
        opened.batch(8, planned=True)
    with pytest.raises(RunError, match="configured for 8 step"):
        seen_before(opened, ids, 9, planned=True)

    for command in (["batch", run, "--step", 100000], ["seen", run, "--ids", " ".join(map(str, ids)),
                                                       "--step", 100000], ["batch", run, "--step", 4]):
        assert_cli_refused(cli(*command), "is past the end of run", "trained steps 0..3")
    assert snapshot(corpus, run) == before


def test_a_run_without_checkpoints_has_trained_nothing(corpus, crashed_run, tmp_path):
    run = copy_run(crashed_run, tmp_path)
    manifest = json.loads((run / "run.json").read_text())
    manifest["checkpoints"] = []
    (run / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError) as error:
        open_run(run).batch(0)
    assert "has not trained any step yet" in one_line(error)


# -- 9. further bad inputs -------------------------------------------------------------------------

def test_bad_run_folders_are_refused(corpus, finished_run, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "mine.txt").write_text("mine")
    (tmp_path / "empty").mkdir()
    before = snapshot(corpus, tmp_path)
    fresh = {**TINY, "steps": 2}
    cases = [
        (tmp_path / "a-file", fresh, False, "is a file, not a folder"),
        (tmp_path / "a-file" / "run", fresh, False, "cannot create --out"),
        (tmp_path / "not-a-run", fresh, False, "exists and is not empty"),
        (corpus / "run", fresh, False, "is inside the corpus folder"),
        (corpus, fresh, False, "is inside the corpus folder"),
        (tmp_path / "not-a-run", {"steps": 2}, True, "is not a run folder (no run.json)"),
        (tmp_path / "a-file", {"steps": 2}, True, "is not a run folder (no run.json)"),
        (tmp_path / "empty", {"steps": 2}, True, "is not a run folder (no run.json)"),
    ]
    for out, settings, resume, needle in cases:
        with pytest.raises(SeethroughError) as error:
            train(corpus, out, settings, resume=resume)
        assert needle in one_line(error), (out, needle)
    assert snapshot(corpus, tmp_path) == before

    run = copy_run(finished_run, tmp_path / "copy")
    manifest = json.loads((run / "run.json").read_text())
    before = snapshot(corpus, run)
    resumes = [
        ({"bogus": 1}, "unknown training setting(s) bogus"),
        ({"steps": 0}, "--steps must be at least 1"),
        ({"steps": 6, "lr": math.nan}, "--lr must be a finite number above 0"),
        ({"steps": 6, "seq_len": 32}, "another configuration: --seq-len 32 (run: 16)"),
    ]
    for settings, needle in resumes:
        with pytest.raises(SeethroughError) as error:
            train(corpus, run, settings, resume=True)
        assert needle in one_line(error), settings
    assert snapshot(corpus, run) == before

    damaged = [
        (b"{not json", "cannot be read as JSON"),
        (b"\xff\xfe", "cannot be read as JSON"),
        (b"[1, 2]", "is not a seethrough run manifest"),
        (json.dumps({"format": "seethrough.corpus"}).encode(), "is not a seethrough run manifest"),
        (json.dumps({k: v for k, v in manifest.items() if k != "checkpoints"}).encode(), "lacks checkpoints"),
        (json.dumps({**manifest, "checkpoints": [{"step": 4}]}).encode(), "its list of checkpoints is damaged"),
        (json.dumps({**manifest, "checkpoints": manifest["checkpoints"][::-1]}).encode(), "not listed once each"),
    ]
    for text, needle in damaged:
        (run / "run.json").write_bytes(text)
        for attempt in (lambda: train(corpus, run, {"steps": 6}, resume=True), lambda: open_run(run)):
            with pytest.raises(RunError) as error:
                attempt()
            assert needle in one_line(error), text


def test_a_missing_checkpoint_file_is_refused_on_resume(corpus, finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    (run / "checkpoints/step-4/config.json").unlink()
    before = snapshot(corpus, run)
    with pytest.raises(RunError) as error:
        train(corpus, run, {"steps": 6}, resume=True)
    assert "config.json is missing or does not match" in one_line(error)
    assert snapshot(corpus, run) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_device_cuda_without_a_gpu_is_refused_before_a_folder_exists(corpus, tmp_path):
    with pytest.raises(ConfigError) as error:
        train(corpus, tmp_path / "out", {**TINY, "steps": 2, "device": "cuda"})
    assert "--device cuda was asked for but torch sees no GPU" in one_line(error)
    assert not (tmp_path / "out").exists()
