"""lm-eval's task index, kept between runs (``seethrough.evaluate.tasks``): the cached index is the one
``TaskManager()`` builds, on lm-eval's own task folders and on local YAMLs with ``include:`` chains,
templates, ``!function`` metrics, tags and groups; the tasks it resolves have the same configs and render
the same requests (and seethrough's records the same hashes); any change of a file it covers, and any
damage to the cache, makes it rebuild.

lm-eval's own ``TaskManager()`` takes 8-15 s here, so it is built once for the module."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

TEMPLATE = """dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}/test.jsonl
    train: {data}/train.jsonl
test_split: test
fewshot_split: train
output_type: multiple_choice
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{choices.index(answer)}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
UTILS = '''def doc_to_text(doc):
    return doc["prompt"] + " ->"


def process_docs(dataset):
    return dataset.filter(lambda doc: doc["answer"] != doc["choices"][0])
'''
METRICS = '''import statistics


def process_results(doc, results):
    lls = [r[0] for r in results]
    gold = doc["choices"].index(doc["answer"])
    return {"acc": float(max(range(len(lls)), key=lls.__getitem__) == gold), "gold_ll": lls[gold]}


def median(items):
    return statistics.median(items)
'''
FILES = {
    "_template_yaml": TEMPLATE,  # no .yaml suffix: read only through include:, as lm-eval's own templates
    "loc_a.yaml": 'include: _template_yaml\ntask: loc_a\ndoc_to_text: "{{prompt}}"\n',
    "sub/utils.py": UTILS,
    "sub/metrics.py": METRICS,
    "sub/loc_b.yaml": ("include: ../loc_a.yaml\ntask: loc_b\nnum_fewshot: 2\ndoc_to_text: !function utils.doc_to_text\n"
                       "process_docs: !function utils.process_docs\n"),
    "sub/loc_c.yaml": ("include:\n  - ../_template_yaml\n  - ../../outside/_shared_yaml\ntask: loc_c\n"
                       "process_results: !function metrics.process_results\nmetric_list:\n  - metric: acc\n"
                       "    aggregation: mean\n    higher_is_better: true\n  - metric: gold_ll\n"
                       "    aggregation: !function metrics.median\n    higher_is_better: true\n"),
    "sub/deeper/loc_d.yaml": "include: ../loc_c.yaml\ntask: loc_d\nnum_fewshot: 1\n",  # a chain of three
    "loc_group.yaml": ("group: loc_group\ntask:\n  - loc_a\n  - task: loc_b\n    num_fewshot: 1\n  - group: loc_sub\n"
                       "    task:\n      - loc_tag\n    aggregate_metric_list:\n      - metric: acc\n"
                       "        weight_by_size: true\naggregate_metric_list:\n  - metric: acc\n"
                       "    weight_by_size: false\nmetadata:\n  version: 2\n"),
    "zz_dup/loc_a_again.yaml": "include: ../loc_a.yaml\ntask: loc_a\n",  # a duplicate name: lm-eval warns, skips it
    "arc_easy.yaml": 'include: _template_yaml\ntask: arc_easy\ndoc_to_text: "{{prompt}} ?"\n',  # overrides lm-eval's
    "broken.yaml": "task: [unclosed\n",  # not YAML: lm-eval skips it
    "a_list.yaml": "- not\n- a mapping\n",
}
OUTSIDE = 'doc_to_text: "{{prompt}} Answer:"\ntarget_delimiter: " "\ntag: loc_tag\n'
LOCAL_TASKS = ["loc_a", "loc_b", "loc_c", "loc_d", "loc_group", "loc_tag", "arc_easy"]
SHIPPED = ["mmlu", "ai2_arc", "hellaswag", "lambada_openai", "winogrande", "wikitext", "blimp"]


def write_tree(base: Path) -> Path:
    """A task folder ``base/tasks`` (its data in ``base/data``, one included file in ``base/outside``)."""
    from seethrough.demo.world import generate_world

    world = generate_world(5, "ci")
    items = [{k: i[k] for k in ("prompt", "choices", "answer")} for i in world.eval_items if i["task"] == "birth_city"]
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items[:12]))
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items[12:24]))
    (base / "outside").mkdir(exist_ok=True)
    (base / "outside" / "_shared_yaml").write_text(OUTSIDE)
    tree = base / "tasks"
    for name, text in FILES.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text.format(data=data) if name == "_template_yaml" else text)
    return tree


