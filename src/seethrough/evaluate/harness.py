"""lm-eval's own per-call work, done faster with identical output, while seethrough runs it.

Three of lm-eval's costs are paid by every backend, and for a small model on CPU they are a large
share of the run (measured here, 300 items, Pythia-70M shape, 2 cores):

- **The task index.** Every ``TaskManager`` parses all ~14,000 task YAMLs lm-eval ships (8.4-14 s)
  before it can find one task by name. ``tasks.cached_task_index()`` reads each folder's index from
  a cache kept while its files are unchanged (0.3-0.5 s), the same index (see ``tasks``).
- **Prompt templates.** ``lm_eval.utils.apply_template`` compiles its jinja template with
  ``Environment.from_string`` at every use: for a 3-shot multiple-choice task about 16
  compilations per item, 3.9 of a 7.5 s call. ``compiled_templates()`` memoizes the compilation
  by template string; a compiled template renders the same text for the same document.
- **The environment report.** ``add_env_info`` stores torch's ``collect_env`` report in
  results.json, and that report starts ``python -m pip list --format=freeze`` as a subprocess
  (a new interpreter that imports pip: 0.4-0.5 s of a 1.7 s 0-shot call).
  ``in_process_package_list()`` answers that one command from ``importlib.metadata`` in about
  15 ms, with the same lines in the same order; every other probe of the report still runs.

``faster_lm_eval()`` switches all three on. Each is restored when its block ends, and a nested
block leaves the outer one in place.

One cost is Python's own: **the garbage collector during start-up.** ``collection_paused()`` holds
it while torch, transformers, lm-eval and the model are loaded (``evaluate_model``'s start-up and
the backend's construction, so ``seethrough-lm-eval``'s too), and makes one full pass after.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def faster_lm_eval() -> Iterator[None]:
    """Within the block, lm-eval finds its tasks, renders its templates and writes its environment
    report faster (same tasks, same prompts, same report)."""
    from .tasks import cached_task_index

    with cached_task_index(), compiled_templates(), in_process_package_list():
        yield


FULL_PASS_AFTER = 100_000
"""New objects a paused block may leave to the collector's ordinary passes; past this many it makes one
full pass at the block's end (a later evaluation in the same process, its imports done, stays below)."""


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Within the block (or the function it decorates) Python's cyclic garbage collector does not run; at
    its end it runs again, after one full pass if the block left more than ``FULL_PASS_AFTER`` new objects.

    Importing torch, transformers' model code, lm-eval and datasets creates about 800,000 objects that
    outlive the start-up (modules, classes, functions), and the collector makes a full pass over every
    object each time its oldest generation has grown by a quarter: passes that free nothing there, and
    took about 0.4 s of CPU time of a 7 s ``seethrough eval --limit 1`` on 2 cores (measured against
    this block with its one pass). Nothing else changes: objects are freed by reference counting
    meanwhile as always; only reference cycles wait (a loaded model is one), and the pass at the end
    frees those the block left. Nested, the outer block's pause holds; entered with the collector off,
    it leaves it off."""
    import gc

    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] > FULL_PASS_AFTER:
            gc.collect()
        gc.enable()


@contextlib.contextmanager
def compiled_templates() -> Iterator[None]:
    """Within the block, lm-eval's ``apply_template`` reuses compiled templates (same output)."""
    from lm_eval import utils as lm_utils

    compile_template = functools.lru_cache(maxsize=4096)(lm_utils.env.from_string)

    def apply_template(template: str, doc: dict) -> str:
        return compile_template(template).render(**doc)

    with _replaced(lm_utils, "apply_template", apply_template):
        yield


PIP_LIST_FREEZE = [sys.executable, "-mpip", "list", "--format=freeze"]  # the command collect_env runs


@contextlib.contextmanager
def in_process_package_list() -> Iterator[None]:
    """Within the block, torch's ``collect_env`` gets ``pip list --format=freeze`` from
    ``installed_packages()`` instead of a subprocess; its other commands run as before."""
    import importlib.util

    try:
        from torch.utils import collect_env
    except ImportError:  # no torch: lm-eval writes no torch report either
        yield
        return
    if importlib.util.find_spec("pip") is None:  # the subprocess would fail, and the report says so as before
        yield
        return
    original = collect_env.run

    def run(command: Any) -> tuple[int, str, str]:
        if command == PIP_LIST_FREEZE:
            return 0, installed_packages(), ""
        return original(command)

    with _replaced(collect_env, "run", run):
        yield


@contextlib.contextmanager
def _replaced(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """``owner.name`` is ``replacement`` within the block and the original after it; inside another
    block of this module that replaced it already, the outer replacement stays."""
    original = getattr(owner, name)
    if getattr(original, "_seethrough_replacement", False):
        yield
        return
    replacement._seethrough_replacement = True
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


STDLIB_NAMES = {"python", "wsgiref", "argparse"}  # pip list skips these (pip's stdlib_pkgs)


def installed_packages() -> str:
    """What ``python -m pip list --format=freeze`` prints for this interpreter: ``Name==version``
    per distribution on ``sys.path`` (the first one found of each name), ordered by normalized
    name. Only the Name and Version headers are read: parsing whole metadata files with
    ``importlib.metadata``'s email parser took 0.2 s, longer than the scan itself."""
    from importlib import metadata

    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    found: dict[str, tuple[str, str]] = {}
    for distribution in metadata.distributions():
        headers = _name_and_version(distribution.read_text("METADATA") or distribution.read_text("PKG-INFO") or "")
        name = headers.get("Name")
        if not name:
            continue
        key = canonicalize_name(name)
        if key not in found and key not in STDLIB_NAMES:
            found[key] = (name, headers.get("Version", ""))
    lines = []
    for key in sorted(found):
        name, version = found[key]
        try:
            lines.append(f"{name}=={Version(version)}")
        except InvalidVersion:
            lines.append(f"{name}==={version}")
    return "\n".join(lines)


def _name_and_version(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():  # the headers end at the first blank line
            break
        key, colon, value = line.partition(":")
        if colon and key in ("Name", "Version") and key not in found:
            found[key] = value.strip()
    return found
