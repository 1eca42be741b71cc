"""The command line end to end, as a script would call it: JSON formats, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import brute_count, brute_occurrences, generated_documents, word_tokenizer, write_jsonl


def run(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "seethrough.cli.app", *map(str, args)], capture_output=True,
                            text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_build_and_query_through_the_cli(tmp_path):
    tok = word_tokenizer(tmp_path / "tokenizer.json")
    docs = generated_documents(seed=21, n_docs=120)
    write_jsonl(tmp_path / "d.jsonl", docs, source="test")
    built = json.loads(run("corpus", "build", tmp_path / "d.jsonl", "--tokenizer", tok, "--out", tmp_path / "c",
                           "--shard-tokens", "1000", "--json").stdout)
    assert built["documents"] == 120 and built["shards"] > 1
    run("index", "build", tmp_path / "c")
    from seethrough.corpus import load_tokenizer

    encode = load_tokenizer(tok).encode
    token_docs = [encode(d) for d in docs]

    # count: TEXT, --ids, --queries; one JSON object per line, in order
    line = json.loads(run("count", tmp_path / "c", "dog ran to the café", "--json", "--doc-freq").stdout)
    ids = encode("dog ran to the café")
    assert line == {"count": brute_count(token_docs, ids), "ids": ids, "text": "dog ran to the café",
                    "doc_freq": len({d for d, _ in brute_occurrences(token_docs, ids)})}
    assert json.loads(run("count", tmp_path / "c", "--ids", "0 1", "--json").stdout) == {
        "count": brute_count(token_docs, [0, 1]), "ids": [0, 1]}
    (tmp_path / "q.jsonl").write_text('{"text": "the cat"}\n{"ids": [2, 3, 4]}\n{"ids": [5]}\n')
    lines = [json.loads(x) for x in run("count", tmp_path / "c", "--queries", tmp_path / "q.jsonl", "--json").stdout.splitlines()]
    assert [x["count"] for x in lines] == [brute_count(token_docs, q) for q in [encode("the cat"), [2, 3, 4], [5]]]

    found = json.loads(run("find", tmp_path / "c", "--ids", "0 1", "--limit", "4", "--json").stdout)
    occurrences = brute_occurrences(token_docs, [0, 1])
    assert found["count"] == len(occurrences)
    assert [(m["doc"], m["position"]) for m in found["matches"]] == occurrences[:4]
    assert all(m["metadata"] == {"n": m["doc"], "source": "test"} and "snippet" in m for m in found["matches"])

    spans = json.loads(run("spans", tmp_path / "c", docs[3] + " [UNK]", "--json").stdout)
    assert spans["spans"][0]["start"] == 0 and spans["spans"][0]["end"] == len(token_docs[3])
    ntd = json.loads(run("ntd", tmp_path / "c", "--ids", "0", "--json").stdout)
    assert ntd["prompt_count"] == brute_count(token_docs, [0])
    search = json.loads(run("search", tmp_path / "c", "the AND cat OR dog", "--json").stdout)
    assert search["approx"] is False and search["count"] >= search["documents"] > 0
    prob = json.loads(run("prob", tmp_path / "c", "--ids", "0 1", "--json").stdout)
    assert prob["count"] == brute_count(token_docs, [0, 1]) and prob["prompt_count"] == brute_count(token_docs, [0])
    assert "ok" in run("corpus", "verify", tmp_path / "c").stdout
    doc = json.loads(run("document", tmp_path / "c", "7", "--json").stdout)
    assert doc["text"] == docs[7] and doc["token_ids"] == token_docs[7]


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    result = run("count", tmp_path / "missing", "x", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr
    tok = word_tokenizer(tmp_path / "tokenizer.json")
    write_jsonl(tmp_path / "d.jsonl", ["the cat"])
    run("corpus", "build", tmp_path / "d.jsonl", "--tokenizer", tok, "--out", tmp_path / "c")
    result = run("count", tmp_path / "c", "the", check=False)
    assert result.returncode == 2 and "seethrough index build" in result.stderr
    run("index", "build", tmp_path / "c")
    for args, message in [(["--ids", "1 x"], "not a list of integers"), (["--ids", "70000"], "outside the vocabulary"),
                          ([], "exactly one of them")]:
        result = run("count", tmp_path / "c", *args, check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert result.stderr.strip().count("\n") == 0
    result = run("corpus", "build", tmp_path / "d.jsonl", "--tokenizer", tok, "--out", tmp_path / "c", check=False)
    assert result.returncode == 2 and "--overwrite" in result.stderr
