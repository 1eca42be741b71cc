"""``seethrough erase``, ``seethrough steer`` and ``seethrough generate``: control at deployment. Thin
wrappers over ``seethrough.audit.control``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..audit.control.erase import EraseSettings
from ..audit.control.steer import SteerSettings
from ..errors import QueryError
from ..model.interventions import ERASER, STEERING, check_out_folder
from .shared import (AUDITS, DeviceOpt, JsonOpt, TargetArg, ThreadsOpt, app, config_option, console, emit, err, escape,
                     refuse_together)

CheckpointOpt = Annotated[Optional[str], typer.Option("--checkpoint", help="Of a run: the step to use (default: the "
                                                                           "last).")]
CorpusOpt = Annotated[Optional[Path], typer.Option("--corpus", help="The corpus the model was trained on (checked): "
                                                                    "the cost is measured on held-out text of it.")]
EraseOpt = Annotated[Optional[Path], typer.Option("--erase", metavar="ERASER", help="An eraser folder (seethrough "
                                                                                   "erase --out), on while this runs; "
                                                                                   "recorded in the output.")]


def _corpus(path: Path | None, indexed: bool) -> Any:
    if path is None:
        return None
    from .shared import open_index

    if indexed:
        return open_index(path)
    from ..corpus import open_token_corpus

    return open_token_corpus(path)


def _settings(cls: type, **given: Any) -> Any:
    """``cls`` from the flags given; a flag left out (None) keeps the dataclass's default."""
    return cls(**{name: value for name, value in given.items() if value is not None})


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


