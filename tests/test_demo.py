"""The built-in demo, end to end (ci preset): every planted passage counted exactly, spans recovered."""

from __future__ import annotations

import hashlib

import pytest

from seethrough.demo import run_demo
from seethrough.demo.text import generate


def test_generated_text_is_deterministic():
    a, b, c = generate(seed=3, documents=200), generate(seed=3, documents=200), generate(seed=4, documents=200)
    digest = lambda col: hashlib.sha256(repr(col.documents).encode()).hexdigest()  # noqa: E731
    assert digest(a) == digest(b) != digest(c)
    for passage in a.planted:  # planted exactly where the truth says
        holders = [i for i, d in enumerate(a.documents) if passage["text"] in d["text"]]
        assert holders == passage["documents"]


@pytest.mark.slow
def test_demo_ci_preset(tmp_path):
    summary = run_demo(tmp_path / "demo", preset="ci")
    assert summary["planted"]["exact_counts"] == summary["planted"]["passages"] > 0
    assert summary["brute_force"]["agree"] == summary["brute_force"]["queries"]
    assert summary["find"]["documents"] == summary["find"]["planted_documents"]
    assert summary["spans"]["copied_recovered"]
    assert (tmp_path / "demo" / "summary.json").exists() and (tmp_path / "demo" / "world" / "truth.json").exists()
