"""--ray on a real multi-node Ray cluster on this machine (ray.cluster_utils.Cluster: a head and two
worker nodes of 1 CPU each, loopback only, its token and temporary files in a temporary folder).

Every result is compared with the local code's on the same data: the corpus build's shard files and
the index tables byte for byte, queries answer for answer (and counts against brute force too). The
faults are real: a worker node removed while it sorts a shard, a query server's process killed.
The cluster starts once for the module (Ray's start-up is most of the cost); no process started for
it is left running afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

# test only, read when Ray is imported: every Ray socket on 127.0.0.1 (Ray otherwise uses the interface address)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")

from conftest import brute_count, generated_documents, word_tokenizer, write_jsonl  # noqa: E402

from seethrough import CorpusError, QueryError, build_corpus, build_index, open_corpus  # noqa: E402
from seethrough.corpus import CorpusBuildConfig  # noqa: E402


def _processes_with(marker: str) -> list[int]:
    """Processes of this user whose environment holds ``marker`` (every process of the test cluster
    inherits the cluster's unique temporary folder in RAY_TMPDIR)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def cluster():
    """Head + 2 worker nodes, 1 CPU each, 150 MiB object store each, loopback only."""
    from ray.cluster_utils import Cluster

    # a short path: Ray's socket paths must stay under 107 bytes
    tmp = Path(tempfile.mkdtemp(prefix="st-ray-", dir="/tmp"))
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_TOKEN_PATH": str(tmp / "auth_token"), "RAY_TMPDIR": str(tmp)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False,
        # a dead node is noticed in about a second instead of 15
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3}})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        ray.init(address=cluster.address, log_to_driver=False, logging_level="warning")
        cluster.wait_for_nodes()
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        deadline = time.time() + 20
        while _processes_with(str(tmp)) and time.time() < deadline:
            time.sleep(0.2)
        left = _processes_with(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"Ray processes of the test cluster still running: {left}"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Three input files, the local build (corpus + index) and the tokenizer; several shards."""
    root = tmp_path_factory.mktemp("ray")
    tok = word_tokenizer(root / "tokenizer.json")
    docs = generated_documents(seed=7, n_docs=360)
    (root / "in").mkdir()
    for part in range(3):
        write_jsonl(root / "in" / f"part{part}.jsonl", docs[part * 120:(part + 1) * 120], part=part)
    config = CorpusBuildConfig(shard_tokens=2500)
    build_corpus([root / "in"], tok, root / "local", config)
    build_index(root / "local", threads=1)
    return root, tok, docs, config


def _shard_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.name.split(".")[0] in ("tokenized", "offset", "metadata", "metaoff", "table")}


def _without_created(path: Path) -> dict:
    manifest = json.loads(path.read_text())
    manifest.pop("created")
    return manifest


@pytest.fixture(scope="module")
def ray_built(cluster, corpora):
    """The same corpus built and indexed on the cluster."""
    from seethrough.distributed import build_corpus_on_ray, build_index_on_ray

    root, tok, _, config = corpora
    address = cluster[0].address
    build_corpus_on_ray([root / "in"], tok, root / "remote", config, ray=address)
    result = build_index_on_ray(root / "remote", address)
    return root / "remote", result, address


def test_corpus_built_on_the_cluster_is_the_local_build(ray_built, corpora):
    root = corpora[0]
    remote, _, _ = ray_built
    local_files, remote_files = _shard_files(root / "local"), _shard_files(remote)
    assert len([n for n in local_files if n.startswith("tokenized")]) >= 4
    assert local_files == remote_files  # every shard file and table, byte for byte
    assert _without_created(root / "local" / "manifest.json") == _without_created(remote / "manifest.json")
    assert _without_created(root / "local" / "index.json") == _without_created(remote / "index.json")
    leftovers = [p.name for p in remote.parent.iterdir() if p.name.startswith(".remote.")]
    assert leftovers == [] and not [p for p in remote.iterdir() if p.name.endswith(".tmp")]


def test_index_tasks_spread_and_use_the_local_sort(ray_built, cluster):
    _, result, _ = ray_built
    assert result.storage == "shared"
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert set(result.built_on.values()) <= nodes and len(set(result.built_on.values())) >= 2  # SPREAD
    assert all(task.threads == 1 and task.memory > 0 for task in result.tasks)


def _sample(token_docs: list[list[int]], rng: random.Random, n: int) -> list[list[int]]:
    queries = []
    for _ in range(n):
        doc = rng.choice([d for d in token_docs if d])
        start = rng.randrange(len(doc))
        queries.append(doc[start:start + rng.randint(1, 6)])
    return queries + [[3, 3, 3, 3, 3, 3, 3]]  # one that occurs nowhere


def test_queries_through_the_servers_equal_the_local_engine(ray_built, corpora, monkeypatch):
    remote, _, address = ray_built
    local = open_corpus(remote)
    docs = corpora[2]
    token_docs = [local.tokenizer.encode(d) for d in docs]
    rng = random.Random(5)
    queries = _sample(token_docs, rng, 300)  # over the engine's parallel-batch threshold
    with open_corpus(remote, ray=address) as spread:
        assert len(spread.servers.places) == 3 and sum(len(p.shards) for p in spread.servers.places) == len(
            local.corpus.shards)
        counts = spread.count_many(queries)
        assert counts == local.count_many(queries) == [brute_count(token_docs, q) for q in queries]
        assert spread.count(queries[0]) == counts[0] and spread.count("the cat") == local.count("the cat")
        from seethrough.distributed import queries as server_calls

        monkeypatch.setattr(server_calls, "INLINE_BYTES", 0)  # the batch through the object store, as a large one goes
        assert spread.count_many(queries) == counts and spread.ntd("the").to_dict() == local.ntd("the").to_dict()
        monkeypatch.undo()
        assert spread.doc_freq_many(queries[:50]) == local.doc_freq_many(queries[:50])
        for limit in (0, 3, 1000):
            assert ([r.to_dict() for r in spread.find_many(queries[:40], limit=limit, context=2)]
                    == [r.to_dict() for r in local.find_many(queries[:40], limit=limit, context=2)])
        assert [p.tolist() for p in spread.positions("the")] == [p.tolist() for p in local.positions("the")]
        for prompt in ("", "the", "the cat", [0, 1], "dog ran to the"):
            assert spread.ntd(prompt).to_dict() == local.ntd(prompt).to_dict()
        pairs = [(q[:-1], q[-1]) for q in queries[:60] if len(q) > 1]
        assert [p.to_dict() for p in spread.prob_many(pairs)] == [p.to_dict() for p in local.prob_many(pairs)]
        assert ([p.to_dict() for p in spread.infgram_prob_many(pairs)]
                == [p.to_dict() for p in local.infgram_prob_many(pairs)])
        texts = [docs[3] + " big red house of the naïve cat", "dog ran to the café and the cat sat", docs[100]]
        assert spread.longest_matches_many(texts) == local.longest_matches_many(texts)
        for text in texts:
            assert ([s.to_dict() for s in spread.maximal_spans(text, min_length=2)]
                    == [s.to_dict() for s in local.maximal_spans(text, min_length=2)])
        for query in ([["the"], ["cat", "dog"]], [["big red"], ["house"]]):
            for limit in (2, 100):
                assert (spread.search(query, window=5, limit=limit).to_dict()
                        == local.search(query, window=5, limit=limit).to_dict())


def test_a_dead_query_server_fails_the_query_naming_its_shards(ray_built):
    remote, _, address = ray_built
    spread = open_corpus(remote, ray=address, verify=True)  # re-hashed on the cluster first
    try:
        assert spread.count("the") == open_corpus(remote).count("the")
        place = spread.servers.places[1]
        os.kill(spread.servers.pids()[1], signal.SIGKILL)
        for attempt in (lambda: spread.count("the"), lambda: spread.count_many([[1], [2, 3]])):
            with pytest.raises(QueryError) as raised:
                attempt()  # never a partial count
            message = str(raised.value)
            assert "\n" not in message and "no partial answer" in message
            named = message.split(" did not answer")[0]
            assert named == (f"shard {place.shards[0]}" if len(place.shards) == 1
                             else "shards " + ", ".join(map(str, place.shards)))
    finally:
        spread.close()


def test_verify_on_the_cluster(ray_built, corpora, tmp_path):
    from seethrough.distributed import verify_on_ray
    from seethrough.index import verify

    remote, _, address = ray_built
    assert verify_on_ray(remote, address) == verify(remote)
    copy = tmp_path / "copy"
    shutil.copytree(remote, copy)
    data = bytearray((copy / "metadata.2").read_bytes())
    data[5] ^= 1  # same size: only a re-hash sees it
    (copy / "metadata.2").write_bytes(bytes(data))
    with pytest.raises(CorpusError) as local_error:
        verify(copy)
    with pytest.raises(CorpusError) as ray_error:
        verify_on_ray(copy, address)
    assert str(ray_error.value) == str(local_error.value)
    with pytest.raises(CorpusError, match="metadata.2 does not match its sha256"):
        open_corpus(copy, ray=address, verify=True)  # refused before any query server starts


def test_index_build_resumes_and_rebuilds_a_half_written_table(ray_built, corpora, tmp_path):
    from seethrough.distributed import build_index_on_ray

    remote, _, address = ray_built
    root = corpora[0]
    copy = tmp_path / "resume"
    shutil.copytree(remote, copy)
    index = json.loads((copy / "index.json").read_text())
    for name in ("table.1", "table.3"):  # a crash before these were recorded
        del index["tables"][name]
    (copy / "index.json").write_text(json.dumps(index))
    (copy / "table.1").write_bytes((copy / "table.1").read_bytes()[:100])  # half written, never recorded
    (copy / ".table.3.deadnode-0000.tmp").write_bytes(b"partial")  # an attempt whose node died
    result = build_index_on_ray(copy, address)
    assert sorted(task.shard for task in result.tasks) == [1, 3]  # the others were kept
    assert _shard_files(copy) == _shard_files(root / "local")
    assert not [p for p in copy.iterdir() if p.name.endswith(".tmp")]


def test_pinned_placement_runs_each_shard_where_asked(ray_built, tmp_path):
    from seethrough.distributed import build_index_on_ray

    remote, _, address = ray_built
    copy = tmp_path / "pinned"
    shutil.copytree(remote, copy, ignore=shutil.ignore_patterns("table.*", "index.json"))
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    shards = len(json.loads((copy / "manifest.json").read_text())["shards"])
    where = {s: nodes[s % len(nodes)] for s in range(shards)}
    result = build_index_on_ray(copy, address, placement=where)
    assert result.built_on == where
    assert _shard_files(copy) == _shard_files(remote)


def test_killing_a_worker_node_during_the_build_gives_the_same_tables(cluster, tmp_path):
    """A node removed while its task sorts a shard: Ray runs the task again elsewhere, same bytes."""
    from seethrough.distributed import build_index_on_ray
    from seethrough.distributed.cluster import on_node

    head, workers = cluster
    tok = word_tokenizer(tmp_path / "tokenizer.json", extra=3000)
    rng = random.Random(3)
    words = [f"w{i}" for i in range(3000)]
    with open(tmp_path / "big.jsonl", "w") as handle:  # shards large enough to take a while to sort
        for _ in range(600):
            handle.write(json.dumps({"text": " ".join(rng.choices(words, k=2500))}) + "\n")
    build_corpus([tmp_path / "big.jsonl"], tok, tmp_path / "big", CorpusBuildConfig(shard_tokens=750_000))
    shutil.copytree(tmp_path / "big", tmp_path / "local")
    build_index(tmp_path / "local", threads=1)
    doomed = head.add_node(num_cpus=1)
    doomed_id = doomed.node_id

    @ray.remote(num_cpus=1)
    def hold(seconds: float) -> None:
        time.sleep(seconds)

    # every other node's CPU busy for a while: the first shard task can only start on the doomed node
    others = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != doomed_id]
    blockers = [hold.options(scheduling_strategy=on_node(node)).remote(4.0) for node in others]
    outcome: dict = {}

    def build() -> None:
        try:
            outcome["result"] = build_index_on_ray(tmp_path / "big", head.address)
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    thread = threading.Thread(target=build)
    thread.start()
    claimed = None
    deadline = time.time() + 60
    while claimed is None and time.time() < deadline and thread.is_alive():
        claimed = next((p.name for p in (tmp_path / "big").glob(f".table.*.{doomed_id[:12]}-*.tmp")), None)
        time.sleep(0.01)
    assert claimed, "no shard was being sorted on the doomed node"
    worker = int((tmp_path / "big" / claimed).read_text().split()[1])
    os.kill(worker, signal.SIGKILL)  # the task's worker dies mid-sort, and then its whole node
    head.remove_node(doomed, allow_graceful=False)
    thread.join(180)
    ray.get(blockers)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    retried = int(claimed.split(".")[2])
    assert result.built_on[retried] != doomed_id  # its table came from the task run again on another node
    assert _shard_files(tmp_path / "big") == _shard_files(tmp_path / "local")
    assert not [p for p in (tmp_path / "big").iterdir() if p.name.endswith(".tmp")]


def test_doctor_reports_nodes_storage_and_build_needs(ray_built):
    from seethrough.distributed import describe_cluster
    from seethrough.index.build import choose_sort, shard_memory_needed

    remote, _, address = ray_built
    report = describe_cluster(address, remote, threads=1)
    alive = [n for n in ray.nodes() if n["Alive"]]
    assert sorted(p.node.node_id for p in report.nodes) == sorted(n["NodeID"] for n in alive)
    assert report.totals["cpus"] == sum(n["Resources"].get("CPU", 0) for n in alive)
    assert report.problems == []
    manifest = json.loads((remote / "manifest.json").read_text())
    assert report.corpus["storage"] == "shared" and report.corpus["tables_built"] == len(manifest["shards"])
    assert all(count == len(alive) for count in report.corpus["shard_nodes"].values())
    largest = max(s["files"][f"tokenized.{s['shard']}"]["bytes"] for s in manifest["shards"])
    _, _, need = choose_sort(0, largest, 2, 1, max(p.node.memory for p in report.nodes))
    assert report.build.memory_per_task == need == shard_memory_needed(largest, 2, 1)
    assert report.build.builds_at_once == {n["NodeID"]: 1 for n in alive}  # 1 CPU each, memory to spare
    assert all(p.node.address == "127.0.0.1" for p in report.nodes)  # loopback only
    assert report.build.waves == -(-len(manifest["shards"]) // len(alive))


def test_commands_with_ray_print_what_they_print_without(ray_built, corpora, tmp_path):
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    remote, _, address = ray_built
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    queries = tmp_path / "q.jsonl"
    queries.write_text('{"text": "the cat"}\n{"ids": [1, 2]}\n{"text": "dog ran"}\n')
    # each command starts its own query servers (a few seconds): three commands, the other queries are
    # compared through the API above
    for command in (["count", str(remote), "--queries", str(queries), "--doc-freq", "--json"],
                    ["find", str(remote), "the cat", "--limit", "4"], ["search", str(remote), "the AND cat", "--json"]):
        assert run(*command, "--ray", address) == run(*command)
    assert json.loads(run("corpus", "verify", str(remote), "--ray", address, "--json")) == json.loads(
        run("corpus", "verify", str(remote), "--json"))
    doctor = json.loads(run("doctor", str(remote), "--ray", address, "--json"))
    assert doctor["corpus"]["storage"] == "shared" and doctor["problems"] == []
    root, tok, _, _ = corpora
    built = json.loads(run("corpus", "build", str(root / "in"), "--tokenizer", str(tok), "--out", str(tmp_path / "c"),
                           "--shard-tokens", "2500", "--ray", address, "--json"))
    assert built["corpus_hash"] == json.loads((root / "local" / "manifest.json").read_text())["corpus_hash"]
    indexed = json.loads(run("index", "build", str(tmp_path / "c"), "--ray", address, "--json"))
    assert indexed["tables"] == built["shards"] and _shard_files(tmp_path / "c") == _shard_files(root / "local")


def test_corpus_build_resumes_after_an_interruption(cluster, corpora, tmp_path):
    """Ctrl-C (here raised from the progress callback) stops the build's tasks and leaves the cluster up;
    the rerun keeps the inputs already tokenized (their files are not written again) and gives the
    local build's shards."""
    from seethrough.distributed import build_corpus_on_ray

    root, tok, _, config = corpora
    address = cluster[0].address

    def interrupt(progress) -> None:
        raise KeyboardInterrupt  # at the first input done

    with pytest.raises(KeyboardInterrupt):
        build_corpus_on_ray([root / "in"], tok, tmp_path / "c", config, ray=address, progress=interrupt)
    assert not (tmp_path / "c").exists()
    (work,) = [p for p in tmp_path.iterdir() if p.name.startswith(".c.ray-")]
    kept = sorted(int(p.name.split(".")[1]) for p in (work / "records").glob("run.*.json"))
    assert kept and len(kept) < 3
    inodes = {k: (work / "runs" / f"tokenized.{k}").stat().st_ino for k in kept}
    at_last_input = {}

    def watch(progress) -> None:
        if progress.inputs_done == progress.inputs_total and not at_last_input:
            at_last_input.update({k: (work / "runs" / f"tokenized.{k}").stat().st_ino for k in kept})

    build_corpus_on_ray([root / "in"], tok, tmp_path / "c", config, ray=address, progress=watch)
    assert at_last_input == inodes  # the kept runs were not tokenized again
    assert _shard_files(tmp_path / "c") == {k: v for k, v in _shard_files(root / "local").items()
                                            if not k.startswith("table")}
    assert _without_created(tmp_path / "c" / "manifest.json") == _without_created(root / "local" / "manifest.json")
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_bad_input_on_the_cluster_is_the_local_error(cluster, corpora, tmp_path):
    from seethrough import InputError
    from seethrough.distributed import build_corpus_on_ray

    _, tok, _, _ = corpora
    address = cluster[0].address
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"text": "the cat"}\n')
    (tmp_path / "in" / "b.jsonl").write_text('{"text": "the dog"}\n{"text": 5}\n')
    (tmp_path / "in" / "c.jsonl").write_text('not json\n')
    with pytest.raises(InputError) as local:
        build_corpus([tmp_path / "in"], tok, tmp_path / "l")
    with pytest.raises(InputError) as remote:
        build_corpus_on_ray([tmp_path / "in"], tok, tmp_path / "r", ray=address)
    assert str(remote.value) == str(local.value) and "b.jsonl" in str(local.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


# ---- audits over many checkpoints: one task per checkpoint --------------------------------------------
def _greedy_of_checkpoint(prompts: list[list[int]], checkpoint):
    """Greedy continuations and next-token scores of ``prompts`` by one checkpoint, on CPU, 1 thread."""
    import torch

    from seethrough.model import greedy_continuations, load_model

    model = load_model(checkpoint, threads=1)
    with torch.no_grad():
        logits = model(torch.tensor(prompts)).logits[:, -1].tolist()
    return greedy_continuations(model, prompts, 6), logits


def test_map_checkpoints_equals_the_sequential_run(cluster, tiny_run):
    """The per-checkpoint work on the cluster (one task each) returns, in checkpoint order, exactly what
    the loop on one machine returns: bit for bit on CPU."""
    import functools

    pytest.importorskip("torch")
    from seethrough.distributed import map_checkpoints
    from seethrough.errors import ModelError
    from seethrough.model import resolve_target

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's function travels by value
    checkpoints = resolve_target(tiny_run, "all").checkpoints
    assert len(checkpoints) >= 3
    work = functools.partial(_greedy_of_checkpoint, [[1, 2, 3, 4], [5, 6, 7, 8]])
    sequential = [work(c) for c in checkpoints]
    assert map_checkpoints(work, checkpoints, cluster[0].address, gpus=0) == sequential
    assert len({json.dumps(r) for r in sequential}) > 1  # the checkpoints differ, so order matters
    missing = tiny_run / "checkpoints" / "step-999"
    with pytest.raises(ModelError) as local:
        work(missing)
    with pytest.raises(ModelError) as remote:
        map_checkpoints(work, [checkpoints[0], missing], cluster[0].address, gpus=0)
    assert str(remote.value) == str(local.value)


def test_memorization_membership_and_eval_over_checkpoints_equal_the_local_run(cluster, tiny_run, world_corpus,
                                                                                tmp_path):
    """``--ray`` on the three audits over checkpoints: one task per checkpoint, each reopening the corpus
    and run by path on its node, gives what the loop on this machine gives (CPU, 1 thread: bit for bit)."""
    pytest.importorskip("torch")
    pytest.importorskip("lm_eval")
    from seethrough.audit.membership import evaluate_checkpoints as membership_over_checkpoints
    from seethrough.audit.memorization import evaluate_memorization
    from seethrough.evaluate.checkpoints import evaluate_checkpoints
    from seethrough.index import open_corpus
    from seethrough.model import resolve_target

    root, _, world, docs = world_corpus
    index = open_corpus(root / "corpus")
    address = cluster[0].address

    def memorized(ray):
        return evaluate_memorization(tiny_run, index, sample=12, prompt_len=[4, 8], cont_len=4, checkpoints="0,2,last",
                                     threads=1, ray=ray).to_dict()

    local = memorized(None)
    assert memorized(address) == local
    assert list(local["summary"]) == [f"step-{s} prompt-{k}" for s in (0, 2, 4) for k in (4, 8)]

    members = [d["text"] for d in docs[:6]]
    nonmembers = [c["text"] for c in world.truth["heldout_canaries"][:6]]
    here = membership_over_checkpoints(tiny_run, index, members, nonmembers, checkpoints="all", threads=1)
    there = membership_over_checkpoints(tiny_run, index, members, nonmembers, checkpoints="all", threads=1, ray=address)
    assert list(there) == list(here) == [f"step-{s}" for s in (0, 1, 2, 4)]
    for label in here:
        assert there[label].to_dict() == here[label].to_dict()
        assert [r.to_dict() for r in there[label].members] == [r.to_dict() for r in here[label].members]

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    items = [i for i in world.eval_items if i["task"] == "birth_city"][:6]
    (tasks / "rq_mc.jsonl").write_text("".join(json.dumps({k: i[k] for k in ("prompt", "choices", "answer")}) + "\n"
                                               for i in items))
    (tasks / "rq_mc.yaml").write_text(
        f"task: rq_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tasks / 'rq_mc.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{prompt}}\"\n"
        "doc_to_choice: \"{{choices}}\"\ndoc_to_target: \"{{choices.index(answer)}}\"\nmetric_list:\n  - metric: acc\n")
    target = resolve_target(tiny_run, "1,last")
    evaluated = {}
    for name, ray in (("local", None), ("ray", address)):
        per_step = evaluate_checkpoints(target, ["rq_mc"], tmp_path / name, corpus=index, ray=ray,
                                        include_path=tasks, ngram=4, threads=1)
        evaluated[name] = json.loads(json.dumps(
            {step: [result.results, [r["resps"] for r in result.samples["rq_mc"]], bias]
             for step, (result, bias) in per_step.items()}, default=str))
        assert sorted(p.name for p in (tmp_path / name).iterdir() if p.is_dir()) == ["step-1", "step-4"]
    assert evaluated["ray"] == evaluated["local"]
    assert list(evaluated["local"]) == ["1", "4"]
    tables = [json.loads((tmp_path / name / "by_checkpoint.json").read_text()) for name in ("local", "ray")]
    assert tables[0] == tables[1] and tables[0]
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    command = ["memorization", str(tiny_run), "--corpus", str(root / "corpus"), "--sample", "8", "--prompt-len", "4",
               "--cont-len", "4", "--checkpoints", "0,last", "--threads", "1", "--json"]
    printed = [CliRunner().invoke(app, command + extra) for extra in ([], ["--ray", address])]
    assert all(p.exit_code == 0 for p in printed), [p.output for p in printed]
    assert printed[0].stdout == printed[1].stdout and printed[0].stdout.count("\n") == 16
