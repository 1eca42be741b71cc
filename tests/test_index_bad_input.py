"""Queries the index refuses, each with its exact one-line message, and the answers it gives instead of a
silent wrong one: ids that are not integers, words the tokenizer does not know, malformed boolean
queries, batches of the wrong shape, and foreign metadata lines that are not JSON objects."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import WORDS, bpe_tokenizer, brute_count, generated_documents, word_tokenizer, write_jsonl
from seethrough import QueryError, build_corpus, build_index, open_corpus
from seethrough.index import parse_boolean_query

NOT_AN_ID = "token id {} is not an integer ({}); give token ids as whole numbers, or the query as text"
UNKNOWN = ("{} not in the tokenizer's vocabulary ({} would be read as [UNK]); query only words the corpus "
           "tokenizer knows, or pass --ids")
SHAPE = ("a boolean query is a list of clauses, each a list of n-grams (text or token ids), like "
         "[[[1,2],[3]],[[4]]] for (1 2 OR 3) AND 4; ")
HOW = 'write n-grams joined by AND and OR, like "a b AND c OR d" (OR binds tighter)'


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    docs = generated_documents(seed=11, n_docs=60)
    write_jsonl(root / "d.jsonl", docs)
    build_corpus([root / "d.jsonl"], word_tokenizer(root / "tokenizer.json"), root / "c")
    build_index(root / "c")
    corpus = open_corpus(root / "c")
    return root, corpus, [corpus.tokenizer.encode(d) for d in docs]


def _refused(call, message: str) -> None:
    with pytest.raises(QueryError) as error:
        call()
    assert "\n" not in str(error.value)
    assert str(error.value) == message


@pytest.mark.parametrize("value, kind", [(1.5, "float"), (1e300, "float"), (True, "bool"), ("7", "str"),
                                         (None, "NoneType"), (np.float64(2.0), "float64")])
def test_ids_that_are_not_integers_are_refused(built, value, kind):
    """Issue 15: 1.5 was read as 1, 1e300 gave a traceback; every form refuses, the batched ones too."""
    _, corpus, _ = built
    message = NOT_AN_ID.format(repr(value), kind)
    _refused(lambda: corpus.count([1, value]), message)
    _refused(lambda: corpus.count_many([[1, 2]] * 300 + [[1, value]]), message)  # the C-level batch path
    _refused(lambda: corpus.doc_freq_many([[3], (value,)]), message)
    _refused(lambda: corpus.prob([1], value), message)
    _refused(lambda: corpus.infgram_prob_many([([1, value], 2)]), message)
    _refused(lambda: corpus.longest_matches([value]), message)
    _refused(lambda: corpus.search([[[1]], [[value]]]), message)


def test_id_arrays_and_shapes_that_are_not_queries(built):
    _, corpus, token_docs = built
    _refused(lambda: corpus.count(np.array([1.0, 2.0])),
             "token ids of type float64 are not integers; give whole-number ids, or the query as text")
    _refused(lambda: corpus.count(np.array([True])),
             "token ids of type bool are not integers; give whole-number ids, or the query as text")
    _refused(lambda: corpus.count([[1]]), "query [[1]] is neither text nor a list of token ids")
    _refused(lambda: corpus.count(5), "query 5 is neither text nor a list of token ids")
    _refused(lambda: corpus.count({"ids": [1]}), "query {'ids': [1]} is neither text nor a list of token ids")
    vocabulary = "is outside the vocabulary (0..24); check the ids or the tokenizer"
    _refused(lambda: corpus.count([2**70]), f"token id {2**70} {vocabulary}")
    _refused(lambda: corpus.count_many([[1]] * 300 + [[2**70]]), f"token id {2**70} {vocabulary}")
    _refused(lambda: corpus.count_many([[1]] * 300 + [[-3]]), f"token id -3 {vocabulary}")
    _refused(lambda: corpus.count(np.array([2**64 - 1], dtype=np.uint64)), f"token id {2**64 - 1} {vocabulary}")
    # integers of any kind are ids: numpy scalars, integer arrays, tuples
    expected = brute_count(token_docs, [0, 1])
    assert corpus.count([np.int64(0), np.uint16(1)]) == corpus.count(np.array([0, 1], dtype=np.uint8)) == expected
    assert corpus.count_many([(0, 1), [np.int32(0), 1]] * 200) == [expected] * 400


def test_batches_of_the_wrong_shape(built):
    _, corpus, _ = built
    _refused(lambda: corpus.count_many("the cat"), "count_many takes a list of queries (each text or a list of token "
                                                   "ids), not str; wrap a single query in a list or use the single form")
    _refused(lambda: corpus.doc_freq_many({"a": [1]}), "doc_freq_many takes a list of queries (each text or a list of "
                                                       "token ids), not dict; wrap a single query in a list or use the "
                                                       "single form")
    _refused(lambda: corpus.prob_many([([1],)]), "prob_many takes (prompt, next token id) pairs; got ([1],)")
    _refused(lambda: corpus.find([1], context=-1), "--context must be 0 or more")
    _refused(lambda: corpus.search([[[1]]], limit=-1), "--limit must be 0 or more")


def test_length_limit_is_per_query(built):
    """Issue 15: a batch may hold any number of tokens; each query at most max_query_tokens."""
    _, corpus, token_docs = built
    limit = corpus.max_query_tokens
    over = f"query has {limit + 1} tokens, over the limit of {limit}; shorten or split it"
    _refused(lambda: corpus.count_many([[1]] * 300 + [[1] * (limit + 1)]), over)
    _refused(lambda: corpus.count_many([[1], [2] * (limit + 1)]), over)
    _refused(lambda: corpus.count_many([[1]] * 300 + [[]]),
             "empty query: it encodes to no tokens; give at least one token")
    batch = [[0, 1]] * (limit // 2) + [[1] * limit]  # twice the limit in all, no query over it
    assert corpus.count_many(batch) == [brute_count(token_docs, [0, 1])] * (limit // 2) + [0]


def test_words_the_tokenizer_does_not_know_are_refused(built):
    """Issue 15: `count 'the cat 🙂'` counted 'the cat [UNK]' without a word."""
    _, corpus, token_docs = built
    _refused(lambda: corpus.count("the cat 🙂"), UNKNOWN.format("'🙂' is", "it"))
    _refused(lambda: corpus.count_many(["the", "🙂 xyz the xyz ab"]), UNKNOWN.format("'🙂', 'xyz', 'ab' are", "they"))
    _refused(lambda: corpus.prob("the 🙂", 1), UNKNOWN.format("'🙂' is", "it"))
    _refused(lambda: corpus.ntd("🙂"), UNKNOWN.format("'🙂' is", "it"))
    _refused(lambda: corpus.search([["the"], ["🙂"]]), UNKNOWN.format("'🙂' is", "it"))
    # the unknown token written out, or given as an id, is a query like any other
    unk = corpus.tokenizer.tokenizer.token_to_id("[UNK]")
    the = corpus.tokenizer.tokenizer.token_to_id("the")
    assert corpus.encode("the [UNK]").tolist() == [the, unk]
    assert corpus.count("the [UNK]") == corpus.count([the, unk]) == brute_count(token_docs, [the, unk]) == 0
    assert corpus.count("the cat") == brute_count(token_docs, corpus.encode("the cat").tolist()) > 0


def test_unknown_words_under_wordpiece_and_byte_level_bpe(tmp_path):
    """The unknown token is the tokenizer model's own (WordPiece's [UNK]); byte-level BPE has none to refuse."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    docs = [" ".join(WORDS[i % 7:i % 7 + 5]) for i in range(40)]
    write_jsonl(tmp_path / "d.jsonl", docs)
    vocab = {w: i for i, w in enumerate(["[UNK]"] + WORDS[:12])}
    piece = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    piece.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    piece.save(str(tmp_path / "wordpiece.json"))
    build_corpus([tmp_path / "d.jsonl"], tmp_path / "wordpiece.json", tmp_path / "wp")
    build_index(tmp_path / "wp")
    _refused(lambda: open_corpus(tmp_path / "wp").count("the zebra"), UNKNOWN.format("'zebra' is", "it"))
    bpe = bpe_tokenizer(tmp_path / "bpe.json", docs, vocab=300)
    build_corpus([tmp_path / "d.jsonl"], bpe, tmp_path / "bpe")
    build_index(tmp_path / "bpe")
    corpus = open_corpus(tmp_path / "bpe")
    token_docs = [corpus.tokenizer.encode(d) for d in docs]
    for text in ("the cat 🙂", "zebra", " cat sat"):
        assert corpus.count(text) == brute_count(token_docs, corpus.tokenizer.encode(text))


