"""Reading documents out of text collections: JSON lines (plain, .gz, .zst), Parquet, .txt files
(plain, .gz, .zst), folders of those, and Hugging Face datasets.

Every reader yields :class:`SourceDocument` in input order; a bad line raises :class:`InputError`
naming the file and line, or is counted and skipped when ``on_error="skip"``. A bad line is one that
is not UTF-8, not JSON (or nested too deeply to read), not an object, lacks the text field, has a
text that is not a string, or holds a lone surrogate escape (``"\\ud800"``), which is no character
and cannot be tokenized or written. A file that cannot be read to its end (truncated or corrupt
compression) is an error in either mode.

JSON-lines files are split into lines as bytes (``\\n`` ends a line) and each line decoded on its
own, so one bad byte costs only its own line, and the line numbers are those of the file (1-based,
blank lines counted).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError

OnError = Literal["stop", "skip"]

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
COMPRESSED_SUFFIXES = (".gz", ".zst")
SUPPORTED_HINT = ".jsonl (.gz/.zst), .parquet, .txt, a folder of them, or a Hugging Face dataset"
FILE_EXTENSIONS = {*JSONL_SUFFIXES, *COMPRESSED_SUFFIXES, ".parquet", ".txt", ".csv", ".tsv", ".arrow", ".bz2",
                   ".xz", ".zip", ".tar"}
"""Extensions that make a name a file path, never a Hugging Face dataset name."""
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")

_READ_BYTES = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class SourceDocument:
    text: str
    metadata: dict[str, Any]
    path: str
    line: int
    """1-based line number in a JSON-lines file; row number in Parquet/datasets; 0 for .txt files."""
    metadata_json: str | None = None
    """``metadata`` as JSON, serialized when the record was read (so a record that cannot be written is a
    bad line of its input, not a failure in the middle of a shard)."""


@dataclass
class SkippedLines:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str, why: str) -> None:
        self.count += 1
        if len(self.examples) < 20:
            self.examples.append(f"{where}: {why}")


class BadRecord(ValueError):
    """A record that cannot become a document: ``why`` it is bad and the ``fix``."""

    def __init__(self, why: str, fix: str = "fix the line") -> None:
        super().__init__(why)
        self.why = why
        self.fix = fix


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


def looks_like_hub_name(name: str) -> bool:
    """``owner/name`` with the hub's characters and no file extension (see :func:`expand_inputs`)."""
    if not _HUB_NAME.fullmatch(name) or ".." in name:
        return False
    lowered = name.lower()
    return not any(lowered.endswith(ext) for ext in FILE_EXTENSIONS)


