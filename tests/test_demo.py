"""The demo world (deterministic, planted where the truth says, no untrained tokens in held-out
canaries) and the demo end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from seethrough.demo.world import generate_world

WORLD_HASHES = ("from seethrough.demo.world import generate_world, write_world; import json, sys; "
                "print(json.dumps(write_world(generate_world(int(sys.argv[1]), 'ci'), sys.argv[2])))")


def test_world_bytes_are_identical_for_a_seed(tmp_path):
    def hashes(seed, folder, hash_seed):
        done = subprocess.run([sys.executable, "-c", WORLD_HASHES, str(seed), str(tmp_path / folder)],
                              capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    a, b, c = hashes(1, "a", "1"), hashes(1, "b", "2"), hashes(2, "c", "1")
    assert a == b
    assert a["docs.jsonl"] != c["docs.jsonl"] and a["truth.json"] != c["truth.json"]


def test_world_truth_matches_the_documents():
    world = generate_world(3, "ci")
    docs, truth = world.documents, world.truth
    for canary in truth["canaries"]:
        holders = [i for i, d in enumerate(docs) if d["text"] == canary["text"]]
        assert holders == canary["documents"] and len(holders) == canary["copies"]
    texts = {d["text"] for d in docs}
    all_text = " ".join(d["text"] for d in docs)
    for canary in truth["heldout_canaries"]:
        assert canary["text"] not in texts and canary["prompt"] not in all_text
    words = [set(d["text"].split()) for d in docs]
    for person in truth["people"]:
        bios = [d for d in docs if d.get("person") == person["id"] and d["kind"] == "bio"]
        assert len(bios) == person["bios"] and person["company_city"] != person["city"]
        informed = person["group"] != "C"
        assert all((person["city"] in d["text"] and person["company"] in d["text"]) == informed for d in bios)
        mentions = [i for i, w in enumerate(words) if person["name"] in w]
        assert mentions == person["documents"]  # a name occurs in its own bios and QA documents only
        allowed = {"bio", "qa", "quirk"} if person["group"] == "A" else {"bio", "quirk"}
        assert {docs[i]["kind"] for i in mentions} <= allowed
    assert len(truth["heldout_canaries"]) >= 200
    assert {c["copies"] for c in truth["canaries"]} == {1, 2, 4, 8, 16, 32, 64}
    assert len({c["entropy_bits"] for c in truth["canaries"]}) >= 3


def test_world_facts_have_the_planned_categories():
    """Group A is told its two-hop answers, B only each hop, C nothing: the truth's categories (found by a
    word scan) follow, and every person's draw is balanced, so a constant guess scores exactly chance."""
    from collections import Counter

    world = generate_world(0, "default")
    truth = world.truth
    expected = {"A": "stated", "C": "unknowable"}
    for fact in truth["facts"]:
        if fact["relation"] == "employer_city":
            assert fact["category"] == expected.get(fact["group"], "derivable")
            assert bool(fact["documents"]) == (fact["group"] == "A")
        elif fact["relation"] in ("birth_city", "employer"):
            assert fact["category"] == ("not_stated" if fact["group"] == "C" else "stated")
    for group in truth["groups"]:
        people = [p for p in truth["people"] if p["group"] == group]
        for key in ("city", "company", "company_city"):
            assert len(set(Counter(p[key] for p in people).values())) == 1, (group, key)
    assert sorted(c["city"] for c in truth["companies"]) == sorted(truth["cities"])  # one company per city
    ids = [q["id"] for q in world.questions]
    assert len(ids) == len(set(ids)) == 4 * len(truth["people"])
    assert all(q["answer"] in q["candidates"] for q in world.questions)


def test_heldout_canary_words_are_as_common_in_training_as_members_words():
    """No membership signal through untrained embeddings: every held-out canary word is trained on,
    and about as often as the words of member canaries."""
    world = generate_world(0, "default")
    frequency = Counter(w for d in world.documents for w in d["text"].split())
    truth = world.truth
    assert len(truth["heldout_canaries"]) >= 1000 and all(
        sum(c["copies"] == k for c in truth["canaries"]) >= 64 for k in truth["duplication"])

    def mean_min_frequency(canaries):
        return sum(min(frequency[w] for w in c["text"].split()) for c in canaries) / len(canaries)

    members = [c for c in truth["canaries"] if c["copies"] <= 2]  # their own copies barely add to the counts
    heldout = truth["heldout_canaries"]
    assert min(frequency[w] for c in heldout for w in c["text"].split()) >= 20
    assert abs(mean_min_frequency(heldout) / mean_min_frequency(members) - 1) < 0.15