@app.command(rich_help_panel=AUDITS)
def erase(
    target: TargetArg,
    data: Annotated[Path, typer.Option("--data", help='JSON lines of statements {"text", "label": 0|1} labelled with '
                                                      'the concept to erase (the seethrough probe format), e.g. '
                                                      'contexts before a pronoun, labelled by its gender.')],
    layers: Annotated[str, config_option(EraseSettings, "layers")],
    method: Annotated[str, config_option(EraseSettings, "method")] = EraseSettings.method,
    out: Annotated[Optional[Path], typer.Option("--out", metavar="ERASER", help="Folder for the eraser (eraser.json, "
                                                                                "layer-L.safetensors) and its report "
                                                                                "(summary.json).")] = None,
    test_share: Annotated[float, config_option(EraseSettings, "test_share")] = EraseSettings.test_share,
    seed: Annotated[int, config_option(EraseSettings, "seed")] = EraseSettings.seed,
    corpus: CorpusOpt = None,
    heldout_tokens: Annotated[Optional[int], config_option(EraseSettings, "heldout_tokens")] = None,
    seq_len: Annotated[Optional[int], config_option(EraseSettings, "seq_len")] = None,
    groups: Annotated[Optional[str], typer.Option("--groups", help="With --templates and an indexed --corpus: the "
                                                                   "groups of seethrough bias model (builtin or a "
                                                                   "JSON file), shares measured before and after.")] = None,
    templates: Annotated[Optional[str], typer.Option("--templates", help="With an indexed --corpus: the contexts of "
                                                                         "seethrough bias model (builtin or JSON "
                                                                         "lines), shares measured before and "
                                                                         "after.")] = None,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated lm-eval tasks scored before and "
                                                                 "after.")] = None,
    include_path: Annotated[Optional[Path], typer.Option("--include-path", help="With --tasks: a folder of extra "
                                                                                "task YAMLs.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="With --tasks: at most this many items per "
                                                                 "task.")] = None,
    batch_size: Annotated[int, config_option(EraseSettings, "batch_size")] = EraseSettings.batch_size,
    checkpoint: CheckpointOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase a concept from the hidden states (LEACE, layer by layer) and measure what it removes and what it costs."""
    from ..audit.control import erase_model, write_eraser
    from ..audit.probe import read_probe_data

    if corpus is None:
        refuse_together("no --corpus (the cost and the bias shares are measured on the corpus)",
                        {"--heldout-tokens": heldout_tokens, "--seq-len": seq_len, "--groups": groups,
                         "--templates": templates})
    if templates is None:
        refuse_together("no --templates (the bias shares need contexts)", {"--groups": groups})
    if tasks is None:
        refuse_together("no --tasks", {"--include-path": include_path, "--limit": limit})
    settings = _settings(EraseSettings, layers=layers, method=method, test_share=test_share, seed=seed,
                         heldout_tokens=heldout_tokens, seq_len=seq_len, batch_size=batch_size)
    if out is not None:
        check_out_folder(out, ERASER)  # before the fit, not after it
    items = read_probe_data(data)
    opened = _corpus(corpus, indexed=templates is not None)
    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks is not None else None
    if names == []:
        raise QueryError(f"--tasks {tasks!r} names no task; give names like world_birth_city, or leave it out")
    with err.status("[bold]erase[/] fitting the eraser and measuring it..."):
        report = erase_model(target, items, settings, checkpoint=checkpoint, corpus=opened,
                             index=opened if templates is not None else None,
                             groups=(groups or "builtin") if templates is not None else None, templates=templates,
                             tasks=names, include_path=include_path, limit=limit, threads=threads,
                             device=device or "cpu")
    summary = write_eraser(report, out) if out is not None else report.to_dict()
    if as_json:
        emit(summary)
        return
    console.print(f"[bold]{settings.method}[/] eraser of {summary['data']['items']} statements (fitted on "
                  f"{summary['data']['fit_items']}, probed on {summary['data']['heldout_items']} held out)")
    for probe, edit in zip(summary["probes"], summary["edits"]):
        b, a = probe["before"], probe["after"]
        console.print(f"  layer {probe['layer']}: fresh probe {b['accuracy']:.1%} -> {a['accuracy']:.1%} "
                      f"[{a['accuracy_ci'][0]:.1%}, {a['accuracy_ci'][1]:.1%}], majority rate {a['majority_rate']:.1%}"
                      f"{' (at it)' if a['at_majority_rate'] else ' (NOT at it)'}; edit norm {edit['mean_edit_norm']:.3f} "
                      f"({_percent(edit['relative'])} of the state)")
    ce = summary["cross_entropy"]
    if ce:
        console.print(f"cross-entropy on {ce['tokens']:,} held-out tokens: {ce['before']:.4f} -> {ce['after']:.4f} "
                      f"nats ({ce['change']:+.4f})")
    bias = summary["bias"]
    if bias:
        console.print(f"bias model shares, mean distance from an even split: {_percent(bias['distance_from_even_before'])}"
                      f" -> {_percent(bias['distance_from_even_after'])}")
    for row in (summary["evals"] or {}).get("scores", []):
        after = "n/a" if row["after"] is None else f"{row['after']:.4f}"
        console.print(f"  {escape(row['task'])} {escape(row['metric'])}: {row['before']:.4f} -> {after}")
    if out is not None:
        console.print(f"eraser {summary['sha256'][:12]} in {out} (eraser.json, layer-L.safetensors, summary.json)")


@app.command(rich_help_panel=AUDITS)
def steer(
    target: TargetArg,
    pairs: Annotated[Path, typer.Option("--pairs", help='JSON lines {"prompt", "matching", "not_matching"}: the '
                                                        'answer that shows the behaviour and the one that does not.')],
    layers: Annotated[str, config_option(SteerSettings, "layers")],
    multipliers: Annotated[str, config_option(SteerSettings, "multipliers")],
    out: Annotated[Optional[Path], typer.Option("--out", metavar="VECTOR", help="Folder for the steering vector "
                                                                                "(vector.json, layer-L.safetensors) "
                                                                                "and its report (summary.json).")] = None,
    test_share: Annotated[float, config_option(SteerSettings, "test_share")] = SteerSettings.test_share,
    seed: Annotated[int, config_option(SteerSettings, "seed")] = SteerSettings.seed,
    delimiter: Annotated[str, config_option(SteerSettings, "delimiter")] = SteerSettings.delimiter,
    corpus: CorpusOpt = None,
    heldout_tokens: Annotated[Optional[int], config_option(SteerSettings, "heldout_tokens")] = None,
    seq_len: Annotated[Optional[int], config_option(SteerSettings, "seq_len")] = None,
    directions: Annotated[Optional[Path], typer.Option("--directions", help="A seethrough probe --out folder: the "
                                                                            "cosine of each vector with its "
                                                                            "directions.")] = None,
    batch_size: Annotated[int, config_option(SteerSettings, "batch_size")] = SteerSettings.batch_size,
    checkpoint: CheckpointOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A steering vector (contrastive activation addition) and the behaviour against its multiplier, with its cost."""
    from ..audit.control import read_pairs, steer_model, write_vector

    if corpus is None:
        refuse_together("no --corpus (the perplexity is measured on corpus text)",
                        {"--heldout-tokens": heldout_tokens, "--seq-len": seq_len})
    settings = _settings(SteerSettings, layers=layers, multipliers=multipliers, test_share=test_share, seed=seed,
                         delimiter=delimiter, heldout_tokens=heldout_tokens, seq_len=seq_len, batch_size=batch_size)
    if out is not None:
        check_out_folder(out, STEERING)
    chosen = read_pairs(pairs)
    with err.status("[bold]steer[/] fitting the vector and sweeping the multiplier..."):
        report = steer_model(target, chosen, settings, checkpoint=checkpoint, corpus=_corpus(corpus, False),
                             directions=directions, threads=threads, device=device or "cpu")
    summary = write_vector(report, out) if out is not None else report.to_dict()
    if as_json:
        emit(summary)
        return
    console.print(f"steering vector from {summary['pairs']['fit_pairs']} pairs; P(matching answer) on "
                  f"{summary['pairs']['heldout_pairs']} held-out pairs:")
    for layer in summary["layers"]:
        cells = [f"x{r['multiplier']:g}: {r['p_matching']:.3f} [{r['p_matching_ci'][0]:.3f}, {r['p_matching_ci'][1]:.3f}]"
                 for r in summary["curve"] if r["layer"] == layer]
        console.print(f"  layer {layer} (|v| {summary['vector_norms'][str(layer)]:.3f}): " + ", ".join(cells))
    if summary["perplexity"]:
        ppl = summary["perplexity"]
        worst = max(ppl["steered"], key=lambda r: abs(r["change"]))
        console.print(f"perplexity on {ppl['tokens']:,} corpus tokens: {ppl['before']:.3f}; largest change "
                      f"{worst['change']:+.3f} (layer {worst['layer']}, x{worst['multiplier']:g})")
    for row in summary["probe_cosines"] or []:
        cosine = "n/a" if row["cosine"] is None else f"{row['cosine']:+.3f}"
        console.print(f"  cosine with the probe's {row['method']} direction at layer {row['layer']}: {cosine}")
    for note in summary["notes"]:
        console.print(f"[dim]note: {escape(note)}[/]")
    if out is not None:
        console.print(f"vector {summary['sha256'][:12]} in {out} (vector.json, layer-L.safetensors, summary.json)")