@pytest.mark.parametrize("text, clauses", [
    ("a b AND c OR d", [["a b"], ["c", "d"]]),
    ("the cat", [["the cat"]]),
    ("x OR y OR z", [["x", "y", "z"]]),
    ("a AND b AND c OR d e", [["a"], ["b"], ["c", "d e"]]),
    ("ANDROID and or OR x", [["ANDROID and or", "x"]]),  # only the upper-case words are operators
    ("  a\tAND\n b  ", [["a"], ["b"]]),
])
def test_parse_boolean_query(text, clauses):
    assert parse_boolean_query(text) == clauses


@pytest.mark.parametrize("text, message", [
    ("people AND", f"AND has no n-gram after it in the boolean query; {HOW}"),
    ("OR OR", f"OR has no n-gram before it in the boolean query; {HOW}"),
    ("AND people", f"AND has no n-gram before it in the boolean query; {HOW}"),
    ("a AND AND b", f"AND has no n-gram after it in the boolean query; {HOW}"),
    ("a OR", f"OR has no n-gram after it in the boolean query; {HOW}"),
    ("", f"empty boolean query; {HOW}"),
    ("  \n ", f"empty boolean query; {HOW}"),
    ("(a OR b) AND c", f"parentheses are not supported in a boolean query; {HOW}, or give the clauses as --cnf"),
])
def test_parse_boolean_query_refuses_malformed_text(text, message):
    _refused(lambda: parse_boolean_query(text), message)


