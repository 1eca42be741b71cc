"""lm-eval's task index, kept between runs, so that naming a task does not cost a walk over all of them.

``lm_eval.tasks.TaskManager()`` parses every task YAML it can find (14,683 entries from about 14,000
files in lm-eval 0.4.13) to build its name -> file index, on every construction, whatever tasks are
then asked for: 8.4-14 s on 2 CPU cores, more than everything else a short evaluation does. The index
of a folder is a pure function of the YAML files under it (and of the files they ``include:``), so
``build_task_index`` stores it per folder and reads it back while those files are unchanged:

- **What is stored** is exactly what lm-eval's ``TaskIndex.build`` returns for the folder (on a miss it
  *is* that call): every entry's name, kind, YAML path and tags, in lm-eval's order, and the warnings
  the build logged (replayed on a hit). The tasks themselves are still built by lm-eval's own
  ``TaskManager`` and ``TaskFactory`` from the YAML files, so configs, ``include:`` chains, groups,
  tags, templates and ``!function`` metric functions are lm-eval's (tested: same configs, same rendered
  requests and hashes as ``TaskManager()`` itself). An entry's ``cfg`` (the raw config, which
  ``TaskManager`` never reads for an entry that has a file) is parsed from its file when first read.
- **When it is reused**: only while the cache was written for the same lm-eval, PyYAML and Python
  versions, the same folder and ``include:`` setting, the same set of ``*.yaml`` files under the folder
  (lm-eval's own walk: ``**/*.yaml`` outside ``__pycache__`` and ``.ipynb_checkpoints``, symlinked
  folders not followed) with the same mtime and size each, and the same mtime and size of every file
  outside that set that the build read (``include:`` targets: templates not named ``*.yaml``, files
  in other folders). A file modified less than
  ``RACY_SECONDS`` before the walk that recorded it also has its sha256 recorded and re-checked, so an
  edit that keeps the size within one mtime tick is still seen. Anything else (a missing, unreadable,
  truncated or foreign cache file included) rebuilds the folder's index and rewrites its file.
- **Where**: ``seethrough_cache_dir() / "lm_eval_tasks"``: ``$SEETHROUGH_CACHE``, else
  ``$XDG_CACHE_HOME/seethrough``, else ``~/.cache/seethrough``; one file per folder (named by the hash
  of its resolved path and the include setting), written atomically; writing one removes the files
  of folders that no longer exist. A cache that cannot be written (read-only home) only means the
  index is rebuilt next time.

``cached_task_index()`` makes every ``TaskManager`` built inside it use this (lm-eval's command line
included); ``resolve_tasks`` is the ``TaskManager`` that ``seethrough eval`` evaluates named tasks with.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
import logging
import os
import platform
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes
from ..errors import QueryError

CACHE_ENV = "SEETHROUGH_CACHE"
"""Environment variable naming seethrough's cache folder (it wins over ``XDG_CACHE_HOME``)."""
INDEX_FOLDER = "lm_eval_tasks"
FORMAT = 1
"""Version of the cache file's layout; a file of another version is rebuilt."""
RACY_SECONDS = 2
"""A file modified this recently when its stat is recorded also gets its sha256 recorded (FAT's mtime
tick is 2 s; most file systems' is far finer)."""
INDEX_LOGGER = "lm_eval.tasks._index"
"""The logger lm-eval's index build warns on (a duplicate task name, a task overriding another)."""

log = logging.getLogger(__name__)


