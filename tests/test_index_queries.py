"""Every query against brute force over the token lists of a generated multi-shard corpus."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from conftest import brute_count, brute_occurrences


def _sample_queries(token_docs, rng, n=150):
    """n-grams cut from documents (they occur), across boundaries (they must not), and random ids."""
    flat_docs = [d for d in token_docs if d]
    queries = []
    for _ in range(n):
        d = rng.choice(flat_docs)
        length = rng.randint(1, min(6, len(d)))
        start = rng.randrange(0, len(d) - length + 1)
        queries.append(d[start:start + length])
    for a, b in zip(token_docs, token_docs[1:]):  # the end of one document + the start of the next
        if a and b:
            queries.append(a[-2:] + b[:2])
        if len(queries) > n + 40:
            break
    vocab = max(max(d) for d in flat_docs) + 1
    queries += [[rng.randrange(vocab) for _ in range(rng.randint(1, 3))] for _ in range(40)]
    return queries


def test_count_matches_brute_force(word_corpus):
    corpus, token_docs, _ = word_corpus
    queries = _sample_queries(token_docs, random.Random(0))
    expected = [brute_count(token_docs, q) for q in queries]
    assert corpus.count_many(queries) == expected
    assert [corpus.count(q) for q in queries[:30]] == expected[:30]
    assert any(e == 0 for e in expected) and any(e > 50 for e in expected)


def test_uncompiled_count_matches_brute_force(word_corpus):
    """The pure-Python byte search (one-off CLI counts) against brute force, uint16 tokens."""
    from seethrough.index import IndexedCorpus

    corpus, token_docs, _ = word_corpus
    plain = IndexedCorpus(corpus.corpus, compiled=False)
    queries = _sample_queries(token_docs, random.Random(2), n=120)
    assert [plain.count(q) for q in queries] == [brute_count(token_docs, q) for q in queries]


def test_count_many_parallel_batch_equals_single(word_corpus):
    corpus, token_docs, _ = word_corpus
    queries = _sample_queries(token_docs, random.Random(1), n=400)  # over the parallel threshold
    assert len(queries) >= 256
    assert corpus.count_many(queries) == [brute_count(token_docs, q) for q in queries]


def test_planted_phrases_and_unicode(word_corpus):
    corpus, token_docs, docs = word_corpus
    for phrase, copies in [("big red house of the naïve cat", 1), ("日本 猫 😀 über ß", 5), ("dog ran to the café", 17)]:
        expected = sum(d.count(phrase) for d in docs)  # text-level count: phrases never overlap here
        assert expected >= copies
        assert corpus.count(phrase) == expected
        assert corpus.doc_freq(phrase) == sum(1 for d in docs if phrase in d)


def test_doc_freq_matches_brute_force(word_corpus):
    corpus, token_docs, _ = word_corpus
    queries = _sample_queries(token_docs, random.Random(2), n=60)
    expected = [len({doc for doc, _ in brute_occurrences(token_docs, q)}) for q in queries]
    assert corpus.doc_freq_many(queries) == expected


@pytest.mark.parametrize("limit", [0, 1, 7, 10_000])
def test_find_lists_first_occurrences_in_corpus_order(word_corpus, limit):
    corpus, token_docs, _ = word_corpus
    for q in ([0], [0, 1], corpus.encode("dog ran to the café").tolist()):
        occurrences = brute_occurrences(token_docs, q)
        result = corpus.find(q, limit=limit, context=3)
        assert result.count == len(occurrences)
        assert [(m.doc, m.position) for m in result.matches] == occurrences[:limit]
        for m in result.matches:
            doc = token_docs[m.doc]
            assert m.snippet_ids[m.match_start:m.match_start + len(q)] == q
            assert m.snippet_ids == doc[max(0, m.position - 3):m.position + len(q) + 3]
            assert m.metadata == {"n": m.doc}
        assert corpus.find(q, limit=limit).to_dict() == corpus.find(q, limit=limit).to_dict()


def _brute_next(token_docs, prompt):
    counts, ends = Counter(), 0
    for d in token_docs:
        for i in range(len(d) - len(prompt) + 1):
            if d[i:i + len(prompt)] == prompt:
                if i + len(prompt) < len(d):
                    counts[d[i + len(prompt)]] += 1
                else:
                    ends += 1
    return dict(counts), ends


def test_ntd_matches_brute_force(word_corpus):
    corpus, token_docs, _ = word_corpus
    rng = random.Random(3)
    prompts = [[0], [0, 1], [5], corpus.encode("dog ran").tolist()] + [
        d[i:i + 2] for d in rng.sample([d for d in token_docs if len(d) > 3], 20) for i in [0]]
    for prompt in prompts:
        counts, ends = _brute_next(token_docs, prompt)
        result = corpus.ntd(prompt)
        assert result.counts == counts, prompt
        assert result.end_of_document == ends
        assert result.prompt_count == brute_count(token_docs, prompt)
    unigram = corpus.ntd([])
    assert unigram.counts == dict(Counter(t for d in token_docs for t in d))
    assert unigram.prompt_count == sum(len(d) for d in token_docs)


def test_prob_and_infgram_prob_match_brute_force(word_corpus):
    corpus, token_docs, _ = word_corpus
    rng = random.Random(4)
    for _ in range(40):
        d = rng.choice([d for d in token_docs if len(d) > 6])
        start = rng.randrange(0, len(d) - 5)
        prompt, nxt = d[start:start + 4], d[start + 4]
        prompt = [rng.randrange(20)] * rng.randint(0, 3) + prompt  # a prefix that may not occur
        full, cont = brute_count(token_docs, prompt), brute_count(token_docs, prompt + [nxt])
        p = corpus.prob(prompt, nxt)
        assert (p.prompt_count, p.count) == (full, cont)
        assert p.prob == (cont / full if full else -1.0)
        # ∞-gram: the longest suffix of the prompt that occurs
        suffix = max(k for k in range(len(prompt) + 1) if k == 0 or brute_count(token_docs, prompt[len(prompt) - k:]) > 0)
        q = corpus.infgram_prob(prompt, nxt)
        sp = prompt[len(prompt) - suffix:]
        assert q.suffix_len == suffix
        assert q.count == brute_count(token_docs, sp + [nxt])
        assert q.prompt_count == (brute_count(token_docs, sp) if sp else sum(len(d) for d in token_docs))


def _brute_longest(token_docs, query):
    lengths, counts = [], []
    for i in range(len(query)):
        best = 0
        while i + best < len(query) and brute_count(token_docs, query[i:i + best + 1]) > 0:
            best += 1
        lengths.append(best)
        counts.append(brute_count(token_docs, query[i:i + best]) if best else 0)
    return lengths, counts


def test_longest_matches_and_maximal_spans(word_corpus):
    corpus, token_docs, _ = word_corpus
    rng = random.Random(5)
    long_doc = max(token_docs, key=len)
    for _ in range(8):
        # a text stitched from real document pieces and random tokens
        query = []
        for _ in range(4):
            d = rng.choice([d for d in token_docs if len(d) > 10])
            s = rng.randrange(0, len(d) - 8)
            query += d[s:s + rng.randint(3, 8)] + [rng.randrange(24)]
        query += long_doc[:25]
        lengths, counts = corpus.longest_matches(query)
        assert (lengths, counts) == _brute_longest(token_docs, query)
        spans = corpus.maximal_spans(query, min_length=2)
        reach, expected = 0, []
        for i, (n, c) in enumerate(zip(lengths, counts)):
            if n >= 2 and i + n > reach:
                expected.append((i, i + n, c))
                reach = i + n
        assert [(s.start, s.end, s.count) for s in spans] == expected
        assert spans[-1].end == len(query) and spans[-1].end - spans[-1].start >= 25


def test_boolean_search_matches_brute_force(word_corpus):
    corpus, token_docs, _ = word_corpus
    cases = [([[[0]], [[1, 2]]], 5), ([[[0, 1], [4]], [[5]], [[7]]], 20), ([[[3]]], 0), ([[[0]], [[0]]], 0),
             ([[[12]], [[15], [16]]], 3)]
    for cnf, window in cases:
        hits = []
        for j, d in enumerate(token_docs):
            starts = [{i for term in clause for i in range(len(d) - len(term) + 1) if d[i:i + len(term)] == term}
                      for clause in cnf]
            for a in sorted(starts[0]):
                if all(any(abs(b - a) <= window for b in other) for other in starts[1:]):
                    hits.append((j, a))
        result = corpus.search(cnf, window=window, limit=5)
        assert result.count == len(hits), cnf
        assert result.documents == len({j for j, _ in hits})
        assert [(m.doc, m.position) for m in result.matches] == hits[:5]
    assert any(corpus.search(c, window=w).count for c, w in cases)


def test_document_roundtrip(word_corpus):
    corpus, token_docs, docs = word_corpus
    for i in [0, 5, 42, len(docs) - 1]:
        doc = corpus.document(i)
        assert doc.token_ids == token_docs[i]
        assert doc.text == docs[i]
        assert doc.metadata == {"n": i}
    assert corpus.num_documents == len(docs)
    assert corpus.num_tokens == sum(len(d) for d in token_docs)


def test_uint32_corpus(tmp_path):
    """A vocabulary over 65535 ids stores uint32 tokens; queries on high ids still count exactly."""
    from conftest import word_tokenizer, write_jsonl
    from seethrough import build_corpus, build_index, open_corpus

    tok = word_tokenizer(tmp_path / "tok.json", extra=70_000)
    rng = random.Random(6)
    words = [f"w{rng.randrange(69_990, 70_000)}" for _ in range(3000)] + ["the", "cat"] * 100
    rng.shuffle(words)
    docs = [" ".join(words[i:i + 50]) for i in range(0, len(words), 50)]
    write_jsonl(tmp_path / "d.jsonl", docs)
    manifest = build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    assert manifest["token_dtype"] == "uint32"
    build_index(tmp_path / "c")
    corpus = open_corpus(tmp_path / "c")
    token_docs = [corpus.tokenizer.encode(d) for d in docs]
    assert max(max(d) for d in token_docs) > 65535
    queries = _sample_queries(token_docs, rng, n=80)
    assert corpus.count_many(queries) == [brute_count(token_docs, q) for q in queries]
    plain = open_corpus(tmp_path / "c", compiled=False)  # the byte search on 4-byte tokens
    assert [plain.count(q) for q in queries] == [brute_count(token_docs, q) for q in queries]
    for prompt in ([token_docs[0][0]], token_docs[1][:2]):
        assert corpus.ntd(prompt).counts == _brute_next(token_docs, prompt)[0]
