"""Training commands: ``train``, ``batch``, ``seen``. Flags and their help come from ``TrainConfig``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import QueryError
from ..train.config import TrainConfig
from .shared import (TRAINING, CorpusOpt, JsonOpt, RunArg, app, config_option, console, emit, err, escape,
                     one_query)


def _opt(name: str) -> Any:
    return config_option(TrainConfig, name)


@app.command(rich_help_panel=TRAINING)
def train(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder built by `seethrough corpus build`.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, log.jsonl, run.json.")],
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file of TrainConfig fields; flags override it.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its newest checkpoint.")] = False,
    steps: Annotated[Optional[int], _opt("steps")] = None,
    batch_size: Annotated[Optional[int], _opt("batch_size")] = None,
    seq_len: Annotated[Optional[int], _opt("seq_len")] = None,
    grad_accum: Annotated[Optional[int], _opt("grad_accum")] = None,
    model_size: Annotated[Optional[str], _opt("model_size")] = None,
    lr: Annotated[Optional[float], _opt("lr")] = None,
    min_lr_ratio: Annotated[Optional[float], _opt("min_lr_ratio")] = None,
    warmup_steps: Annotated[Optional[int], _opt("warmup_steps")] = None,
    lr_decay_steps: Annotated[Optional[int], _opt("lr_decay_steps")] = None,
    weight_decay: Annotated[Optional[float], _opt("weight_decay")] = None,
    grad_clip: Annotated[Optional[float], _opt("grad_clip")] = None,
    seed: Annotated[Optional[int], _opt("seed")] = None,
    eod_token: Annotated[Optional[str], _opt("eod_token")] = None,
    save_every: Annotated[Optional[int], _opt("save_every")] = None,
    precision: Annotated[Optional[str], _opt("precision")] = None,
    compile: Annotated[Optional[bool], config_option(TrainConfig, "compile", "--compile/--no-compile")] = None,
    parallel: Annotated[Optional[str], _opt("parallel")] = None,
    device: Annotated[Optional[str], _opt("device")] = None,
    threads: Annotated[Optional[int], _opt("threads")] = None,
    peak_flops: Annotated[Optional[float], _opt("peak_flops")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a GPT-NeoX (Pythia-architecture) model on a corpus, with a data order anyone can replay.

    Several processes: torchrun --nproc_per_node N -m seethrough train ... (the same command)."""
    import os

    from ..train.config import FIELDS, load_config, read_config_file
    from ..train.loop import train as run_training

    flags = {k: v for k, v in locals().items() if k in FIELDS and v is not None}
    explicit = {**read_config_file(config), **flags} if config else flags
    settings = explicit if resume else load_config(**explicit)
    quiet = as_json or int(os.environ.get("RANK", "0")) != 0
    last: dict[str, Any] = {}

    with err.status("[bold]train[/] starting...") as status:
        def report(record: dict[str, Any]) -> None:
            last.update(record)
            if not quiet:
                status.update(f"[bold]train[/] step {record['step'] + 1}  loss {record['loss']:.4f}  "
                              f"{record['tokens_per_s']:,.0f} tok/s")

        manifest = run_training(corpus, out, settings, resume=resume, progress=report)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    summary = {"run": str(out), "status": manifest["status"], "steps": manifest["config"]["steps"],
               "checkpoints": [c["step"] for c in manifest["checkpoints"]], "last_loss": last.get("loss"),
               "parameters": manifest["model"]["parameters"]}
    if as_json:
        emit(summary)
        return
    console.print(f"[green]trained[/] {out}: {summary['parameters']:,} parameters, step {summary['steps']}, "
                  f"loss {summary['last_loss'] if summary['last_loss'] is None else round(summary['last_loss'], 4)}; "
                  f"checkpoints at {summary['checkpoints']}")
    console.print(f"replay a batch: seethrough batch {out} --step 0")


@app.command(rich_help_panel=TRAINING)
def batch(
    run: RunArg,
    step: Annotated[int, typer.Option("--step", help="Optimizer step, from 0.")],
    corpus: CorpusOpt = None,
    planned: Annotated[bool, typer.Option("--planned", help="Answer for steps the run is configured to train but has not reached yet (the planned order, labelled as such); by default such steps are refused.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The exact batch of a training step, and the documents each row came from (needs only run.json)."""
    from ..train.run import open_run

    opened = open_run(run, corpus)
    record = opened.batch_record(step, planned=planned)
    if as_json:
        emit(record)
        return
    tokenizer = opened.corpus.tokenizer
    console.print(f"[bold]step {step}[/]: {len(record['token_ids'])} rows x {len(record['token_ids'][0])} tokens, "
                  f"sha256 {record['sha256']}")
    for i, row in enumerate(record["rows"]):
        docs = ", ".join(f"doc {d['doc']} [{d['doc_start']}:{d['doc_end']}]" for d in row["documents"])
        console.print(f"[bold]row {i}[/] (epoch {row['epoch']}, stream row {row['row']}): {docs}")
        if tokenizer is not None:
            console.print("  " + escape(tokenizer.decode(record["token_ids"][i])[:300]))


@app.command(rich_help_panel=TRAINING)
def seen(
    run: RunArg,
    text: Annotated[Optional[str], typer.Argument(help="The n-gram, encoded with the run's tokenizer.")] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Count what was seen before this step (steps 0..S-1); required.")] = None,
    ids: Annotated[Optional[str], typer.Option("--ids", help='Token ids instead of text: "1 2 3".')] = None,
    corpus: CorpusOpt = None,
    planned: Annotated[bool, typer.Option("--planned", help="Answer for steps the run is configured to train but has not reached yet (the planned order, labelled as such); by default such steps are refused.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """How often an n-gram was in the batches before step S, and when it was first seen."""
    from ..audit.seen import seen_before
    from ..train.run import open_run

    if step is None:  # before step 0 nothing was seen: a default would answer 0 whatever the text
        raise QueryError("give --step S: what was seen before step S (a checkpoint's step, e.g. the run's last)")
    result = seen_before(open_run(run, corpus), one_query(text, ids), step, planned=planned)
    if as_json:
        emit(result.to_dict())
        return
    first = "never" if result.first_step is None else f"first at step {result.first_step}"
    console.print(f"seen {result.count} time(s) before step {step} ({first}); {result.corpus_count} occurrence(s) in "
                  f"the corpus, {result.split_by_rows} split across rows (never seen whole) [{result.method}]")
    if result.steps:
        console.print("steps: " + json.dumps({int(k): v for k, v in sorted(result.steps.items())}))
