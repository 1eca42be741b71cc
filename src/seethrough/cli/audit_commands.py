"""CLI commands of the audit layer: ``memorization`` (and, as they land, membership and trace)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .app import JsonOpt, _emit, _open, _read_queries, _read_text_file, app, console, err

TargetArg = Annotated[Path, typer.Argument(help="A run folder (its checkpoints) or a Hugging Face model folder.")]
CorpusReq = Annotated[Path, typer.Option("--corpus", help="The corpus the model was trained on (with its index).")]


@app.command()
def memorization(
    target: TargetArg,
    corpus: CorpusReq,
    sample: Annotated[int, typer.Option("--sample", help="Sequences to draw from what the model saw (a run's data order; else the corpus).")] = 1000,
    sequences: Annotated[Optional[Path], typer.Option("--sequences", help='JSON lines {"text": ...} or {"ids": [...]}; the first --prompt-len tokens are the prompt.')] = None,
    prompt_len: Annotated[str, typer.Option("--prompt-len", help="Prompt tokens (Pythia: 32); several, like 8,16,32, compare prompt lengths on the same continuations.")] = "32",
    cont_len: Annotated[int, typer.Option("--cont-len", help="Continuation tokens to reproduce (Pythia: 32).")] = 32,
    checkpoints: Annotated[Optional[str], typer.Option("--checkpoints", help="Of a run: all, last (default), or steps like 64,128,last.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for memorization.parquet/.csv, summary.json and the plot.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts decoded together.")] = 128,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --sample draw.")] = 0,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for decoding.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Extractable memorization (greedy), per sequence, with duplication, step and position."""
    from ..audit.memorization import Sequence, evaluate_memorization, write_report

    from ..errors import QueryError

    try:
        prompt_lens = [int(x) for x in prompt_len.split(",") if x.strip()]
    except ValueError:
        raise QueryError(f"--prompt-len {prompt_len!r}: give a number of tokens, or several like 8,16,32") from None
    index = _open(corpus)
    given = None
    if sequences is not None:
        given = [Sequence(index.encode(q).tolist(), {"line": i}) for i, q in enumerate(_read_queries(sequences))]
    with err.status("[bold]memorization[/] decoding..."):
        results = evaluate_memorization(target, index, given, sample, prompt_lens, cont_len, checkpoints,
                                        batch_size, seed, threads)
    summary = write_report(results, out) if out is not None else None
    if as_json:
        for label, items in results.items():
            for r in items:
                _emit({"model": label, **r.to_dict()})
        return
    from ..audit.memorization import summarize

    for label, items in results.items():
        rate = sum(r.extracted for r in items) / max(1, len(items))
        console.print(f"[bold]{label}[/]: {len(items)} sequences, extracted {rate:.1%}, "
                      f"mean score {sum(r.score for r in items) / max(1, len(items)):.3f}")
        for row in summarize(items, "duplicates"):
            lo, hi = row["extracted_ci"]
            console.print(f"  copies ~{row['duplicates']:>6}: {row['extracted']:6.1%} [{lo:.1%}, {hi:.1%}]  "
                          f"score {row['score']:.3f}  n={row['n']}")
    if summary is not None:
        console.print(f"table, summary and plot in {out}")




def _texts(path: Path, tokenizer: Any) -> list[str]:
    """Texts of a JSON-lines file ({"text"} or {"ids"}, decoded)."""
    return [q if isinstance(q, str) else tokenizer.decode(q) for q in _read_queries(path)]