def seethrough_cache_dir() -> Path:
    """seethrough's cache folder: ``$SEETHROUGH_CACHE``, else ``$XDG_CACHE_HOME/seethrough`` (an absolute
    path, as the XDG spec requires of it), else ``~/.cache/seethrough``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "seethrough"
    return Path.home() / ".cache" / "seethrough"


def task_index_file(root: str | Path, *, resolve_includes: bool = True, cache_dir: str | Path | None = None) -> Path:
    """The cache file holding the task index of the folder ``root``."""
    folder = Path(cache_dir) if cache_dir is not None else seethrough_cache_dir() / INDEX_FOLDER
    name = hashlib.sha256(json.dumps([str(Path(root).resolve()), bool(resolve_includes)]).encode()).hexdigest()
    return folder / f"{name[:24]}.json"


# ---- the index of many folders, as TaskIndex.build merges them -----------------------------------


def build_task_index(paths: Iterable[str | Path], *, resolve_includes: bool = True,
                     cache_dir: str | Path | None = None) -> dict[str, Any]:
    """What ``lm_eval.tasks._index.TaskIndex.build(paths)`` returns (name -> ``Entry``), each folder's index
    read from the cache while its files are unchanged, else built by lm-eval and stored. Later folders
    override earlier ones, with lm-eval's warning, as its build merges them. ``cache_dir``: the folder of
    the cache files (default: ``seethrough_cache_dir() / "lm_eval_tasks"``)."""
    original = _lm_eval_build()
    merged: dict[str, Any] = {}
    for root in paths:
        for name, entry in folder_task_index(Path(root), resolve_includes=resolve_includes, cache_dir=cache_dir,
                                             _build=original).items():
            if name in merged:  # lm-eval's own message and logger
                logging.getLogger(INDEX_LOGGER).warning("Task '%s' from %s overrides existing task from %s", name,
                                                        entry.yaml_path, merged[name].yaml_path)
            merged[name] = entry
    return merged


@contextlib.contextmanager
def cached_task_index(cache_dir: str | Path | None = None) -> Iterator[None]:
    """Within the block, every ``lm_eval.tasks.TaskManager`` built (by seethrough, by ``simple_evaluate``,
    by lm-eval's command line) takes its index from ``build_task_index``; lm-eval's own build is back
    after it. Inside another such block the outer one stays in place."""
    try:
        from lm_eval.tasks._index import TaskIndex
    except ImportError:  # no lm-eval: nothing builds an index
        yield
        return
    current = TaskIndex.__dict__.get("build")
    if not isinstance(current, staticmethod) or getattr(current.__func__, "_seethrough_cache", False) \
            or not _supported():
        yield  # nested, or an lm-eval whose index this module does not know: lm-eval's own build
        return

    def build(paths: Iterable[str | Path], *, resolve_includes: bool = True) -> dict[str, Any]:
        return build_task_index(paths, resolve_includes=resolve_includes, cache_dir=cache_dir)

    build._seethrough_cache = True
    build._seethrough_original = current.__func__
    TaskIndex.build = staticmethod(build)
    try:
        yield
    finally:
        TaskIndex.build = current


def _lm_eval_build() -> Any:
    """lm-eval's own ``TaskIndex.build`` (the original while ``cached_task_index`` has replaced it)."""
    from lm_eval.tasks._index import TaskIndex

    function = TaskIndex.__dict__["build"].__func__
    return getattr(function, "_seethrough_original", function)


def _supported() -> bool:
    """Whether lm-eval's index is the one this module caches: ``TaskIndex.build`` a staticmethod, ``Entry``,
    ``Kind``, and one ``load_yaml`` shared by the index and the loader (lm-eval 0.4.13 here)."""
    try:
        from lm_eval.tasks import _index, _yaml_loader
    except ImportError:
        return False
    return (isinstance(_index.TaskIndex.__dict__.get("build"), staticmethod) and hasattr(_index, "Entry")
            and hasattr(_index, "Kind") and callable(getattr(_yaml_loader, "load_yaml", None))
            and getattr(_index, "load_yaml", None) is getattr(_yaml_loader, "load_yaml", None))


# ---- one folder ----------------------------------------------------------------------------------


def folder_task_index(root: Path, *, resolve_includes: bool = True, cache_dir: str | Path | None = None,
                      _build: Any = None) -> dict[str, Any]:
    """``TaskIndex.build([root])``: the folder's index from its cache file when that is valid, else built
    by lm-eval (its warnings logged as it logs them) and written to the cache file."""
    build = _build or _lm_eval_build()
    if not _supported():
        return build([root], resolve_includes=resolve_includes)
    file = task_index_file(root, resolve_includes=resolve_includes, cache_dir=cache_dir)
    key = _cache_key(root, resolve_includes)
    walked_ns = time.time_ns()
    listing = yaml_files(root)
    cached = _read_cache(file, key, root, listing, resolve_includes)
    if cached is not None:
        entries, warnings = cached
        for level, message in warnings:
            logging.getLogger(INDEX_LOGGER).log(level, "%s", message)
        log.debug("task index of %s read from %s", root, file)
        return entries
    hashes = {rel: _sha256(root / rel) for rel, found in listing.items() if _racy(found, walked_ns)}
    loaded: set[str] = set()
    warnings: list[tuple[int, str]] = []
    began_ns = time.time_ns()
    with _recording_loads(loaded), _capturing_warnings(warnings):
        index = build([root], resolve_includes=resolve_includes)
    log.debug("task index of %s built (%d entries)", root, len(index))
    _write_cache(file, key, root, listing, hashes, loaded, index, warnings, began_ns)
    return index


def yaml_files(root: Path) -> dict[str, tuple[int, int, bool] | None]:
    """The files lm-eval's index reads under ``root`` (its ``TaskIndex._iter_yaml_files``: what
    ``root.glob("**/*.yaml")`` finds, symlinked folders not entered, nothing under ``__pycache__`` or
    ``.ipynb_checkpoints``) as path relative to ``root`` -> (mtime_ns, size, is a regular file), None
    for one that cannot be stat'ed (a dangling link). A walk of ``os.scandir``: 3x faster than the glob."""
    ignored = _ignored_dirs()
    if any(part in ignored for part in root.parts):
        return {}
    found: dict[str, tuple[int, int, bool] | None] = {}

    def walk(folder: str, prefix: str) -> None:
        try:
            with os.scandir(folder) as scan:
                children = list(scan)
        except OSError:  # unreadable or not a folder: the glob skips it too
            return
        for child in children:
            rel = prefix + child.name
            if child.name.endswith(".yaml"):
                found[rel] = _stat(child.path)
            try:
                enter = child.is_dir(follow_symlinks=False)
            except OSError:
                enter = False
            if enter and child.name not in ignored:
                walk(child.path, rel + "/")

    walk(str(root), "")
    return found


def _ignored_dirs() -> set[str]:
    try:
        from lm_eval.tasks._index import _IGNORE_DIRS
    except ImportError:
        return {"__pycache__", ".ipynb_checkpoints"}
    return set(_IGNORE_DIRS)


def _stat(path: str | Path) -> tuple[int, int, bool] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size, stat.S_ISREG(found.st_mode)


def _racy(found: tuple[int, int, bool] | None, since_ns: int) -> bool:
    """A regular file modified too recently for its mtime to tell a later edit apart."""
    return found is not None and found[2] and found[0] >= since_ns - RACY_SECONDS * 1_000_000_000


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _cache_key(root: Path, resolve_includes: bool) -> dict[str, Any]:
    import lm_eval
    import yaml

    return {"format": FORMAT, "lm_eval": getattr(lm_eval, "__version__", "unknown"),
            "pyyaml": getattr(yaml, "__version__", "unknown"), "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
            "python": platform.python_version(), "root": str(root.resolve()), "resolve_includes": bool(resolve_includes)}


@contextlib.contextmanager
def _recording_loads(loaded: set[str]) -> Iterator[None]:
    """Within the block, every YAML file lm-eval's loader opens (an ``include:`` target too: its loader
    recurses through its module's ``load_yaml``) is added to ``loaded``, as the path it was given."""
    from lm_eval.tasks import _index, _yaml_loader

    original = _yaml_loader.load_yaml

    def load_yaml(path: Any, *args: Any, **kwargs: Any) -> Any:
        loaded.add(str(path))
        return original(path, *args, **kwargs)

    _yaml_loader.load_yaml = _index.load_yaml = load_yaml
    try:
        yield
    finally:
        _yaml_loader.load_yaml = _index.load_yaml = original


class _Capture(logging.Handler):
    def __init__(self, records: list[tuple[int, str]]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))