def test_search_takes_clauses_of_the_documented_shape(built):
    """Issue 15: --cnf '{"a":1}' searched the text "a"; a bare string was searched letter by letter."""
    _, corpus, _ = built
    _refused(lambda: corpus.search({"a": 1}), SHAPE + "got dict {'a': 1}")
    _refused(lambda: corpus.search("the cat"), SHAPE + "got str 'the cat'")
    _refused(lambda: corpus.search(["the", "cat"]), SHAPE + "clause 'the' is str, not a list")
    _refused(lambda: corpus.search([[1, 2]]), SHAPE + "n-gram 1 is int, not text or a list of ids")
    _refused(lambda: corpus.search([]), "empty boolean query: give at least one n-gram in every clause")
    _refused(lambda: corpus.search([["the"], []]), "empty boolean query: give at least one n-gram in every clause")
    # the parser's output, text clauses and id clauses are the same query
    ids = [[corpus.encode(term).tolist() for term in clause] for clause in parse_boolean_query("the AND cat OR dog")]
    by_text = corpus.search(parse_boolean_query("the AND cat OR dog"), window=3)
    by_ids = corpus.search(tuple(tuple(clause) for clause in ids), window=3)
    assert by_text.to_dict() == by_ids.to_dict() and by_text.count > 0


def test_foreign_metadata_lines_that_are_not_objects(built, tmp_path):
    """An infini-gram folder may hold any JSON per line: `find` reads it as `document` does, never crashes."""
    root, corpus, token_docs = built
    folder = tmp_path / "foreign"
    folder.mkdir()
    for kind in ("tokenized", "offset", "table"):
        shutil.copy(corpus.path / f"{kind}.0", folder / f"{kind}.0")
    lines = [[1, 2], "a line of text", 7, None, {"path": "x.jsonl", "linenum": 3, "metadata": {"n": 4}}, {"other": 1}]
    records = [json.dumps(lines[i % len(lines)]).encode() + b"\n" for i in range(corpus.num_documents)]
    (folder / "metadata.0").write_bytes(b"".join(records))
    offsets = np.cumsum([0] + [len(r) for r in records[:-1]]).astype("<u8")
    offsets.tofile(folder / "metaoff.0")
    foreign = open_corpus(folder, tokenizer=root / "tokenizer.json")
    query = corpus.encode("the").tolist()
    found = foreign.find(query, limit=10_000)
    assert found.count == brute_count(token_docs, query) == len(found.matches)
    assert {m.doc % len(lines) for m in found.matches} == set(range(len(lines)))
    for m in found.matches:
        line = lines[m.doc % len(lines)]
        assert m.metadata == (line.get("metadata", {}) if isinstance(line, dict) else {})
        assert m.metadata == foreign.document(m.doc).metadata
