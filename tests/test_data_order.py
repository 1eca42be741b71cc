"""The data order (numpy only): its definition recomputed independently, every token once per epoch,
rows traced back to documents, and "seen before step S" against a brute-force scan of the batches."""

from __future__ import annotations


import numpy as np
import pytest

from seethrough.errors import CorpusError
from seethrough.train.order import DataOrder, OrderSpec, batch_sha256, find_eod_id


def expected_stream(corpus, eod: int) -> np.ndarray:
    """The documented stream, built from the documents one by one."""
    parts = []
    for i in range(corpus.num_documents):
        parts.append([eod])
        parts.append(corpus.document_tokens(i).tolist())
    return np.array([t for p in parts for t in p], dtype=np.int64)


def make_order(corpus, seed=3, seq_len=16, batch_size=5) -> DataOrder:
    spec = OrderSpec(corpus.corpus_hash, seed, seq_len, batch_size, find_eod_id(corpus))
    return DataOrder(corpus, spec)


def test_permutation_follows_the_documented_definition(world_corpus):
    _, corpus, _, _ = world_corpus
    order = make_order(corpus)
    n = order.sequences_per_epoch
    for epoch in (0, 1):
        seeds = np.random.SeedSequence([int(corpus.corpus_hash, 16), 3, 16, epoch])
        keys = np.random.PCG64(seeds).random_raw(n)
        assert np.array_equal(order.permutation(epoch), np.argsort(keys, kind="stable"))
    assert not np.array_equal(order.permutation(0), order.permutation(1))
    assert not np.array_equal(make_order(corpus, seed=4).permutation(0), order.permutation(0))


def test_every_packed_token_once_per_epoch(world_corpus):
    _, corpus, _, _ = world_corpus
    order = make_order(corpus)
    n, row = order.sequences_per_epoch, order.row_len
    stream = expected_stream(corpus, order.spec.eod_id)
    assert n == len(stream) // row
    for epoch in (0, 1):
        steps = range(epoch * n // 5, (epoch + 1) * n // 5 + 1)
        samples = np.concatenate([order.samples_of_step(s) for s in steps])
        samples = samples[(samples >= epoch * n) & (samples < (epoch + 1) * n)]
        rows = order.rows_of_samples(samples)
        assert sorted(rows.tolist()) == list(range(n))  # each row exactly once
        tokens = order.row_tokens(np.sort(rows))
        assert np.array_equal(tokens.reshape(-1), stream[: n * row])  # ... and the rows are the stream


def test_batches_are_rows_of_the_stream_and_independent_of_batch_size(world_corpus):
    _, corpus, _, _ = world_corpus
    stream = expected_stream(corpus, find_eod_id(corpus))
    small, large = make_order(corpus, batch_size=4), make_order(corpus, batch_size=6)
    n, row = small.sequences_per_epoch, small.row_len
    for step in (0, 7, n // 4 + 1):  # the last one straddles two epochs
        batch = small.batch(step)
        assert batch.token_ids.shape == (4, 17)
        for r, s, ids in zip(batch.rows, batch.samples, batch.token_ids):
            assert np.array_equal(ids, stream[r * row:(r + 1) * row])
            assert r == small.permutation(s // n)[s % n]
    first_24 = np.concatenate([small.batch(s).token_ids for s in range(6)])
    assert np.array_equal(first_24, np.concatenate([large.batch(s).token_ids for s in range(4)]))


def test_row_sources_point_at_the_documents(world_corpus):
    _, corpus, _, docs = world_corpus
    order = make_order(corpus)
    batch = order.batch(2)
    for r, ids in zip(batch.rows, batch.token_ids):
        sources = order.row_sources(r)
        assert sources, "every row holds some document"
        covered = 0
        for s in sources:
            assert np.array_equal(ids[s.row_start:s.row_end], corpus.document_tokens(s.doc)[s.doc_start:s.doc_end])
            assert s.metadata["kind"] == docs[s.doc]["kind"]
            covered += s.row_end - s.row_start
        eods = int((ids == order.spec.eod_id).sum())
        assert covered + eods == len(ids)


def test_batch_hash_is_little_endian_int64():
    ids = np.array([[1, 2], [3, 65536]], dtype=np.int32)
    import hashlib

    raw = b"".join(int(v).to_bytes(8, "little", signed=True) for v in [1, 2, 3, 65536])
    assert batch_sha256(ids) == hashlib.sha256(raw).hexdigest()


def test_order_refuses_another_corpus(world_corpus, word_corpus):
    _, corpus, _, _ = world_corpus
    spec = OrderSpec(corpus.corpus_hash, 1, 8, 2, 0)
    with pytest.raises(CorpusError, match="not the corpus"):
        DataOrder(word_corpus[0].corpus, spec)
    with pytest.raises(CorpusError, match="fewer than one row"):
        DataOrder(corpus, OrderSpec(corpus.corpus_hash, 1, 10**9, 2, 0))


def brute_seen(order: DataOrder, ids: list[int], before: int) -> dict[int, int]:
    found: dict[int, int] = {}
    m = len(ids)
    for step in range(before):
        for row in order.batch(step).token_ids.tolist():
            hits = sum(row[i:i + m] == ids for i in range(len(row) - m + 1))
            if hits:
                found[step] = found.get(step, 0) + hits
    return found


@pytest.mark.parametrize("use_index", [True, False])
def test_seen_before_step_matches_a_scan_of_the_batches(world_corpus, tmp_path, use_index):
    from seethrough.audit.seen import seen_before
    from seethrough.train.run import Run

    root, corpus, world, docs = world_corpus
    order = make_order(corpus, seq_len=32, batch_size=4)
    if not use_index:  # a copy of the corpus without its suffix arrays takes the scanning path
        import shutil

        shutil.copytree(root / "corpus", tmp_path / "corpus", ignore=shutil.ignore_patterns("table.*", "index.json"))
        from seethrough import open_token_corpus

        corpus = open_token_corpus(tmp_path / "corpus")
        order = DataOrder(corpus, order.spec)
    steps_total = 2 * order.sequences_per_epoch // 4 + 3  # beyond two epochs
    # a run that has trained (and is configured for) steps_total steps: seen_before refuses steps past that
    run = Run(tmp_path, {"checkpoints": [{"step": steps_total}], "config": {"steps": steps_total}}, corpus, order)
    canary = next(d["text"] for d in docs if d["kind"] == "canary" and d["canary"] < 16 * 6)
    for query in (canary.split()[3:9], ["."], canary.split()[:2]):
        ids = corpus.require_tokenizer().encode(" ".join(query))
        for before in (0, 17, steps_total):
            result = seen_before(run, ids, before)
            expected = brute_seen(order, ids, before)
            assert result.steps == expected
            assert result.count == sum(expected.values())
            assert result.first_step == (min(expected) if expected else None)
            assert result.method == ("index" if use_index else "scan")