def expand_inputs(inputs: list[str | Path]) -> list[Path | str]:
    """Files in the order given; a folder contributes its supported files in sorted path order.

    Each input is, in this order:

    1. an existing file, read by its extension (``.jsonl``/``.json``/``.ndjson`` or ``.txt``, each
       optionally ``.gz``/``.zst``; ``.parquet``);
    2. an existing folder: a dataset saved with ``datasets``' ``save_to_disk`` when it holds
       ``dataset_info.json`` or ``dataset_dict.json``, else every supported file under it, in sorted
       path order, leaving out hidden files and folders (a name starting with ``.``, such as
       ``.ipynb_checkpoints``);
    3. a Hugging Face hub dataset, only when the name has the form ``owner/name`` (one ``/``,
       letters, digits, ``-``, ``_``, ``.``), ends in no file extension (``.jsonl``, ``.parquet``,
       ``.gz``, ...) and its ``owner`` is not a local folder (else it is a mistyped path);
    4. anything else is a path that does not exist: :class:`InputError` ``no such file or folder``.

    Only the string form of rule 3 goes to the hub; a :class:`~pathlib.Path` never does.
    """
    out: list[Path | str] = []
    for item in inputs:
        path = Path(item)
        try:
            if path.is_dir():
                if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
                    out.append(path)  # a dataset saved with `save_to_disk`
                    continue
                files = sorted(p for p in path.rglob("*") if _kind(p) and not _hidden(p, path) and p.is_file())
                if not files:
                    raise InputError(f"folder {path} holds no input files; it needs {SUPPORTED_HINT}")
                out.extend(files)
            elif path.is_file():
                if _kind(path) is None:
                    raise InputError(f"{path}: unsupported input type; give {SUPPORTED_HINT}")
                out.append(path)
            elif isinstance(item, str) and looks_like_hub_name(item) and not Path(item.split("/")[0]).is_dir():
                out.append(item)
            else:
                hint = " (a Hugging Face dataset is named owner/name)" if isinstance(item, str) else ""
                raise InputError(f"no such file or folder: {item}; check the path{hint}")
        except OSError as error:
            raise InputError(f"cannot read input {item}: {error.strerror or error}; check the path and its "
                             "permissions") from None
    return out


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _byte_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, decompressed (.gz, .zst), in chunks; :class:`InputError` when the file cannot be
    read to its end (truncated or corrupt), after the chunks read before."""
    name = path.name.lower()
    try:
        if name.endswith(".zst"):
            yield from _zstd_chunks(path)
            return
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            while block := handle.read(_READ_BYTES):
                yield block
    except EOFError:
        raise InputError(f"{path} ends in the middle of its compressed data: the file is truncated; "
                         "download or copy it again") from None
    except (OSError, zlib.error) as error:
        raise InputError(f"cannot read {path} ({getattr(error, 'strerror', None) or error}); check the file: it "
                         "may be corrupt, or not what its extension says") from None


def _zstd_chunks(path: Path) -> Iterator[bytes]:
    """Decompressed bytes of every zstd frame in ``path``; a frame that is cut off is an error (the
    stream readers of ``zstandard`` end quietly there, so frames are decoded one by one)."""
    import zstandard

    decompressor = zstandard.ZstdDecompressor()
    frame = None
    try:
        with open(path, "rb") as handle:
            while block := handle.read(_READ_BYTES):
                while block:
                    frame = frame or decompressor.decompressobj()
                    if data := frame.decompress(block):
                        yield data
                    if frame.eof:
                        block, frame = frame.unused_data, None
                    else:
                        block = b""
    except zstandard.ZstdError as error:
        raise InputError(f"{path} is not valid zstd data ({error}); the file is corrupt: check it") from None
    if frame is not None:
        raise EOFError


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines of a byte stream, without their ``\\n``; a last line without one counts too."""
    tail: list[bytes] = []
    for chunk in chunks:
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            tail.append(chunk)
            continue
        tail.append(parts[0])
        yield b"".join(tail)
        yield from parts[1:-1]
        tail = [parts[-1]] if parts[-1] else []
    if tail:
        yield b"".join(tail)


def _record_document(record: Any, text_field: str, path: str, line: int,
                     check_surrogates: bool = False) -> SourceDocument:
    """The document of one record, or :class:`BadRecord`."""
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object, got {type(record).__name__}")
    if text_field not in record:
        raise BadRecord(f"no field '{text_field}'", "choose the text field with --text-field")
    text = record[text_field]
    if text is None:
        raise BadRecord(f"field '{text_field}' is null", "fix the record")
    if not isinstance(text, str):
        raise BadRecord(f"field '{text_field}' is {type(text).__name__}, not a string", "fix the record")
    metadata = {k: v for k, v in record.items() if k != text_field}
    try:
        metadata_json = json.dumps(metadata, ensure_ascii=False, default=str)
    except RecursionError:
        raise BadRecord("the record is nested too deeply to store as metadata", "flatten the record") from None
    except ValueError as error:  # circular references, NaN under allow_nan=False, ...
        raise BadRecord(f"the record's other fields cannot be stored as JSON ({error})", "fix the record") from None
    if check_surrogates:
        for value, what in ((text, f"field '{text_field}'"), (metadata_json, "the record")):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                code = ord(value[error.start])
                raise BadRecord(f"{what} holds a lone surrogate \\u{code:04x}, which is no character "
                                "(half of a UTF-16 pair)", "fix or drop the escape") from None
    return SourceDocument(text, metadata, path, line, metadata_json)


