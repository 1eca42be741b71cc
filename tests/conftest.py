"""Fixtures: tokenizers trained or written on the fly, generated corpora with planted repeats, and
brute-force reference computations over plain Python lists."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach a hub
# lm-eval's task index cache (evaluate/tasks.py) in a folder of this run, not the user's ~/.cache
os.environ.setdefault("SEETHROUGH_CACHE", __import__("tempfile").mkdtemp(prefix="seethrough-cache-"))

import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "a", "big", "red", "blue", "house", "and", "of",
         "to", "in", "é", "naïve", "café", "日本", "猫", "😀", "über", "ß"]


def word_tokenizer(path: Path, extra: int = 0) -> Path:
    """Word-level tokenizer over WORDS (+ ``extra`` filler words): ids are predictable for brute force."""
    vocab = {w: i for i, w in enumerate(WORDS + [f"w{i}" for i in range(extra)])}
    vocab["[UNK]"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.save(str(path))
    return path


def bpe_tokenizer(path: Path, texts: list[str], vocab: int = 400) -> Path:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.save(str(path))
    return path


def generated_documents(seed: int = 1, n_docs: int = 300) -> list[str]:
    """Random word documents with Zipf-like frequencies, empty documents, and planted repeated phrases."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(WORDS))]
    docs = []
    for i in range(n_docs):
        if i % 37 == 5:
            docs.append("")
            continue
        docs.append(" ".join(rng.choices(WORDS, weights, k=rng.randint(1, 60))))
    planted = ["big red house of the naïve cat", "日本 猫 😀 über ß", "dog ran to the café"]
    for copies, phrase in zip([1, 5, 17], planted):
        for d in rng.sample(range(n_docs), copies):
            docs[d] = (docs[d] + " " + phrase).strip()
    return docs


def write_jsonl(path: Path, docs: list[str], **extra) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for i, text in enumerate(docs):
            handle.write(json.dumps({"text": text, "n": i, **extra}, ensure_ascii=False) + "\n")
    return path


def world_model_folder(folder: Path, seq_len: int, seed: int) -> Path:
    """A random tiny GPT-NeoX over the word-level tokenizer of the ci world (seed 5), saved as an HF folder
    with the tokenizer config ``AutoTokenizer`` needs (as a run's checkpoint has): for eval tests."""
    from seethrough.demo.world import EOD, generate_world, word_tokenizer_json
    from seethrough.train.model import build_model

    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text(word_tokenizer_json(generate_world(5, "ci").vocabulary))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOD, "eos_token": EOD, "unk_token": None,
        "model_max_length": 2048, "clean_up_tokenization_spaces": False}))
    vocab = len(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"])
    build_model("tiny", vocab, seq_len, 0, seed=seed).save_pretrained(folder)
    return folder


def brute_count(docs: list[list[int]], query: list[int]) -> int:
    m = len(query)
    return sum(1 for d in docs for i in range(len(d) - m + 1) if d[i:i + m] == query)


def brute_occurrences(docs: list[list[int]], query: list[int]) -> list[tuple[int, int]]:
    m = len(query)
    return [(j, i) for j, d in enumerate(docs) for i in range(len(d) - m + 1) if d[i:i + m] == query]


@pytest.fixture(scope="session")
def word_corpus(tmp_path_factory):
    """A 3-shard word-level corpus with its index, its documents as token lists, and the tokenizer."""
    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.corpus import CorpusBuildConfig

    root = tmp_path_factory.mktemp("word")
    tok = word_tokenizer(root / "tokenizer.json")
    docs = generated_documents()
    write_jsonl(root / "docs.jsonl", docs)
    build_corpus([root / "docs.jsonl"], tok, root / "corpus", CorpusBuildConfig(shard_tokens=3000))
    build_index(root / "corpus")
    corpus = open_corpus(root / "corpus")
    assert len(corpus.corpus.shards) >= 3
    token_docs = [corpus.tokenizer.encode(d) for d in docs]
    return corpus, token_docs, docs


@pytest.fixture(scope="session")
def world_corpus(tmp_path_factory):
    """600 documents of the demo world in several shards, with the index built."""
    from seethrough import build_corpus, build_index, open_token_corpus
    from seethrough.corpus import CorpusBuildConfig
    from seethrough.demo.world import generate_world, word_tokenizer_json

    root = tmp_path_factory.mktemp("world")
    world = generate_world(5, "ci")
    docs = world.documents[:600]
    with open(root / "docs.jsonl", "w", encoding="utf-8") as handle:
        for d in docs:
            handle.write(json.dumps(d) + "\n")
    (root / "tokenizer.json").write_text(word_tokenizer_json(world.vocabulary), encoding="utf-8")
    build_corpus([root / "docs.jsonl"], root / "tokenizer.json", root / "corpus", CorpusBuildConfig(shard_tokens=3000))
    build_index(root / "corpus")
    corpus = open_token_corpus(root / "corpus")
    assert len(corpus.shards) >= 3
    return root, corpus, world, docs


@pytest.fixture(scope="session")
def tiny_run(world_corpus, tmp_path_factory):
    """A run of the tiny model on the world corpus: 4 steps, checkpoints at steps 0, 1, 2 and 4."""
    from seethrough.train import train

    root, _, _, _ = world_corpus
    out = tmp_path_factory.mktemp("tiny_run") / "run"
    train(root / "corpus", out, {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 4, "threads": 1})
    return out
