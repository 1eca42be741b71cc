"""The artefact files a report reads, each hashed once, and the numbers it shows, each tied to its file.

Every number a report shows is a :class:`Number`: its value, the file it came from (path and sha256)
and either a JSON pointer into that file (RFC 6901; for a ``.jsonl`` file the first segment is the
0-based line) or, for a number computed from the file rather than read from it, a ``derived`` note
saying how. ``report.json`` lists them all, so each can be checked against its source.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .markup import Html, esc


@dataclass(frozen=True)
class SourceFile:
    """One artefact file: its path as given, content hash, size, and (for JSON / JSON lines) its value."""
    path: str
    sha256: str
    bytes: int
    value: Any = None

    def get(self, pointer: str) -> Any:
        return resolve_pointer(self.value, pointer)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}


def escape_pointer_token(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*tokens: Any) -> str:
    """A JSON pointer from its reference tokens: ``pointer("results", "acc,none")`` -> ``/results/acc,none``."""
    return "".join("/" + escape_pointer_token(t) for t in tokens)


def resolve_pointer(value: Any, where: str) -> Any:
    """The value at JSON pointer ``where`` (list indexes as decimal tokens)."""
    if where == "":
        return value
    if not where.startswith("/"):
        raise ValueError(f"not a JSON pointer: {where!r}")
    for raw in where[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        value = value[int(token)] if isinstance(value, list) else value[token]
    return value


class Sources:
    """The files read so far (each read and hashed once, by resolved path)."""

    def __init__(self, results_folders: tuple[Path, ...] = ()) -> None:
        self.files: dict[str, SourceFile] = {}
        self.results_folders = tuple(results_folders)
        """The ``--results`` folders: a damaged file inside one may be left out with its folder."""

    def in_results(self, path: str | Path) -> bool:
        """Whether ``path`` lies in a ``--results`` folder (else it is the run's or the corpus's)."""
        return any(Path(path).is_relative_to(folder) for folder in self.results_folders)

    def fix_for(self, path: str | Path) -> str:
        """What to do about a damaged file: a results folder may be left out; the run's and corpus's files not."""
        if self.in_results(path):
            return "restore it or leave its folder out of --results"
        return "restore it from a copy or rerun the command that wrote it"

    def _read(self, path: Path, parse: Callable[[bytes], Any]) -> SourceFile:
        key = str(path)
        if key not in self.files:
            try:
                data = path.read_bytes()
            except OSError as error:
                raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
            try:
                value = parse(data)
            except (UnicodeDecodeError, ValueError) as error:
                raise ConfigError(f"{path} is not valid JSON ({str(error).splitlines()[0]}); {self.fix_for(path)}") from None
            self.files[key] = SourceFile(key, hashlib.sha256(data).hexdigest(), len(data), value)
        return self.files[key]

    def json(self, path: str | Path) -> SourceFile:
        return self._read(Path(path), lambda data: json.loads(data.decode("utf-8")))

    def jsonl(self, path: str | Path) -> SourceFile:
        def parse(data: bytes) -> list[Any]:
            values = []
            for number, line in enumerate(data.decode("utf-8").split("\n"), 1):
                if line.strip():
                    try:
                        values.append(json.loads(line))
                    except ValueError as error:
                        raise ValueError(f"line {number}: {error}") from None
            return values

        return self._read(Path(path), parse)


@dataclass
class Number:
    key: str
    value: Any
    source: str
    sha256: str
    pointer: str | None = None
    derived: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"key": self.key, "value": self.value, "source": self.source, "sha256": self.sha256}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.derived is not None:
            out["derived"] = self.derived
        return out


def format_value(value: Any, style: str = "auto") -> str:
    """A number as the page shows it (the exact value is in report.json)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if style == "int" or (style == "auto" and isinstance(value, int)):
        return f"{int(value):,}"
    if style == "pct":
        return f"{100 * value:.1f}%"
    if style == "sci":
        return f"{value:.3g}"
    if style.startswith("."):
        return f"{value:{style}f}"
    magnitude = abs(value)
    if 1e3 <= magnitude < 1e9:
        return f"{value:,.0f}"
    if magnitude != 0 and (magnitude >= 1e9 or magnitude < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


@dataclass
class Numbers:
    """The numbers of one section, in the order shown. ``show`` records a number and returns its text
    for the page (escaped), so nothing reaches the page without being recorded."""
    prefix: str
    items: list[Number] = field(default_factory=list)

    def _add(self, key: str, value: Any, source: SourceFile, where: str | None, derived: str | None) -> None:
        self.items.append(Number(f"{self.prefix}.{key}", value, source.path, source.sha256, where, derived))

    def value(self, key: str, source: SourceFile, where: str) -> Any:
        """Record the value at ``where`` in ``source`` without formatting it (for plots and tables)."""
        value = source.get(where)
        self._add(key, value, source, where, None)
        return value

    def show(self, key: str, source: SourceFile, where: str, style: str = "auto") -> Html:
        return esc(format_value(self.value(key, source, where), style))

    def derive(self, key: str, value: Any, source: SourceFile, how: str, style: str = "auto") -> Html:
        """Record a number computed from ``source`` (``how`` says how) and return its text."""
        self._add(key, value, source, None, how)
        return esc(format_value(value, style))

    def derived_value(self, key: str, value: Any, source: SourceFile, how: str) -> Any:
        self._add(key, value, source, None, how)
        return value
