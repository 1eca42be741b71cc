"""``seethrough report`` and ``seethrough release``: thin wrappers over ``seethrough.show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .shared import SHOWING, CorpusOpt, JsonOpt, RunArg, ThreadsOpt, app, console, emit, err, escape

ResultsOpt = Annotated[Optional[list[Path]], typer.Option(
    "--results", help="A folder an audit or eval wrote with --out (repeat for several); recognised by the files it "
                      "holds: results.json, memorization or facts summary, evaluation.json, bias_data.json, "
                      "bias_model.json, probe.json, lens.json, detect.json, a control summary.json.")]


@app.command(rich_help_panel=SHOWING)
def report(
    run: RunArg,
    corpus: CorpusOpt = None,
    results: ResultsOpt = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Folder for index.html (one self-contained page) and report.json (default: RUN-report beside "
                      "the run).")] = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A one-file transparency report (offline HTML, inline SVG) and report.json with every number and its source's sha256."""
    from ..show import build_report, write_report

    with err.status("[bold]report[/] reading the artefacts, tracing sample generations..."):
        built = build_report(run, corpus, results or [], threads=threads)
        target = write_report(built, out)
    summary = {"report": str(target / "index.html"), "numbers": len(built.numbers["numbers"]),
               "sections": built.sections, "sources": len(built.numbers["sources"])}
    if as_json:
        emit(summary)
        return
    console.print(f"[bold]report[/] {escape(str(target / 'index.html'))}: {len(built.sections)} sections "
                  f"({escape(', '.join(built.sections))}), {summary['numbers']:,} numbers from "
                  f"{summary['sources']} files (report.json)")
    console.print(f"open it offline: file://{escape(str((target / 'index.html').resolve()))}")


@app.command(rich_help_panel=SHOWING)
def release(
    run: RunArg,
    corpus: CorpusOpt = None,
    results: ResultsOpt = None,
    checkpoint: Annotated[Optional[int], typer.Option("--checkpoint", help="The step to release (default: the "
                                                                           "newest checkpoint).")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Bundle folder, built beside it and renamed into place (default: RUN-release beside the run); "
                      "an existing folder is replaced only if it is a bundle.")] = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A Hugging Face-ready folder: weights, config, tokenizer, model and dataset cards, run manifest and data order, the report, SHA256SUMS. Nothing is uploaded."""
    from ..show import build_release

    with err.status("[bold]release[/] writing the bundle..."):
        bundle = build_release(run, corpus, results or [], checkpoint, out, threads=threads)
    if as_json:
        emit(bundle.to_dict())
        return
    console.print(f"[bold]release[/] {escape(str(bundle.path))}: checkpoint step-{bundle.checkpoint_step}, "
                  f"{len(bundle.files)} files, {bundle.bytes:,} bytes; check with "
                  f"(cd {escape(str(bundle.path))} && sha256sum -c SHA256SUMS)")
    console.print(f"load it: AutoModelForCausalLM.from_pretrained({escape(repr(str(bundle.path)))}); push it as is "
                  "with huggingface-cli upload (not done here)")