@contextlib.contextmanager
def _capturing_warnings(records: list[tuple[int, str]]) -> Iterator[None]:
    logger = logging.getLogger(INDEX_LOGGER)
    handler = _Capture(records)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


# ---- the cache file ------------------------------------------------------------------------------


def _write_cache(file: Path, key: dict[str, Any], root: Path, listing: dict[str, Any], hashes: dict[str, str | None],
                 loaded: set[str], index: dict[str, Any], warnings: list[tuple[int, str]], began_ns: int) -> None:
    """Store the folder's index; a folder whose entries cannot all be stored (a path outside it) is not
    cached, and a cache that cannot be written is skipped (the next run builds the index again)."""
    rows = []
    for name, entry in index.items():
        path = None
        if entry.yaml_path is not None:
            try:
                path = Path(entry.yaml_path).relative_to(root).as_posix()
            except ValueError:
                return
        rows.append([name, entry.kind.name, path, sorted(entry.tags)])
    # the walked files are read as the walk names them; what else was read (include: targets not named
    # *.yaml, or in other folders) is resolved once each: most are the same few templates, included again
    # and again
    walked = {str(root / rel) for rel in listing}
    resolved_walked = {str(root.resolve() / rel) for rel in listing}
    others = {str(Path(path).expanduser().resolve()) for path in loaded if path not in walked}
    included: dict[str, Any] = {}
    for path in sorted(others - resolved_walked):
        found = _stat(path)
        included[path] = None if found is None else [found[0], found[1],
                                                    _sha256(Path(path)) if _racy(found, began_ns) else None]
    files = {rel: None if found is None else [found[0], found[1], hashes.get(rel)] for rel, found in listing.items()}
    content = {"key": key, "files": files, "included": included, "entries": rows, "warnings": [list(w) for w in warnings]}
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(file, json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except OSError as error:
        log.debug("task index cache %s not written: %s", file, error)
        return
    _prune(file)


PRUNE_BELOW_BYTES = 1 << 20
"""Other cache files up to this size are read when one is written, and removed if their folder is gone."""


def _prune(written: Path) -> None:
    """Remove the cache files of task folders that no longer exist (every evaluation of a temporary
    folder of tasks leaves one) and files that are not a cache; files larger than ``PRUNE_BELOW_BYTES``
    (lm-eval's own folder: 3.5 MB) are left alone, as reading them would cost more than they do."""
    for other in written.parent.glob("*.json"):
        try:
            if other == written or other.stat().st_size > PRUNE_BELOW_BYTES:
                continue
            try:
                root = json.loads(other.read_bytes())["key"]["root"]
                gone = not isinstance(root, str) or not Path(root).exists()
            except (ValueError, KeyError, TypeError):
                gone = True
            if gone:
                other.unlink()
        except OSError:  # removed meanwhile by another process, or unreadable: leave it
            continue


def _read_cache(file: Path, key: dict[str, Any], root: Path, listing: dict[str, Any],
                resolve_includes: bool) -> tuple[dict[str, Any], list[tuple[int, str]]] | None:
    """The entries and warnings stored in ``file``, or None when it is missing, damaged, or stale."""
    try:
        content = json.loads(file.read_bytes())
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return None
    try:
        if content["key"] != key or not _same_files(content["files"], content["included"], root, listing):
            return None
        from lm_eval.tasks._index import Entry, Kind

        stored_entry = _stored_entry_class()
        entries: dict[str, Any] = {}
        for name, kind, path, tags in content["entries"]:
            if not isinstance(name, str) or not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                return None
            if path is None:  # a tag
                entries[name] = Entry(name=name, kind=Kind[kind], yaml_path=None, tags=set(tags))
            elif isinstance(path, str):
                entries[name] = stored_entry(name, Kind[kind], root, path, set(tags), resolve_includes)
            else:
                return None
        warnings = [(int(level), str(message)) for level, message in content["warnings"]]
    except (KeyError, TypeError, ValueError, AttributeError):  # a JSON value of another shape
        return None
    return entries, warnings


def _same_files(files: Any, included: Any, root: Path, listing: dict[str, Any]) -> bool:
    """Whether the files recorded are the files now: the same names under ``root``, the same mtime and
    size each (and sha256, where one was recorded), the same for each other file the build read."""
    if not isinstance(files, dict) or not isinstance(included, dict) or files.keys() != listing.keys():
        return False
    base = str(root)
    for rel, found in listing.items():
        if not _same_file(files[rel], found, base, rel):
            return False
    return all(_same_file(recorded, _stat(path), path) for path, recorded in included.items())


def _same_file(recorded: Any, found: tuple[int, int, bool] | None, *path: str) -> bool:
    """``path``: the file's path, in parts (joined only to re-hash it)."""
    if recorded is None or found is None:
        return recorded is None and found is None
    mtime_ns, size, digest = recorded
    return mtime_ns == found[0] and size == found[1] and (digest is None or digest == _sha256(Path(*path)))


_UNREAD = object()


@functools.cache
def _stored_entry_class() -> type:
    """``Entry`` as read back from the cache (a class made on first use: lm-eval is imported only then)."""
    from lm_eval.tasks._index import Entry
    from lm_eval.tasks._yaml_loader import load_yaml

    class StoredEntry(Entry):
        """An index entry read back from the cache. Its ``yaml_path`` (``root / rel``, as lm-eval's walk
        makes it) is made when first read, and its raw ``cfg`` parsed from that file as the index build
        parsed it (functions unresolved): ``TaskManager`` reads neither for an entry it does not build
        (making 14,000 paths alone took 0.3 s), nor ``cfg`` for one that has a file."""

        def __init__(self, name: str, kind: Any, root: Path, rel: str, tags: set[str], recursive: bool) -> None:
            self._root, self._rel, self._recursive = root, rel, recursive
            super().__init__(name=name, kind=kind, yaml_path=_UNREAD, cfg=_UNREAD, tags=tags)

        @property
        def yaml_path(self) -> Any:
            if self._yaml_path is _UNREAD:
                self._yaml_path = self._root / self._rel
            return self._yaml_path

        @yaml_path.setter
        def yaml_path(self, value: Any) -> None:
            self._yaml_path = value

        @property
        def cfg(self) -> Any:
            if self._cfg is _UNREAD:
                self._cfg = load_yaml(self.yaml_path, resolve_func=False, recursive=self._recursive)
            return self._cfg

        @cfg.setter
        def cfg(self, value: Any) -> None:
            self._cfg = value

    return StoredEntry


# ---- the named tasks -----------------------------------------------------------------------------


def resolve_tasks(names: Sequence[str], include_path: str | Path | None = None, *,
                  cache_dir: str | Path | None = None) -> Any:
    """lm-eval's ``TaskManager`` for evaluating ``names``: over ``include_path`` alone when every name is a
    plain task there (a task of an included folder overrides a built-in one of its name in lm-eval's
    index, and a plain task is built from its file alone, so the tasks are the same), else over lm-eval's
    tasks and ``include_path``, as ``lm_eval --include_path`` builds it; both indexes through the cache.
    A name neither knows is a one-line ``QueryError`` (with the closest known names)."""
    from lm_eval.tasks import TaskManager

    with cached_task_index(cache_dir):
        if include_path:
            included = TaskManager(include_path=str(include_path), include_defaults=False)
            subtasks = set(included.all_subtasks)
            if all(name in subtasks for name in names):
                return included
        manager = TaskManager(include_path=str(include_path) if include_path else None)
    known = set(manager.all_tasks)
    unknown = [name for name in names if name not in known]
    if unknown:
        described = []
        for name in unknown:
            close = difflib.get_close_matches(name, manager.all_tasks, n=3, cutoff=0.75)
            described.append(f"{name} (did you mean {', '.join(close)}?)" if close else name)
        raise QueryError(f"unknown task(s) {', '.join(described)}; check the names, or pass --include-path with the "
                         "folder of their YAML files")
    return manager
