"""``seethrough detect``: test AI-text detectors honestly (TPR at low FPR with intervals, attacks,
decodings), a thin wrapper over ``seethrough.audit.detect``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..audit.detect.run import DetectSettings
from .shared import AUDITS, DeviceOpt, JsonOpt, TargetArg, ThreadsOpt, app, config_option, console, emit, err, escape

_DEFAULTS = DetectSettings()


@app.command(rich_help_panel=AUDITS)
def detect(
    target: TargetArg,
    human: Annotated[Optional[Path], typer.Option("--human", help='Human text: JSON lines {"text", "id"?, "domain"?, ...} (checked against the training data when its index is known).')] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Human text: the documents of this corpus, held out from training (checked against the training data's index; documents that fail are listed and left out).")] = None,
    machine: Annotated[Optional[Path], typer.Option("--machine", help='Machine text given: JSON lines {"text", "id"?, "human_id"?, "domain"?, "decoding"?} (instead of generating it).')] = None,
    generator: Annotated[Optional[Path], typer.Option("--generator", help="The model that writes the machine text (default: the scored model).")] = None,
    reference: Annotated[Optional[Path], typer.Option("--reference", help="A second model on the same tokenizer, for fast_detect_gpt_reference and binoculars.")] = None,
    training_corpus: Annotated[Optional[Path], typer.Option("--training-corpus", help="The model's training corpus, indexed, to check the human text against (default: a run's own corpus).")] = None,
    detectors: Annotated[Optional[str], config_option(DetectSettings, "detectors")] = None,
    decoding: Annotated[Optional[str], config_option(DetectSettings, "decoding")] = None,
    attacks: Annotated[Optional[str], config_option(DetectSettings, "attacks")] = None,
    calibration_share: Annotated[float, config_option(DetectSettings, "calibration_share")] = _DEFAULTS.calibration_share,
    prefix_tokens: Annotated[Optional[int], config_option(DetectSettings, "prefix_tokens")] = None,
    max_copied_span: Annotated[int, config_option(DetectSettings, "max_copied_span")] = _DEFAULTS.max_copied_span,
    min_humans_above: Annotated[int, config_option(DetectSettings, "min_humans_above")] = _DEFAULTS.min_humans_above,
    rounds: Annotated[int, config_option(DetectSettings, "rounds")] = _DEFAULTS.rounds,
    seed: Annotated[int, config_option(DetectSettings, "seed")] = _DEFAULTS.seed,
    domain_field: Annotated[str, config_option(DetectSettings, "domain_field")] = _DEFAULTS.domain_field,
    batch_size: Annotated[int, config_option(DetectSettings, "batch_size")] = _DEFAULTS.batch_size,
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", help="Of a run: the step to score with (default: the last).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for scores.jsonl, detect.json, the tables (CSV), report.txt and the ROC plots.")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Test AI-text detectors: TPR at 1% / 0.1% FPR with intervals, by decoding, attack, length, domain."""
    from ..audit.detect import evaluate_detectors, report_lines, write_detection
    from .shared import refuse_together

    if machine is not None:
        refuse_together("--machine (nothing is generated)", {"--generator": generator, "--decoding": decoding,
                                                            "--prefix-tokens": prefix_tokens})
    settings = DetectSettings(detectors, decoding, attacks, calibration_share,
                              _DEFAULTS.prefix_tokens if prefix_tokens is None else prefix_tokens, max_copied_span,
                              min_humans_above, rounds, seed, domain_field, batch_size)
    with err.status("[bold]detect[/] ...") as status:
        report = evaluate_detectors(target, human=human, corpus=corpus, machine=machine, generator=generator,
                                    reference=reference, settings=settings, checkpoint=checkpoint,
                                    training_corpus=training_corpus, device=device or "cpu", threads=threads,
                                    progress=lambda what: status.update(f"[bold]detect[/] {escape(what)}"))
        files = write_detection(report, out) if out is not None else None
    if as_json:
        emit(report.summary())
        return
    for line in report_lines(report):
        console.print(escape(line))
    if files:
        console.print(f"scores, tables and plots in {out}")
