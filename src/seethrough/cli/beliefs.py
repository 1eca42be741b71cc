"""``seethrough probe`` and ``seethrough lens``: what the model believes inside, per layer. Thin wrappers
over ``seethrough.audit.probe``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..audit.probe.lens_report import LensSettings
from ..audit.probe.report import ProbeSettings
from ..errors import QueryError
from .shared import (AUDITS, DeviceOpt, JsonOpt, TargetArg, ThreadsOpt, app, config_option, console, emit, err, escape,
                     read_text_file, refuse_together)

CheckpointOpt = Annotated[Optional[str], typer.Option("--checkpoint", help="Of a run: the step to read (default: the "
                                                                           "last).")]


@app.command(rich_help_panel=AUDITS)
def probe(
    target: TargetArg,
    data: Annotated[Path, typer.Option("--data", help='JSON lines: statements {"text", "label": 0|1, "group"?} or '
                                                      'contrast pairs {"question", "choices": [A, B], "label": 0|1, '
                                                      '"group"?} (label: the index of the right choice).')],
    layers: Annotated[str, config_option(ProbeSettings, "layers")] = ProbeSettings.layers,
    methods: Annotated[str, config_option(ProbeSettings, "methods")] = ProbeSettings.methods,
    train_group: Annotated[Optional[str], config_option(ProbeSettings, "train_group")] = None,
    test_group: Annotated[Optional[str], config_option(ProbeSettings, "test_group")] = None,
    test_share: Annotated[Optional[float], config_option(ProbeSettings, "test_share")] = None,
    seed: Annotated[int, config_option(ProbeSettings, "seed")] = ProbeSettings.seed,
    delimiter: Annotated[Optional[str], config_option(ProbeSettings, "delimiter")] = None,
    ccs_restarts: Annotated[Optional[int], config_option(ProbeSettings, "ccs_restarts")] = None,
    logreg_c: Annotated[Optional[float], config_option(ProbeSettings, "logreg_c")] = None,
    batch_size: Annotated[int, config_option(ProbeSettings, "batch_size")] = ProbeSettings.batch_size,
    checkpoint: CheckpointOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for probe.json, probe.png and the fitted "
                                                              "directions (directions.safetensors + .json).")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Probes of the hidden states per layer (logistic regression, difference of means, LDA, CCS, VINC, random) beside the model's own answers."""
    from ..audit.probe import parse_methods, probe_model, read_probe_data, write_probe

    if train_group is not None and test_group is not None and train_group != test_group:
        refuse_together("--train-group and --test-group (all of one group is fitted, all of the other tested)",
                        {"--test-share": test_share})
    elif test_group is not None and train_group is None:
        refuse_together("--test-group alone (every item outside it is fitted)", {"--test-share": test_share})
    items = read_probe_data(data)
    chosen = parse_methods(methods, items.kind)
    if items.kind != "pairs":
        refuse_together("statements (the delimiter joins a pair's question and choices)", {"--delimiter": delimiter})
    if "ccs" not in chosen:
        refuse_together("--methods without ccs", {"--ccs-restarts": ccs_restarts})
    if "logreg" not in chosen:
        refuse_together("--methods without logreg", {"--logreg-c": logreg_c})
    defaults = ProbeSettings()
    settings = ProbeSettings(layers, methods, train_group, test_group,
                             defaults.test_share if test_share is None else test_share, seed,
                             defaults.delimiter if delimiter is None else delimiter,
                             defaults.ccs_restarts if ccs_restarts is None else ccs_restarts,
                             defaults.logreg_c if logreg_c is None else logreg_c, batch_size)
    with err.status("[bold]probe[/] reading hidden states and fitting..."):
        report = probe_model(target, items, settings, checkpoint, threads, device or "cpu")
    summary = write_probe(report, out) if out is not None else report.to_dict()
    if as_json:
        emit({key: summary[key] for key in ("items", "train", "test", "output_accuracy", "output_accuracy_ci",
                                            "layers", "methods", "layer_meaning", "notes")}
             | {"results": [{k: r[k] for k in ("layer", "method", "accuracy", "accuracy_ci", "auroc", "auroc_ci",
                                               "ece", "auroc_vs_output")} for r in summary["results"]]})
        return
    test, train = summary["test"], summary["train"]
    console.print(f"[bold]{summary['items']} {items.kind}[/]: fitted on {train['items']}"
                  f"{' (group ' + escape(train['group']) + ')' if train['group'] else ''}, tested on {test['items']}"
                  f"{' (group ' + escape(test['group']) + ')' if test['group'] else ''}")
    if summary["output_accuracy"] is not None:
        low, high = summary["output_accuracy_ci"]
        console.print(f"model's own answers on the test items: {summary['output_accuracy']:.1%} right "
                      f"[{low:.1%}, {high:.1%}]")
    for row in summary["results"]:
        ci = row["auroc_ci"]
        band = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        console.print(f"  layer {row['layer']:>3} {row['method']:>9}: AUROC {row['auroc']:.3f} {band}  accuracy "
                      f"{row['accuracy']:.1%}  ECE {row['ece']:.3f}")
    for note in summary["notes"]:
        console.print(f"[dim]note: {escape(note)}[/]")
    if out is not None:
        console.print(f"probe.json, probe.png and the directions in {out}")


