"""Data commands: build and check corpora and their indexes, and every exact query over them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..corpus.build import CorpusBuildConfig
from ..errors import QueryError
from ..index import parse_boolean_query
from .shared import (DATA, CorpusArg, DtypeOpt, IdsOpt, JsonOpt, RayOpt, TextArg, TokenizerOpt, VerifyOpt, app,
                     config_option, console, corpus_app, emit, err, escape, index_app, one_query, open_index,
                     parse_ids, read_queries, read_text_file)

SCALE = "Scale"


def _open(corpus: Path, tokenizer: Optional[Path], token_dtype: Optional[str], verify: bool, ray: Optional[str],
          compiled: bool = True):
    """The corpus opened for queries here, or with its shards on the cluster's query servers (``--ray``)."""
    if ray is None:
        return open_index(corpus, tokenizer, token_dtype, compiled=compiled, verify=verify)
    from ..index import open_corpus

    return open_corpus(corpus, tokenizer=tokenizer, token_dtype=token_dtype, compiled=compiled, verify=verify, ray=ray)


# ---- corpus --------------------------------------------------------------------------------------------
@corpus_app.command("build")
def corpus_build(
    inputs: Annotated[list[str], typer.Argument(help="JSON-lines (.gz/.zst), Parquet or .txt files, folders of them, or Hugging Face dataset names (owner/name).")],
    tokenizer: Annotated[Path, typer.Option("--tokenizer", help="tokenizer.json, or a model folder containing one.")],
    out: Annotated[Path, typer.Option("--out", help="Corpus folder to write.")],
    text_field: Annotated[Optional[str], config_option(CorpusBuildConfig, "text_field")] = None,
    shard_tokens: Annotated[Optional[int], config_option(CorpusBuildConfig, "shard_tokens")] = None,
    on_error: Annotated[Optional[str], config_option(CorpusBuildConfig, "on_error")] = None,
    split: Annotated[Optional[str], config_option(CorpusBuildConfig, "split")] = None,
    batch_documents: Annotated[Optional[int], config_option(CorpusBuildConfig, "batch_documents")] = None,
    batch_chars: Annotated[Optional[int], config_option(CorpusBuildConfig, "batch_chars")] = None,
    overwrite: Annotated[bool, config_option(CorpusBuildConfig, "overwrite")] = False,
    ray: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tokenize text collections into a corpus folder (infini-gram shard layout + manifest)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..corpus import build_corpus

    # the settings are checked by build_corpus, where CorpusBuildConfig is used
    given = {"text_field": text_field, "shard_tokens": shard_tokens, "on_error": on_error, "split": split,
             "batch_documents": batch_documents, "batch_chars": batch_chars, "overwrite": overwrite}
    config = CorpusBuildConfig(**{k: v for k, v in given.items() if v is not None})
    with Progress(TextColumn("[bold]corpus build"), BarColumn(), TextColumn("{task.completed}/{task.total} inputs"),
                  TextColumn("{task.fields[docs]:,} docs {task.fields[tokens]:,} tokens"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:  # what stays is the summary line, or the error alone
        task = bar.add_task("build", total=None, docs=0, tokens=0)

        def report(p) -> None:
            bar.update(task, total=p.inputs_total, completed=p.inputs_done, docs=p.documents, tokens=p.tokens)

        if ray is None:
            manifest = build_corpus(inputs, tokenizer, out, config, progress=report)
        else:
            from ..distributed import build_corpus_on_ray

            manifest = build_corpus_on_ray(inputs, tokenizer, out, config, ray=ray, progress=report)
    counts = manifest["counts"]
    if as_json:
        emit({"corpus": str(out), "corpus_hash": manifest["corpus_hash"], **counts,
               "token_dtype": manifest["token_dtype"]})
        return
    console.print(f"[green]built[/] {out}: {counts['documents']:,} documents, {counts['tokens']:,} tokens "
              f"({manifest['token_dtype']}), {counts['shards']} shard(s), corpus hash {manifest['corpus_hash'][:12]}")
    if counts["skipped_lines"]:
        console.print(f"[yellow]skipped {counts['skipped_lines']} input line(s)[/], e.g. {manifest['skipped_examples'][0]}")
    console.print(f"next: seethrough index build {out}")


@corpus_app.command("verify")
def corpus_verify(corpus: CorpusArg, ray: RayOpt = None, as_json: JsonOpt = False) -> None:
    """Re-hash every file of a corpus (and its index) against the manifests."""
    if ray is None:
        from ..index import verify

        report = verify(corpus)
    else:
        from ..distributed import verify_on_ray

        report = verify_on_ray(corpus, ray)
    if as_json:
        emit({"ok": True, **report})
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
        emit(info)
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
        "--threads", help="Sorting threads per shard (default: one per core; with --ray 1 per task, many tasks per "
                          "node); the tables do not depend on it.")] = None,
    ray: RayOpt = None,
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
        def report(p) -> None:
            bar.update(task, total=p.shards_total, completed=p.shards_done)

        if ray is None:
            manifest = build_index(corpus, memory=memory, force=force, threads=threads, progress=report)
        else:
            from ..distributed import build_index_on_ray

            manifest = build_index_on_ray(corpus, ray, memory=memory, force=force, threads=threads,
                                          progress=report).manifest
    seconds = time.perf_counter() - started
    size = sum(t["bytes"] for t in manifest["tables"].values())
    if as_json:
        emit({"corpus": str(corpus), "tables": len(manifest["tables"]), "bytes": size, "seconds": round(seconds, 3)})
    else:
        console.print(f"[green]indexed[/] {corpus}: {len(manifest['tables'])} table(s), {size / 2**20:.1f} MiB, {seconds:.1f} s")


# ---- queries ------------------------------------------------------------------------------------------
@app.command(rich_help_panel=DATA)
def count(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    queries: Annotated[Optional[Path], typer.Option("--queries", help='JSON lines, each {"text": ...} or {"ids": [...]}; answered in order, in one batch.')] = None,
    doc_freq: Annotated[bool, typer.Option("--doc-freq", help="Also count the documents that contain each query.")] = False,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, verify: VerifyOpt = False, ray: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exact occurrences of n-grams (never across documents)."""
    # one plain count skips the compiled kernels: numba's start-up would cost more than the query
    index = _open(corpus, tokenizer, token_dtype, verify, ray, compiled=queries is not None or doc_freq)
    if queries is not None:
        if text is not None or ids is not None:
            raise QueryError("give TEXT, --ids or --queries, not several")
        batch = read_queries(queries)
    else:
        batch = [one_query(text, ids)]
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
            emit(record)
        else:
            label = query if isinstance(query, str) else " ".join(map(str, query))
            extra = f" in {freqs[i]:,} documents" if freqs is not None else ""
            console.print(f"{n:>12,}{extra}  {label}")


@app.command(rich_help_panel=DATA)
def find(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Matches to list (the first ones in corpus order).")] = 10,
    context: Annotated[int, typer.Option("--context", help="Tokens of context either side in snippets.")] = 20,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, verify: VerifyOpt = False, ray: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where an n-gram occurs: documents, positions, metadata and snippets, in corpus order."""
    index = _open(corpus, tokenizer, token_dtype, verify, ray)
    result = index.find(one_query(text, ids), limit=limit, context=context)
    if as_json:
        emit(result.to_dict())
        return
    console.print(f"{result.count:,} occurrence(s); showing {len(result.matches)}")
    for m in result.matches:
        console.print(f"[bold]doc {m.doc}[/] @ {m.position} {json.dumps(m.metadata, ensure_ascii=False)}")
        if m.snippet is not None and index.tokenizer is not None:
            ids_ = m.snippet_ids
            before = index.tokenizer.decode(ids_[:m.match_start])
            hit = index.tokenizer.decode(ids_[m.match_start:m.match_start + len(result.ids)])
            after = index.tokenizer.decode(ids_[m.match_start + len(result.ids):])
            console.print(f"    {escape(before)}[reverse]{escape(hit)}[/reverse]{escape(after)}")


@app.command(rich_help_panel=DATA)
def ntd(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    top: Annotated[int, typer.Option("--top", help="Most frequent next tokens to print (all with --json).")] = 20,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, verify: VerifyOpt = False, ray: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exact next-token distribution after a prompt (no sampling, no support cap)."""
    if top < 1:
        raise QueryError(f"--top {top}: print at least 1 next token (--json lists them all)")
    index = _open(corpus, tokenizer, token_dtype, verify, ray)
    prompt = parse_ids(ids) if ids is not None else (text or "")
    result = index.ntd(prompt)
    if as_json:
        emit(result.to_dict())
        return
    console.print(f"prompt occurs {result.prompt_count:,} time(s); {result.end_of_document:,} at a document end")
    for row in result.to_dict()["next"][:top]:
        label = repr(index.tokenizer.decode([row["id"]])) if index.tokenizer else ""
        console.print(f"{row['prob']:8.4f} {row['count']:>10,}  {row['id']:>6} {escape(label)}")


@app.command(rich_help_panel=DATA)
def prob(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    infinigram: Annotated[bool, typer.Option("--infinigram", help="∞-gram: back off to the longest suffix of the prompt that occurs.")] = False,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, verify: VerifyOpt = False, ray: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Probability of the query's last token given the tokens before it (n-gram, or ∞-gram)."""
    index = _open(corpus, tokenizer, token_dtype, verify, ray)
    query = index.encode(one_query(text, ids))
    if len(query) < 1:
        raise QueryError("prob needs at least one token: the last is the one scored")
    prompt, last = query[:-1], int(query[-1])
    result = index.infgram_prob(prompt, last) if infinigram else index.prob(prompt, last)
    if as_json:
        emit({**result.to_dict(), "ids": query.tolist()})
    else:
        console.print(f"p = {result.prob:.6g}  ({result.count:,} / {result.prompt_count:,}, prompt suffix of "
                  f"{result.suffix_len} token(s))")


@app.command(rich_help_panel=DATA)
def spans(
    corpus: CorpusArg, text: TextArg = None, ids: IdsOpt = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Read the text from a file.")] = None,
    min_length: Annotated[int, typer.Option("--min-length", help="Shortest span to report, in tokens.")] = 1,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, verify: VerifyOpt = False, ray: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Maximal spans of a text found verbatim in the corpus (for each start, the longest match)."""
    index = _open(corpus, tokenizer, token_dtype, verify, ray)
    if file is not None:
        if text is not None or ids is not None:
            raise QueryError("give TEXT, --ids or --file, not several")
        text = read_text_file(file)
    query = index.encode(one_query(text, ids))
    found = index.maximal_spans(query, min_length=min_length)
    if as_json:
        emit({"tokens": len(query), "spans": [s.to_dict() for s in found]})
        return
    console.print(f"{len(found)} span(s) over {len(query)} tokens")
    for s in found:
        console.print(f"[{s.start:>5}, {s.end:>5})  {s.end - s.start:>4} tokens  x{s.count:<8,} {escape(s.text or '')}")


@app.command(rich_help_panel=DATA)
def search(
    corpus: CorpusArg,
    query: Annotated[Optional[str], typer.Argument(help='Boolean query: "a b AND c OR d" (OR binds tighter than AND).')] = None,
    cnf: Annotated[Optional[str], typer.Option("--cnf", help="The query as token ids, JSON: [[[1,2],[3]],[[4]]] = (1 2 OR 3) AND 4.")] = None,
    window: Annotated[int, typer.Option("--window", help="Every clause must start within this many tokens of the first clause's match.")] = 100,
    limit: Annotated[int, typer.Option("--limit", help="Matches to list (the first ones in corpus order).")] = 10,
    context: Annotated[int, typer.Option("--context", help="Tokens of context either side in snippets.")] = 20,
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, verify: VerifyOpt = False, ray: RayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exact AND / OR of n-grams within a window, in the same document (no subsampling)."""
    index = _open(corpus, tokenizer, token_dtype, verify, ray)
    if (query is None) == (cnf is None):
        raise QueryError("give the boolean query as QUERY or as --cnf, exactly one of them")
    if cnf is not None:
        try:
            clauses = json.loads(cnf)
        except (ValueError, RecursionError):
            raise QueryError("--cnf is not valid JSON; write it like [[[1,2],[3]],[[4]]]") from None
    else:
        clauses = parse_boolean_query(query)  # type: ignore[arg-type]
    result = index.search(clauses, window=window, limit=limit, context=context)
    if as_json:
        emit(result.to_dict())
        return
    console.print(f"{result.count:,} match(es) in {result.documents:,} document(s); showing {len(result.matches)}")
    for m in result.matches:
        console.print(f"[bold]doc {m.doc}[/] @ {m.position}: {escape(m.snippet or str(m.snippet_ids))}")


@app.command(rich_help_panel=DATA)
def document(
    corpus: CorpusArg, index: Annotated[int, typer.Argument(help="Document number (0-based, input order).")],
    tokenizer: TokenizerOpt = None, token_dtype: DtypeOpt = None, verify: VerifyOpt = False, as_json: JsonOpt = False,
) -> None:
    """Print one document: text, token ids and metadata."""
    from ..corpus import open_token_corpus

    doc = open_token_corpus(corpus, tokenizer=tokenizer, token_dtype=token_dtype, verify_hashes=verify).document(index)
    if as_json:
        emit({"doc": doc.index, "text": doc.text, "token_ids": doc.token_ids, "metadata": doc.metadata,
               "path": doc.path, "line": doc.line})
    else:
        console.print(f"[bold]doc {doc.index}[/] ({len(doc.token_ids)} tokens) {doc.path}:{doc.line} "
                  f"{json.dumps(doc.metadata, ensure_ascii=False)}")
        console.print(escape(doc.text) if doc.text is not None else doc.token_ids)


# ---- scale ---------------------------------------------------------------------------------------------
@app.command(rich_help_panel=SCALE)
def doctor(
    corpus: Annotated[Optional[Path], typer.Argument(help="A corpus: where its shards are, and what its index "
                                                          "build needs per node.")] = None,
    ray: RayOpt = None,
    memory: Annotated[Optional[str], typer.Option("--memory", help="Memory budget per shard, as index build "
                                                                   "--memory.")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Sorting threads per shard, as index build "
                                                                     "--threads.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The cluster's nodes (or this machine), where a corpus's shards are, and what its index build needs."""
    from ..distributed.doctor import describe_cluster

    report = describe_cluster(ray, corpus, memory=memory, threads=threads)
    if as_json:
        emit(report.to_dict())
        return
    totals = report.totals
    console.print(f"[bold]{report.address}[/]: {totals['nodes']} node(s), {totals['cpus']:g} CPUs, {totals['gpus']:g} "
                  f"GPUs, {totals['memory'] / 2**30:.1f} GiB memory, {totals['object_store_memory'] / 2**30:.1f} GiB "
                  "object store")
    shards = report.corpus["shards"] if report.corpus else 0
    for probe in report.nodes:
        node = probe.node
        seen = f", sees {len(probe.shards)}/{shards} shards, {len(probe.tables)} tables" if report.corpus else ""
        console.print(f"  {node.address:<15} {probe.hostname:<16} {node.cpus:>4g} CPUs {node.gpus:>2g} GPUs "
                      f"{node.memory / 2**30:>7.1f} GiB  python {probe.python} seethrough {probe.seethrough} "
                      f"ray {probe.ray}{seen}")
    if report.corpus:
        c = report.corpus
        console.print(f"corpus {c['path']}: {c['shards']} shard(s), {c['tokens']:,} tokens, storage {c['storage']}, "
                      f"{c['tables_built']} table(s) built")
    if report.build:
        b = report.build
        waves = f"{b.waves} round(s)" if b.waves is not None else "no node fits one"
        console.print(f"index build of {b.shards_to_build} shard(s): {b.memory_per_task / 2**30:.2f} GiB and "
                      f"{b.threads_per_task} thread(s) per shard (largest {b.largest_shard_bytes / 2**20:.1f} MiB); "
                      f"{sum(b.builds_at_once.values())} at once, {waves}")
    for problem in report.problems:
        console.print(f"[yellow]problem:[/] {escape(problem)}")
    if not report.problems:
        console.print("[green]ok[/]")
