"""Bad input to the corpus layer (issue 15): each case gets the right answer or a one-line error that
names the problem and the fix (exit code 2 from the CLI), and leaves every file that was there before
byte for byte as it was."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from conftest import bpe_tokenizer, generated_documents, word_tokenizer, write_jsonl
from seethrough import CorpusError, InputError, TokenizerError, build_corpus
from seethrough.corpus import CorpusBuildConfig, load_tokenizer, open_token_corpus
from seethrough.corpus.sources import looks_like_hub_name
from seethrough.corpus.store import QUICK_CHECK_NOTE
from seethrough.corpus.tokenizer import piece_cuts, pieces_are_exact

SEETHROUGH = Path(sys.executable).parent / "seethrough"


@pytest.fixture
def tok(tmp_path):
    return word_tokenizer(tmp_path / "tokenizer.json")


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text and text
    return text


def cli(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "300"}
    return subprocess.run([str(SEETHROUGH), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


def assert_cli_refuses(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit code 2 and one error line (a progress bar may sit above it), no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def _jsonl_bytes(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


# ---- 1. one bad byte costs its own line, with its true line number --------------------------------------

@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_one_non_utf8_byte_skips_only_its_line(tmp_path, tok, suffix):
    texts = [f"the cat sat on mat {'dog ' * (i % 5)}".strip() for i in range(100)]
    lines = [json.dumps({"text": t}).encode() for t in texts]
    lines[50] = b'{"text": "the \xff cat"}'  # line 51
    data = _jsonl_bytes(lines)
    if suffix == ".jsonl.gz":
        data = gzip.compress(data)
    elif suffix == ".jsonl.zst":
        data = zstandard.ZstdCompressor().compress(data)
    path = tmp_path / f"d{suffix}"
    path.write_bytes(data)
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as e:
        build_corpus([path], tok, tmp_path / "c")
    assert f"d{suffix}:51: not valid UTF-8 (byte 0xff" in one_line(e) and "--on-error skip" in one_line(e)
    assert snapshot(tmp_path) == before
    manifest = build_corpus([path], tok, tmp_path / "c", CorpusBuildConfig(on_error="skip"))
    assert manifest["counts"]["documents"] == 99 and manifest["counts"]["skipped_lines"] == 1
    assert manifest["skipped_examples"] == [f"{path}:51: not valid UTF-8 (byte 0xff at column 15)"]
    corpus = open_token_corpus(tmp_path / "c")
    kept = [i for i in range(100) if i != 50]
    assert [corpus.document(k).text for k in range(99)] == [texts[i] for i in kept]
    assert [corpus.document(k).line for k in range(99)] == [i + 1 for i in kept]
    assert {k: v for k, v in snapshot(tmp_path).items() if k in before} == before


def test_one_non_utf8_byte_from_the_cli(tmp_path, tok):
    lines = [json.dumps({"text": "the cat"}).encode()] * 9
    lines[6] = b'{"text": "\xc3("}'
    (tmp_path / "d.jsonl").write_bytes(_jsonl_bytes(lines))
    before = snapshot(tmp_path)
    assert_cli_refuses(cli("corpus", "build", tmp_path / "d.jsonl", "--tokenizer", tok, "--out", tmp_path / "c"),
                       "d.jsonl:7: not valid UTF-8")
    assert snapshot(tmp_path) == before
    result = cli("corpus", "build", tmp_path / "d.jsonl", "--tokenizer", tok, "--out", tmp_path / "c",
                 "--on-error", "skip", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["documents"] == 8


# ---- 2. truncated compressed files -----------------------------------------------------------------------

def test_truncated_zst_beside_a_good_file_is_an_error(tmp_path, tok):
    raw = _jsonl_bytes([json.dumps({"text": f"the cat {'sat ' * i}"}).encode() for i in range(200)])
    compressed = zstandard.ZstdCompressor().compress(raw)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl.zst").write_bytes(compressed)
    (tmp_path / "in" / "b.jsonl.zst").write_bytes(compressed[: len(compressed) // 2])
    before = snapshot(tmp_path)
    for on_error in ("stop", "skip"):
        with pytest.raises(InputError) as e:
            build_corpus([tmp_path / "in"], tok, tmp_path / "c", CorpusBuildConfig(on_error=on_error))
        assert "b.jsonl.zst" in one_line(e) and "truncated" in one_line(e)
        assert snapshot(tmp_path) == before
    assert_cli_refuses(cli("corpus", "build", tmp_path / "in", "--tokenizer", tok, "--out", tmp_path / "c"),
                       "b.jsonl.zst ends in the middle of its compressed data: the file is truncated")
    (tmp_path / "in" / "b.jsonl.zst").write_bytes(compressed + b"not zstd")  # garbage after a whole frame
    with pytest.raises(InputError, match=r"b\.jsonl\.zst is not valid zstd data"):
        build_corpus([tmp_path / "in"], tok, tmp_path / "c")
    (tmp_path / "in" / "b.jsonl.zst").unlink()
    (tmp_path / "in" / "g.jsonl.gz").write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(InputError, match=r"g\.jsonl\.gz ends in the middle .* truncated"):
        build_corpus([tmp_path / "in"], tok, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_zst_of_several_frames_reads_every_frame(tmp_path, tok):
    compressor = zstandard.ZstdCompressor()
    frames = [compressor.compress(_jsonl_bytes([json.dumps({"text": f"the {w}"}).encode() for w in words]))
              for words in (["cat", "dog"], ["mat"], ["red", "blue", "house"])]
    (tmp_path / "d.jsonl.zst").write_bytes(b"".join(frames))
    build_corpus([tmp_path / "d.jsonl.zst"], tok, tmp_path / "c")
    corpus = open_token_corpus(tmp_path / "c")
    assert [corpus.document(i).text for i in range(corpus.num_documents)] == [
        "the cat", "the dog", "the mat", "the red", "the blue", "the house"]
    assert [corpus.document(i).line for i in range(6)] == [1, 2, 3, 4, 5, 6]


# ---- 3. --overwrite replaces only a corpus ---------------------------------------------------------------

def test_overwrite_never_replaces_what_is_not_a_corpus(tmp_path, tok):
    write_jsonl(tmp_path / "d.jsonl", ["the cat"])
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "code.py").write_text("print(1)")
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "e.jsonl", ["a dog"])
    before = snapshot(tmp_path)
    overwrite = CorpusBuildConfig(overwrite=True)
    cases = [
        ([tmp_path / "d.jsonl"], tmp_path / "notes.txt", "is a file, not a corpus folder"),
        ([tmp_path / "d.jsonl"], tmp_path / "project", "is not a seethrough corpus"),
        ([tmp_path / "d.jsonl"], tmp_path, "holds the input"),  # the input's own folder
        ([tmp_path / "data"], tmp_path / "data", "holds the input"),
        ([tmp_path / "data"], tmp_path / "data" / "corpus", "is inside the input folder"),
    ]
    for inputs, out, message in cases:
        with pytest.raises(CorpusError) as e:
            build_corpus(inputs, tok, out, overwrite)
        assert message in one_line(e) and "--out" in one_line(e)
        assert snapshot(tmp_path) == before, out
    assert_cli_refuses(cli("corpus", "build", tmp_path / "d.jsonl", "--tokenizer", tok, "--out", tmp_path,
                           "--overwrite"), "holds the input")
    assert snapshot(tmp_path) == before


def test_out_is_never_the_current_folder(tmp_path, tok, monkeypatch):
    write_jsonl(tmp_path / "d.jsonl", ["the cat"])
    (tmp_path / "sub").mkdir()
    before = snapshot(tmp_path)
    assert_cli_refuses(cli("corpus", "build", "d.jsonl", "--tokenizer", tok, "--out", ".", "--overwrite",
                           cwd=tmp_path), "--out . is the current folder")
    assert_cli_refuses(cli("corpus", "build", "../d.jsonl", "--tokenizer", tok, "--out", "..", "--overwrite",
                           cwd=tmp_path / "sub"), "is the current folder or holds it")
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(CorpusError, match="is the current folder or holds it"):
        build_corpus([tmp_path / "d.jsonl"], tok, Path("."), CorpusBuildConfig(overwrite=True))
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_a_corpus_but_not_files_added_to_it(tmp_path, tok):
    write_jsonl(tmp_path / "d.jsonl", ["the cat"])
    write_jsonl(tmp_path / "e.jsonl", ["a dog ran"])
    first = build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    open_token_corpus(tmp_path / "c")  # writes its stamps: still a corpus file
    (tmp_path / "c" / "my-analysis.csv").write_text("keep me")
    before = snapshot(tmp_path)
    with pytest.raises(CorpusError) as e:
        build_corpus([tmp_path / "e.jsonl"], tok, tmp_path / "c", CorpusBuildConfig(overwrite=True))
    assert "also holds my-analysis.csv, which --overwrite would delete" in one_line(e)
    assert snapshot(tmp_path) == before
    (tmp_path / "c" / "my-analysis.csv").unlink()
    second = build_corpus([tmp_path / "e.jsonl"], tok, tmp_path / "c", CorpusBuildConfig(overwrite=True))
    assert second["corpus_hash"] != first["corpus_hash"]
    assert open_token_corpus(tmp_path / "c").document(0).text == "a dog ran"
    (tmp_path / "empty").mkdir()  # an empty folder holds nothing to lose
    build_corpus([tmp_path / "e.jsonl"], tok, tmp_path / "empty", CorpusBuildConfig(overwrite=True))
    os.symlink(tmp_path / "c", tmp_path / "link")
    with pytest.raises(CorpusError, match="is a symbolic link"):
        build_corpus([tmp_path / "e.jsonl"], tok, tmp_path / "link", CorpusBuildConfig(overwrite=True))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_out_under_a_file_is_one_line(tmp_path, tok):
    write_jsonl(tmp_path / "d.jsonl", ["the cat"])
    before = snapshot(tmp_path)
    with pytest.raises(CorpusError) as e:
        build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "d.jsonl" / "corpus")
    assert "cannot create" in one_line(e)
    assert snapshot(tmp_path) == before


# ---- 4. a replaced tokenizer.json inside a corpus --------------------------------------------------------

def test_replaced_tokenizer_is_refused_on_open_and_by_verify(tmp_path, tok):
    from seethrough import build_index, open_corpus
    from seethrough.index import verify

    docs = generated_documents(seed=21, n_docs=200)
    write_jsonl(tmp_path / "d.jsonl", docs)
    build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    build_index(tmp_path / "c")
    phrase = "dog ran to the café"
    assert open_corpus(tmp_path / "c").count(phrase) == sum(d.count(phrase) for d in docs) > 0
    other = bpe_tokenizer(tmp_path / "other.json", docs, vocab=300)
    (tmp_path / "c" / "tokenizer.json").write_bytes(other.read_bytes())
    before = snapshot(tmp_path)
    for opener in (open_token_corpus, open_corpus, verify):
        with pytest.raises(TokenizerError) as e:
            opener(tmp_path / "c")
        assert "tokenizer.json is not the tokenizer corpus" in one_line(e)
        assert "it was replaced or edited; copy the original back" in one_line(e)
    assert_cli_refuses(cli("corpus", "verify", tmp_path / "c"), "was replaced or edited")
    assert_cli_refuses(cli("count", tmp_path / "c", phrase), "was replaced or edited")
    assert snapshot(tmp_path) == before
    # the original, given explicitly, still answers; verify also re-hashes the copy inside the corpus
    assert open_corpus(tmp_path / "c", tokenizer=tok).count(phrase) > 0
    (tmp_path / "c" / "tokenizer.json").write_bytes(tok.read_bytes())
    assert "tokenizer.json" in verify(tmp_path / "c")["files_checked"]
    (tmp_path / "c" / "tokenizer.json").write_text("{ not json")
    with pytest.raises(TokenizerError, match="the corpus's own tokenizer.json is damaged"):
        open_token_corpus(tmp_path / "c")


# ---- 5. lone surrogates and deep nesting are bad lines ---------------------------------------------------

def test_lone_surrogate_and_deep_nesting_are_bad_lines(tmp_path, tok):
    deep = "[" * 200_000 + "]" * 200_000
    bad_lines = {
        2: ('{"text": "the \\ud800 cat"}', "field 'text' holds a lone surrogate \\ud800"),
        3: ('{"text": "x", "n": "\\udfff"}', "the record holds a lone surrogate \\udfff"),
        4: ('{"text": "the mat", "deep": ' + deep + "}", "JSON nested too deeply to read"),
        5: (deep, "JSON nested too deeply to read"),
    }
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(['{"text": "the cat"}', *(line for line, _ in bad_lines.values()),
                               '{"text": "the \\ud83d\\ude00"}']) + "\n")
    for number, (line, message) in bad_lines.items():  # stop mode: each bad line alone names itself
        alone = tmp_path / f"bad{number}.jsonl"
        alone.write_text('{"text": "the cat"}\n' * (number - 1) + line + "\n")
        before = snapshot(tmp_path)
        with pytest.raises(InputError) as e:
            build_corpus([alone], tok, tmp_path / "c")
        assert f"bad{number}.jsonl:{number}: {message}" in one_line(e)
        assert snapshot(tmp_path) == before
    before = snapshot(tmp_path)
    manifest = build_corpus([path], tok, tmp_path / "c", CorpusBuildConfig(on_error="skip"))
    assert manifest["counts"]["documents"] == 2 and manifest["counts"]["skipped_lines"] == 4
    assert [x.split(", which")[0] for x in manifest["skipped_examples"]] == [
        f"{path}:{n}: {message}" for n, (_, message) in bad_lines.items()]
    corpus = open_token_corpus(tmp_path / "c")
    assert corpus.document(1).text == "the 😀" and corpus.document(1).line == 6  # a surrogate pair is a character
    assert {k: v for k, v in snapshot(tmp_path).items() if k in before} == before
    result = cli("corpus", "build", path, "--tokenizer", tok, "--out", tmp_path / "c2", "--on-error", "skip", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["skipped_lines"] == 4
    assert_cli_refuses(cli("corpus", "build", path, "--tokenizer", tok, "--out", tmp_path / "c3"),
                       "d.jsonl:2: field 'text' holds a lone surrogate")


def test_metadata_lines_are_the_bytes_json_dumps_writes(tmp_path, tok):
    write_jsonl(tmp_path / "d.jsonl", ["the cat", "a dog"], tag="naïve \"q\"", nested={"a": [1, 2.5, None, True]})
    build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    lines = (tmp_path / "c" / "metadata.0").read_bytes().splitlines(keepends=True)
    for n, line in enumerate(lines):
        record = {"path": "d.jsonl", "linenum": n + 1,
                  "metadata": {"n": n, "tag": "naïve \"q\"", "nested": {"a": [1, 2.5, None, True]}}}
        assert line == (json.dumps(record, ensure_ascii=False) + "\n").encode()


# ---- 6. a mistyped path never goes to the hub ------------------------------------------------------------

def test_mistyped_paths_are_no_such_file(tmp_path, tok, monkeypatch):
    import seethrough.corpus.sources as sources

    def no_hub(*args, **kwargs):
        raise AssertionError("a path was sent to the Hugging Face hub")

    monkeypatch.setattr(sources, "read_hf_dataset", no_hub)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    before = snapshot(tmp_path)
    for name in ["nope.jsonl", "./nope", str(tmp_path / "nope"), "data/train", "a/b/c", "owner/name.jsonl.gz",
                 "owner/name.parquet", "mydata", "data\\train", "../x/y", "~/d.jsonl"]:
        with pytest.raises(InputError) as e:
            build_corpus([name], tok, tmp_path / "c")
        assert one_line(e).startswith(f"no such file or folder: {name}; check the path")
    assert snapshot(tmp_path) == before
    assert_cli_refuses(cli("corpus", "build", "data/train", "--tokenizer", tok, "--out", "c", cwd=tmp_path),
                       "no such file or folder: data/train")
    assert all(looks_like_hub_name(n) for n in ["EleutherAI/pile", "teknium/OpenHermes-2.5", "allenai/c4"])
    assert not any(looks_like_hub_name(n) for n in ["pile", "a/b/c", "x/y.jsonl", "./x", "x/../y", "/x/y"])


def test_hub_dataset_failure_is_one_line(tmp_path, tok):
    """Offline (as in every test), loading a hub name fails: one line, not a traceback."""
    with pytest.raises(InputError) as e:
        build_corpus(["nobody-here/no-such-dataset"], tok, tmp_path / "c")
    assert "nobody-here/no-such-dataset" in one_line(e)
    assert not (tmp_path / "c").exists()


# ---- 7. a JSON file that is not a tokenizer --------------------------------------------------------------

def test_json_that_is_not_a_tokenizer(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ["the cat"])
    for name, content in [("a.json", '{"a": 1}'), ("b.json", "[1, 2]"), ("c.json", '"text"'),
                          ("config.json", json.dumps({"model_type": "gpt_neox", "vocab_size": 50304}))]:
        (tmp_path / name).write_text(content)
        with pytest.raises(TokenizerError) as e:
            build_corpus([tmp_path / "d.jsonl"], tmp_path / name, tmp_path / "c")
        assert one_line(e) == (f"{tmp_path / name} is JSON but not a tokenizer.json (Hugging Face tokenizers format); "
                               "pass a tokenizer.json or a model folder containing one")
    (tmp_path / "bad.json").write_text("{ nope")
    with pytest.raises(TokenizerError, match=r"bad\.json is not JSON"):
        load_tokenizer(tmp_path / "bad.json")
    assert_cli_refuses(cli("corpus", "build", tmp_path / "d.jsonl", "--tokenizer", tmp_path / "a.json", "--out",
                           tmp_path / "c"), "is JSON but not a tokenizer.json")
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "vocab.json").write_text("{}")
    (tmp_path / "slow" / "merges.txt").write_text("")
    with pytest.raises(TokenizerError) as e:
        load_tokenizer(tmp_path / "slow")
    assert "has no tokenizer.json, only vocab.json, merges.txt (a slow tokenizer)" in one_line(e)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerError, match="no tokenizer at .*empty/tokenizer.json"):
        load_tokenizer(tmp_path / "empty")
    assert not (tmp_path / "c").exists()


# ---- 8. long documents in pieces, ids exactly those of the whole text ------------------------------------

_TRICKY = ["the", "cat", " ", "  ", "\n", "\n\n", "\r\n", "\t", " \n", "'s", "'ll", "42", "3.14", "日本", "猫", "é",
           "e\u0301", "\u0301", "\u00a0", "\u2028", "Σ", "ΣΑΣ", "İ", "ﬁ", "😀", ".", "!?", "--", "_x_", "<|eot|>",
           "\u3000", "\ufeff", "naïve", "Ⅻ", "x²"]


def _tricky_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_TRICKY) for _ in range(n))


def _tokenizers(tmp_path: Path, texts: list[str]) -> dict[str, Path]:
    made = {"bpe": bpe_tokenizer(tmp_path / "bpe.json", texts, vocab=500), "word": word_tokenizer(tmp_path / "word.json")}
    nfkc = Tokenizer(models.BPE())
    nfkc.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    nfkc.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    nfkc.decoder = decoders.ByteLevel()
    nfkc.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        special_tokens=["<|eot|>"]))
    nfkc.add_tokens(["    ", "\t\t"])  # whitespace-only added tokens, as GPT-NeoX's
    nfkc.save(str(tmp_path / "nfkc.json"))
    made["nfkc"] = tmp_path / "nfkc.json"
    bert = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    bert.normalizer = normalizers.BertNormalizer(lowercase=True)
    bert.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    bert.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[UNK]"],
                                                              show_progress=False))
    bert.save(str(tmp_path / "bert.json"))
    made["bert"] = tmp_path / "bert.json"
    return made


def test_pieces_give_the_ids_of_the_whole_text(tmp_path):
    rng = random.Random(15)
    texts = [_tricky_text(rng, 400) for _ in range(40)] + generated_documents(seed=2, n_docs=100)
    for name, path in _tokenizers(tmp_path, texts).items():
        loaded = load_tokenizer(path)
        assert loaded.encodes_in_pieces, name
        for trial in range(60):
            text = _tricky_text(rng, rng.randint(50, 400))
            cuts = [0, *piece_cuts(text, every=rng.randint(1, 30)), len(text)]
            assert len(cuts) > 2 or len(text) < 30
            pieces = [loaded.encode(text[a:b]) for a, b in zip(cuts, cuts[1:])]
            assert [i for p in pieces for i in p] == loaded.encode(text), (name, text, cuts)


def test_long_document_is_built_in_pieces_with_identical_ids(tmp_path, monkeypatch):
    from seethrough.corpus import tokenizer as tokenizer_module

    # the same code path as a 50 MB document's, at a size a test can afford
    monkeypatch.setattr(tokenizer_module, "LONG_TEXT_CHARS", 20_000)
    monkeypatch.setattr(tokenizer_module, "PIECE_CHARS", 2_000)
    rng = random.Random(8)
    lines = [" ".join(rng.choices(["the", "cat", "sat", "日本", "naïve", "😀", "42,", "x.", "  "], k=rng.randint(1, 25)))
             for _ in range(6_000)]
    long_text = "\n".join(lines)
    assert len(long_text) > 10 * tokenizer_module.LONG_TEXT_CHARS
    path = bpe_tokenizer(tmp_path / "bpe.json", lines[:1000], vocab=400)
    loaded = load_tokenizer(path)
    calls: list[list[int]] = []
    real_encode_batch = loaded.encode_batch

    def recording(texts):
        calls.append([len(t) for t in texts])
        return real_encode_batch(texts)

    object.__setattr__(loaded, "encode_batch", recording)
    whole = loaded.tokenizer.encode(long_text, add_special_tokens=False).ids
    assert loaded.encode_documents([long_text, "the cat"])[0].tolist() == whole
    pieces = [n for call in calls for n in call if n > 10]
    assert len(pieces) > 50 and max(pieces) < 2 * tokenizer_module.PIECE_CHARS  # no call held the whole text
    write_jsonl(tmp_path / "d.jsonl", ["the cat", long_text, "a dog"])
    build_corpus([tmp_path / "d.jsonl"], path, tmp_path / "c", CorpusBuildConfig(shard_tokens=10_000))
    corpus = open_token_corpus(tmp_path / "c")
    assert corpus.num_documents == 3 and corpus.document_tokens(1).tolist() == whole
    assert corpus.document(1).text == long_text


def test_tokenizers_where_pieces_could_differ_encode_whole(tmp_path, monkeypatch):
    from seethrough.corpus import tokenizer as tokenizer_module

    monkeypatch.setattr(tokenizer_module, "LONG_TEXT_CHARS", 1_000)
    texts = generated_documents(seed=4, n_docs=50)
    prefix = Tokenizer(models.BPE())
    prefix.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    prefix.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    prefix.save(str(tmp_path / "prefix.json"))
    meta = Tokenizer(models.BPE())
    meta.pre_tokenizer = pre_tokenizers.Metaspace()
    meta.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    meta.save(str(tmp_path / "meta.json"))
    text = "the cat\nsat on\nthe mat"
    for path in (tmp_path / "prefix.json", tmp_path / "meta.json"):
        loaded = load_tokenizer(path)
        assert not loaded.encodes_in_pieces
        cuts = [0, *piece_cuts(text, every=3), len(text)]
        pieced = [i for a, b in zip(cuts, cuts[1:]) for i in loaded.encode(text[a:b])]
        assert pieced != loaded.encode(text)  # why they are left out
        long_text = "\n".join([text] * 500)
        assert loaded.encode_documents([long_text])[0].tolist() == loaded.encode(long_text)
    spec = json.loads((tmp_path / "prefix.json").read_text())
    spec["pre_tokenizer"]["add_prefix_space"] = False
    spec["added_tokens"] = [{"id": 299, "content": "cat\n", "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": False}]
    assert not pieces_are_exact(spec)  # an added token across a cut


def test_truncation_and_padding_saved_in_a_tokenizer_do_not_cut_documents(tmp_path):
    path = word_tokenizer(tmp_path / "t.json")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=3)
    tokenizer.enable_padding(pad_id=0, pad_token="the")
    tokenizer.save(str(path))
    write_jsonl(tmp_path / "d.jsonl", ["a dog ran to the big red house", "cat"])
    build_corpus([tmp_path / "d.jsonl"], path, tmp_path / "c")
    corpus = open_token_corpus(tmp_path / "c")
    assert corpus.document(0).text == "a dog ran to the big red house" and corpus.document(1).text == "cat"


def test_token_ids_past_the_vocabulary_size_get_wide_tokens(tmp_path):
    """A vocabulary with a gap (id 65535 among three tokens) must not share the uint16 separator."""
    tokenizer = Tokenizer(models.WordLevel(vocab={"a": 0, "[UNK]": 1, "b": 65535}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "gap.json"))
    write_jsonl(tmp_path / "d.jsonl", ["a b a", "b"])
    manifest = build_corpus([tmp_path / "d.jsonl"], tmp_path / "gap.json", tmp_path / "c")
    assert manifest["token_dtype"] == "uint32" and manifest["counts"]["documents"] == 2
    corpus = open_token_corpus(tmp_path / "c")
    assert corpus.document(0).token_ids == [0, 65535, 0] and corpus.document(1).token_ids == [65535]


# ---- 9. the quick check and a forced re-hash -------------------------------------------------------------

def test_bit_flip_keeping_stamps_is_caught_by_verify_hashes(tmp_path, tok):
    write_jsonl(tmp_path / "d.jsonl", generated_documents(seed=3, n_docs=40))
    build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    assert not open_token_corpus(tmp_path / "c").hashes_verified  # stamps written
    path = tmp_path / "c" / "tokenized.0"
    data = bytearray(path.read_bytes())
    data[9] ^= 0x01
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_ino == stat.st_ino
    before = snapshot(tmp_path)
    open_token_corpus(tmp_path / "c")  # the quick check cannot see it (documented)
    assert "`seethrough corpus verify` or --verify" in QUICK_CHECK_NOTE
    with pytest.raises(CorpusError) as e:
        open_token_corpus(tmp_path / "c", verify_hashes=True)
    assert "tokenized.0 does not match its sha256" in one_line(e)
    from seethrough import open_corpus

    with pytest.raises(CorpusError, match="tokenized.0 does not match its sha256"):
        open_corpus(tmp_path / "c", verify=True)
    assert_cli_refuses(cli("corpus", "verify", tmp_path / "c"), "tokenized.0 does not match its sha256")
    assert snapshot(tmp_path) == before


# ---- 10. further bad inputs ------------------------------------------------------------------------------

def test_empty_files_and_folders_without_inputs(tmp_path, tok):
    for name, data in [("e.jsonl", b""), ("e.jsonl.gz", gzip.compress(b"")), ("e.jsonl.zst", b""),
                       ("blank.jsonl", b"\n \n\t\n")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match="the inputs hold no documents"):
            build_corpus([tmp_path / name], tok, tmp_path / "c")
    write_jsonl(tmp_path / "good.jsonl", ["the cat"])
    manifest = build_corpus([tmp_path / "e.jsonl", tmp_path / "good.jsonl"], tok, tmp_path / "c")
    assert manifest["counts"]["documents"] == 1
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "table.csv").write_text("a,b")
    (tmp_path / "nothing" / ".ipynb_checkpoints").mkdir()
    write_jsonl(tmp_path / "nothing" / ".ipynb_checkpoints" / "d-checkpoint.jsonl", ["the cat"])
    write_jsonl(tmp_path / "nothing" / ".hidden.jsonl", ["the cat"])
    with pytest.raises(InputError) as e:
        build_corpus([tmp_path / "nothing"], tok, tmp_path / "c2")
    assert "holds no input files" in one_line(e)
    write_jsonl(tmp_path / "nothing" / "d.jsonl", ["a dog"])
    manifest = build_corpus([tmp_path / "nothing"], tok, tmp_path / "c2")
    assert manifest["counts"]["documents"] == 1  # hidden files and folders are left out


def test_parquet_without_the_text_column_or_with_nulls(tmp_path, tok):
    pq.write_table(pa.table({"body": ["the cat"], "n": [1]}), tmp_path / "d.parquet")
    with pytest.raises(InputError) as e:
        build_corpus([tmp_path / "d.parquet"], tok, tmp_path / "c")
    assert "no column 'text' (columns: body, n); choose the text column with --text-field" in one_line(e)
    assert build_corpus([tmp_path / "d.parquet"], tok, tmp_path / "c",
                        CorpusBuildConfig(text_field="body"))["counts"]["documents"] == 1
    pq.write_table(pa.table({"text": ["the cat", None, "a dog"]}), tmp_path / "n.parquet")
    with pytest.raises(InputError, match=r"n\.parquet:row 2: field 'text' is null"):
        build_corpus([tmp_path / "n.parquet"], tok, tmp_path / "c2")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="cannot read Parquet file"):
        build_corpus([tmp_path / "junk.parquet"], tok, tmp_path / "c2")


def test_text_field_missing_from_some_lines(tmp_path, tok):
    path = tmp_path / "d.jsonl"
    path.write_text('{"body": "the cat"}\n{"body": "a dog"}\n\n{"title": "x"}\n{"body": "red"}\n')
    with pytest.raises(InputError, match=r"d\.jsonl:4: no field 'body'; choose the text field with --text-field"):
        build_corpus([path], tok, tmp_path / "c", CorpusBuildConfig(text_field="body"))
    manifest = build_corpus([path], tok, tmp_path / "c", CorpusBuildConfig(text_field="body", on_error="skip"))
    assert manifest["counts"]["documents"] == 3 and manifest["skipped_examples"] == [f"{path}:4: no field 'body'"]


def test_shard_tokens_and_settings_out_of_range(tmp_path, tok):
    write_jsonl(tmp_path / "d.jsonl", ["the cat"])
    before = snapshot(tmp_path)
    for value in (0, -5):
        with pytest.raises(CorpusError) as e:
            build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c", CorpusBuildConfig(shard_tokens=value))
        assert f"--shard-tokens {value}" in one_line(e) and "positive" in one_line(e)
        result = cli("corpus", "build", tmp_path / "d.jsonl", "--tokenizer", tok, "--out", tmp_path / "c",
                     "--shard-tokens", value)
        assert_cli_refuses(result, f"--shard-tokens {value}")
    with pytest.raises(CorpusError, match="--on-error 'ignore': use stop or skip"):
        build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c", CorpusBuildConfig(on_error="ignore"))  # type: ignore[arg-type]
    assert snapshot(tmp_path) == before


def test_compressed_txt_bom_crlf_and_misnamed_files(tmp_path, tok):
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress("the cat\nsat".encode()))
    (tmp_path / "b.txt.zst").write_bytes(zstandard.ZstdCompressor().compress("a dog".encode()))
    (tmp_path / "c.jsonl").write_bytes(b'\xef\xbb\xbf{"text": "red"}\r\n{"text": "blue"}\r\n')
    build_corpus([tmp_path / "a.txt.gz", tmp_path / "b.txt.zst", tmp_path / "c.jsonl"], tok, tmp_path / "c")
    corpus = open_token_corpus(tmp_path / "c")
    assert [corpus.document(i).text for i in range(4)] == ["the cat sat", "a dog", "red", "blue"]  # words rejoined by spaces
    (tmp_path / "plain.jsonl.gz").write_text('{"text": "the cat"}\n')
    with pytest.raises(InputError, match=r"cannot read .*plain\.jsonl\.gz .*not what its extension says"):
        build_corpus([tmp_path / "plain.jsonl.gz"], tok, tmp_path / "c2")
    (tmp_path / "odd.jsonl").write_bytes(b'{"text": "the \x01 cat"}\n{"text": "a", "n": ' + b"9" * 5000 + b'}\n'
                                         b'{"text": "red"}\n')
    with pytest.raises(InputError, match=r"odd\.jsonl:1: not valid JSON \(Invalid control character at column 15\)"):
        build_corpus([tmp_path / "odd.jsonl"], tok, tmp_path / "c2")
    manifest = build_corpus([tmp_path / "odd.jsonl"], tok, tmp_path / "c2", CorpusBuildConfig(on_error="skip"))
    assert manifest["counts"]["skipped_lines"] == 2 and "Exceeds the limit (4300 digits)" in manifest["skipped_examples"][1]
    (tmp_path / "pretty.json").write_text(json.dumps([{"text": "the cat"}], indent=2))
    with pytest.raises(InputError, match=r"pretty\.json:1: .*write one JSON object per line"):
        build_corpus([tmp_path / "pretty.json"], tok, tmp_path / "c3")
