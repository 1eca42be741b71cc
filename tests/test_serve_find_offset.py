"""The engine's find with ``offset=`` and ``exclude_documents=`` (what the explorer's takedown list pages
through) against brute force over the documents' token lists of the 3-shard word corpus (tests/conftest.py)."""

from __future__ import annotations

import random

import pytest

from conftest import brute_occurrences


def _queries(corpus, token_docs):
    rng = random.Random(4)
    docs = [d for d in token_docs if len(d) >= 3]
    cut = [d[s:s + n] for d in rng.sample(docs, 12) for n in (1, 2) for s in [rng.randrange(len(d) - n + 1)]]
    return [[0], [0, 1], corpus.encode("dog ran to the café").tolist(), *cut]


def test_find_pages_with_offset_equal_brute_force(word_corpus):
    corpus, token_docs, _ = word_corpus
    for q in _queries(corpus, token_docs):
        places = brute_occurrences(token_docs, q)
        for offset in (0, 1, 5, len(places) - 1, len(places), len(places) + 3):
            for limit in (0, 1, 4, 50):
                result = corpus.find(q, limit=limit, context=2, offset=max(offset, 0))
                assert result.count == len(places) and result.excluded is None
                assert [(m.doc, m.position) for m in result.matches] == places[max(offset, 0):max(offset, 0) + limit]
        many = corpus.find_many([q, [0]], limit=3, offset=2)
        assert [(m.doc, m.position) for m in many[0].matches] == places[2:5]


def test_find_excluding_documents_lists_and_numbers_only_the_others(word_corpus):
    corpus, token_docs, _ = word_corpus
    rng = random.Random(9)
    for q in _queries(corpus, token_docs):
        places = brute_occurrences(token_docs, q)
        holding = sorted({d for d, _ in places})
        for excluded in ([], holding[:1], holding[::2], holding, rng.sample(range(len(token_docs)), 40)):
            visible = [(d, p) for d, p in places if d not in set(excluded)]
            for offset, limit in ((0, 10), (0, 1000), (3, 4), (len(visible), 5), (len(visible) - 1, 5)):
                offset = max(offset, 0)
                result = corpus.find(q, limit=limit, context=3, offset=offset, exclude_documents=excluded)
                assert (result.count, result.excluded) == (len(places), len(places) - len(visible))
                assert [(m.doc, m.position) for m in result.matches] == visible[offset:offset + limit]
                for m in result.matches:  # each match is the plain find's match at that place
                    doc = token_docs[m.doc]
                    assert m.snippet_ids == doc[max(0, m.position - 3):m.position + len(q) + 3]
        assert corpus.find(q, exclude_documents=[]).to_dict() == {**corpus.find(q).to_dict(), "excluded": 0}


def test_find_refuses_a_bad_page_or_document(word_corpus):
    from seethrough.errors import QueryError

    corpus, _, _ = word_corpus
    with pytest.raises(QueryError, match="--offset must be 0 or more"):
        corpus.find([0], offset=-1)
    with pytest.raises(QueryError, match="document .* does not exist"):
        corpus.find([0], exclude_documents=[corpus.num_documents])
    with pytest.raises(QueryError, match="document -1 does not exist"):
        corpus.find([0], exclude_documents=[-1])
