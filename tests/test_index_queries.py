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


# ---- batched forms against brute force, on random corpora ---------------------------------------------
def _ngram_table(token_docs, longest):
    """Plain scan: every n-gram up to ``longest`` tokens inside a document -> (occurrences, documents)."""
    occurrences, documents = Counter(), Counter()
    for d in token_docs:
        seen = set()
        for i in range(len(d)):
            for n in range(1, min(longest, len(d) - i) + 1):
                gram = tuple(d[i:i + n])
                occurrences[gram] += 1
                seen.add(gram)
        documents.update(seen)
    return occurrences, documents


@pytest.fixture(scope="module", params=[7, 8])
def random_corpus(request, tmp_path_factory):
    """Random documents over few words (so long repeats occur), several shards, and their n-gram table."""
    from conftest import WORDS, word_tokenizer, write_jsonl
    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.corpus import CorpusBuildConfig

    rng = random.Random(request.param)
    root = tmp_path_factory.mktemp(f"random{request.param}")
    words = WORDS[:5] + ["日本", "😀"]
    docs = [" ".join(rng.choices(words, k=rng.randint(0, 40))) for _ in range(250)]
    write_jsonl(root / "d.jsonl", docs)
    build_corpus([root / "d.jsonl"], word_tokenizer(root / "tok.json"), root / "c", CorpusBuildConfig(shard_tokens=1500))
    build_index(root / "c")
    corpus = open_corpus(root / "c")
    assert len(corpus.corpus.shards) >= 3
    token_docs = [corpus.tokenizer.encode(d) for d in docs]
    return corpus, token_docs, _ngram_table(token_docs, max(map(len, token_docs)))  # every n-gram there is


def _mixed_queries(token_docs, vocab, rng, n):
    """Cut from documents (occur), random ids (mostly do not), and every one-token query of the vocabulary."""
    docs = [d for d in token_docs if d]
    queries = [[t] for t in range(vocab)]
    while len(queries) < n:
        if rng.random() < 0.6:
            d = rng.choice(docs)
            length = rng.randint(1, min(16, len(d)))
            start = rng.randrange(len(d) - length + 1)
            queries.append(d[start:start + length])
        else:
            queries.append([rng.randrange(vocab) for _ in range(rng.randint(1, 16))])
    return queries


def test_count_doc_freq_find_many_match_brute_force(random_corpus):
    corpus, token_docs, (occurrences, documents) = random_corpus
    queries = _mixed_queries(token_docs, corpus.corpus.vocab_size, random.Random(1), 600)
    counts = [occurrences[tuple(q)] for q in queries]
    assert 0 in counts and max(counts) > 100 and any(len(q) == 1 and c == 0 for q, c in zip(queries, counts))
    assert corpus.count_many(queries) == counts
    assert corpus.count_many(queries[:100]) == counts[:100]  # under the parallel threshold
    assert corpus.doc_freq_many(queries) == [documents[tuple(q)] for q in queries]
    found = corpus.find_many(queries[:150], limit=3, context=2)
    for q, result in zip(queries[:150], found):
        places = brute_occurrences(token_docs, q)
        assert (result.count, result.ids) == (len(places), q)
        assert [(m.doc, m.position) for m in result.matches] == places[:3]


def test_uncompiled_count_many_matches_brute_force(random_corpus):
    """compiled=False: the byte search answers batches too."""
    from seethrough.index import IndexedCorpus

    corpus, token_docs, (occurrences, _) = random_corpus
    plain = IndexedCorpus(corpus.corpus, compiled=False)
    queries = _mixed_queries(token_docs, corpus.corpus.vocab_size, random.Random(2), 300)
    assert plain.count_many(queries) == [occurrences[tuple(q)] for q in queries]


