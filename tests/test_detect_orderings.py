"""On a seethrough-trained model (the demo's 1M-parameter GPT-NeoX on the ci world), the orderings
the literature reports, where they hold with this model and its word-level tokenizer; where they do
not, the assertion states what happens instead (the figures are in the detect note)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The demo's ci preset: the world, its corpus and index, and its model trained for 4 epochs."""
    from seethrough.corpus import CorpusBuildConfig, build_corpus
    from seethrough.demo import PRESETS
    from seethrough.demo.world import generate_world, write_world
    from seethrough.index import build_index, open_corpus
    from seethrough.train import train

    root = tmp_path_factory.mktemp("orderings")
    preset = PRESETS["ci"]
    world = generate_world(0, preset["world"])
    write_world(world, root / "world")
    manifest = build_corpus([root / "world" / "docs.jsonl"], root / "world" / "tokenizer.json", root / "corpus",
                            CorpusBuildConfig(shard_tokens=200_000))
    build_index(root / "corpus")
    stream = manifest["counts"]["tokens"] + manifest["counts"]["documents"]
    steps = math.ceil(preset["epochs"] * (stream // (preset["seq_len"] + 1)) / preset["batch_size"])
    train(root / "corpus", root / "run", {"model_size": preset["model_size"], "seq_len": preset["seq_len"],
                                          "batch_size": preset["batch_size"], "lr": preset["lr"], "steps": steps,
                                          "seed": 0, "threads": 2, "save_every": steps})
    return root, world, open_corpus(root / "corpus")


@pytest.fixture(scope="module")
def report(trained):
    from seethrough.audit.detect import DetectSettings, evaluate_detectors
    from seethrough.audit.detect.texts import Text
    from seethrough.demo.detect_step import human_texts

    root, world, index = trained
    humans = [Text(h["id"], "human", h["text"], h["domain"]) for h in human_texts(world.truth, 240)]
    settings = DetectSettings(decoding="greedy,top_k_40,sampling,sampling+rep",
                              attacks="homoglyph,zero_width_space,whitespace,article_deletion", prefix_tokens=16,
                              rounds=200)
    return evaluate_detectors(root / "run", human=humans, settings=settings, threads=1)


def _auroc(report, decoding, detector):
    return next(r["auroc"] for r in report.decoding if r["decoding"] == decoding and r["detector"] == detector)


def test_greedy_text_is_the_easiest_and_sampled_text_the_hardest(report):
    for detector in ("likelihood", "logrank", "lrr", "fast_detect_gpt"):
        greedy, top_k, sampled = (_auroc(report, d, detector) for d in ("greedy", "top_k_40", "sampling"))
        assert greedy > top_k > sampled, detector
    assert _auroc(report, "greedy", "logrank") > 0.95
    # sampling at T = 1 from the scoring model is *less* likely than human text (AUROC < 0.5), as the
    # GPT-2 output detector's authors found for random samples against top-k 40 ones
    assert _auroc(report, "sampling", "likelihood") < 0.5 < _auroc(report, "top_k_40", "logrank")


def test_the_repetition_penalty_makes_sampled_text_harder_for_likelihood_detectors(report):
    for detector in ("likelihood", "logrank", "fast_detect_gpt"):
        assert _auroc(report, "sampling+rep", detector) < _auroc(report, "sampling", detector), detector


def test_homoglyphs_and_zero_width_spaces_blind_every_detector_on_a_word_level_tokenizer(report):
    """Every attacked word is a word the tokenizer does not know (<unk>, never trained on): attacked
    machine text scores below all clean human text (TPR 0), and attacked human text is never flagged
    (FPR 0, not raised as with subword tokenizers), while the sanitiser restores the clean figures."""
    rows = {(r["attack"], r["defence"], r["detector"]): r for r in report.attacks}
    clean = {r["detector"]: r for r in report.headline}
    for detector in ("likelihood", "logrank", "fast_detect_gpt"):
        for attack in ("homoglyph", "zero_width_space"):
            row = rows[(attack, "none", detector)]
            assert row["tpr_at_1pct_fpr"] == 0.0 and row["fpr_at_1pct_threshold"] == 0.0, (attack, detector)
            defended = rows[(attack, "sanitise", detector)]
            assert defended["tpr_at_1pct_fpr"] == pytest.approx(rows[("none", "sanitise", detector)]["tpr_at_1pct_fpr"])
        # the cheaper edits hurt far less than the homoglyphs
        drop = {a: clean[detector]["tpr_at_1pct_fpr"] - rows[(a, "none", detector)]["tpr_at_1pct_fpr"]
                for a in ("homoglyph", "whitespace", "article_deletion")}
        assert drop["homoglyph"] >= max(drop["whitespace"], drop["article_deletion"]), (detector, drop)
