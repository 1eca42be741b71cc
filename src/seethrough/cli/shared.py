"""What every command module shares: the Typer apps, the consoles, common arguments and options,
the readers of query files, and ``emit`` for ``--json`` lines. Command modules import from here;
``app.py`` imports them all. Nothing here imports a command module, so there is no cycle."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from .._files import finite_json
from ..errors import QueryError

DATA, TRAINING, AUDITS, EVALUATION, SHOWING = "Data", "Training", "Audits", "Evaluation", "Showing"
"""Help panels, in pipeline order (later: scale)."""

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Open, inspectable language models: search the training data, replay the data order, "
                       "audit what the model learned.")
corpus_app = typer.Typer(no_args_is_help=True, help="Build and check token corpora.")
index_app = typer.Typer(no_args_is_help=True, help="Build the suffix-array index of a corpus.")
app.add_typer(corpus_app, name="corpus", rich_help_panel=DATA)
app.add_typer(index_app, name="index", rich_help_panel=DATA)

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

CorpusArg = Annotated[Path, typer.Argument(help="Corpus folder (seethrough's, or an infini-gram index folder).")]
TextArg = Annotated[Optional[str], typer.Argument(help="Query text, encoded with the corpus tokenizer.")]
IdsOpt = Annotated[Optional[str], typer.Option("--ids", help='Query as token ids instead of text: "1 2 3".')]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line, for scripts.")]
TokenizerOpt = Annotated[Optional[Path], typer.Option(
    "--tokenizer", help="Tokenizer for text queries (default: the corpus's own; needed for infini-gram folders).")]
DtypeOpt = Annotated[Optional[str], typer.Option(
    "--token-dtype", help="Token type of an infini-gram folder (uint8/uint16/uint32) when it cannot be detected.")]
VerifyOpt = Annotated[bool, typer.Option("--verify", help="Re-hash every corpus and index file before answering (the "
                                                        "quick check on open trusts files whose size, mtime and inode "
                                                        "are unchanged, so it cannot see a bit flip that keeps them).")]
RunArg = Annotated[Path, typer.Argument(help="Run folder written by `seethrough train`.")]
CorpusOpt = Annotated[Optional[Path], typer.Option(
    "--corpus", help="The run's corpus, if it moved since training (checked by content hash).")]
TargetArg = Annotated[Path, typer.Argument(help="A run folder (its checkpoints) or a Hugging Face model folder.")]
CorpusReq = Annotated[Path, typer.Option("--corpus", help="The corpus the model was trained on, indexed (checked: a "
                                                          "run's by content hash, a model folder's by tokenizer).")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="CPU threads (default: the cores other "
                                                                     "processes leave free).")]
RayOpt = Annotated[Optional[str], typer.Option(
    "--ray", metavar="ADDRESS", help="Run on the Ray cluster at ADDRESS (host:port of its head, or auto; "
                                     "docs/scale.md); same output. Needs Ray: pip install 'seethrough\\[ray]'.")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="cpu (default), cuda, cuda:N or auto (cuda when "
                                                                  "available).")]


def config_option(cls: type, name: str, *flags: str) -> Any:
    """A flag for field ``name`` of config dataclass ``cls``: its help (and default) come from the field."""
    from .._config import field_help

    return typer.Option(*(flags or (f"--{name.replace('_', '-')}",)), help=field_help(cls, name))


_finite = finite_json  # NaN and infinity written as null


def emit(value: dict[str, Any]) -> None:
    """One JSON object on one line of stdout."""
    sys.stdout.write(json.dumps(_finite(value), ensure_ascii=False, allow_nan=False) + "\n")


def refuse_together(chosen: str, given: dict[str, Any]) -> None:
    """A one-line error if any of ``given`` (flag -> value, None when not given) was set beside ``chosen``."""
    extra = [flag for flag, value in given.items() if value is not None and value is not False]  # 0 is given
    if extra:
        raise QueryError(f"{', '.join(extra)} {'has' if len(extra) == 1 else 'have'} no effect with {chosen}; "
                         f"leave {'it' if len(extra) == 1 else 'them'} out")


def parse_ids(text: str) -> list[int]:
    parts = text.replace(",", " ").split()
    if not parts or not all(p.isascii() and (p.isdigit() or (p[0] == "-" and p[1:].isdigit())) for p in parts):
        raise QueryError(f'--ids {text!r} is not a list of integers; write it like --ids "1 2 3"')
    return [int(p) for p in parts]


def read_text_file(path: Path, flag: str = "--file") -> str:
    """The whole content of a text file, or a one-line error naming the flag."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise QueryError(f"{flag} {path} is not UTF-8 text (byte {error.start}); convert it to UTF-8") from None
    except OSError as error:
        raise QueryError(f"cannot read {flag} {path}: {error.strerror or error}") from None


def read_queries(path: Path, flag: str = "--queries") -> list[str | list[int]]:
    """JSON lines, each ``{"text": ...}`` or ``{"ids": [...]}`` (ids checked by the index when used)."""
    queries: list[str | list[int]] = []
    for number, line in enumerate(read_text_file(path, flag).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            reason = "nested too deep" if isinstance(error, RecursionError) else str(error)
            raise QueryError(f"{path}:{number}: not valid JSON ({reason}); each line is {{\"text\": ...}} or "
                             "{\"ids\": [...]}") from None
        if isinstance(record, dict) and isinstance(record.get("text"), str):
            queries.append(record["text"])
        elif isinstance(record, dict) and isinstance(record.get("ids"), list):
            queries.append(record["ids"])
        else:
            raise QueryError(f"{path}:{number}: each line must be {{\"text\": ...}} or {{\"ids\": [...]}}")
    return queries


def read_texts(path: Path, tokenizer: Any, flag: str) -> list[str]:
    """Texts of a JSON-lines file (``{"text"}``, or ``{"ids"}`` decoded with ``tokenizer``)."""
    return [q if isinstance(q, str) else tokenizer.decode(q) for q in read_queries(path, flag)]


def one_query(text: str | None, ids: str | None) -> str | list[int]:
    if (text is None) == (ids is None):
        raise QueryError("give the query as TEXT or as --ids, exactly one of them")
    return parse_ids(ids) if ids is not None else text  # type: ignore[return-value]


def open_index(corpus: Path, tokenizer: Path | None = None, token_dtype: str | None = None, compiled: bool = True,
               verify: bool = False):
    from ..index import open_corpus

    return open_corpus(corpus, tokenizer=tokenizer, token_dtype=token_dtype, compiled=compiled, verify=verify)


def escape(text: str) -> str:
    """Text for rich markup: brackets escaped, newlines shown as spaces."""
    from rich.markup import escape as rich_escape

    return rich_escape(text.replace("\n", " "))