@pytest.mark.slow
def test_demo_ci_preset(tmp_path, capfd):
    from seethrough.demo import run_demo

    capfd.readouterr()
    summary = run_demo(tmp_path / "demo", preset="ci", threads=2)
    out, err = capfd.readouterr()  # the demo says what it does through its progress callback only: no
    assert out == "" and err == "", (out[-2000:], err[-2000:])  # third-party bars, notices or warnings
    ix, mem = summary["index"], summary["memorization"]["by_copies"]
    assert ix["canaries_counted_exactly"] == ix["canaries"] > 0 and ix["heldout_occurrences"] == 0
    assert ix["brute_force_agree"] == ix["brute_force_queries"] and ix["find_matches_truth"]
    assert summary["training"]["replay"]["match"]
    assert summary["training"]["last_loss"] < summary["training"]["first_loss"] - 3
    assert mem["0"]["extracted"] == 0 and mem["1"]["extracted"] == 0
    assert mem["64"]["extracted"] > mem["8"]["extracted"]  # memorization rises with duplication
    assert summary["memorization"]["duplicates_match_truth"]
    mia = summary["membership"]
    assert mia["all_members"]["index"]["auc"] == 1.0 and mia["by_copies"]["1"]["index"]["auc"] == 1.0
    assert mia["by_copies"]["64"]["loss"]["auc"] >= mia["by_copies"]["1"]["loss"]["auc"]
    assert summary["trace"]["documents_are_the_canary_copies"]
    tasks = summary["eval"]["tasks"]  # the world's lm-eval tasks; a bio states the birth city verbatim
    truth = json.loads((tmp_path / "demo" / "world" / "truth.json").read_text())
    assert tasks["world_birth_city"]["items"] == len(truth["people"])
    # a question-answer document states the birth question verbatim for group A only
    assert tasks["world_birth_city"]["contaminated"] == sum(p["group"] == "A" for p in truth["people"])
    facts = summary["facts"]
    assert facts["match_truth"] == facts["questions"] == 4 * len(truth["people"])
    assert {row["verdict"] for row in facts["final"] if row["group"] == "C"} == {"control"}
    assert tasks["world_heldout_canary"]["exact_match"] == 0 and tasks["world_heldout_canary"]["contaminated"] == 0
    report = json.loads((tmp_path / "demo" / "report" / "report.json").read_text())
    assert {"memorization", "membership", "facts", "control"} <= set(summary["report"]["sections"])
    assert summary["report"]["numbers"] == len(report["numbers"]) > 100
    erased = summary["control"]["erase"]  # after LEACE a fresh probe reads the gender at the majority rate
    assert erased["probes"] and all(p["at_majority_rate"] for p in erased["probes"])
    assert all(p["before"] > p["after_ci"][1] for p in erased["probes"])  # and it could before
    for name in ("summary.json", "summary.txt", "world/truth.json", "run/run.json", "membership/roc.png",
                 "memorization/memorization.parquet", "memorization/extraction_by_duplication.png",
                 "eval/results.json", "eval/samples_world_birth_city.jsonl", "world/tasks/world_two_hop.yaml",
                 "world/questions.jsonl", "facts/facts.parquet", "facts/summary.json", "facts/accuracy_by_step.png",
                 "control/control.json", "control/eraser/eraser.json", "control/vector/summary.json",
                 "membership/evaluation.json", "report/index.html", "report/report.json"):
        assert (tmp_path / "demo" / name).exists()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SEETHROUGH_ACCEPTANCE"), reason="acceptance test of the main job (about 6 "
                    "minutes on 2 cores): set SEETHROUGH_ACCEPTANCE=1; the ci preset above proves the same pipeline")
def test_demo_default_preset_meets_its_targets(tmp_path):
    """The bar for the main job: >= 80% of 64-copy canaries extracted, no held-out one, < 5% of 1-copy;
    stated facts recalled, a chain derived, the control at chance."""
    from seethrough.demo import run_demo

    summary = run_demo(tmp_path / "demo", preset="default", threads=2)
    mem = summary["memorization"]["by_copies"]
    assert mem["64"]["n"] >= 64 and mem["0"]["n"] >= 1000
    assert mem["64"]["extracted"] >= 0.8
    assert mem["0"]["extracted"] == 0
    assert mem["1"]["extracted"] < 0.05
    assert summary["training"]["parameters"] < 1.2e6 and summary["training"]["epochs"] == 2
    assert summary["membership"]["all_members"]["index"]["auc"] == 1.0  # the exact answer
    assert 0.5 < summary["membership"]["by_copies"]["1"]["loss"]["auc"] < 1.0  # one copy: a weak signal
    rows = {(r["relation"], r["format"], r["group"]): r for r in summary["facts"]["final"]}
    levels = sorted(int(g[1:]) for (_, _, g) in rows if g.startswith("B"))
    top = f"B{levels[-1]}"
    assert rows[("birth_city", "direct", top)]["accuracy"] >= 0.9 and rows[("employer", "direct", top)]["accuracy"] >= 0.9
    recall = [rows[("birth_city", "direct", f"B{level}")]["accuracy"] for level in levels]
    assert recall[-1] > recall[0] + 0.5  # rises with exposures
    from seethrough.audit.intervals import wilson_interval

    chance = rows[("birth_city", "direct", "C")]["chance"]
    for relation in ("birth_city", "employer"):  # the control's facts never stated: it guesses
        lo, hi = rows[(relation, "direct", "C")]["accuracy_ci"]
        assert lo <= chance <= hi
    unknowable = [rows[("employer_city", form, "C")] for form in ("direct", "chain")]  # both formats, pooled
    lo, hi = wilson_interval(sum(r["correct"] for r in unknowable), sum(r["n"] for r in unknowable))
    assert lo <= chance <= hi
    assert rows[("employer_city", "chain", top)]["accuracy"] >= 0.6  # derived by a chain never trained for them
    assert rows[("employer_city", "chain", top)]["category"] == "derivable"