@app.command(rich_help_panel=AUDITS)
def lens(
    target: TargetArg,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="A corpus the model was trained on (checked): the "
                                                                    "tuned lens trains on its text, and both lenses "
                                                                    "are measured on other documents of it.")] = None,
    train_tokens: Annotated[Optional[int], config_option(LensSettings, "train_tokens")] = None,
    heldout_tokens: Annotated[Optional[int], config_option(LensSettings, "heldout_tokens")] = None,
    seq_len: Annotated[Optional[int], config_option(LensSettings, "seq_len")] = None,
    epochs: Annotated[Optional[int], config_option(LensSettings, "epochs")] = None,
    batch_rows: Annotated[Optional[int], config_option(LensSettings, "batch_rows")] = None,
    lr: Annotated[Optional[float], config_option(LensSettings, "lr")] = None,
    seed: Annotated[Optional[int], config_option(LensSettings, "seed")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="A text to picture: layers x positions, the top next "
                                                               "token and its probability under each lens.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Picture the content of this file.")] = None,
    tuned: Annotated[Optional[Path], typer.Option("--lens", help="A tuned lens saved before (OUT/tuned_lens of an "
                                                                 "earlier run, for the same weights) instead of "
                                                                 "training one.")] = None,
    checkpoint: CheckpointOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for lens.json, lens.png, the pictures and "
                                                              "tuned_lens/ (when one is trained).")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Logit lens and tuned lens: per layer, KL to the final distribution and cross-entropy on held-out text; pictures of the top token."""
    from ..audit.probe import measure_lenses, write_lens
    from ..corpus import open_token_corpus

    training = {"--train-tokens": train_tokens, "--epochs": epochs, "--lr": lr}
    if corpus is None:
        refuse_together("no --corpus (the lenses are measured and trained on corpus text)",
                        {**training, "--heldout-tokens": heldout_tokens, "--seq-len": seq_len,
                         "--batch-rows": batch_rows, "--seed": seed})
    if tuned is not None:
        refuse_together("--lens (a saved tuned lens is not trained again)", training)
    if train_tokens == 0:
        refuse_together("--train-tokens 0 (no tuned lens is trained)", {"--epochs": epochs, "--lr": lr})
    if text is not None and file is not None:
        raise QueryError("give the text to picture as --text or --file, not both")
    if file is not None:
        text = read_text_file(file)
    given = {"train_tokens": train_tokens, "heldout_tokens": heldout_tokens, "seq_len": seq_len, "epochs": epochs,
             "batch_rows": batch_rows, "lr": lr, "seed": seed}
    settings = LensSettings(**{k: v for k, v in given.items() if v is not None})
    tokens = open_token_corpus(corpus) if corpus is not None else None
    with err.status("[bold]lens[/] decoding layers...") as status:
        report = measure_lenses(target, tokens, [text] if text is not None else [], settings, tuned, checkpoint,
                                threads, device or "cpu",
                                progress=lambda r: status.update(f"[bold]lens[/] training the tuned lens: epoch "
                                                                 f"{r['epoch']}/{settings.epochs}"))
    summary = write_lens(report, out) if out is not None else report.to_dict()
    if as_json:
        emit(summary)
        return
    if summary["layers"]:
        console.print(f"[bold]held-out[/]: {summary['heldout_tokens']:,} tokens, the model's cross-entropy "
                      f"{summary['model_ce']:.3f} nats")
        for row in summary["layers"]:
            tuned_part = f"  tuned lens KL {row['tuned_kl']:.3f} CE {row['tuned_ce']:.3f}" \
                if row["tuned_kl"] is not None else ""
            console.print(f"  layer {row['layer']:>3}: logit lens KL {row['logit_kl']:.3f} CE {row['logit_ce']:.3f}"
                          f"{tuned_part}")
    for picture in summary["pictures"]:
        best = "tuned" if "tuned" in picture else "logit"
        console.print(f"[bold]{best} lens[/], top next token per layer (rows) and position (columns):")
        console.print("  " + " | ".join(escape(t) for t in picture["tokens"]))
        for layer, row in zip(picture["layers"], picture[best]):
            console.print(f"  {layer:>3}: " + " | ".join(f"{escape(c['token'])} {c['p']:.2f}" for c in row))
    if out is not None:
        console.print(f"lens.json and plots in {out}")
