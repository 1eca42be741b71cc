"""The demo's detector step on a tiny run: new documents of the world's language, the index check
against brute force, and the summary section."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from seethrough.demo.detect_step import (DECODINGS, HUMAN_TEXTS, MAX_COPIED_SPAN, TOKENS, demo_detect,  # noqa: E402
                                         detect_lines, human_texts)


def test_human_texts_are_new_documents_of_the_worlds_language(world_corpus):
    _, corpus, world, _ = world_corpus
    texts = human_texts(world.truth)
    assert len(texts) == HUMAN_TEXTS and texts == human_texts(world.truth)  # deterministic
    assert {t["domain"] for t in texts} == {"people", "places"}
    tok = corpus.tokenizer
    unknown = tok.tokenizer.token_to_id("<unk>")
    for t, ids in zip(texts, tok.encode_batch([t["text"] for t in texts])):
        assert unknown not in ids  # every word is one the corpus tokenizer knows
        assert TOKENS[0] - 12 <= len(ids) <= TOKENS[1]
    whole = {d["text"] for d in world.documents}
    assert not any(t["text"] in whole for t in texts)


def test_demo_detect_on_a_tiny_run(tiny_run, world_corpus, tmp_path):
    from seethrough.index import open_corpus
    from seethrough.model import resolve_target

    root, corpus, world, docs = world_corpus
    index = open_corpus(root / "corpus")
    section = demo_detect(world.truth, index, resolve_target(tiny_run).last, tmp_path / "detect", threads=1)
    # the index check, against a plain scan of every training document's n-grams
    grams = set()
    for ids in corpus.tokenizer.encode_batch([d["text"] for d in docs]):
        grams.update(tuple(ids[i:i + MAX_COPIED_SPAN]) for i in range(len(ids) - MAX_COPIED_SPAN + 1))
    texts = human_texts(world.truth)
    copied = sum(any(tuple(ids[i:i + MAX_COPIED_SPAN]) in grams for i in range(len(ids) - MAX_COPIED_SPAN + 1))
                 for ids in corpus.tokenizer.encode_batch([t["text"] for t in texts]))
    assert section["humans_refused_by_index"] == copied and section["humans"] == HUMAN_TEXTS - copied
    assert section["machines"] == section["humans"] * len(DECODINGS.split(","))
    assert set(section["by_decoding"]) == set(DECODINGS.split(","))
    assert set(section["attacks"]) == {"none+sanitise", "homoglyph", "homoglyph+sanitise"}
    stored = json.loads((tmp_path / "detect" / "detect.json").read_text())
    assert {r["detector"]: r["auroc"] for r in stored["headline"]} == {k: v["auroc"] for k, v in
                                                                        section["headline"].items()}
    lines = detect_lines(section)
    assert lines[0].startswith(f"detect: {section['humans']} held-out human texts")
    assert any("not estimable" in line for line in lines)  # 0.1% FPR with ~100 calibration humans
    json.dumps(section)  # the summary is plain JSON
