"""Refusals: each a one-line SeethroughError naming the problem and the fix; artefacts left intact."""

from __future__ import annotations

import shutil

import pytest

from conftest import bpe_tokenizer, generated_documents, word_tokenizer, write_jsonl
from seethrough import (CorpusError, IndexNotBuiltError, QueryError, TokenizerError, build_corpus, build_index,
                        open_corpus)


@pytest.fixture
def built(tmp_path):
    tok = word_tokenizer(tmp_path / "tokenizer.json")
    write_jsonl(tmp_path / "d.jsonl", generated_documents(seed=11, n_docs=60))
    build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    build_index(tmp_path / "c")
    return tmp_path


def _one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_query_errors(built):
    corpus = open_corpus(built / "c")
    with pytest.raises(QueryError) as e:
        corpus.count([])
    assert "empty query" in _one_line(e)
    with pytest.raises(QueryError, match="empty query"):
        corpus.count("")
    with pytest.raises(QueryError, match=r"token id 99999 is outside the vocabulary \(0\.\.24\)"):
        corpus.count([1, 99999])
    with pytest.raises(QueryError, match="outside the vocabulary"):
        corpus.count([-1])
    with pytest.raises(QueryError, match="over the limit of 100000"):
        corpus.count([1] * 100_001)
    with pytest.raises(QueryError, match="neither text nor"):
        corpus.count([["x"]])


def test_tokenizer_mismatch(built):
    other = bpe_tokenizer(built / "other.json", ["some other text entirely"] * 10, vocab=300)
    with pytest.raises(TokenizerError) as e:
        open_corpus(built / "c", tokenizer=other)
    assert "is not the one corpus" in _one_line(e)
    open_corpus(built / "c", tokenizer=built / "tokenizer.json")  # the same one is fine


def test_index_missing_or_from_another_corpus(built, tmp_path):
    tok = built / "tokenizer.json"
    write_jsonl(tmp_path / "e.jsonl", generated_documents(seed=12, n_docs=60))
    build_corpus([tmp_path / "e.jsonl"], tok, tmp_path / "other")
    with pytest.raises(IndexNotBuiltError, match="run `seethrough index build"):
        open_corpus(tmp_path / "other").count([1])
    build_index(tmp_path / "other")
    # swap in the other corpus's index: refused by the corpus hash it records
    shutil.copy(built / "c" / "index.json", tmp_path / "other" / "index.json")
    shutil.copy(built / "c" / "table.0", tmp_path / "other" / "table.0")
    with pytest.raises(IndexNotBuiltError) as e:
        open_corpus(tmp_path / "other").count([1])
    assert "built on another corpus" in _one_line(e)
    # a rebuild repairs it
    build_index(tmp_path / "other")
    repaired = open_corpus(tmp_path / "other")
    tokens = [repaired.corpus.document_tokens(i).tolist() for i in range(repaired.num_documents)]
    assert repaired.count([1]) == sum(doc.count(1) for doc in tokens) > 0  # its own table again, counting exactly


def test_truncated_and_corrupted_shards(built):
    corpus_dir = built / "c"
    open_corpus(corpus_dir).count([1])  # stamps the files as verified
    original = (corpus_dir / "tokenized.0").read_bytes()
    (corpus_dir / "tokenized.0").write_bytes(original[:-2])
    with pytest.raises(CorpusError) as e:
        open_corpus(corpus_dir)
    assert "truncated" in _one_line(e)
    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0x01
    (corpus_dir / "tokenized.0").write_bytes(bytes(corrupted))
    with pytest.raises(CorpusError, match="does not match its sha256"):
        open_corpus(corpus_dir)
    (corpus_dir / "tokenized.0").write_bytes(original)
    open_corpus(corpus_dir).count([1])
    table = (corpus_dir / "table.0").read_bytes()
    (corpus_dir / "table.0").write_bytes(table[:7] + bytes([table[7] ^ 0xFF]) + table[8:])
    with pytest.raises(CorpusError, match="table.0 does not match its sha256"):
        open_corpus(corpus_dir).count([1])


def test_verify_rehashes_everything(built):
    from seethrough.index import verify

    report = verify(built / "c")
    assert report["index"] and "table.0" in report["files_checked"] and "tokenized.0" in report["files_checked"]
    path = built / "c" / "metadata.0"
    data = bytearray(path.read_bytes())
    data[3] ^= 0x20
    stat = path.stat()
    path.write_bytes(bytes(data))
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: only a full hash sees it
    with pytest.raises(CorpusError, match="metadata.0 does not match its sha256"):
        verify(built / "c")


def test_interrupted_index_build_resumes(built, monkeypatch):
    """A failure after the first shard keeps it; the rerun builds only what is missing."""
    from seethrough.corpus import CorpusBuildConfig
    from seethrough.index import build as index_build

    tok = built / "tokenizer.json"
    build_corpus([built / "d.jsonl"], tok, built / "s", CorpusBuildConfig(shard_tokens=200))
    calls = []
    real = index_build.sha256_file

    def failing(path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(index_build, "sha256_file", failing)
    with pytest.raises(KeyboardInterrupt):
        build_index(built / "s")
    monkeypatch.setattr(index_build, "sha256_file", real)
    manifest = index_build.read_index_manifest(built / "s")
    assert list(manifest["tables"]) == ["table.0"]
    with pytest.raises(IndexNotBuiltError, match="no complete index"):
        open_corpus(built / "s").count([1])
    built_tables = []
    build_index(built / "s", progress=lambda p: built_tables.append(p.shards_done))
    corpus = open_corpus(built / "s")
    ref = open_corpus(built / "c")
    assert corpus.count_many([[1], [0, 1], [2, 3]]) == ref.count_many([[1], [0, 1], [2, 3]])


def test_memory_budget_is_enforced(built):
    before = {p.name: p.read_bytes() for p in (built / "c").glob("table.*")}
    with pytest.raises(CorpusError, match="raise --memory"):
        build_index(built / "c", memory="1K", force=True)
    with pytest.raises(CorpusError, match="--threads 0 must be at least 1"):
        build_index(built / "c", threads=0, force=True)
    assert before and {p.name: p.read_bytes() for p in (built / "c").glob("table.*")} == before
    assert open_corpus(built / "c").count([1]) > 0  # the existing index is untouched
