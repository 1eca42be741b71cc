"""``seethrough`` command line. Each command parses its arguments, calls the Python API and prints
the result (``--json``: one JSON object per line). Errors from the library become one line on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from ..errors import QueryError, SeethroughError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Open, inspectable language models: search the training data, and more.")
corpus_app = typer.Typer(no_args_is_help=True, help="Build and check token corpora.")
index_app = typer.Typer(no_args_is_help=True, help="Build the suffix-array index of a corpus.")
app.add_typer(corpus_app, name="corpus")
app.add_typer(index_app, name="index")

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


def _emit(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def _parse_ids(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise QueryError(f'--ids {text!r} is not a list of integers; write it like --ids "1 2 3"') from None


def _read_text_file(path: Path) -> str:
    """The whole content of a --file, or a one-line error naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise QueryError(f"cannot read --file {path}: {error.strerror or error}") from None


def _read_queries(path: Path) -> list[str | list[int]]:
    queries: list[str | list[int]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise QueryError(f"cannot read --queries {path}: {error.strerror or error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise QueryError(f"{path}:{number}: not valid JSON ({error}); each line is {{\"text\": ...}} or "
                             "{\"ids\": [...]}") from None
        if isinstance(record, dict) and isinstance(record.get("text"), str):
            queries.append(record["text"])
        elif isinstance(record, dict) and isinstance(record.get("ids"), list):
            queries.append(record["ids"])
        else:
            raise QueryError(f"{path}:{number}: each line must be {{\"text\": ...}} or {{\"ids\": [...]}}")
    return queries


def _one_query(text: str | None, ids: str | None) -> str | list[int]:
    if (text is None) == (ids is None):
        raise QueryError("give the query as TEXT or as --ids, exactly one of them")
    return _parse_ids(ids) if ids is not None else text  # type: ignore[return-value]


def _open(corpus: Path, tokenizer: Path | None = None, token_dtype: str | None = None, compiled: bool = True):
    from ..index import open_corpus

    return open_corpus(corpus, tokenizer=tokenizer, token_dtype=token_dtype, compiled=compiled)


# ---- corpus --------------------------------------------------------------------------------------------
@corpus_app.command("build")
def corpus_build(
    inputs: Annotated[list[str], typer.Argument(help="JSON-lines (.gz/.zst), Parquet or .txt files, folders of them, or HF dataset names.")],
    tokenizer: Annotated[Path, typer.Option("--tokenizer", help="tokenizer.json, or a model folder containing one.")],
    out: Annotated[Path, typer.Option("--out", help="Corpus folder to write.")],
    text_field: Annotated[str, typer.Option("--text-field", help="Field holding the text; other fields become metadata.")] = "text",
    shard_tokens: Annotated[int, typer.Option("--shard-tokens", help="Tokens per shard (index build needs up to ~32 bytes of memory per token of a shard, 48 on several threads).")] = 500_000_000,
    on_error: Annotated[str, typer.Option("--on-error", help="stop: a bad input line stops the build; skip: it is skipped and counted.")] = "stop",
    split: Annotated[str, typer.Option("--split", help="Split of a Hugging Face dataset.")] = "train",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing corpus at --out (atomically, once the new one is complete).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tokenize text collections into a corpus folder (infini-gram shard layout + manifest)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..corpus import CorpusBuildConfig, build_corpus

    if on_error not in ("stop", "skip"):
        raise QueryError(f"--on-error {on_error!r}: use stop or skip")
    config = CorpusBuildConfig(text_field=text_field, shard_tokens=shard_tokens, on_error=on_error,  # type: ignore[arg-type]
                               split=split, overwrite=overwrite)
    with Progress(TextColumn("[bold]corpus build"), BarColumn(), TextColumn("{task.completed}/{task.total} inputs"),
                  TextColumn("{task.fields[docs]:,} docs {task.fields[tokens]:,} tokens"), TimeElapsedColumn(),
                  console=err, transient=as_json) as bar:
        task = bar.add_task("build", total=None, docs=0, tokens=0)

        def report(p) -> None:
            bar.update(task, total=p.inputs_total, completed=p.inputs_done, docs=p.documents, tokens=p.tokens)

        manifest = build_corpus(inputs, tokenizer, out, config, progress=report)
    counts = manifest["counts"]
    if as_json:
        _emit({"corpus": str(out), "corpus_hash": manifest["corpus_hash"], **counts,
               "token_dtype": manifest["token_dtype"]})
        return
    console.print(f"[green]built[/] {out}: {counts['documents']:,} documents, {counts['tokens']:,} tokens "
              f"({manifest['token_dtype']}), {counts['shards']} shard(s), corpus hash {manifest['corpus_hash'][:12]}")
    if counts["skipped_lines"]:
        console.print(f"[yellow]skipped {counts['skipped_lines']} input line(s)[/], e.g. {manifest['skipped_examples'][0]}")
    console.print(f"next: seethrough index build {out}")


@corpus_app.command("verify")
def corpus_verify(corpus: CorpusArg, as_json: JsonOpt = False) -> None:
    """Re-hash every file of a corpus (and its index) against the manifests."""
    from ..index import verify

    report = verify(corpus)
    if as_json:
        _emit({"ok": True, **report})
    else:
        console.print(f"[green]ok[/] {corpus}: {len(report['files_checked'])} files match their sha256 "
                  f"(index {'checked' if report['index'] else 'not built'})")


@corpus_app.command("info")
def corpus_info(corpus: CorpusArg, tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None,
                as_json: JsonOpt = False) -> None:
    """Counts, hashes and files of a corpus."""
    from ..corpus import open_token_corpus
    from ..index.build import read_index_manifest

    c = open_token_corpus(corpus, tokenizer=tokenizer, token_dtype=token_dtype)
    info = {"corpus": str(c.path), "corpus_hash": c.corpus_hash, "documents": c.num_documents,
            "tokens": c.num_tokens, "shards": len(c.shards), "token_dtype": c.token_dtype,
            "vocab_size": c.vocab_size, "infini_gram_folder": c.foreign,
            "index": read_index_manifest(c.path) is not None if not c.foreign else (c.path / c.shards[0].file("table")).exists()}
    if as_json:
        _emit(info)
    else:
        for key, value in info.items():
            console.print(f"{key:>20}: {value}")


# ---- index --------------------------------------------------------------------------------------------
@index_app.command("build")
def index_build(
    corpus: CorpusArg,
    memory: Annotated[Optional[str], typer.Option("--memory", help="Memory budget per shard, e.g. 8G (default: 80% of RAM).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild every shard, even those already indexed.")] = False,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", help="Sorting threads per shard (default: one per core); the tables do not depend on it.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the suffix arrays of a corpus (one per shard, resumable)."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..index import build_index

    started = time.perf_counter()
    with Progress(TextColumn("[bold]index build"), BarColumn(), TextColumn("{task.completed}/{task.total} shards"),
                  TimeElapsedColumn(), console=err, transient=as_json) as bar:
        task = bar.add_task("index", total=None)
        manifest = build_index(corpus, memory=memory, force=force, threads=threads,
                               progress=lambda p: bar.update(task, total=p.shards_total, completed=p.shards_done))
    seconds = time.perf_counter() - started
    size = sum(t["bytes"] for t in manifest["tables"].values())
    if as_json:
        _emit({"corpus": str(corpus), "tables": len(manifest["tables"]), "bytes": size, "seconds": round(seconds, 3)})
    else:
        console.print(f"[green]indexed[/] {corpus}: {len(manifest['tables'])} table(s), {size / 2**20:.1f} MiB, {seconds:.1f} s")


# ---- queries ------------------------------------------------------------------------------------------
@app.command()
def count(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    queries: Annotated[Optional[Path], typer.Option("--queries", help='JSON lines, each {"text": ...} or {"ids": [...]}; answered in order, in one batch.')] = None,
    doc_freq: Annotated[bool, typer.Option("--doc-freq", help="Also count the documents that contain each query.")] = False,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Exact occurrences of n-grams (never across documents)."""
    # one plain count skips the compiled kernels: numba's start-up would cost more than the query
    index = _open(corpus, tokenizer, token_dtype, compiled=queries is not None or doc_freq)
    if queries is not None:
        if text is not None or ids is not None:
            raise QueryError("give TEXT, --ids or --queries, not several")
        batch = _read_queries(queries)
    else:
        batch = [_one_query(text, ids)]
    encoded = [index.encode(q).tolist() for q in batch]
    counts = index.count_many(encoded) if index.compiled else [index.count(encoded[0])]
    freqs = index.doc_freq_many(encoded) if doc_freq else None
    for i, (query, ids_, n) in enumerate(zip(batch, encoded, counts)):
        record: dict[str, Any] = {"count": n, "ids": ids_}
        if isinstance(query, str):
            record["text"] = query
        if freqs is not None:
            record["doc_freq"] = freqs[i]
        if as_json:
            _emit(record)
        else:
            label = query if isinstance(query, str) else " ".join(map(str, query))
            extra = f" in {freqs[i]:,} documents" if freqs is not None else ""
            console.print(f"{n:>12,}{extra}  {label}")


@app.command()
def find(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Matches to list (the first ones in corpus order).")] = 10,
    context: Annotated[int, typer.Option("--context", help="Tokens of context either side in snippets.")] = 20,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Where an n-gram occurs: documents, positions, metadata and snippets, in corpus order."""
    index = _open(corpus, tokenizer, token_dtype)
    result = index.find(_one_query(text, ids), limit=limit, context=context)
    if as_json:
        _emit(result.to_dict())
        return
    console.print(f"{result.count:,} occurrence(s); showing {len(result.matches)}")
    for m in result.matches:
        console.print(f"[bold]doc {m.doc}[/] @ {m.position} {json.dumps(m.metadata, ensure_ascii=False)}")
        if m.snippet is not None and index.tokenizer is not None:
            ids_ = m.snippet_ids
            before = index.tokenizer.decode(ids_[:m.match_start])
            hit = index.tokenizer.decode(ids_[m.match_start:m.match_start + len(result.ids)])
            after = index.tokenizer.decode(ids_[m.match_start + len(result.ids):])
            console.print(f"    {_escape(before)}[reverse]{_escape(hit)}[/reverse]{_escape(after)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text.replace("\n", " "))


@app.command()
def ntd(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    top: Annotated[int, typer.Option("--top", help="Most frequent next tokens to print (all with --json).")] = 20,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Exact next-token distribution after a prompt (no sampling, no support cap)."""
    index = _open(corpus, tokenizer, token_dtype)
    prompt = _parse_ids(ids) if ids is not None else (text or "")
    result = index.ntd(prompt)
    if as_json:
        _emit(result.to_dict())
        return
    console.print(f"prompt occurs {result.prompt_count:,} time(s); {result.end_of_document:,} at a document end")
    for row in result.to_dict()["next"][:top]:
        label = repr(index.tokenizer.decode([row["id"]])) if index.tokenizer else ""
        console.print(f"{row['prob']:8.4f} {row['count']:>10,}  {row['id']:>6} {_escape(label)}")


@app.command()
def prob(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    infinigram: Annotated[bool, typer.Option("--infinigram", help="∞-gram: back off to the longest suffix of the prompt that occurs.")] = False,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Probability of the query's last token given the tokens before it (n-gram, or ∞-gram)."""
    index = _open(corpus, tokenizer, token_dtype)
    query = index.encode(_one_query(text, ids))
    if len(query) < 1:
        raise QueryError("prob needs at least one token: the last is the one scored")
    prompt, last = query[:-1], int(query[-1])
    result = index.infgram_prob(prompt, last) if infinigram else index.prob(prompt, last)
    if as_json:
        _emit({**result.to_dict(), "ids": query.tolist()})
    else:
        console.print(f"p = {result.prob:.6g}  ({result.count:,} / {result.prompt_count:,}, prompt suffix of "
                  f"{result.suffix_len} token(s))")


@app.command()
def spans(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Read the text from a file.")] = None,
    min_length: Annotated[int, typer.Option("--min-length", help="Shortest span to report, in tokens.")] = 1,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Maximal spans of a text found verbatim in the corpus (for each start, the longest match)."""
    index = _open(corpus, tokenizer, token_dtype)
    if file is not None:
        if text is not None or ids is not None:
            raise QueryError("give TEXT, --ids or --file, not several")
        text = _read_text_file(file)
    query = index.encode(_one_query(text, ids))
    found = index.maximal_spans(query, min_length=min_length)
    if as_json:
        _emit({"tokens": len(query), "spans": [s.to_dict() for s in found]})
        return
    console.print(f"{len(found)} span(s) over {len(query)} tokens")
    for s in found:
        console.print(f"[{s.start:>5}, {s.end:>5})  {s.end - s.start:>4} tokens  x{s.count:<8,} {_escape(s.text or '')}")


@app.command()
def search(
    corpus: CorpusArg,
    query: Annotated[Optional[str], typer.Argument(help='Boolean query: "a b AND c OR d" (OR binds tighter than AND).')] = None,
    cnf: Annotated[Optional[str], typer.Option("--cnf", help="The query as token ids, JSON: [[[1,2],[3]],[[4]]] = (1 2 OR 3) AND 4.")] = None,
    window: Annotated[int, typer.Option("--window", help="Every clause must start within this many tokens of the first clause's match.")] = 100,
    limit: Annotated[int, typer.Option("--limit", help="Matches to list (the first ones in corpus order).")] = 10,
    context: Annotated[int, typer.Option("--context", help="Tokens of context either side in snippets.")] = 20,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Exact AND / OR of n-grams within a window, in the same document (no subsampling)."""
    index = _open(corpus, tokenizer, token_dtype)
    if (query is None) == (cnf is None):
        raise QueryError("give the boolean query as QUERY or as --cnf, exactly one of them")
    if cnf is not None:
        try:
            clauses = json.loads(cnf)
        except ValueError:
            raise QueryError("--cnf is not valid JSON; write it like [[[1,2],[3]],[[4]]]") from None
    else:
        clauses = [[term.strip() for term in clause.split(" OR ")] for clause in query.split(" AND ")]  # type: ignore[union-attr]
    result = index.search(clauses, window=window, limit=limit, context=context)
    if as_json:
        _emit(result.to_dict())
        return
    console.print(f"{result.count:,} match(es) in {result.documents:,} document(s); showing {len(result.matches)}")
    for m in result.matches:
        console.print(f"[bold]doc {m.doc}[/] @ {m.position}: {_escape(m.snippet or str(m.snippet_ids))}")


@app.command()
def document(
    corpus: CorpusArg, index: Annotated[int, typer.Argument(help="Document number (0-based, input order).")],
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Print one document: text, token ids and metadata."""
    from ..corpus import open_token_corpus

    doc = open_token_corpus(corpus, tokenizer=tokenizer, token_dtype=token_dtype).document(index)
    if as_json:
        _emit({"doc": doc.index, "text": doc.text, "token_ids": doc.token_ids, "metadata": doc.metadata,
               "path": doc.path, "line": doc.line})
    else:
        console.print(f"[bold]doc {doc.index}[/] ({len(doc.token_ids)} tokens) {doc.path}:{doc.line} "
                  f"{json.dumps(doc.metadata, ensure_ascii=False)}")
        console.print(_escape(doc.text) if doc.text is not None else doc.token_ids)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo's artefacts.")] = Path("demo-out"),
    preset: Annotated[str, typer.Option("--preset", help="ci: small and fast; default: the full example.")] = "default",
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for training and decoding (default: the cores this process may use).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the built-in world end to end: corpus, index, training, audits, scored against the truth."""
    from ..demo import run_demo

    with err.status("[bold]demo[/] running...") as status:
        summary = run_demo(out_dir, preset=preset, threads=threads,
                           progress=lambda step: status.update(f"[bold]demo[/] {step}"))
    if as_json:
        _emit(summary)
        return
    console.print((out_dir / "summary.txt").read_text())


from . import audit_commands, eval_commands, train_commands  # noqa: E402,F401  (register their commands on `app`)


def main() -> None:
    try:
        app()
    except SeethroughError as error:
        err.print(f"[red]error:[/] {_escape(str(error))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