def test_count_many_of_20000_short_queries(random_corpus):
    """Issue 15: the per-query token limit is per query, not over the flattened batch."""
    corpus, token_docs, (occurrences, _) = random_corpus
    queries = _mixed_queries(token_docs, corpus.corpus.vocab_size, random.Random(3), 20_000)
    assert sum(map(len, queries)) > corpus.max_query_tokens
    assert corpus.count_many(queries) == [occurrences[tuple(q)] for q in queries]


def _brute_prob(token_docs, occurrences, prompt, next_id):
    total = sum(len(d) for d in token_docs)
    prompt_count = occurrences[tuple(prompt)] if prompt else total
    count = occurrences[tuple(prompt) + (next_id,)]
    return prompt_count, count, count / prompt_count if prompt_count else -1.0


def test_prob_many_and_infgram_prob_many_match_brute_force(random_corpus):
    corpus, token_docs, (occurrences, _) = random_corpus
    rng = random.Random(4)
    vocab = corpus.corpus.vocab_size
    pairs = [([], t) for t in range(vocab)]  # the empty prompt: unigram probabilities
    for q in _mixed_queries(token_docs, vocab, rng, 400)[vocab:]:
        prefix = [rng.randrange(vocab) for _ in range(rng.randint(0, 3))]  # often makes the prompt not occur
        pairs.append(((prefix + q)[:15], rng.randrange(vocab)))
    ngram = corpus.prob_many(pairs)
    infgram = corpus.infgram_prob_many(pairs)
    for (prompt, next_id), p, q in zip(pairs, ngram, infgram):
        assert (p.prompt_count, p.count, p.prob, p.suffix_len) == (*_brute_prob(token_docs, occurrences, prompt, next_id),
                                                                   len(prompt))
        suffix = max(k for k in range(len(prompt) + 1) if k == 0 or occurrences[tuple(prompt[len(prompt) - k:])])
        backed_off = prompt[len(prompt) - suffix:]
        assert (q.prompt_count, q.count, q.prob, q.suffix_len) == (
            *_brute_prob(token_docs, occurrences, backed_off, next_id), suffix)
    assert any(p.prob == -1.0 for p in ngram) and any(q.suffix_len < len(pr) for (pr, _), q in zip(pairs, infgram))
    assert any(0 < q.prob < 1 for q in infgram)


def test_longest_matches_many_match_brute_force(random_corpus):
    corpus, token_docs, (occurrences, _) = random_corpus
    rng = random.Random(5)
    vocab = corpus.corpus.vocab_size
    queries = [[t] for t in range(vocab)]  # one-token queries, some tokens never in the corpus
    for _ in range(40):
        query = []
        for _ in range(rng.randint(1, 4)):
            d = rng.choice([d for d in token_docs if len(d) > 5])
            s = rng.randrange(len(d) - 3)
            query += d[s:s + rng.randint(1, 12)] + [rng.randrange(vocab)]
        queries.append(query)

    def brute(query):
        lengths = []
        for i in range(len(query)):
            n = 0
            while i + n < len(query) and occurrences[tuple(query[i:i + n + 1])]:
                n += 1
            lengths.append(n)
        return lengths, [occurrences[tuple(query[i:i + n])] if n else 0 for i, n in enumerate(lengths)]

    results = corpus.longest_matches_many(queries)
    assert results == [brute(q) for q in queries]
    assert any(0 in lengths for lengths, _ in results) and max(max(lengths) for lengths, _ in results) >= 8


def test_parallel_kernels_leave_torch_threads_alone(word_corpus):
    """numba's OpenMP layer shares libgomp with torch and made training after a batched count ~30x slower
    (measured); the index runs its parallel kernels on numba's own workqueue threads."""
    import numba

    corpus, token_docs, _ = word_corpus
    queries = [doc[:2] for doc in token_docs if doc][:300]  # a batch large enough for the parallel kernels
    assert corpus.count_many(queries) == [brute_count(token_docs, q) for q in queries]
    assert numba.threading_layer() == "workqueue"
