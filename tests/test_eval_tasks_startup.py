"""The CLI's end without the interpreter's teardown (``seethrough._process.exit_without_teardown``): a command run
through ``main()`` leaves exactly what the ordinary ``sys.exit`` leaves (its status, all its output, the
``atexit`` handlers' work, ``weakref.finalize`` callbacks, non-daemon threads' work), and the teardown
itself (objects freed one by one at exit) is what it skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# a command registered on the CLI's app for this test only: it prints much without flushing, leaves an
# atexit handler, a temporary folder removed at exit, a non-daemon thread still working, and an object
# whose __del__ only the interpreter's teardown runs; then it ends as asked
SCRIPT = textwrap.dedent('''
    import atexit, json, sys, tempfile, threading, time
    from pathlib import Path
    import typer
    from seethrough.cli.app import app, main
    from seethrough.errors import QueryError

    folder = Path(sys.argv[1])
    sys.argv = ["seethrough", "zz-exit-test", *sys.argv[2:]]

    class Freed:
        def __del__(self):
            (folder / "teardown").write_text("ran")

    kept = Freed()

    @app.command("zz-exit-test")
    def zz(how: str) -> None:
        for k in range(20000):
            print(f"line {k}")
        sys.stderr.write("stderr tail")
        atexit.register(lambda: (folder / "atexit").write_text("ran"))
        temporary = tempfile.TemporaryDirectory(dir=folder)
        (folder / "tempdir").write_text(temporary.name)
        globals()["temporary"] = temporary
        def late():
            time.sleep(0.3)
            (folder / "thread").write_text("ran")
        threading.Thread(target=late).start()
        if how == "error":
            raise QueryError("a one-line error")
        if how == "exit1":
            raise typer.Exit(1)
        if how == "message":
            sys.exit("a message")

    if "--ordinary" in sys.argv:  # the reference: Python's own exit
        sys.argv.remove("--ordinary")
        try:
            app()
        except QueryError as error:
            sys.stderr.write(f"error: {error}")
            sys.exit(2)
    else:
        main()
''')


def _run(tmp_path, how: str, ordinary: bool) -> dict:
    folder = tmp_path / ("ordinary" if ordinary else "main") / how
    folder.mkdir(parents=True)
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(folder), how, *(["--ordinary"] if ordinary else [])],
                          capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    tempdir = folder / "tempdir"
    return {"status": done.returncode, "stdout": done.stdout, "stderr_tail": done.stderr.strip()[-40:],
            "atexit": (folder / "atexit").exists(), "thread": (folder / "thread").exists(),
            "tempdir_removed": tempdir.exists() and not (folder / tempdir.read_text()).exists(),
            "teardown": (folder / "teardown").exists()}


@pytest.mark.parametrize("how, status", [("ok", 0), ("exit1", 1), ("error", 2), ("message", 1)])
def test_main_leaves_what_the_ordinary_exit_leaves(tmp_path, how, status):
    ours = _run(tmp_path, how, ordinary=False)
    reference = _run(tmp_path, how, ordinary=True)
    assert ours["status"] == reference["status"] == status
    assert ours["stdout"].splitlines()[-1] == "line 19999" and ours["stdout"] == reference["stdout"]
    assert ours["atexit"] and ours["thread"] and ours["tempdir_removed"]
    assert {k: ours[k] for k in ("atexit", "thread", "tempdir_removed")} == \
        {k: reference[k] for k in ("atexit", "thread", "tempdir_removed")}
    if how == "error":
        assert ours["stderr_tail"].endswith("a one-line error")
    if how == "message":
        assert ours["stderr_tail"].endswith("a message") and reference["stderr_tail"].endswith("a message")
    # the one difference: the interpreter's teardown (which frees every object one by one) did not run
    assert reference["teardown"] and not ours["teardown"]


def test_main_flushes_output_piped_to_a_file(tmp_path):
    """``--json`` lines written to a file (fully buffered, unlike a terminal) all arrive."""
    out = tmp_path / "out.txt"
    script = tmp_path / "lines.py"
    script.write_text(textwrap.dedent('''
        import sys
        from seethrough.cli.app import app, main
        from seethrough.cli.shared import emit
        @app.command("zz-lines")
        def zz() -> None:
            for k in range(5000):
                emit({"k": k})
        sys.argv = ["seethrough", "zz-lines"]
        main()
    '''))
    with open(out, "w") as handle:
        done = subprocess.run([sys.executable, str(script)], stdout=handle, stderr=subprocess.PIPE, text=True,
                              timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["k"] for line in out.read_text().splitlines()] == list(range(5000))


# ---- the collector paused during start-up ---------------------------------------------------------


class _Cyclic:
    def __init__(self) -> None:
        self.me = self  # freed only by the cyclic collector


def test_collection_paused_holds_the_collector_and_frees_the_cycles_it_left():
    import gc
    import weakref

    from seethrough.evaluate.harness import FULL_PASS_AFTER, collection_paused

    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
        with collection_paused():  # nested: the outer pause holds
            pass
        assert not gc.isenabled()
        first = _Cyclic()
        watched = weakref.ref(first)
        del first
        kept = [[] for _ in range(FULL_PASS_AFTER + 1000)]  # more new objects than the block may leave
        assert watched() is not None  # no collection ran inside
    assert gc.isenabled() and watched() is None  # the one pass at the end freed the cycle
    del kept
    with collection_paused():  # few new objects: no full pass, the ordinary collector takes them
        few = _Cyclic()
        watched = weakref.ref(few)
        del few
    assert gc.isenabled() and watched() is not None
    gc.collect()
    assert watched() is None


def test_collection_paused_restores_the_collector_after_an_error_and_leaves_it_off_if_it_was():
    import gc

    from seethrough.evaluate.harness import collection_paused

    with pytest.raises(ZeroDivisionError):
        with collection_paused():
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()



def test_evaluate_model_leaves_the_collector_on_after_it_ran_and_after_a_model_error(tmp_path):
    """The start-up pause ends with ``evaluate_model``'s start-up, whether the model loads or not."""
    import gc

    pytest.importorskip("lm_eval")
    from conftest import world_model_folder
    from seethrough.errors import ModelError
    from seethrough.evaluate import evaluate_model

    model = world_model_folder(tmp_path / "model", 128, seed=3)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "items.jsonl").write_text("".join(json.dumps({"prompt": f"item {k} is", "choices": ["a", "b"],
                                                           "answer": "b"}) + "\n" for k in range(3)))
    (tasks / "t.yaml").write_text(
        f"task: startup_t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tasks / 'items.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{prompt}}\"\n"
        "doc_to_choice: \"{{choices}}\"\ndoc_to_target: \"{{choices.index(answer)}}\"\nmetric_list:\n  - metric: acc\n")
    result = evaluate_model(model, ["startup_t"], include_path=tasks, limit=2, threads=1)
    assert gc.isenabled() and len(result.samples["startup_t"]) == 2
    (model / "config.json").unlink()
    with pytest.raises(ModelError):
        evaluate_model(model, ["startup_t"], include_path=tasks, limit=2, threads=1)
    assert gc.isenabled()


def test_seethrough_lm_eval_refuses_in_one_line_and_exits_2(tmp_path):
    """lm-eval's CLI with the seethrough backend: a backend refusal (here: no model in the folder given as
    pretrained) is one line on stderr and exit status 2, as `seethrough` gives it, not a traceback."""
    pytest.importorskip("lm_eval")
    script = "from seethrough.evaluate.backend import lm_eval_cli; lm_eval_cli()"
    done = subprocess.run([sys.executable, "-c", script, "--model", "seethrough", "--model_args",
                           f"pretrained={tmp_path}", "--tasks", "arc_easy", "--device", "cpu"],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(tmp_path) in last and "config.json" in last