@app.command()
def membership(
    target: TargetArg,
    corpus: CorpusReq,
    text: Annotated[Optional[str], typer.Argument(help="The text to test.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="A text file to test (its whole content).")] = None,
    evaluate: Annotated[Optional[tuple[Path, Path]], typer.Option("--evaluate", help="MEMBERS NONMEMBERS: two JSON-lines files; ROC AUC (bootstrap CI) and TPR at 1% / 0.1% FPR per signal.")] = None,
    reference: Annotated[Optional[Path], typer.Option("--reference", help="A reference model folder (same tokenizer) for the reference-ratio signal.")] = None,
    reference_set: Annotated[Optional[Path], typer.Option("--reference-set", help="JSON lines of known non-members: each score is also given as a percentile among theirs.")] = None,
    k: Annotated[float, typer.Option("--k", help="Share of lowest-scoring tokens for Min-K% and Min-K%++.")] = 0.2,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for scores.jsonl, evaluation.json and roc.png (with --evaluate).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Was this text in the training data? The exact answer from the index, and model-only signals."""
    from ..audit import membership as mia
    from ..audit.generation import load_model
    from ..audit.memorization import resolve_models
    from ..errors import QueryError

    index = _open(corpus)
    tok = index.tokenizer
    if tok is None:
        raise QueryError(f"{corpus} has no tokenizer; membership needs text")
    _, models = resolve_models(target, None)
    model = load_model(models[0][1], threads)
    bos = model.config.bos_token_id
    ref_model = load_model(reference, threads) if reference is not None else None
    names = list(mia.MODEL_SIGNALS) + (["reference"] if ref_model is not None else []) + ["index"]

    def score(texts: list[str]) -> list[dict[str, Any]]:
        return mia.score_texts(texts, tok, model, bos, index, ref_model, k)

    if evaluate is not None:
        if text is not None or file is not None:
            raise QueryError("give TEXT/--file or --evaluate, not both")
        members, nonmembers = score(_texts(evaluate[0], tok)), score(_texts(evaluate[1], tok))
        result = mia.evaluate(members, nonmembers, names)
        if out is not None:
            mia.write_evaluation(out, members, nonmembers, result, names)
        if as_json:
            _emit(result)
            return
        for name, row in result["signals"].items():
            lo, hi = row["auc_ci"]
            console.print(f"{name:>16}: AUC {row['auc']:.3f} [{lo:.3f}, {hi:.3f}]  TPR@1%FPR {row['tpr_at_1pct_fpr']:.3f}"
                          f"  TPR@0.1%FPR {row['tpr_at_0.1pct_fpr']:.3f}")
        return
    if (text is None) == (file is None):
        raise QueryError("give the text to test, as TEXT or --file (or --evaluate MEMBERS NONMEMBERS)")
    if file is not None:
        text = _read_text_file(file)
    record = score([text])[0]
    if reference_set is not None:
        mia.percentiles([record], score(_texts(reference_set, tok)), [n for n in names if n != "index"])
    if as_json:
        _emit(record)
        return
    verdict = "the whole text is in the corpus" if record["whole_text_count"] else \
        f"not verbatim in the corpus; longest span {record['longest_span']} of {record['tokens']} tokens"
    console.print(f"[bold]index[/]: {verdict} ({record['covered']:.0%} of tokens covered by found spans)")
    for name in names[:-1]:
        extra = f" (percentile {record['percentile'][name]:.0%})" if "percentile" in record else ""
        console.print(f"{name:>16}: {record[name]:.4f}{extra}")


@app.command()
def trace(
    target: TargetArg,
    corpus: CorpusReq,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="Generate a continuation of this prompt with the model (greedy), and trace it.")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Trace this text instead of generating one.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Trace the content of this file.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens to generate with --prompt.")] = 64,
    min_length: Annotated[int, typer.Option("--min-length", help="Shortest span kept (tokens).")] = 4,
    span_density: Annotated[float, typer.Option("--span-density", help="Spans kept per token of the text, rarest first (OLMoTrace: 0.05).")] = 0.05,
    docs_per_span: Annotated[int, typer.Option("--docs-per-span", help="Documents listed per span, ranked by BM25 against the text.")] = 10,
    context: Annotated[int, typer.Option("--context", help="Tokens of context around a span in a document.")] = 30,
    novelty_max_n: Annotated[int, typer.Option("--novelty-max-n", help="Largest n of the novelty curve.")] = 16,
    max_count: Annotated[Optional[int], typer.Option("--max-count", help="Drop spans found more than this many times (infini-gram attribute's max_cnt).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for generation.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find which spans of a (generated) text occur in the training data, and where; its novelty."""
    from ..audit.trace import TraceSettings, trace as trace_text
    from ..errors import QueryError

    index = _open(corpus)
    tok = index.tokenizer
    if tok is None:
        raise QueryError(f"{corpus} has no tokenizer; tracing needs text")
    if sum(x is not None for x in (prompt, text, file)) != 1:
        raise QueryError("give exactly one of --prompt, --text or --file")
    extra: dict[str, Any] = {}
    if prompt is not None:
        from ..audit.generation import greedy_continuations, load_model
        from ..audit.memorization import resolve_models

        _, models = resolve_models(target, None)
        model = load_model(models[0][1], threads)
        prompt_ids = tok.encode(prompt)
        bos = model.config.bos_token_id
        ids = greedy_continuations(model, [([bos] if bos is not None else []) + prompt_ids], max_new_tokens)[0]
        eos = model.config.eos_token_id
        if eos in ids:
            ids = ids[:ids.index(eos)]  # the response ends at the end-of-document token
        if not ids:
            raise QueryError("the model ended its response at once (end-of-document token); try another --prompt")
        extra = {"prompt": prompt, "generated_ids": ids}
    else:
        if file is not None:
            text = _read_text_file(file)
        ids = index.encode(text).tolist()
    settings = TraceSettings(min_length, span_density, docs_per_span, context, novelty_max_n, max_count)
    result = {"text": tok.decode(ids), **extra, **trace_text(index, ids, settings)}
    if as_json:
        _emit(result)
        return
    console.print(_highlighted(tok, ids, result["merged"]))
    found = result["novelty"]["found_share_by_n"]
    console.print(f"longest copied span: {result['novelty']['longest_copied_span']} tokens; n-grams found in the data: "
                  + ", ".join(f"n={n}: {v:.0%}" for n, v in found.items() if int(n) in (1, 2, 4, 8, 16)))
    for span in result["spans"]:
        console.print(f"[bold]{span['start']}:{span['end']}[/] x{span['count']} {span['text']!r}")
        for d in span["documents"][:3]:
            console.print(f"    doc {d['doc']} @{d['position']} (bm25 {d['bm25']:.2f}): {d['snippet']!r}")


def _highlighted(tok: Any, ids: list[int], merged: list[dict[str, Any]]) -> str:
    """The text with copied pieces in reverse video (rich markup)."""
    from rich.markup import escape

    cuts, pieces, at = [(m["start"], m["end"]) for m in merged], [], 0
    for start, end in cuts:
        pieces += [(ids[at:start], False), (ids[start:end], True)]
        at = end
    pieces.append((ids[at:], False))
    pieces = [(p, copied) for p, copied in pieces if p]
    # word-level decoders drop the space between separately decoded pieces; byte-level ones keep it
    glue = "" if len(pieces) < 2 or tok.decode(pieces[0][0] + pieces[1][0]) == \
        tok.decode(pieces[0][0]) + tok.decode(pieces[1][0]) else " "
    return glue.join(f"[reverse]{escape(tok.decode(p))}[/]" if copied else escape(tok.decode(p)) for p, copied in pieces)