def lm_eval_build():
    from lm_eval.tasks._index import TaskIndex

    return TaskIndex.__dict__["build"].__func__


def rows(index: dict) -> list[tuple]:
    """Every field of every entry, in the index's order (``cfg`` compared apart: reading it parses a file)."""
    return [(name, e.name, e.kind, e.yaml_path, e.tags) for name, e in index.items()]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_tree(tmp_path_factory.mktemp("task_tree"))


@pytest.fixture(scope="module")
def managers(tree, tmp_path_factory):
    """lm-eval's own ``TaskManager(include_path=tree)`` (every shipped task and the tree), and the same built
    through the cache twice: cold (building and writing it) and warm (reading it). The module's cache
    folder is ``$SEETHROUGH_CACHE`` for every test here."""
    from lm_eval.tasks import TaskManager

    from seethrough.evaluate.tasks import cached_task_index

    cache = tmp_path_factory.mktemp("seethrough_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEETHROUGH_CACHE", str(cache))
        plain = TaskManager(include_path=str(tree))
        with cached_task_index():
            cold = TaskManager(include_path=str(tree))
        with cached_task_index():
            warm = TaskManager(include_path=str(tree))
        yield {"plain": plain, "cold": cold, "warm": warm, "cache": cache}


@pytest.mark.parametrize("which", ["cold", "warm"])
def test_the_cached_index_is_lm_evals_on_its_own_tasks_and_a_local_tree(managers, which):
    plain, cached = managers["plain"], managers[which]
    assert len(plain.task_index) > 14000  # lm-eval's shipped tasks are in it
    assert rows(cached.task_index) == rows(plain.task_index)
    for listing in ("all_tasks", "all_subtasks", "all_groups", "all_tags"):
        assert getattr(cached, listing) == getattr(plain, listing)
    names = list(plain.task_index)
    sample = set(names[::61]) | set(LOCAL_TASKS) | set(SHIPPED)  # the raw configs: parsed again on demand
    for name in sorted(sample):
        assert cached.task_index[name].cfg == plain.task_index[name].cfg, name
    assert plain.task_index["arc_easy"].yaml_path.parent == Path(str(plain.include_path))  # the tree's overrides
    assert plain.task_index["loc_a"].yaml_path.name == "loc_a.yaml"  # the first of the duplicates


def test_the_warm_index_came_from_the_cache(managers):
    from lm_eval.tasks._index import TaskIndex

    from seethrough.evaluate.tasks import task_index_file

    entries = managers["warm"].task_index
    shipped = next(e for e in entries.values() if e.kind.name == "TASK")
    assert type(shipped).__name__ == "StoredEntry" and type(managers["plain"].task_index["loc_a"]) is not type(shipped)
    tasks_folder = Path(sys.modules[TaskIndex.__module__].__file__).parent
    for root in (tasks_folder, Path(str(managers["plain"].include_path))):
        file = task_index_file(root, cache_dir=managers["cache"] / "lm_eval_tasks")
        assert file.is_file() and json.loads(file.read_text())["key"]["root"] == str(root.resolve())


def _recorded_task_class():
    """Stands in for lm-eval's ``ConfigurableTask`` (which would download a shipped task's dataset): keeps
    the config the factory resolved, as it was handed over."""
    from lm_eval.api.task import ConfigurableTask

    class Recorded(ConfigurableTask):
        def __init__(self, config=None, **_):
            self.recorded = config
            self._config = type("Named", (), {"task": config["task"]})()

    return Recorded


def _group_view(group) -> dict:
    return {**{f.name: getattr(group, f.name) for f in fields(group) if f.name != "_children"},
            "children": group.child_names}


def _loaded_view(manager, name: str) -> dict:
    loaded = manager.load([name])
    return {"tasks": {t: task.recorded for t, task in loaded["tasks"].items()},
            "groups": {g: _group_view(group) for g, group in loaded["groups"].items()},
            "group_map": loaded["group_map"]}


