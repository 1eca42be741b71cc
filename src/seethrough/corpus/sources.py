"""Reading documents out of text collections: JSON lines (plain, .gz, .zst), Parquet, .txt files,
folders of those, and Hugging Face datasets.

Every reader yields :class:`SourceDocument` in input order; a bad line raises :class:`InputError`
naming the file and line, or is counted and skipped when ``on_error="skip"``.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError

OnError = Literal["stop", "skip"]

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
COMPRESSED_SUFFIXES = (".gz", ".zst")
SUPPORTED_HINT = ".jsonl (.gz/.zst), .parquet, .txt, a folder of them, or a Hugging Face dataset"


@dataclass
class SourceDocument:
    text: str
    metadata: dict[str, Any]
    path: str
    line: int
    """1-based line number in a JSON-lines file; row number in Parquet/datasets; 0 for .txt files."""


@dataclass
class SkippedLines:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str, why: str) -> None:
        self.count += 1
        if len(self.examples) < 20:
            self.examples.append(f"{where}: {why}")


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet" if name == path.name.lower() else None
    if name.endswith(".txt"):
        return "txt"
    return None


def expand_inputs(inputs: list[str | Path]) -> list[Path | str]:
    """Files in the order given; a folder contributes its supported files in sorted path order.

    A string that is not an existing path is kept as a Hugging Face dataset name.
    """
    out: list[Path | str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
                out.append(path)  # a dataset saved with `save_to_disk`
                continue
            files = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p))
            if not files:
                raise InputError(f"folder {path} holds no input files; it needs {SUPPORTED_HINT}")
            out.extend(files)
        elif path.is_file():
            if _kind(path) is None:
                raise InputError(f"{path}: unsupported input type; give {SUPPORTED_HINT}")
            out.append(path)
        elif "/" in str(item) and not str(item).startswith((".", "/")) and path.suffix == "":
            out.append(str(item))  # looks like "owner/name"
        else:
            raise InputError(f"input {item} does not exist; check the path")
    return out


def _open_text(path: Path) -> io.TextIOBase:
    name = path.name.lower()
    if name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="\n")
    if name.endswith(".zst"):
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
        return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def _split_record(record: Any, text_field: str, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if text_field not in record:
        raise KeyError(text_field)
    text = record[text_field]
    if not isinstance(text, str):
        raise ValueError(f"field '{text_field}' is {type(text).__name__}, not a string")
    return text, {k: v for k, v in record.items() if k != text_field}


def _handle(error: Exception, where: str, text_field: str, on_error: OnError, skipped: SkippedLines) -> None:
    if isinstance(error, KeyError):
        why = f"no field '{text_field}'"
        fix = "choose the text field with --text-field"
    elif isinstance(error, UnicodeDecodeError):
        why = "not valid UTF-8"
        fix = "re-encode the file as UTF-8"
    elif isinstance(error, json.JSONDecodeError):
        why = f"not valid JSON ({error.msg})"
        fix = "fix the line"
    else:
        why = str(error)
        fix = "fix the record"
    if on_error == "skip":
        skipped.add(where, why)
        return
    raise InputError(f"{where}: {why}; {fix} or pass --on-error skip") from None


def read_jsonl(path: Path, text_field: str, on_error: OnError, skipped: SkippedLines) -> Iterator[SourceDocument]:
    try:
        handle = _open_text(path)
    except OSError as error:
        raise InputError(f"cannot open {path}: {error.strerror or error}; check the file") from None
    with handle:
        line_no = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as error:
                _handle(error, f"{path}:{line_no + 1}", text_field, on_error, skipped)
                return  # the decoder cannot resynchronise inside a stream; the rest is unreadable
            except (OSError, EOFError) as error:
                raise InputError(
                    f"{path}: unreadable after line {line_no} ({error}); the file is truncated or corrupt"
                ) from None
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                text, metadata = _split_record(json.loads(line), text_field, where)
            except (ValueError, KeyError) as error:
                _handle(error, where, text_field, on_error, skipped)
                continue
            yield SourceDocument(text, metadata, str(path), line_no)


def read_parquet(path: Path, text_field: str, on_error: OnError, skipped: SkippedLines) -> Iterator[SourceDocument]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:
        raise InputError(f"cannot read Parquet file {path}: {error}; check the file") from None
    if text_field not in parquet.schema_arrow.names:
        raise InputError(
            f"{path}: no column '{text_field}' (columns: {', '.join(parquet.schema_arrow.names)}); "
            "choose the text column with --text-field"
        )
    row = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            row += 1
            where = f"{path}:row {row}"
            try:
                text, metadata = _split_record(record, text_field, where)
            except (ValueError, KeyError) as error:
                _handle(error, where, text_field, on_error, skipped)
                continue
            yield SourceDocument(text, metadata, str(path), row)


def read_txt(path: Path, on_error: OnError, skipped: SkippedLines) -> Iterator[SourceDocument]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        _handle(error, str(path), "text", on_error, skipped)
        return
    yield SourceDocument(text, {}, str(path), 0)


def read_hf_dataset(name: str | Path, text_field: str, split: str, on_error: OnError,
                    skipped: SkippedLines) -> Iterator[SourceDocument]:
    try:
        import datasets
    except ImportError:
        raise InputError(
            f"{name} is not a local file; to read it as a Hugging Face dataset install `datasets` "
            "(pip install 'seethrough[hf]')"
        ) from None
    if isinstance(name, Path):
        loaded = datasets.load_from_disk(str(name))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise InputError(f"{name} has no split '{split}' (splits: {', '.join(loaded)}); pass --split")
            loaded = loaded[split]
    else:
        loaded = datasets.load_dataset(name, split=split)
    if text_field not in loaded.column_names:
        raise InputError(
            f"dataset {name} has no column '{text_field}' (columns: {', '.join(loaded.column_names)}); "
            "choose it with --text-field"
        )
    for row, record in enumerate(loaded, start=1):
        where = f"{name}:row {row}"
        try:
            text, metadata = _split_record(record, text_field, where)
        except (ValueError, KeyError) as error:
            _handle(error, where, text_field, on_error, skipped)
            continue
        yield SourceDocument(text, metadata, str(name), row)


def read_documents(source: Path | str, text_field: str = "text", on_error: OnError = "stop",
                   skipped: SkippedLines | None = None, split: str = "train") -> Iterator[SourceDocument]:
    """Documents of one expanded input (see :func:`expand_inputs`), in order."""
    skipped = skipped if skipped is not None else SkippedLines()
    if isinstance(source, str) or source.is_dir():
        return read_hf_dataset(source, text_field, split, on_error, skipped)
    kind = _kind(source)
    readers: dict[str, Callable[[], Iterator[SourceDocument]]] = {
        "jsonl": lambda: read_jsonl(source, text_field, on_error, skipped),
        "parquet": lambda: read_parquet(source, text_field, on_error, skipped),
        "txt": lambda: read_txt(source, on_error, skipped),
    }
    return readers[kind]()
