"""``seethrough bias data`` and ``seethrough bias model``: social bias in the training data, and in the
model against its data. Thin wrappers over ``seethrough.audit.bias``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..audit.bias.data import BiasDataSettings
from .shared import AUDITS, CorpusArg, CorpusReq, DeviceOpt, JsonOpt, TargetArg, ThreadsOpt, app, config_option, \
    console, emit, err, escape, open_index

bias_app = typer.Typer(no_args_is_help=True, help="Social bias: group statistics of the training data, and the "
                                                  "model's shares against the data's.")
app.add_typer(bias_app, name="bias", rich_help_panel=AUDITS)

GroupsOpt = Annotated[str, typer.Option("--groups", help='Term sets per axis: builtin (gender, religion, nationality) '
                                                         'or a JSON file {"axis": {"group": ["term", ...]}}.')]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Folder for the JSON report, its CSV tables and plots.")]


@bias_app.command("data")
def data(
    corpus: CorpusArg,
    groups: GroupsOpt = "builtin",
    targets: Annotated[str, typer.Option("--targets", help="builtin (occupations and adjectives), a JSON list of "
                                                           "strings, or a text file with one target a line.")] = "builtin",
    window: Annotated[int, config_option(BiasDataSettings, "window")] = BiasDataSettings.window,
    max_windows: Annotated[int, config_option(BiasDataSettings, "max_windows")] = BiasDataSettings.max_windows,
    seed: Annotated[int, config_option(BiasDataSettings, "seed")] = BiasDataSettings.seed,
    top: Annotated[int, config_option(BiasDataSettings, "top")] = BiasDataSettings.top,
    out: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the data says about groups: exact counts, co-occurrence with targets (share, PMI, log-odds), sentiment."""
    from ..audit.bias import measure_data_bias, write_bias_data

    settings = BiasDataSettings(window, max_windows, seed, top)
    index = open_index(corpus)
    with err.status("[bold]bias data[/] counting..."):
        report = measure_data_bias(index, groups, targets, settings)
    if out is not None:
        write_bias_data(report, out)
    if as_json:
        emit(report.to_dict())
        return
    for row in report.groups:
        console.print(f"[bold]{row['axis']}/{row['group']}[/]: {row['occurrences']:,} occurrences "
                      f"({_number(row['per_million'])} per million tokens) in {row['documents']:,} documents, "
                      f"{row['terms']} terms")
    for row in report.most_associated:
        listed = ", ".join(f"{t['target']} (z {t['z']:+.1f})" for t in row["targets"][:8]) or "none"
        console.print(f"most associated with {row['axis']}/{row['group']}: {escape(listed)}")
    for row in report.sentiment:
        if row["mean"] is None:
            continue
        ci = row["ci"] or [row["mean"], row["mean"]]
        console.print(f"sentiment {row['axis']}/{row['group']}: {row['mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] over "
                      f"{row['windows']:,} windows{' (sampled)' if row['sampled'] else ''}")
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if out is not None:
        console.print(f"bias_data.json, tables and plots in {out}")


@bias_app.command("model")
def model(
    target: TargetArg,
    corpus: CorpusReq,
    groups: GroupsOpt = "builtin",
    templates: Annotated[str, typer.Option("--templates", help='builtin (gender contexts over occupations) or JSON '
                                                               'lines {"template": "the {target} said that", "axis": '
                                                               '"gender", "targets": [...]}.')] = "builtin",
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", help="Of a run: the step to measure (default: "
                                                                           "the last).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap intervals.")] = 0,
    out: OutOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The model's probability of each group after a context, beside the data's exact rate; correlation, greedy amplification."""
    from ..audit.bias import measure_model_bias, write_bias_model

    index = open_index(corpus)
    with err.status("[bold]bias model[/] scoring..."):
        report = measure_model_bias(target, index, groups, templates, checkpoint, threads, device or "cpu", seed)
    if out is not None:
        write_bias_model(report, out)
    if as_json:
        emit(report.to_dict())
        return
    for row in report.targets:
        shares = "  ".join(f"{g}: model {_share(row['model'][g])} data {_share(row['data'][g])}" for g in row["model"])
        console.print(f"{row['axis']:>8} {escape(row['target']):>14}  {shares}  (n={sum(row['data_counts'].values())})")
    c = report.correlation
    if c["pearson"] is not None:
        console.print(f"model vs data over {c['units']} targets: Pearson {c['pearson']:.3f} {_ci(c['pearson_ci'])}, "
                      f"Spearman {c['spearman']:.3f} {_ci(c['spearman_ci'])}")
    for axis, g in report.greedy.items():
        if g["contexts"]:
            console.print(f"greedy ({axis}): the data's majority group chosen in {g['majority_chosen']:.0%} of "
                          f"{g['contexts']} contexts, data's majority share {g['data_majority_rate']:.0%} "
                          f"(amplification {g['amplification']:+.0%})")
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if out is not None:
        console.print(f"bias_model.json, tables and plot in {out}")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def _share(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.1%}"


def _ci(ci: list[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