@pytest.mark.parametrize("name", SHIPPED + LOCAL_TASKS)
def test_tasks_and_groups_resolve_to_the_same_configs(managers, monkeypatch, name):
    """Each task's config as lm-eval's factory hands it over (``include:`` chains merged, templates,
    ``!function`` process_docs, doc_to_text and metric functions resolved, group overrides applied), and
    each group's structure: the same through the cached index as through lm-eval's, for shipped groups
    (mmlu: 57 tasks in 4 subgroups), tags and tasks, and for the local ones."""
    from lm_eval.tasks import _factory

    monkeypatch.setattr(_factory, "ConfigurableTask", _recorded_task_class())
    ours = _loaded_view(managers["warm"], name)
    theirs = _loaded_view(managers["plain"], name)
    assert ours == theirs and ours["tasks"]
    if name == "mmlu":
        assert len(ours["tasks"]) == 57 and len(ours["groups"]) == 5
    if name == "loc_group":
        assert ours["group_map"] == {"loc_group": ["loc_a", "loc_b", "loc_group::loc_sub"],
                                     "loc_group::loc_sub": ["loc_c", "loc_d"]}
        assert ours["tasks"]["loc_b"]["num_fewshot"] == 1 and callable(ours["tasks"]["loc_d"]["process_results"])
        assert ours["tasks"]["loc_d"]["doc_to_text"] == "{{prompt}} Answer:"  # from the file outside the tree


def _fixed_lm():
    """A model whose log-likelihoods are a fixed function of the request's text (no weights)."""
    from lm_eval.api.model import LM

    class Fixed(LM):
        def loglikelihood(self, requests, disable_tqdm=False):
            return [(-float(len(r.args[1]) + (len(r.args[0]) % 7)), False) for r in requests]

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def generate_until(self, requests, disable_tqdm=False):
            raise NotImplementedError

    return Fixed()


def _evaluated(manager, names):
    import lm_eval

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    output = lm_eval.simple_evaluate(model=_fixed_lm(), tasks=list(names), task_manager=manager, log_samples=True,
                                     limit=8)
    kept = ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples")
    samples = {task: [{k: row[k] for k in ("doc_id", "doc", "arguments", "target", "resps", "filtered_resps",
                                         "doc_hash", "prompt_hash", "target_hash")} for row in rows]
               for task, rows in output["samples"].items()}
    return {k: output.get(k) for k in kept}, samples


@pytest.mark.parametrize("names", [["loc_group"], ["loc_a", "loc_d"], ["loc_tag", "arc_easy"]])
def test_local_tasks_render_the_same_requests_and_hashes(managers, names):
    """With their data local, lm-eval evaluates the tasks the cached index resolves exactly as the ones its
    own resolves: every rendered request (the few-shot prompts included), doc/prompt/target hash, config,
    group table and metric, the ``!function`` metric and aggregation included."""
    ours, our_samples = _evaluated(managers["warm"], names)
    theirs, their_samples = _evaluated(managers["plain"], names)
    assert our_samples == their_samples and ours == theirs
    assert sum(len(rows) for rows in our_samples.values()) >= 8
    if "loc_d" in names:
        assert "gold_ll,none" in ours["results"]["loc_d"]
        assert our_samples["loc_d"][0]["arguments"][0][0].count("Answer:") == 2  # 1 shot


def test_resolve_tasks_gives_the_same_evaluation_as_lm_evals_manager(managers, tree):
    """``resolve_tasks``, which ``seethrough eval`` uses: over the tree alone for plain tasks of the tree
    (the same tasks, as a task of an included folder overrides a built-in one anyway), over everything
    for a group; either way the evaluation is the one lm-eval's full ``TaskManager`` gives."""
    from seethrough.evaluate.tasks import resolve_tasks

    alone = resolve_tasks(["loc_a", "loc_d", "arc_easy"], tree)
    assert "mmlu" not in alone.all_tasks
    assert _evaluated(alone, ["loc_a", "loc_d", "arc_easy"]) == _evaluated(managers["plain"], ["loc_a", "loc_d",
                                                                                                 "arc_easy"])
    everything = resolve_tasks(["loc_group", "mmlu_anatomy"], tree)
    assert "mmlu" in everything.all_tasks and "loc_group" in everything.all_tasks


@pytest.mark.parametrize("names, shown", [
    (["loc_b_"], "unknown task(s) loc_b_ (did you mean loc_b"),
    (["loc_a", "nothing_like_this_anywhere"], "unknown task(s) nothing_like_this_anywhere; check the names"),
    (["hellaswg"], "unknown task(s) hellaswg (did you mean hellaswag")])
