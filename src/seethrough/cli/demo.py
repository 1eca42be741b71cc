"""Showing commands: the built-in demo (later: the report, the release bundle and the local explorer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .shared import SHOWING, JsonOpt, app, console, emit, err


@app.command(rich_help_panel=SHOWING)
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
        emit(summary)
        return
    console.print((out_dir / "summary.txt").read_text())
