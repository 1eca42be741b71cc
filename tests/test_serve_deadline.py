"""The engine's per-query deadline (what `seethrough serve` puts on every query): a query past it stops
where the deadline is checked, measured by the work it did (kernel chunks run), not by a clock race;
and the chunked paths a deadline takes answer exactly what the plain paths answer."""

from __future__ import annotations

import pytest

from seethrough.errors import QueryError
from seethrough.index import engine, kernels
from seethrough.index.engine import QueryTimeout, check_deadline, query_deadline


class StepClock:
    """A clock that moves one second each time it is read: a deadline of N.5 s allows N looks."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few ranks, so a query on the tiny corpus takes many of them."""
    monkeypatch.setattr(engine, "LISTING_CHUNK", 16)
    monkeypatch.setattr(engine, "DEADLINE_CHUNK", 64)  # longest matches: 1 start per chunk


def counting(monkeypatch, name: str) -> list[int]:
    """Calls of kernel ``name`` from now on (one entry per call)."""
    calls: list[int] = []
    original = getattr(kernels, name)

    def wrapper(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(kernels, name, wrapper)
    return calls


def test_timeout_is_a_query_error_and_no_deadline_means_no_check():
    assert issubclass(QueryTimeout, QueryError)
    check_deadline()  # outside any deadline: nothing to check, nothing raised
    with pytest.raises(QueryError, match="positive"):
        with query_deadline(0):
            pass


def test_listing_stops_at_its_deadline(word_corpus, small_chunks, monkeypatch):
    index, token_docs, _ = word_corpus
    the = index.encode("the").tolist()
    calls = counting(monkeypatch, "positions")
    full = index.find(the, limit=5)
    unrestricted = len(calls)
    assert full.count > 16 * 20 and unrestricted >= 20  # the listing reads the range in many chunks
    calls.clear()
    with pytest.raises(QueryTimeout, match="deadline of 8.5 s"):
        with query_deadline(8.5, StepClock()) as deadline:
            index.find(the, limit=5)
    # eight looks passed (one per shard for the ranges, one for the listing's first shard, then one per
    # chunk), the ninth stopped it: four chunks of the first shard were read, out of all the chunks
    assert deadline.checks == 9
    assert len(calls) == 4 < unrestricted


def test_next_tokens_longest_matches_and_boolean_stop_at_their_deadline(word_corpus, small_chunks, monkeypatch):
    index, _, _ = word_corpus
    ntd_calls = counting(monkeypatch, "next_token_counts")
    with query_deadline(1e6):
        index.ntd("")  # the empty prompt: every position of every shard, in 64-rank pieces
    unrestricted = len(ntd_calls)
    assert unrestricted >= 30
    ntd_calls.clear()
    with pytest.raises(QueryTimeout), query_deadline(5.5, StepClock()):
        index.ntd("")
    assert len(ntd_calls) <= 5 < unrestricted

    spans = counting(monkeypatch, "longest_matches_from")
    text = " ".join(["the cat sat on the mat and the dog ran"] * 6)
    with query_deadline(1e6):
        index.longest_matches(text)
    unrestricted = len(spans)
    assert unrestricted >= 60  # one start per chunk, in each of the shards
    spans.clear()
    with pytest.raises(QueryTimeout), query_deadline(7.5, StepClock()):
        index.longest_matches(text)
    assert len(spans) <= 7 < unrestricted

    positions = counting(monkeypatch, "positions")
    with query_deadline(1e6):
        index.search([["the"], ["a"]], window=5)
    unrestricted = len(positions)
    positions.clear()
    with pytest.raises(QueryTimeout), query_deadline(4.5, StepClock()):
        index.search([["the"], ["a"]], window=5)
    assert len(positions) <= 4 < unrestricted


def test_a_deadline_in_one_thread_does_not_reach_another(word_corpus):
    """The deadline is a context variable: a server's other worker threads run without it."""
    import threading

    index, _, _ = word_corpus
    seen = []
    with query_deadline(1e-9):
        worker = threading.Thread(target=lambda: seen.append(index.count("the")))
        worker.start()
        worker.join()
        with pytest.raises(QueryTimeout):
            index.count("the")
    assert seen == [index.count("the")]


def test_chunked_paths_answer_as_the_plain_ones(word_corpus, small_chunks):
    """Under a deadline the loops run in pieces; the answers are those of the one-call paths."""
    index, _, docs = word_corpus
    prompts = ["", "the", "big red", "日本 猫", "dog ran to the"]
    texts = [docs[3] + " " + docs[7], "big red house of the naïve cat sat", "the the the"]
    queries = [[["the"], ["a"]], [["big red", "dog"], ["cat", "mat"]], [["日本"]]]
    plain = ([index.ntd(p).to_dict() for p in prompts], [index.longest_matches(t) for t in texts],
             [index.search(q, window=7, limit=50).to_dict() for q in queries],
             [index.find("the", limit=40).to_dict()])
    with query_deadline(1e6):
        chunked = ([index.ntd(p).to_dict() for p in prompts], [index.longest_matches(t) for t in texts],
                   [index.search(q, window=7, limit=50).to_dict() for q in queries],
                   [index.find("the", limit=40).to_dict()])
    assert plain == chunked