def test_an_unknown_task_is_one_line_with_the_closest_names(managers, tree, names, shown):
    from seethrough.errors import QueryError
    from seethrough.evaluate.tasks import resolve_tasks

    with pytest.raises(QueryError) as caught:
        resolve_tasks(names, tree)
    assert str(caught.value).startswith(shown) and "\n" not in str(caught.value)
    assert str(caught.value).endswith("or pass --include-path with the folder of their YAML files")


# ---- invalidation, on a small tree alone ----------------------------------------------------------


@pytest.fixture
def small(tmp_path, monkeypatch):
    """A fresh copy of the tree, every file dated an hour back (so only mtimes and sizes tell an edit, no
    sha256 is recorded), its cache folder, and a counter of lm-eval's own index builds."""
    from lm_eval.tasks._index import TaskIndex

    tree = write_tree(tmp_path)
    hour_ago = time.time_ns() - 3600 * 10**9
    for path in [*tree.rglob("*"), tmp_path / "outside" / "_shared_yaml"]:
        os.utime(path, ns=(hour_ago, hour_ago))
    original = lm_eval_build()
    calls = []

    def counting(paths, *, resolve_includes=True):
        calls.append([str(p) for p in paths])
        return original(paths, resolve_includes=resolve_includes)

    monkeypatch.setattr(TaskIndex, "build", staticmethod(counting))
    return {"tree": tree, "cache": tmp_path / "cache", "calls": calls, "original": original, "base": tmp_path}


def _build(small):
    from seethrough.evaluate.tasks import build_task_index

    return build_task_index([small["tree"]], cache_dir=small["cache"])


def _fresh(small):
    return small["original"]([small["tree"]])


def test_a_second_build_reads_the_cache(small):
    first = _build(small)
    assert len(small["calls"]) == 1
    second = _build(small)
    assert len(small["calls"]) == 1  # not built again
    assert rows(first) == rows(second) == rows(_fresh(small))
    assert {n: e.cfg for n, e in second.items()} == {n: e.cfg for n, e in _fresh(small).items()}
    assert set(second) >= {"loc_a", "loc_b", "loc_c", "loc_d", "loc_group", "loc_tag", "arc_easy"}


def _edit(path: Path, old: str, new: str, keep_mtime: bool = False) -> None:
    before = path.stat()
    path.write_text(path.read_text().replace(old, new, 1))
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:  # a later mtime, however coarse the file system's clock
        os.utime(path, ns=(before.st_atime_ns, max(time.time_ns(), before.st_mtime_ns + 10**9)))