def _handle(error: BadRecord, where: str, on_error: OnError, skipped: SkippedLines) -> None:
    if on_error == "skip":
        skipped.add(where, error.why)
        return
    raise InputError(f"{where}: {error.why}; {error.fix} or pass --on-error skip") from None


def _parse_json_line(raw: bytes, line_no: int) -> Any:
    if line_no == 1 and raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM):]  # written by some Windows tools; not part of the text
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRecord(f"not valid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1})",
                        "re-encode the file as UTF-8") from None
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        if line.strip() in ("[", "{"):
            raise BadRecord(f"not valid JSON ({error.msg})", "the file looks like one JSON value over many lines: "
                            "write one JSON object per line (JSON lines)") from None
        raise BadRecord(f"not valid JSON ({error.msg.removesuffix(' at')} at column {error.colno})") from None
    except RecursionError:
        raise BadRecord("JSON nested too deeply to read", "flatten the record") from None
    except ValueError as error:  # an integer over Python's 4300-digit limit
        raise BadRecord(f"not readable as JSON ({str(error).split(';')[0]})") from None


def read_jsonl(path: Path, text_field: str, on_error: OnError, skipped: SkippedLines) -> Iterator[SourceDocument]:
    for line_no, raw in enumerate(_lines(_byte_chunks(path)), start=1):
        if not raw or raw.isspace():
            continue
        where = f"{path}:{line_no}"
        try:
            record = _parse_json_line(raw, line_no)
            # only a \u escape can make a lone surrogate out of valid UTF-8
            doc = _record_document(record, text_field, str(path), line_no, check_surrogates=b"\\u" in raw)
        except BadRecord as error:
            _handle(error, where, on_error, skipped)
            continue
        yield doc


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
    batches = parquet.iter_batches(batch_size=1024)
    while True:
        try:
            batch = next(batches, None)
        except Exception as error:  # pyarrow raises its own ArrowInvalid/OSError for damaged row groups
            raise InputError(f"{path}: unreadable after row {row} ({error}); the file is corrupt: check it") from None
        if batch is None:
            return
        for record in batch.to_pylist():
            row += 1
            try:
                doc = _record_document(record, text_field, str(path), row)
            except BadRecord as error:
                _handle(error, f"{path}:row {row}", on_error, skipped)
                continue
            yield doc


def read_txt(path: Path, on_error: OnError, skipped: SkippedLines) -> Iterator[SourceDocument]:
    data = b"".join(_byte_chunks(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        _handle(BadRecord(f"not valid UTF-8 (byte {data[error.start]:#04x} at offset {error.start})",
                          "re-encode the file as UTF-8"), str(path), on_error, skipped)
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
    try:
        if isinstance(name, Path):
            loaded = datasets.load_from_disk(str(name))
        else:
            loaded = datasets.load_dataset(name, split=split)
    except Exception as error:  # datasets and the hub raise many kinds (connection, not found, format)
        raise InputError(f"cannot load dataset {name}: {_first_line(error)}; check its name or path (and the "
                         "network for a hub dataset)") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise InputError(f"{name} has no split '{split}' (splits: {', '.join(loaded)}); pass --split")
        loaded = loaded[split]
    if text_field not in loaded.column_names:
        raise InputError(
            f"dataset {name} has no column '{text_field}' (columns: {', '.join(loaded.column_names)}); "
            "choose it with --text-field"
        )
    for row, record in enumerate(loaded, start=1):
        try:
            doc = _record_document(record, text_field, str(name), row)
        except BadRecord as error:
            _handle(error, f"{name}:row {row}", on_error, skipped)
            continue
        yield doc


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text.strip() else type(error).__name__


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


__all__ = ["SourceDocument", "SkippedLines", "expand_inputs", "looks_like_hub_name", "read_documents"]