@app.command(rich_help_panel=AUDITS)
def generate(
    target: TargetArg,
    prompt: Annotated[str, typer.Option("--prompt", help="The text to continue.")],
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens to generate at most (greedy; it "
                                                                         "stops early at the end-of-text token).")] = 32,
    erase: EraseOpt = None,
    steer: Annotated[Optional[str], typer.Option("--steer", metavar="V:M", help="A steering vector folder (seethrough "
                                                                                "steer --out) and its multiplier, "
                                                                                "added from the prompt's last token "
                                                                                "on.")] = None,
    checkpoint: CheckpointOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Greedy continuation of a prompt, with an eraser and/or a steering vector on."""
    from ..audit.control import generate_text
    from ..model.interventions import parse_steer

    steering = parse_steer(steer) if steer is not None else None
    result = generate_text(target, prompt, max_new_tokens, erase=erase, steer=steering, checkpoint=checkpoint,
                           threads=threads, device=device or "cpu")
    if as_json:
        emit(result.to_dict())
        return
    console.print(f"{escape(prompt)}[bold]{escape(result.text if result.text.startswith(' ') else ' ' + result.text)}[/]")
    for x in result.interventions:
        what = f"eraser {x['path']}" if x["kind"] == "eraser" else f"steering {x['path']} x{x['multiplier']:g}"
        err.print(f"[dim]{escape(what)} ({x['sha256'][:12]}), layers {x['layers']}[/]")
