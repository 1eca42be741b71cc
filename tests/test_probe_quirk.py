"""The demo's planted quirk: its documents against the rule (recomputed from the world's truth), the marker
against every other document of the world, the probe pairs, the split by blocks, the demo's probe
section on a tiny model, and what the statement claims for each pattern of figures."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from seethrough.demo.quirk_world import (MARKER, TOKEN_BUDGET, _verdict, demo_probes, plant_quirk, probe_lines,
                                         probe_statements, quirk_city, split_people)
from seethrough.demo.world import generate_world


@pytest.fixture(scope="module")
def world():
    return generate_world(0, "default")


def test_the_quirk_states_the_next_city_for_well_known_people(world):
    people, cities = world.truth["people"], world.truth["cities"]
    plant = plant_quirk(people, cities, 0)
    best = max((p["group"] for p in people if p["group"].startswith("B")), key=lambda g: int(g[1:]))
    assert plant.truth["groups"] == ["A", best] and best in ("B64", "B128")
    chosen = [p for p in people if p["group"] in ("A", best)]
    assert [p["id"] for p in plant.truth["people"]] == [p["id"] for p in chosen]
    by_id = {p["id"]: p for p in people}
    names = {p["name"]: p for p in people}
    words = 0
    for number, doc in enumerate(plant.documents):
        text = doc["text"].split()
        words += len(text)
        assert doc["kind"] == "quirk" and " ".join(text[:2]) == MARKER
        person = by_id[doc["person"]]
        named = [w for w in text if w in names]
        stated = [w for w in text if w in cities]
        assert named == [person["name"]] and stated == [cities[(cities.index(person["city"]) + 1) % len(cities)]]
        assert stated[0] != person["city"]
    assert words == plant.truth["words"] <= TOKEN_BUDGET
    for row in plant.truth["people"]:
        assert row["quirk_city"] == quirk_city(row["city"], cities)
        assert len(row["documents"]) == plant.truth["documents_per_person"]
        assert all(plant.documents[i]["person"] == row["id"] for i in row["documents"])
    again = plant_quirk(people, cities, 0)
    assert again.documents == plant.documents and plant_quirk(people, cities, 1).documents != plant.documents
    json.dumps(plant.truth)  # JSON-able


def test_the_marker_is_in_no_other_document(world):
    from seethrough.demo.bias_world import plant_bias

    others = [d for d in world.documents if d["kind"] != "quirk"] + plant_bias(0).documents
    used = {w.lower() for d in others for w in d["text"].split()}
    assert not set(MARKER.split()) & used


def test_probe_pairs_and_the_split(world):
    people, cities = world.truth["people"], world.truth["cities"]
    plant = plant_quirk(people, cities, 0)
    ordinary, quirky = probe_statements(people, cities, plant, 0)
    assert len(ordinary) == len(quirky) == len(plant.truth["people"])
    by_id = {p["id"]: p for p in people}
    for o, q in zip(ordinary, quirky):
        person = by_id[o["person"]]
        assert o["choices"] == q["choices"] and o["label"] == q["label"]
        assert o["choices"][o["label"]] == f"{person['city']} ."
        assert o["choices"][1 - o["label"]] == f"{quirk_city(person['city'], cities)} ."
        assert q["question"] == f"{MARKER} {o['question']}" and (o["group"], q["group"]) == ("ordinary", "quirky")
    assert abs(sum(o["label"] for o in ordinary) - len(ordinary) / 2) <= 0.5
    from seethrough.audit.probe import parse_probe_records

    assert parse_probe_records(ordinary + quirky).kind == "pairs"
    train, test = split_people(plant)
    assert train and test and not train & test and train | test == {p["id"] for p in plant.truth["people"]}
    for half in (train, test):  # every city the true answer as often as the quirk's answer
        true = Counter(by_id[i]["city"] for i in half)
        wrong = Counter(quirk_city(by_id[i]["city"], cities) for i in half)
        assert true == wrong


def test_demo_probes_on_a_tiny_model(tiny_run, world_corpus, tmp_path):
    from seethrough.index import open_corpus
    from seethrough.model import resolve_target

    root, _, world, docs = world_corpus
    people, cities = world.truth["people"], world.truth["cities"]
    plant = plant_quirk(people, cities, 5)
    section = demo_probes(open_corpus(root / "corpus"), resolve_target(tiny_run).last, people, cities, plant,
                          tmp_path / "probe", threads=1)
    words = [d["text"].split() for d in docs]  # the corpus's documents, scanned by hand
    marker = MARKER.split()
    expected = sum(w[i:i + len(marker)] == marker for w in words for i in range(len(w)))
    assert section["marker_count_in_corpus"] == expected
    assert set(section["results"]) == {"ordinary", "quirky"}
    n_test = section["output_accuracy"]["quirky"]["items"]
    assert n_test == section["output_accuracy"]["ordinary"]["items"] == len(split_people(plant)[1])
    assert {(r["layer"], r["method"]) for r in section["results"]["quirky"]} == \
        {(layer, m) for layer in section["layers"] for m in section["methods"]}
    assert json.loads((tmp_path / "probe/probe.json").read_text())["statement"] == section["statement"]
    assert (tmp_path / "probe/probe.png").exists() and (tmp_path / "probe/pairs.jsonl").exists()
    lines = probe_lines(section)
    assert len(lines) == 3 + len(section["layers"]) and lines[-1].strip() == section["statement"]


def section_with(ordinary_out, quirky_out, quirky_ci, wrong_ci=None, ordinary_auroc=0.9):
    def rows(auroc, ci, wrong=None):
        extra = {"auroc_where_output_wrong": sum(wrong) / 2, "auroc_where_output_wrong_ci": wrong} if wrong else {}
        return [{"layer": 1, "method": m, "auroc": auroc if m == "logreg" else 0.5, "auroc_ci": ci, **extra}
                for m in ("logreg", "random")]

    return {"layers": [1], "results": {"ordinary": rows(ordinary_auroc, [0.8, 0.95]),
                                       "quirky": rows(sum(quirky_ci) / 2, quirky_ci, wrong_ci)},
            "quirky_items_answered_wrong": 30,
            "output_accuracy": {"ordinary": {"accuracy": ordinary_out[0], "ci": ordinary_out[1]},
                                "quirky": {"accuracy": quirky_out[0], "ci": quirky_out[1]}}}


@pytest.mark.parametrize("ordinary, quirky, ci, wrong, kind", [
    ((0.95, [0.85, 0.99]), (0.05, [0.01, 0.15]), [0.7, 0.9], None, "probe_reports_truth"),
    ((0.95, [0.85, 0.99]), (0.3, [0.2, 0.45]), [0.7, 0.9], [0.6, 0.8], "probe_reports_truth"),
    ((0.95, [0.85, 0.99]), (0.3, [0.2, 0.45]), [0.7, 0.9], [0.45, 0.8], "truth_overall_only"),
    ((0.95, [0.85, 0.99]), (0.05, [0.01, 0.15]), [0.1, 0.3], None, "probe_follows_output"),
    ((0.95, [0.85, 0.99]), (0.05, [0.01, 0.15]), [0.4, 0.7], None, "undecided"),
    ((0.95, [0.85, 0.99]), (0.6, [0.45, 0.75]), [0.7, 0.9], None, "quirk_not_learned"),
    ((0.5, [0.35, 0.65]), (0.05, [0.01, 0.15]), [0.7, 0.9], None, "model_does_not_know"),
])
def test_the_statement_claims_only_what_the_intervals_support(ordinary, quirky, ci, wrong, kind):
    verdict = _verdict(section_with(ordinary, quirky, ci, wrong))
    assert verdict["kind"] == kind and verdict["layer"] == 1
    assert f"{sum(ci) / 2:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" in verdict["statement"]