EDITS = {
    "a task renamed": lambda s: _edit(s["tree"] / "loc_a.yaml", "task: loc_a", "task: loc_a_renamed"),
    "a task added": lambda s: (s["tree"] / "sub" / "deeper" / "loc_e.yaml").write_text(
        "include: ../../loc_a.yaml\ntask: loc_e\ntag: [loc_tag]\n"),
    "a task removed": lambda s: (s["tree"] / "sub" / "loc_c.yaml").unlink(),
    "a template gains a tag": lambda s: _edit(s["tree"] / "_template_yaml", "test_split: test",
                                              "tag: from_template\ntest_split: test"),
    "a file outside the tree changes a tag": lambda s: _edit(s["base"] / "outside" / "_shared_yaml",
                                                             "tag: loc_tag", "tag: far_tag"),
    "a file outside the tree removed": lambda s: (s["base"] / "outside" / "_shared_yaml").unlink(),
    "a group renamed": lambda s: _edit(s["tree"] / "loc_group.yaml", "group: loc_group", "group: loc_groupie"),
    "a broken file mended": lambda s: _edit(s["tree"] / "broken.yaml", "task: [unclosed", "task: mended"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_changed_file_rebuilds_the_index(small, edit):
    before = _build(small)
    EDITS[edit](small)
    after = _build(small)
    assert len(small["calls"]) == 2  # rebuilt
    assert rows(after) == rows(_fresh(small)) != rows(before)
    assert rows(_build(small)) == rows(after) and len(small["calls"]) == 2  # and the new one cached


def test_an_edit_within_one_mtime_tick_is_seen_by_its_hash(small):
    """A file written moments before the index was built gets its sha256 recorded: an edit that keeps its
    size and mtime (as on a file system with a coarse clock) still rebuilds."""
    loc_a = small["tree"] / "loc_a.yaml"
    loc_a.write_text(loc_a.read_text())  # just written: within RACY_SECONDS of the build
    before = _build(small)
    _edit(loc_a, "task: loc_a", "task: loc_q", keep_mtime=True)
    after = _build(small)
    assert len(small["calls"]) == 2 and "loc_q" in after and "loc_q" not in before
    assert rows(after) == rows(_fresh(small))


def test_an_unchanged_file_rewritten_with_its_old_mtime_is_not_rehashed(small):
    """Files dated before the build carry no hash: the cache is checked by stat alone (the case the
    previous test guards is only the recently written file)."""
    from seethrough.evaluate.tasks import task_index_file

    _build(small)
    stored = json.loads(task_index_file(small["tree"], cache_dir=small["cache"]).read_text())
    assert all(entry[2] is None for entry in stored["files"].values())
    assert all(entry[2] is None for entry in stored["included"].values())
    assert set(stored["included"]) == {str((small["base"] / "outside" / "_shared_yaml").resolve()),
                                       str((small["tree"] / "_template_yaml").resolve())}  # read, not walked


CORRUPTIONS = {
    "not JSON": lambda text: "{not json",
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "not UTF-8": lambda text: "\udcff",
    "a list": lambda text: "[]",
    "no entries": lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "entries"}),
    "an unknown kind": lambda text: text.replace('"TASK"', '"TASKY"', 1),
    "tags not a list": lambda text: json.dumps({**json.loads(text), "entries": [
        [e[0], e[1], e[2], "loc_tag"] for e in json.loads(text)["entries"]]}),
    "a path not a string": lambda text: json.dumps({**json.loads(text), "entries": [
        [e[0], e[1], 7 if e[2] else None, e[3]] for e in json.loads(text)["entries"]]}),
    "stats not lists": lambda text: json.dumps({**json.loads(text), "files": {k: "x" for k in json.loads(text)["files"]}}),
    "another lm-eval": lambda text: json.dumps({**json.loads(text), "key": {**json.loads(text)["key"], "lm_eval": "0"}}),
}


@pytest.mark.parametrize("damage", list(CORRUPTIONS))
def test_a_damaged_cache_is_ignored_and_rebuilt(small, damage):
    from seethrough.evaluate.tasks import task_index_file

    _build(small)
    file = task_index_file(small["tree"], cache_dir=small["cache"])
    file.write_bytes(CORRUPTIONS[damage](file.read_text()).encode("utf-8", "surrogateescape"))
    again = _build(small)
    assert len(small["calls"]) == 2 and rows(again) == rows(_fresh(small))
    json.loads(file.read_text())  # written again, whole
    _build(small)
    assert len(small["calls"]) == 2


def test_writing_a_cache_file_removes_those_of_folders_gone(small, tmp_path):
    """Each evaluation of a temporary task folder leaves a cache file; the next file written removes
    those whose folder is gone (and files that are not a cache), and keeps the others."""
    import shutil

    from seethrough.evaluate.tasks import build_task_index, task_index_file

    gone, kept = tmp_path / "gone", tmp_path / "kept"
    for folder in (gone, kept):
        folder.mkdir()
        (folder / "t.yaml").write_text(f"task: t_{folder.name}\n")
        build_task_index([folder], cache_dir=small["cache"])
    (small["cache"] / "stray.json").write_text("not a cache")
    shutil.rmtree(gone)
    assert task_index_file(gone, cache_dir=small["cache"]).is_file()
    _build(small)  # writes the tree's file
    assert not task_index_file(gone, cache_dir=small["cache"]).exists()
    assert not (small["cache"] / "stray.json").exists()
    assert task_index_file(kept, cache_dir=small["cache"]).is_file()
    assert task_index_file(small["tree"], cache_dir=small["cache"]).is_file()


def test_an_unwritable_cache_is_skipped(small):
    small["cache"].write_text("a file where the cache folder should be")
    assert rows(_build(small)) == rows(_fresh(small))
    assert rows(_build(small)) == rows(_fresh(small)) and len(small["calls"]) == 2  # built each time, no error


