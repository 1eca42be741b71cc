"""infini-gram's own indexer and engine (PyPI ``infini-gram``) against seethrough, on the same shards."""

from __future__ import annotations

import random
import resource
import shutil
import subprocess
import sys

import pytest

from conftest import brute_count

infini_gram = pytest.importorskip("infini_gram.engine")


@pytest.fixture(scope="module")
def infinigram_folder(word_corpus, tmp_path_factory):
    """The word corpus's shard files, suffix arrays built by infini-gram's indexer (Rust binary)."""
    corpus, _, _ = word_corpus
    folder = tmp_path_factory.mktemp("infinigram").resolve()
    shards = len(corpus.corpus.shards)
    for shard in range(shards):
        for kind in ("tokenized", "offset", "metadata", "metaoff"):
            shutil.copy(corpus.path / f"{kind}.{shard}", folder / f"{kind}.{shard}")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    ulimit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    empty = tmp_path_factory.mktemp("nothing").resolve()
    # --cpus 1: with 2 workers its indexer duplicates suffixes of shards under 100 kB (its HACK overlap)
    subprocess.run([sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(empty), "--save_dir", str(folder),
                    "--temp_dir", str(folder / "tmp"), "--token_dtype", "u16", "--cpus", "1", "--mem", "1",
                    "--shards", str(shards), "--ulimit", str(ulimit)], check=True, capture_output=True)
    shutil.rmtree(folder / "tmp", ignore_errors=True)
    return folder


def test_tables_are_byte_identical(word_corpus, infinigram_folder):
    corpus, _, _ = word_corpus
    for shard in corpus.corpus.shards:
        ours = (corpus.path / f"table.{shard.number}").read_bytes()
        theirs = (infinigram_folder / f"table.{shard.number}").read_bytes()
        assert len(ours) == len(theirs) > 0
        assert ours == theirs


def test_infinigram_folder_opens_and_answers_like_both_engines(word_corpus, infinigram_folder):
    import seethrough

    ours, token_docs, _ = word_corpus
    foreign = seethrough.open_corpus(infinigram_folder, tokenizer=ours.path / "tokenizer.json")
    assert foreign.corpus.foreign and foreign.corpus.token_dtype == "uint16"
    assert foreign.num_documents == ours.num_documents and foreign.num_tokens == ours.num_tokens
    engine = infini_gram.InfiniGramEngine(index_dir=str(infinigram_folder), eos_token_id=0, version=4,
                                          token_dtype="u16")
    rng = random.Random(0)
    queries = [[rng.randrange(24) for _ in range(rng.randint(1, 4))] for _ in range(200)]
    queries += [d[i:i + 5] for d in token_docs if len(d) > 10 for i in [3]][:50]
    expected = [brute_count(token_docs, q) for q in queries]
    assert foreign.count_many(queries) == expected
    assert [engine.count(input_ids=q)["count"] for q in queries] == expected
    for q in queries[:60]:  # same SA rank ranges, shard by shard
        segments = engine.find(input_ids=q)["segment_by_shard"]
        assert [(int(lo[0]), int(hi[0])) for lo, hi in foreign._ranges([foreign.encode(q)])] == segments
    for q in queries[:60]:
        prompt, nxt = q[:-1], q[-1]
        theirs = engine.infgram_prob(prompt_ids=prompt, cont_id=nxt)
        mine = foreign.infgram_prob(prompt, nxt)
        # an empty prompt counts every token; infini-gram also counts the document separators
        separators = foreign.num_documents if theirs["suffix_len"] == 0 else 0
        assert (mine.prompt_count, mine.count, mine.suffix_len) == (
            theirs["prompt_cnt"] - separators, theirs["cont_cnt"], theirs["suffix_len"])
        if prompt:
            theirs = engine.prob(prompt_ids=prompt, cont_id=nxt)
            mine = foreign.prob(prompt, nxt)
            assert (mine.prompt_count, mine.count, mine.prob) == (theirs["prompt_cnt"], theirs["cont_cnt"], theirs["prob"])
    for d in rng.sample([d for d in token_docs if len(d) > 20], 10):
        text = d[5:20] + [rng.randrange(24) for _ in range(5)]
        lengths, _ = foreign.longest_matches(text)
        assert [i + n for i, n in enumerate(lengths)] == engine.creativity(input_ids=text)["rs"]
    for i in [0, 17, ours.num_documents - 1]:
        assert foreign.document(i).token_ids == ours.document(i).token_ids
        assert foreign.document(i).metadata == ours.document(i).metadata
    assert foreign.find([0, 1], limit=5).to_dict() == ours.find([0, 1], limit=5).to_dict()
