"""The pure parts of the --ray path, without a cluster: the shard cut rule both builds share, where
shards are placed, how query servers split the shards, and what happens without Ray installed."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from conftest import word_tokenizer, write_jsonl
from seethrough import build_corpus
from seethrough.corpus import CorpusBuildConfig
from seethrough.corpus.build import documents_that_fit, shard_sizes
from seethrough.errors import ConfigError, CorpusError


def _cut_one_by_one(lengths: list[int], shard_tokens: int) -> list[int]:
    """The rule in words, document by document: a document opens a new shard when the current one is
    full (holds shard_tokens tokens) or would go past shard_tokens with it; a shard holds at least one."""
    sizes, tokens, documents = [], 0, 0
    for length in lengths:
        if documents and (tokens >= shard_tokens or tokens + length > shard_tokens):
            sizes.append(documents)
            tokens, documents = 0, 0
        tokens += length
        documents += 1
    if documents:
        sizes.append(documents)
    return sizes


@pytest.mark.parametrize("seed", range(6))
def test_shard_sizes_follow_the_rule_document_by_document(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([0, 0, 1, 3, 7, 20, 150]) for _ in range(rng.randint(1, 3000))]
    for shard_tokens in (1, 5, 20, 64, 1000):
        assert shard_sizes(np.array(lengths, dtype=np.int64), shard_tokens) == _cut_one_by_one(lengths, shard_tokens)


def test_documents_that_fit_stops_at_a_full_shard():
    # 3 + 2 fills a 5-token shard exactly: the empty document after it opens the next shard
    assert documents_that_fit(5, 0, 0, np.array([3, 2, 0, 1])) == 2
    assert documents_that_fit(6, 0, 0, np.array([3, 2, 0, 1])) == 4  # not full yet: the empty one and 1 fit
    assert documents_that_fit(5, 5, 2, np.array([0, 1])) == 0
    assert documents_that_fit(5, 0, 0, np.array([9, 1])) == 1  # an empty shard takes one document whatever its size
    assert documents_that_fit(10, 0, 0, np.zeros(5000, dtype=np.int64)) == 5000  # past the first window


def test_local_build_cuts_the_same_shards_whatever_the_batches(tmp_path):
    """The streaming build cuts by the same rule whatever its batch boundaries, which is what lets a
    cluster build, which sees whole inputs, cut the same shards."""
    tok = word_tokenizer(tmp_path / "tok.json")
    rng = random.Random(1)
    words = ["the", "cat", "sat", "on", "mat", "dog"]
    docs = [" ".join(rng.choices(words, k=rng.choice([0, 0, 1, 2, 5, 9]))) for _ in range(400)]
    write_jsonl(tmp_path / "d.jsonl", docs)
    lengths = [len(d.split()) for d in docs]
    manifests = [build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / f"c{b}",
                              CorpusBuildConfig(shard_tokens=10, batch_documents=b)) for b in (1, 7, 2048)]
    expected = _cut_one_by_one(lengths, 10)
    for manifest in manifests:
        assert [s["documents"] for s in manifest["shards"]] == expected
    assert len({m["corpus_hash"] for m in manifests}) == 1


def test_place_shards_on_shared_and_node_local_storage():
    from seethrough.distributed import place_shards

    nodes = ["a", "b", "c"]
    sizes = {0: 50, 1: 40, 2: 30, 3: 20}
    assert place_shards({s: nodes for s in sizes}, nodes, sizes) == {s: None for s in sizes}  # shared: anywhere
    holders = {0: ["a"], 1: ["a", "b"], 2: ["b", "c"], 3: ["a", "b", "c"]}
    placed = place_shards(holders, nodes, sizes)
    assert all(placed[s] in holders[s] for s in sizes)  # each on a node that holds it
    assert placed == {0: "a", 1: "b", 2: "c", 3: "c"}  # largest first, on the holder with least placed so far
    with pytest.raises(CorpusError, match="shard 2 is on no live node"):
        place_shards({0: ["a"], 1: ["b"]}, nodes, {0: 1, 1: 1, 2: 1})


def test_spread_shards_gives_every_server_a_contiguous_run():
    from seethrough.distributed import spread_shards

    for sizes, servers in (([10] * 7, 3), ([100, 1, 1, 1, 1], 3), ([5], 3), ([1, 2, 3, 4, 5, 6], 2)):
        groups = spread_shards(sizes, min(servers, len(sizes)))
        assert [s for g in groups for s in g] == list(range(len(sizes)))  # every shard once, in order
        assert len(groups) == min(servers, len(sizes)) and all(groups)
    assert spread_shards([10] * 6, 3) == [[0, 1], [2, 3], [4, 5]]


def test_without_ray_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    from seethrough.distributed import connect

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError) as raised:
        connect("auto")
    assert str(raised.value) == "--ray needs Ray, which is not installed here: pip install 'seethrough[ray]'"
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    tok = word_tokenizer(tmp_path / "tok.json")
    write_jsonl(tmp_path / "d.jsonl", ["the cat sat"] * 5)
    build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c")
    corpus = str(tmp_path / "c")
    for command in (["index", "build", corpus], ["corpus", "verify", corpus], ["count", corpus, "--ids", "1"],
                    ["doctor", corpus]):
        result = CliRunner().invoke(app, [*command, "--ray", "auto"])
        assert isinstance(result.exception, ConfigError) and "pip install 'seethrough[ray]'" in str(result.exception)
    result = CliRunner().invoke(app, ["corpus", "build", str(tmp_path / "d.jsonl"), "--tokenizer", str(tok), "--out",
                                      str(tmp_path / "r"), "--ray", "auto"])
    assert isinstance(result.exception, ConfigError) and not (tmp_path / "r").exists()


def test_seethrough_starts_without_importing_ray():
    code = "import sys, seethrough.cli.app, seethrough.index, seethrough.distributed; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_doctor_without_ray_describes_this_machine(tmp_path):
    from seethrough.distributed import describe_cluster
    from seethrough.index.build import choose_sort, parse_memory

    tok = word_tokenizer(tmp_path / "tok.json")
    write_jsonl(tmp_path / "d.jsonl", ["the cat sat"] * 50)
    manifest = build_corpus([tmp_path / "d.jsonl"], tok, tmp_path / "c", CorpusBuildConfig(shard_tokens=40))
    report = describe_cluster(None, tmp_path / "c", threads=2)
    assert len(report.nodes) == 1 and report.corpus["storage"] == "shared" and report.problems == []
    assert report.nodes[0].shards == list(range(len(manifest["shards"]))) and report.nodes[0].tables == []
    largest = max(s["files"][f"tokenized.{s['shard']}"]["bytes"] for s in manifest["shards"])
    assert report.build.memory_per_task == choose_sort(0, largest, 2, 2, parse_memory(None))[2]
    assert report.build.waves == len(manifest["shards"])  # the local build sorts one shard after another
    assert json.loads(json.dumps(report.to_dict()))["corpus"]["shards"] == len(manifest["shards"])


def test_an_address_where_nothing_listens_is_refused_at_once():
    """Ray itself waits minutes for a head that is not there (printing retries); a host:port where no
    process listens is one line at once. The port is one this test bound and closed, so nothing is on it."""
    import socket

    pytest.importorskip("ray")
    from seethrough.distributed import connect

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError) as raised:
        connect(f"127.0.0.1:{port}")
    assert str(raised.value).startswith(f"nothing answers at --ray 127.0.0.1:{port} (")
    assert "ray start --head" in str(raised.value)
