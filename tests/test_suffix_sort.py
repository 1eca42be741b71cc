"""The multi-threaded suffix sort against a brute-force sort of the token-aligned suffixes."""

from __future__ import annotations

import numpy as np
import pytest

from seethrough.index import suffix_merge, suffix_sort
from seethrough.index.build import pointer_bytes
from seethrough.index.suffix_sort import sort_suffixes


def _brute_table(data: np.ndarray, width: int, ratio: int) -> np.ndarray:
    """Python's ``bytes`` ordering is the unsigned byte order with shorter-first: the definition."""
    raw = data.tobytes()
    order = sorted(range(0, len(raw), width), key=lambda p: raw[p:])
    out = np.zeros(len(order) * ratio, dtype=np.uint8)
    for rank, p in enumerate(order):
        out[rank * ratio:(rank + 1) * ratio] = list(p.to_bytes(ratio, "little"))
    return out


def _token_file(tokens: list[int], dtype) -> np.ndarray:
    return np.asarray(tokens, dtype=dtype).astype(np.dtype(dtype).newbyteorder("<")).view(np.uint8)


def _documents(rng: np.random.Generator, count: int, vocab: int, separator: int) -> list[int]:
    """infini-gram's stream: each document preceded by the separator; small vocabulary so that
    suffixes share long prefixes, a few planted repeats and empty documents."""
    planted = [list(rng.integers(0, vocab, size=rng.integers(5, 40))) for _ in range(4)]
    stream: list[int] = []
    for _ in range(count):
        stream.append(separator)
        kind = rng.integers(0, 5)
        if kind == 0:
            continue
        if kind == 1:
            stream += planted[rng.integers(0, len(planted))]
        else:
            stream += list(rng.integers(0, vocab, size=rng.integers(1, 60)))
    return stream


@pytest.mark.parametrize("dtype,width,encoded", [(np.uint16, 2, True), (np.uint16, 2, False), (np.uint32, 4, True),
                                                 (np.uint32, 4, False)])
@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_parts_merged_equal_brute_force(dtype, width, encoded, threads):
    rng = np.random.default_rng(threads * 10 + width)
    separator = np.iinfo(dtype).max
    # ids spread over the whole 16-bit range (low and high bytes both vary) and a few frequent ones
    vocab = rng.choice(np.arange(1, 65535), size=700, replace=False)
    stream = [int(vocab[t % 700]) if t != separator else t for t in _documents(rng, 120, 6, separator)]
    stream = [t if t == separator or rng.random() < 0.5 else int(rng.choice(vocab)) for t in stream]
    data = _token_file(stream, dtype)
    ratio = pointer_bytes(data.shape[0])
    got = sort_suffixes(data, width, ratio, threads, min_part=256, overlap=32, encoded=encoded, min_parallel=0)
    assert np.array_equal(got, _brute_table(data, width, ratio))


@pytest.mark.parametrize("present,width", [(3, 2), (300, 2), (5000, 2), (65536, 2), (300, 4), (70000, 4)])
def test_token_code_is_prefix_free_and_keeps_infinigram_order(present, width):
    """Encoded token sequences compare, byte by byte, as the little-endian token files do."""
    from seethrough.index.token_code import encode_tokens, token_code

    rng = np.random.default_rng(present + width)
    dtype = np.uint16 if width == 2 else np.uint32
    pool = 65536 if width == 2 else 1 << 20
    ids = np.sort(rng.choice(pool, size=present, replace=False)).astype(dtype)
    if width == 4:
        ids[-1] = np.iinfo(np.uint32).max  # the separator, whose key is the largest of all
    counts = rng.zipf(1.3, size=present).clip(max=1000)
    heavy = int(ids[rng.integers(present)])
    counts[ids == heavy] = 5000  # one clear most frequent token
    shard = np.repeat(ids, counts)
    code = token_code(shard, width)
    codes = {}
    for t in ids.tolist():
        looked = min(t, code.clip)
        size = int(code.length[looked])
        codes[t] = bytes([code.first[looked], code.second[looked], code.third[looked]][:size])
    assert all(codes.values()) and len(set(codes.values())) == present
    by_length = {n: {c[0] for c in codes.values() if len(c) == n} for n in (1, 2, 3)}
    assert not (by_length[1] & by_length[2] or by_length[1] & by_length[3] or by_length[2] & by_length[3])
    assert len({c[0] for c in codes.values()}) <= 256
    if present <= 256:
        assert code.singles == present  # everything fits in one byte
    if present > 65536:
        assert by_length[3] and by_length[2]  # too many for two bytes each, and the frequent ones get two
    sequences = [list(rng.choice(ids, size=rng.integers(0, 6))) for _ in range(300)]
    for x, y in zip(sequences, sequences[1:]):
        raw = [np.asarray(s, dtype=dtype).astype(np.dtype(dtype).newbyteorder("<")).tobytes() for s in (x, y)]
        tokens = np.asarray(x + y, dtype=dtype)
        enc = [bytes(encode_tokens(code, tokens[lo:hi])[0]) for lo, hi in ((0, len(x)), (len(x), len(x) + len(y)))]
        assert (raw[0] < raw[1]) == (enc[0] < enc[1]) and (raw[0] == raw[1]) == (enc[0] == enc[1])
    if present == 65536:
        assert code.singles == 0  # 256 groups of 256 take every byte value
    elif present <= 65536:
        assert code.length[min(heavy, code.clip)] == 1  # the most frequent token is always a single


