"""Bad input at the command line (issue 15's cases that the CLI reads itself): each one line, exit 2,
and every file that was there before left as it was."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from conftest import generated_documents, word_tokenizer, write_jsonl


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from seethrough import build_corpus, build_index

    root = tmp_path_factory.mktemp("cli_bad")
    tok = word_tokenizer(root / "tokenizer.json")
    write_jsonl(root / "d.jsonl", generated_documents(seed=8, n_docs=40))
    build_corpus([root / "d.jsonl"], tok, root / "c")
    build_index(root / "c")
    return root


def _hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(root, *args) -> str:
    before = _hashes(root)
    done = subprocess.run([sys.executable, "-m", "seethrough", *map(str, args)], capture_output=True, text=True,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in done.stderr, done.stderr
    assert _hashes(root) == before
    return lines[0]


def test_query_inputs_the_cli_reads(corpus, tmp_path):
    c = corpus / "c"
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 the dog".encode("latin-1"))
    assert "--file" in refused(corpus, "spans", c, "--file", tmp_path / "latin1.txt") and "not UTF-8" in \
        refused(corpus, "spans", c, "--file", tmp_path / "latin1.txt")
    (tmp_path / "q.jsonl").write_bytes(b'{"text": "the dog"}\n{"text": "caf\xe9"}\n')
    assert "--queries" in refused(corpus, "count", c, "--queries", tmp_path / "q.jsonl")
    (tmp_path / "big.jsonl").write_text('{"ids": [1e300]}\n')
    assert "is not an integer" in refused(corpus, "count", c, "--queries", tmp_path / "big.jsonl")
    (tmp_path / "frac.jsonl").write_text('{"ids": [1.5]}\n')
    assert "is not an integer" in refused(corpus, "count", c, "--queries", tmp_path / "frac.jsonl")
    (tmp_path / "deep.jsonl").write_text('{"ids": ' + "[" * 200_000 + "]" * 200_000 + "}\n")
    assert "nested too deep" in refused(corpus, "count", c, "--queries", tmp_path / "deep.jsonl")
    assert "not a list of integers" in refused(corpus, "count", c, "--ids", "１２")  # full-width digits
    assert "not a list of integers" in refused(corpus, "count", c, "--ids", "1.5")
    assert "AND has no n-gram after it" in refused(corpus, "search", c, "the AND")
    assert "OR has no n-gram before it" in refused(corpus, "search", c, "OR OR")
    assert "parentheses are not supported" in refused(corpus, "search", c, "(the OR dog) AND cat")
    assert "[[[1,2],[3]],[[4]]]" in refused(corpus, "search", c, "--cnf", '{"a": 1}')


def test_audit_settings_out_of_range(corpus, tiny_run, world_corpus):
    root, _, _, _ = world_corpus
    assert "--sample -1" in refused(root, "memorization", tiny_run, "--corpus", root / "corpus", "--sample", "-1")
    assert "--prompt-len" in refused(root, "memorization", tiny_run, "--corpus", root / "corpus", "--prompt-len", "x")
    assert "--checkpoints" in refused(root, "memorization", tiny_run, "--corpus", root / "corpus", "--checkpoints", "9")
    assert "--k" in refused(root, "membership", tiny_run, "--corpus", root / "corpus", "a b", "--k", "0")


def test_lone_surrogates_and_ntd_top(corpus, tmp_path):
    c = corpus / "c"
    (tmp_path / "s.jsonl").write_text('{"text": "the \\ud800 dog"}\n')
    assert "lone surrogate" in refused(corpus, "count", c, "--queries", tmp_path / "s.jsonl")
    assert "--top 0" in refused(corpus, "ntd", c, "the", "--top", "0")