def test_lm_evals_warnings_are_logged_from_the_cache_too(small, caplog):
    """The index build warns about a duplicate task name; a cached index logs the same warnings."""
    with caplog.at_level(logging.WARNING, logger="lm_eval.tasks._index"):
        _build(small)
        cold = [r.getMessage() for r in caplog.records if r.name == "lm_eval.tasks._index"]
        caplog.clear()
        _build(small)
        warm = [r.getMessage() for r in caplog.records if r.name == "lm_eval.tasks._index"]
    assert len(small["calls"]) == 1
    assert cold == warm and any("Duplicate task name 'loc_a'" in m for m in cold)


def test_a_later_folder_overrides_an_earlier_one_as_in_lm_evals_merge(small, tmp_path):
    from seethrough.evaluate.tasks import build_task_index

    other = tmp_path / "other"
    other.mkdir()
    (other / "loc_a.yaml").write_text((small["tree"] / "loc_a.yaml").read_text().replace(
        "_template_yaml", str(small["tree"] / "_template_yaml")))
    for order in ([small["tree"], other], [other, small["tree"]]):
        ours = build_task_index(order, cache_dir=small["cache"])
        assert rows(ours) == rows(small["original"](order))


def test_the_walk_lists_the_files_lm_evals_glob_lists(tmp_path):
    """The files whose stats guard the cache are those lm-eval's own walk reads: on its shipped folder,
    and on a tree with hidden folders, ignored folders, symlinks to folders and files, a dangling link,
    a folder named like a YAML file and other suffixes."""
    from lm_eval.tasks._index import TaskIndex

    from seethrough.evaluate.tasks import yaml_files

    shipped = Path(sys.modules[TaskIndex.__module__].__file__).parent
    root = tmp_path / "tree"
    for name in ("a.yaml", ".hidden/h.yaml", "__pycache__/p.yaml", "x/.ipynb_checkpoints/c.yaml", "x/y/z.yaml",
                 "d.yaml/inner.yaml", "UP.YAML", "b.yml", "noext", "x/.dot.yaml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("task: t\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "e.yaml").write_text("task: e\n")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "file_link.yaml").symlink_to(tmp_path / "elsewhere" / "e.yaml")
    (root / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    for folder in (shipped, root, tmp_path / "no_such_folder", root / "a.yaml"):
        globbed = {p.relative_to(folder).as_posix() for p in TaskIndex._iter_yaml_files(folder)}
        assert set(yaml_files(folder)) == globbed
    assert {"a.yaml", ".hidden/h.yaml", "d.yaml", "d.yaml/inner.yaml", "file_link.yaml", "dangling.yaml"} \
        <= set(yaml_files(root))
    assert yaml_files(root)["dangling.yaml"] is None
    assert not yaml_files(root / "__pycache__")


def test_the_cache_folder_is_seethrough_cache_else_xdg_else_home(monkeypatch, tmp_path):
    from seethrough.evaluate.tasks import seethrough_cache_dir, task_index_file

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEETHROUGH_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert seethrough_cache_dir() == tmp_path / "home" / ".cache" / "seethrough"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert seethrough_cache_dir() == tmp_path / "home" / ".cache" / "seethrough"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert seethrough_cache_dir() == tmp_path / "xdg" / "seethrough"
    monkeypatch.setenv("SEETHROUGH_CACHE", str(tmp_path / "mine"))
    assert seethrough_cache_dir() == tmp_path / "mine"
    assert task_index_file(tmp_path).parent == tmp_path / "mine" / "lm_eval_tasks"
    assert task_index_file(tmp_path) != task_index_file(tmp_path, resolve_includes=False)
    assert task_index_file(tmp_path) == task_index_file(tmp_path / "." / "x" / "..")  # one file per folder


def test_the_block_replaces_lm_evals_build_and_puts_it_back(small):
    from lm_eval.tasks._index import TaskIndex

    from seethrough.evaluate.harness import faster_lm_eval
    from seethrough.evaluate.tasks import cached_task_index

    original = TaskIndex.__dict__["build"]
    with cached_task_index(small["cache"]):
        inside = TaskIndex.__dict__["build"]
        assert inside is not original
        with faster_lm_eval():  # nested: the outer block's stays
            assert TaskIndex.__dict__["build"] is inside
        assert TaskIndex.__dict__["build"] is inside
        TaskIndex().build([small["tree"]])  # called as TaskManager calls it, on an instance
        TaskIndex().build([small["tree"]])
    assert TaskIndex.__dict__["build"] is original and len(small["calls"]) == 1
    with faster_lm_eval():  # seethrough-lm-eval's block: the cache is on
        assert getattr(TaskIndex.__dict__["build"].__func__, "_seethrough_cache", False)
    assert TaskIndex.__dict__["build"] is original


# ---- seethrough's records, and its lm-eval command ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from conftest import world_model_folder

    return world_model_folder(tmp_path_factory.mktemp("tasks_model") / "model", 128, seed=3)


def _record(result) -> dict:
    data = result.to_dict()
    return {"results": data["results"], "configs": data["configs"], "group_subtasks": data.get("group_subtasks"),
            "tasks": data["seethrough"]["tasks"], "requests_sha256": data["seethrough"]["requests_sha256"]}


def test_seethrough_records_the_same_hashes_with_the_cache_cold_warm_or_off(managers, tree, tiny_model, tmp_path,
                                                                           monkeypatch):
    """``evaluate_model`` on a group (so over lm-eval's tasks and the tree): the config hashes, request
    hashes and scores it records are the same with a cold cache, a warm one, and lm-eval's own index;
    results.json's timing block has each start-up stage apart."""
    import contextlib

    from seethrough.evaluate import evaluate_model
    from seethrough.evaluate import tasks as task_module

    monkeypatch.setenv("SEETHROUGH_CACHE", str(tmp_path / "fresh"))
    cold = evaluate_model(tiny_model, ["loc_group"], include_path=tree, limit=4, threads=1)
    warm = evaluate_model(tiny_model, ["loc_group"], include_path=tree, limit=4, threads=1)
    monkeypatch.setattr(task_module, "cached_task_index", lambda cache_dir=None: contextlib.nullcontext())
    off = evaluate_model(tiny_model, ["loc_group"], include_path=tree, limit=4, threads=1)
    assert _record(cold) == _record(warm) == _record(off)
    assert set(_record(off)["requests_sha256"]) == {"loc_a", "loc_b", "loc_c", "loc_d"}
    for result in (cold, warm, off):
        assert set(result.timing) == {"imports_s", "task_resolution_s", "model_load_s", "evaluation_s"}
        assert all(isinstance(v, float) and v >= 0 for v in result.timing.values())


@pytest.mark.slow
def test_seethrough_lm_eval_reads_the_cached_index(managers, tree, tiny_model, tmp_path):
    """``seethrough-lm-eval`` (lm-eval's command line with the seethrough backend) finds its tasks through
    the cache the module's managers wrote (the cache files are read, not rewritten) and evaluates them
    as ``evaluate_model`` does: the same requests and log-likelihoods."""
    from lm_eval.tasks._index import TaskIndex

    from seethrough.evaluate import evaluate_model
    from seethrough.evaluate.tasks import task_index_file

    command = Path(sys.executable).with_name("seethrough-lm-eval")
    if not command.exists():
        pytest.skip("seethrough-lm-eval is not installed beside this python")
    files = [task_index_file(root, cache_dir=managers["cache"] / "lm_eval_tasks")
             for root in (Path(sys.modules[TaskIndex.__module__].__file__).parent, tree)]
    stamps = [f.stat().st_mtime_ns for f in files]
    env = {**os.environ, "SEETHROUGH_CACHE": str(managers["cache"]), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(command), "--model", "seethrough", "--model_args", f"pretrained={tiny_model},threads=1",
                           "--tasks", "loc_d", "--include_path", str(tree), "--limit", "4", "--log_samples", "--device", "cpu",
                           "--output_path", str(tmp_path / "out")], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [f.stat().st_mtime_ns for f in files] == stamps
    (samples_file,) = (tmp_path / "out").glob("*/samples_loc_d_*.jsonl")
    theirs = [json.loads(line) for line in samples_file.read_text().splitlines()]
    ours = evaluate_model(tiny_model, ["loc_d"], include_path=tree, limit=4, threads=1).samples["loc_d"]
    assert len(theirs) == len(ours) == 4
    for mine, other in zip(ours, theirs):  # lm-eval's tracker writes requests as gen_args_K, floats as strings
        assert [tuple(a) for a in mine["arguments"]] == [(a["arg_0"], a["arg_1"]) for a in other["arguments"].values()]
        assert [float(r[0][0]) for r in mine["resps"]] == [float(r[0][0]) for r in other["resps"]]