def test_many_distinct_uint32_tokens_sort_like_the_raw_file():
    """Over 65,536 distinct ids (2- and 3-byte codes), against divsufsort of the raw token file
    (itself checked against brute force above), whole and in parts."""
    rng = np.random.default_rng(3)
    vocab = rng.choice(1 << 20, size=90_000, replace=False)
    stream = vocab[np.minimum(rng.zipf(1.1, size=150_000), vocab.shape[0]) - 1].astype(np.uint32)
    stream[rng.random(stream.shape[0]) < 0.01] = np.iinfo(np.uint32).max
    data = stream.astype("<u4").view(np.uint8)
    ratio = pointer_bytes(data.shape[0])
    raw = sort_suffixes(data, 4, ratio, 1, encoded=False)
    assert np.array_equal(sort_suffixes(data, 4, ratio, 1), raw)
    assert np.array_equal(sort_suffixes(data, 4, ratio, 2, min_parallel=0, min_part=1 << 16, overlap=256), raw)


def test_ids_too_large_to_code_are_sorted_raw():
    from seethrough.index.token_code import token_code

    stream = np.array([5, (1 << 30) + 7, 5, 9, (1 << 30) + 7], dtype=np.uint32)
    assert token_code(stream, 4) is None
    data = stream.astype("<u4").view(np.uint8)
    assert np.array_equal(sort_suffixes(data, 4, 1, 1), _brute_table(data, 4, 1))


def test_repeat_across_a_cut_longer_than_the_overlap():
    """Text before and after the cut is a copy of earlier text, longer than the overlap: the part
    cannot be sorted on its own, and the answer must still be exact."""
    rng = np.random.default_rng(7)
    block = list(rng.integers(0, 4, size=300))
    data = _token_file(block * 3, np.uint16)  # the cut, at token 450, lies inside the second copy
    ratio = pointer_bytes(data.shape[0])
    assert not suffix_merge._last_suffix_is_unique(data[:900 + 16], __import__("pydivsufsort").divsufsort(
        data[:900 + 16]), 900 - 2)
    got = sort_suffixes(data, 2, ratio, 2, min_part=256, overlap=16, min_parallel=0)
    assert np.array_equal(got, _brute_table(data, 2, ratio))


def test_part_check_detects_a_repeat_that_would_misorder():
    """The uniqueness check itself: a part whose end repeats earlier text fails it, a part whose
    end is new text passes."""
    from pydivsufsort import divsufsort

    repeated = np.array([1, 2, 3, 4, 9, 9, 1, 2, 3, 4], dtype=np.uint8)
    assert not suffix_merge._last_suffix_is_unique(repeated, divsufsort(repeated), 6)
    fresh = np.array([1, 2, 3, 4, 9, 9, 5, 6, 7, 8], dtype=np.uint8)
    assert suffix_merge._last_suffix_is_unique(fresh, divsufsort(fresh), 6)


def test_build_index_tables_do_not_depend_on_threads(word_corpus, tmp_path, monkeypatch):
    """A whole multi-shard build on 3 threads writes the same table files as on one."""
    import shutil

    import seethrough

    corpus, _, _ = word_corpus
    copies = {}
    for threads in (1, 3):
        folder = tmp_path / f"threads-{threads}"
        shutil.copytree(corpus.path, folder)
        monkeypatch.setattr(suffix_sort, "MIN_PARALLEL_BYTES", 0)
        monkeypatch.setattr(suffix_merge, "MIN_PART_BYTES", 512)
        seethrough.build_index(folder, force=True, threads=threads)
        copies[threads] = {p.name: p.read_bytes() for p in sorted(folder.glob("table.*"))}
    assert copies[1] and copies[1] == copies[3]
    assert copies[1] == {p.name: p.read_bytes() for p in sorted(corpus.path.glob("table.*"))}
