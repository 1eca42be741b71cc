"""CLI commands of the audit layer: ``memorization`` (and, as they land, membership and trace)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .app import JsonOpt, _emit, _open, _read_queries, app, console, err

TargetArg = Annotated[Path, typer.Argument(help="A run folder (its checkpoints) or a Hugging Face model folder.")]
CorpusReq = Annotated[Path, typer.Option("--corpus", help="The corpus the model was trained on (with its index).")]


@app.command()
def memorization(
    target: TargetArg,
    corpus: CorpusReq,
    sample: Annotated[int, typer.Option("--sample", help="Sequences to draw from what the model saw (a run's data order; else the corpus).")] = 1000,
    sequences: Annotated[Optional[Path], typer.Option("--sequences", help='JSON lines {"text": ...} or {"ids": [...]}; the first --prompt-len tokens are the prompt.')] = None,
    prompt_len: Annotated[int, typer.Option("--prompt-len", help="Prompt tokens (Pythia: 32).")] = 32,
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

    index = _open(corpus)
    given = None
    if sequences is not None:
        given = [Sequence(index.encode(q).tolist(), {"line": i}) for i, q in enumerate(_read_queries(sequences))]
    with err.status("[bold]memorization[/] decoding..."):
        results = evaluate_memorization(target, index, given, sample, prompt_len, cont_len, checkpoints,
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


