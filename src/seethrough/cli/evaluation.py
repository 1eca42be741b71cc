"""Evaluation commands: ``seethrough eval`` (lm-eval tasks, provenance, contamination) and
``seethrough eval --verify`` (recompute every recorded number; exit 1 on any difference)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import QueryError
from .shared import (EVALUATION, DeviceOpt, JsonOpt, ThreadsOpt, app, console, emit, escape, open_index,
                     refuse_together)


@app.command("eval", rich_help_panel=EVALUATION)
def eval_command(
    target: Annotated[Optional[Path], typer.Argument(help="A run folder (its checkpoints) or a Hugging Face model folder.")] = None,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated lm-eval task names.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="RESULTS folder: results.json and samples_<task>.jsonl.")] = None,
    include_path: Annotated[Optional[Path], typer.Option("--include-path", help="A folder of extra task YAMLs (e.g. DEMO/world/tasks).")] = None,
    num_fewshot: Annotated[Optional[int], typer.Option("--num-fewshot", help="Few-shot examples per item (default: each task's own).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Evaluate only the first N items of each task.")] = None,
    batch_size: Annotated[Optional[str], typer.Option("--batch-size", help="Rows per forward pass (default auto: up to 2048 tokens). Changes speed and memory, never a score: scores are the same to the bit at any batch size.")] = None,
    checkpoints: Annotated[Optional[str], typer.Option("--checkpoints", help="Of a run: all, last (default), or steps like 64,128,last; one result folder each, and a metric-by-step table.")] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="The training corpus (indexed, checked against the model): flag contaminated items, report metrics on the clean subset too.")] = None,
    ngram: Annotated[Optional[int], typer.Option("--ngram", help="An item is contaminated when one of its n-grams occurs in the corpus (default 13, as GPT-3).")] = None,
    seed: Annotated[Optional[str], typer.Option("--seed", help="lm-eval's --seed: one integer for all four seeds, or four comma-separated (python random, numpy, torch, few-shot; None leaves one unseeded). Default: lm-eval's 0,1234,1234,1234.")] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="Weights dtype: float32 (default), bfloat16 or float16.")] = None,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache folder, keyed by weights, tokenizer, dtype and exact token ids (never by prompt text).")] = None,
    erase: Annotated[Optional[Path], typer.Option("--erase", metavar="ERASER", help="An eraser folder (seethrough erase --out), on during the evaluation; results.json records it (kind, path, sha256) and --verify re-applies it.")] = None,
    verify: Annotated[Optional[Path], typer.Option("--verify", help="Re-run the evaluation recorded in this RESULTS folder and compare every recorded number; exit 1 on any difference.")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Evaluate the checkpoints on the "
                   "Ray cluster at ADDRESS, one task each (docs/scale.md); --out must be on storage every node sees. "
                   "Same results.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate with lm-evaluation-harness tasks through seethrough's batch-invariant backend."""
    from ..audit.bias.benchmarks import summary_lines
    from ..evaluate.checkpoints import evaluate_checkpoints
    from ..evaluate.run import verify_results
    from ..model import resolve_target

    if verify is not None:
        # a verification re-runs exactly what was recorded: every setting comes from RESULTS
        refuse_together("--verify (it re-runs what RESULTS records)", {
            "MODEL": target, "--tasks": tasks, "--out": out, "--include-path": include_path,
            "--num-fewshot": num_fewshot, "--limit": limit, "--batch-size": batch_size, "--checkpoints": checkpoints,
            "--corpus": corpus, "--ngram": ngram, "--seed": seed, "--dtype": dtype, "--cache": cache, "--ray": ray,
            "--erase": erase})
        report = verify_results(verify, threads, device=device)
        if as_json:
            emit(report.to_dict())
        else:
            console.print(f"{report.items_checked} items and {report.values_checked:,} values re-evaluated: "
                          + ("all identical" if report.ok else f"{len(report.differences)} differ"))
            for d in report.differences[:20]:
                console.print(f"  {d}")
        if not report.ok:
            raise typer.Exit(1)  # a difference is a result, not an error: exit 1, not 2
        return
    if target is None or not tasks or out is None:
        raise QueryError("give the model (RUN or MODEL folder), --tasks and --out (or --verify RESULTS)")
    if corpus is None:
        refuse_together("no --corpus (contamination is checked against the corpus)", {"--ngram": ngram})
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    from ..model.interventions import load_eraser

    resolved = resolve_target(target, checkpoints, intervention=load_eraser(erase) if erase is not None else None)
    index = open_index(corpus) if corpus is not None else None
    if index is not None:
        resolved.check_corpus(index)
    per_step = evaluate_checkpoints(resolved, names, out, corpus=index, ray=ray, include_path=include_path,
                                    num_fewshot=num_fewshot, limit=limit, ngram=13 if ngram is None else ngram,
                                    threads=threads, seed=seed, batch_size=batch_size or "auto", cache_dir=cache,
                                    device=device or "cpu", dtype=dtype or "float32")
    for step, (result, bias) in per_step.items():
        if as_json:
            emit({"step": step, "results": result.results, "contamination": result.contamination,
                  **({"bias": bias} if bias else {})})
            continue
        console.print(f"[bold]{'step ' + str(step) if step is not None else target}[/]")
        for task in result.results:
            shown = ", ".join(f"{s.label} {s.value:.4f}" for s in result.scores(task))
            console.print(f"  {task}: {shown}")
            report = (result.contamination or {}).get(task)
            if report:
                console.print(f"    contaminated {report['flagged']}/{report['items']} ({report['ngram']}-gram); clean: "
                              + ", ".join(f"{k} {v:.4f}" for k, v in report["clean"].items()))
        for line in summary_lines(bias):
            console.print(f"  {escape(line)}")
    if not as_json:
        console.print(f"results in {out}")
