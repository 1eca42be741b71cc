"""``seethrough release``: the bundle loads with ``from_pretrained`` and gives the run checkpoint's logits
exactly; SHA256SUMS lists every file with its hash (recomputed here, and ``sha256sum -c``) and a tampered
file fails it; the cards parse with huggingface_hub offline and carry the fields, the model index equal to
results.json; an existing folder that is not a bundle is refused, a bundle is replaced."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lm_eval")
pytest.importorskip("huggingface_hub")

from test_report_inputs import show_inputs  # noqa: E402,F401  (the fixture)


@pytest.fixture(scope="module")
def bundle(show_inputs, tmp_path_factory):
    from seethrough.show import build_release

    out = tmp_path_factory.mktemp("release") / "bundle"
    release = build_release(show_inputs.run, results=[show_inputs.eval, show_inputs.memorization], out=out, threads=1)
    return release


def test_the_bundle_loads_and_gives_the_checkpoints_logits_exactly(bundle, show_inputs):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from seethrough.model import load_model, resolve_target

    checkpoint = resolve_target(show_inputs.run).last
    assert bundle.checkpoint_step == checkpoint.step
    reference = load_model(checkpoint, threads=1)
    released = AutoModelForCausalLM.from_pretrained(bundle.path).eval()
    ids = torch.tensor([[0, 5, 9, 11, 3, 7, 2, 20], [0, 1, 2, 3, 4, 5, 6, 7]])
    with torch.no_grad():
        assert torch.equal(released(ids).logits, reference(ids).logits)
    tokenizer = AutoTokenizer.from_pretrained(bundle.path)
    text = show_inputs.docs[1]["text"]
    assert tokenizer(text)["input_ids"] == show_inputs.index.tokenizer.encode(text)


def test_sha256sums_lists_every_file_with_its_hash_and_a_tampered_file_fails(bundle, tmp_path):
    from seethrough.show import verify_sha256sums

    lines = (bundle.path / "SHA256SUMS").read_text().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in lines)
    files = sorted(p.relative_to(bundle.path).as_posix() for p in bundle.path.rglob("*") if p.is_file())
    assert sorted(listed) == [f for f in files if f != "SHA256SUMS"]
    for rel, digest in listed.items():
        assert hashlib.sha256((bundle.path / rel).read_bytes()).hexdigest() == digest
    for needed in ("model.safetensors", "config.json", "tokenizer.json", "README.md", "dataset/README.md",
                   "run/run.json", "run/data_order.json", "report/index.html", "report/report.json"):
        assert needed in listed
    checked = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle.path, capture_output=True)
    assert checked.returncode == 0, checked.stdout
    copy = tmp_path / "copy"
    shutil.copytree(bundle.path, copy)
    data = bytearray((copy / "config.json").read_bytes())
    data[10] ^= 1
    (copy / "config.json").write_bytes(bytes(data))
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=copy, capture_output=True).returncode != 0
    assert verify_sha256sums(copy) == ["config.json"]
    assert verify_sha256sums(bundle.path) == []


def test_the_cards_parse_offline_with_their_fields_and_the_model_index_is_results_json(bundle, show_inputs):
    from huggingface_hub import DatasetCard, ModelCard

    card = ModelCard.load(bundle.path / "README.md")
    data = card.data.to_dict()
    run_manifest = json.loads((show_inputs.run / "run.json").read_text())
    assert data["license"] == "other" and data["license_name"]
    assert data["language"] == ["en"] and data["library_name"] == "transformers"
    assert "seethrough" in data["tags"] and data["datasets"] == ["corpus"]
    assert data["seethrough"]["model_safetensors_sha256"] == run_manifest["checkpoints"][-1]["sha256"]
    assert data["seethrough"]["data_order"] == run_manifest["data_order"]["spec"]
    results = json.loads((show_inputs.eval / "results.json").read_text())
    assert data["seethrough"]["weights_sha256"] == results["seethrough"]["model"]["weights_sha256"]
    expected = {(task, key.split(",")[0], None): value for task, metrics in results["results"].items()
                for key, value in metrics.items() if "," in key and "_stderr" not in key}
    expected |= {(task, metric, "clean"): value for task, c in results["seethrough"]["contamination"].items()
                 for metric, value in c["clean"].items()}
    found = {(r.dataset_type, r.metric_type, r.dataset_config): r.metric_value for r in card.data.eval_results}
    assert found == expected and expected
    assert "from_pretrained" in card.text and "seethrough batch" in card.text

    dataset = DatasetCard.load(bundle.path / "dataset" / "README.md")
    ddata = dataset.data.to_dict()
    manifest = json.loads((show_inputs.corpus / "manifest.json").read_text())
    assert ddata["license"] == "other" and ddata["language"] == ["en"]
    assert ddata["size_categories"] == ["n<1K"] and ddata["task_categories"] == ["text-generation"]
    assert ddata["seethrough"]["corpus_hash"] == manifest["corpus_hash"]
    assert ddata["seethrough"]["tokens"] == manifest["counts"]["tokens"]
    assert json.loads((bundle.path / "dataset" / "manifest.json").read_text()) == manifest
    order = json.loads((bundle.path / "run" / "data_order.json").read_text())
    assert order == run_manifest["data_order"]


def test_a_chosen_checkpoint_is_released_and_a_missing_one_refused(show_inputs, tmp_path):
    from safetensors.numpy import load_file

    from seethrough.errors import ConfigError, ModelError
    from seethrough.show import build_release

    run_manifest = json.loads((show_inputs.run / "run.json").read_text())
    early = run_manifest["checkpoints"][1]
    release = build_release(show_inputs.run, checkpoint=early["step"], out=tmp_path / "b", report=False)
    assert release.checkpoint_step == early["step"]
    assert hashlib.sha256((release.path / "model.safetensors").read_bytes()).hexdigest() == early["sha256"]
    assert load_file(release.path / "model.safetensors")
    with pytest.raises(ModelError, match="no checkpoint at that step"):
        build_release(show_inputs.run, checkpoint=3, out=tmp_path / "c", report=False)
    assert not (tmp_path / "c").exists()
    # the evaluation is of the last checkpoint: its model index may not be credited to an earlier one
    with pytest.raises(ConfigError, match="evaluated other weights"):
        build_release(show_inputs.run, results=[show_inputs.eval], checkpoint=early["step"], out=tmp_path / "d",
                      report=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_an_existing_folder_is_replaced_only_when_it_is_a_bundle(show_inputs, tmp_path):
    from seethrough.errors import ConfigError
    from seethrough.show import build_release

    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not a release bundle"):
        build_release(show_inputs.run, out=other, report=False)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    first = build_release(show_inputs.run, out=tmp_path / "b", report=False)
    (first.path / "extra.txt").write_text("left over")
    second = build_release(show_inputs.run, out=tmp_path / "b", report=False)
    assert not (second.path / "extra.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "mine"]  # no temporary folder left


def test_the_command_writes_a_bundle(show_inputs, tmp_path):
    result = subprocess.run([sys.executable, "-m", "seethrough.cli.app", "release", str(show_inputs.run), "--out",
                             str(tmp_path / "b"), "--threads", "1", "--json"], capture_output=True, text=True,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["bundle"] == str(tmp_path / "b") and summary["files"] >= 10
    assert (Path(summary["bundle"]) / "report" / "index.html").is_file()


def test_hostile_names_reach_the_cards_as_text(show_inputs, tmp_path):
    """A task named like a script tag: the card's YAML keeps it as a string, its table escapes it."""
    from huggingface_hub import ModelCard

    from seethrough.show import build_release
    from test_report_inputs import SCRIPT

    folder = tmp_path / "eval"
    shutil.copytree(show_inputs.eval, folder)
    record = json.loads((folder / "results.json").read_text())
    record["results"][SCRIPT] = record["results"].pop("show_mc")
    (folder / "results.json").write_text(json.dumps(record))
    release = build_release(show_inputs.run, results=[folder], out=tmp_path / "b", report=False)
    card = ModelCard.load(release.path / "README.md")
    assert "<script" not in card.text and "&lt;script&gt;" in card.text
    assert {r.dataset_type for r in card.data.eval_results} == {SCRIPT}


def test_a_bundle_inside_the_run_folder_is_refused(show_inputs):
    """It would copy the weights into the run it describes (and the run's report would list it)."""
    from seethrough.errors import ConfigError
    from seethrough.show import build_release

    before = sorted(p.name for p in show_inputs.run.iterdir())
    with pytest.raises(ConfigError, match="is inside .* which it describes"):
        build_release(show_inputs.run, out=show_inputs.run / "bundle", report=False)
    assert sorted(p.name for p in show_inputs.run.iterdir()) == before


def test_a_missing_checkpoint_file_is_a_one_line_error(show_inputs, tmp_path):
    """A run whose newest checkpoint folder lost its weights: named, not a FileNotFoundError traceback."""
    import shutil

    from seethrough.errors import ModelError
    from seethrough.show import build_release

    run = tmp_path / "run"
    shutil.copytree(show_inputs.run, run)
    last = sorted(run.glob("checkpoints/step-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    (last / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=f"checkpoint .*{last.name} has no model.safetensors"):
        build_release(run, out=tmp_path / "b", report=False)
    assert not (tmp_path / "b").exists()
