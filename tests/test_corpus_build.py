"""Corpus build: every input format, numbering, metadata, manifest hashes, sharding, bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import generated_documents, word_tokenizer, write_jsonl
from seethrough import CorpusError, InputError, build_corpus
from seethrough.corpus import CorpusBuildConfig, open_token_corpus


@pytest.fixture
def tok(tmp_path):
    return word_tokenizer(tmp_path / "tokenizer.json")


def test_all_input_formats_in_order(tmp_path, tok):
    docs = generated_documents(seed=7, n_docs=40)
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "a.jsonl", docs[:10])
    with gzip.open(src / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        for i, t in enumerate(docs[10:20]):
            handle.write(json.dumps({"text": t, "n": 10 + i}, ensure_ascii=False) + "\n")
    raw = "".join(json.dumps({"text": t, "n": 20 + i}, ensure_ascii=False) + "\n" for i, t in enumerate(docs[20:30]))
    (src / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw.encode("utf-8")))
    pq.write_table(pa.table({"text": docs[30:39], "n": list(range(30, 39))}), src / "d.parquet")
    (src / "e.txt").write_text(docs[39], encoding="utf-8")
    manifest = build_corpus([src], tok, tmp_path / "corpus", CorpusBuildConfig(shard_tokens=200))
    corpus = open_token_corpus(tmp_path / "corpus")
    assert corpus.num_documents == 40 and manifest["counts"]["documents"] == 40
    assert len(corpus.shards) > 1
    for i, text in enumerate(docs):
        doc = corpus.document(i)
        assert doc.text == text
        assert doc.token_ids == corpus.tokenizer.encode(text)
        assert doc.metadata == ({"n": i} if i < 39 else {})
    assert corpus.document(39).path == "e.txt" and corpus.document(0).path == "a.jsonl"
    assert corpus.document(12).line == 3
    # manifest hashes are the files' real sha256
    for shard in manifest["shards"]:
        for name, entry in shard["files"].items():
            data = (tmp_path / "corpus" / name).read_bytes()
            assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    for entry in manifest["inputs"]:
        path = entry["path"]
        assert entry["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert manifest["token_dtype"] == "uint16"
    assert manifest["tokenizer"]["vocab_size"] == corpus.tokenizer.vocab_size


def test_infini_gram_shard_layout(tmp_path, tok):
    docs = ["the cat", "", "a dog ran"]
    write_jsonl(tmp_path / "d.jsonl", docs)
    build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    corpus = open_token_corpus(tmp_path / "c")
    ids = [corpus.tokenizer.encode(d) for d in docs]
    expected = []
    offsets = []
    for d in ids:
        offsets.append(2 * len(expected))
        expected += [0xFFFF] + d
    assert (tmp_path / "c" / "tokenized.0").read_bytes() == np.array(expected, "<u2").tobytes()
    assert (tmp_path / "c" / "offset.0").read_bytes() == np.array(offsets, "<u8").tobytes()
    lines = (tmp_path / "c" / "metadata.0").read_bytes().splitlines(keepends=True)
    assert [json.loads(line)["metadata"] for line in lines] == [{"n": 0}, {"n": 1}, {"n": 2}]
    metaoff = np.frombuffer((tmp_path / "c" / "metaoff.0").read_bytes(), "<u8").tolist()
    assert metaoff == [0, len(lines[0]), len(lines[0]) + len(lines[1])]


def test_same_input_same_corpus_hash(tmp_path, tok):
    write_jsonl(tmp_path / "d.jsonl", generated_documents(seed=3, n_docs=30))
    a = build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "a")
    b = build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "b")
    assert a["corpus_hash"] == b["corpus_hash"]
    write_jsonl(tmp_path / "e.jsonl", generated_documents(seed=4, n_docs=30))
    c = build_corpus([tmp_path / "e.jsonl"], tok, tmp_path / "c")
    assert c["corpus_hash"] != a["corpus_hash"]


def test_malformed_line_stops_or_is_skipped(tmp_path, tok):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "the cat"}\n{"text": broken\n{"txt": "no text"}\n{"text": "a dog"}\n')
    with pytest.raises(InputError, match=r"d\.jsonl:2: not valid JSON.*--on-error skip"):
        build_corpus([path], tok, tmp_path / "c")
    assert not (tmp_path / "c").exists()
    assert not list(tmp_path.glob(".c.building-*"))
    manifest = build_corpus([path], tok, tmp_path / "c", CorpusBuildConfig(on_error="skip"))
    assert manifest["counts"]["documents"] == 2 and manifest["counts"]["skipped_lines"] == 2
    assert "d.jsonl:3: no field 'text'" in manifest["skipped_examples"][1]


def test_missing_text_field_names_the_flag(tmp_path, tok):
    path = tmp_path / "d.jsonl"
    path.write_text('{"body": "the cat"}\n')
    with pytest.raises(InputError, match=r"d\.jsonl:1: no field 'text'; choose the text field with --text-field"):
        build_corpus([path], tok, tmp_path / "c")
    manifest = build_corpus([path], tok, tmp_path / "c", CorpusBuildConfig(text_field="body"))
    assert manifest["counts"]["documents"] == 1


def test_empty_corpus_and_missing_input(tmp_path, tok):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(InputError, match="no documents"):
        build_corpus([tmp_path / "empty.jsonl"], tok, tmp_path / "c")
    with pytest.raises(InputError, match="no such file or folder"):
        build_corpus([tmp_path / "nope.jsonl"], tok, tmp_path / "c")
    with pytest.raises(Exception, match="no tokenizer"):
        build_corpus([tmp_path / "empty.jsonl"], tmp_path / "nope", tmp_path / "c")


def test_existing_output_is_kept_until_the_new_build_completes(tmp_path, tok):
    write_jsonl(tmp_path / "d.jsonl", ["the cat"])
    first = build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    with pytest.raises(CorpusError, match="--overwrite"):
        build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    write_jsonl(tmp_path / "e.jsonl", ["a dog ran"] * 50)

    def interrupt(progress):
        if progress.documents:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_corpus([tmp_path / "e.jsonl"], tok, tmp_path / "c",
                     CorpusBuildConfig(overwrite=True, batch_documents=10), progress=interrupt)
    corpus = open_token_corpus(tmp_path / "c")  # the previous corpus, intact
    assert corpus.corpus_hash == first["corpus_hash"] and corpus.document(0).text == "the cat"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    second = build_corpus([tmp_path / "e.jsonl"], tok, tmp_path / "c", CorpusBuildConfig(overwrite=True))
    assert open_token_corpus(tmp_path / "c").corpus_hash == second["corpus_hash"] != first["corpus_hash"]


def test_shards_never_split_documents(tmp_path, tok):
    docs = generated_documents(seed=9, n_docs=80)
    write_jsonl(tmp_path / "d.jsonl", docs)
    manifest = build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c", CorpusBuildConfig(shard_tokens=100))
    corpus = open_token_corpus(tmp_path / "c")
    assert len(manifest["shards"]) == len(corpus.shards) > 5
    assert sum(s["documents"] for s in manifest["shards"]) == 80
    first = 0
    for shard in manifest["shards"]:
        assert shard["first_document"] == first
        first += shard["documents"]
        # a shard only passes the budget by its last document
        assert shard["tokens"] - len(corpus.document_tokens(first - 1)) < 100 or shard["documents"] == 1
    assert [corpus.document(i).text for i in range(80)] == docs
    assert os.path.exists(tmp_path / "c" / "tokenizer.json")


def test_corpus_hash_does_not_depend_on_where_the_input_lies(tmp_path, tok):
    docs = generated_documents(seed=5, n_docs=20)
    (tmp_path / "x").mkdir()
    (tmp_path / "y" / "deeper").mkdir(parents=True)
    write_jsonl(tmp_path / "x" / "d.jsonl", docs)
    write_jsonl(tmp_path / "y" / "deeper" / "d.jsonl", docs)
    a = build_corpus([tmp_path / "x" / "d.jsonl"], tok, tmp_path / "a")
    b = build_corpus([tmp_path / "y" / "deeper" / "d.jsonl"], tok, tmp_path / "b")
    assert a["corpus_hash"] == b["corpus_hash"]
