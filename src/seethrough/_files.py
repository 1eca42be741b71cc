"""Atomic writes and content hashes, shared by every artefact writer."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

_CHUNK = 1 << 22


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hash of a JSON value in canonical form (sorted keys, no whitespace)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None: JSON has neither, so each stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def atomic_write_table(rows: list[dict[str, Any]], out: Path, stem: str) -> None:
    """``out/STEM.parquet`` and ``out/STEM.csv`` of ``rows`` (one table), each written under a temporary
    name, then renamed."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    for name, write in ((f"{stem}.parquet", pq.write_table), (f"{stem}.csv", pacsv.write_csv)):
        tmp = out / f".{name}.tmp"
        write(table, tmp)
        tmp.replace(out / name)


def read_json_lines(path: str | Path, flag: str) -> tuple[list[Any], list[int]]:
    """The records of a JSON-lines input file given as ``flag`` (blank lines skipped) and their line
    numbers; an unreadable file or a line that is not JSON is a one-line ``QueryError`` naming both."""
    from .errors import QueryError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise QueryError(f"{flag} {path} is not UTF-8 text (byte {error.start}); convert it to UTF-8") from None
    except OSError as error:
        raise QueryError(f"cannot read {flag} {path}: {error.strerror or error}") from None
    records: list[Any] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (ValueError, RecursionError) as error:
            reason = "nested too deep" if isinstance(error, RecursionError) else str(error)
            raise QueryError(f"{path}:{number}: not valid JSON ({reason})") from None
        lines.append(number)
    return records, lines
