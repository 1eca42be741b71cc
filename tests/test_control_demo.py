"""The demo's control step on a tiny run of the demo world: every figure it prints comes from the
eraser and vector folders it writes, and the fresh probe after erasure is at the majority rate."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("concept_erasure")


def test_demo_control_step(tiny_run, world_corpus, tmp_path):
    from seethrough.demo.bias_world import plant_bias
    from seethrough.demo.control_step import control_lines, demo_control, gender_pairs, gender_statements
    from seethrough.index import open_corpus
    from seethrough.model import load_intervention, resolve_target

    torch.set_num_threads(1)
    root, _, world, _ = world_corpus
    plant = world.bias if getattr(world, "bias", None) is not None else plant_bias(5)
    statements, pairs = gender_statements(plant), gender_pairs(plant)
    # the labels are the pronoun's gender, read from the documents themselves
    for record in statements:
        text = plant.documents[record["document"]]["text"]
        assert text.startswith(record["text"] + " ")
        assert record["label"] == int(text[len(record["text"]) + 1:].split()[0] in ("she", "her"))
    assert {r["label"] for r in statements} == {0, 1}
    assert all(p["matching"] in ("she", "her") and p["not_matching"] in ("he", "his") for p in pairs)
    section = demo_control(open_corpus(root / "corpus"), resolve_target(tiny_run).last, plant, tmp_path / "control",
                           threads=1)
    summary = json.loads((tmp_path / "control" / "eraser" / "summary.json").read_text())
    assert section["erase"]["sha256"] == load_intervention(tmp_path / "control" / "eraser").sha256
    assert section["layers"] == summary["layers"]
    for mine, theirs in zip(section["erase"]["probes"], summary["probes"]):
        assert mine["after"] == theirs["after"]["accuracy"] and mine["at_majority_rate"]
    vector = json.loads((tmp_path / "control" / "vector" / "summary.json").read_text())
    assert [r["p_matching"] for r in section["steer"]["curve"]] == [r["p_matching"] for r in vector["curve"]]
    assert [r["multiplier"] for r in section["steer"]["curve"]] == [-2, -1, 0, 1, 2]
    # the shares are bias model's, measured on the plain checkpoint and with the eraser folder on
    from dataclasses import replace

    from seethrough.audit.bias import measure_model_bias

    checkpoint, index = resolve_target(tiny_run).last, open_corpus(root / "corpus")
    eraser = load_intervention(tmp_path / "control" / "eraser")
    for key, chosen in (("before", checkpoint), ("after", replace(checkpoint, intervention=eraser))):
        measured = {t["target"]: t["model"]["female"] for t in measure_model_bias(
            chosen, index, plant.groups_file, plant.templates, threads=1).targets if t["axis"] == "gender"}
        assert {r["occupation"]: r[key] for r in section["erase"]["female_shares"]} == pytest.approx(measured)
    lines = control_lines(section)
    assert lines[0].startswith("control, erase:") and any(line.startswith("control, steer") for line in lines)
    assert json.loads((tmp_path / "control" / "control.json").read_text()) == json.loads(json.dumps(section))
