"""Audit commands: ``memorization``, ``membership``, ``trace``, ``facts``. Each resolves its MODEL through the
model layer (which checks that the corpus is the model's), calls one audit, then prints or writes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..audit.facts import FactsSettings
from ..audit.trace import TraceSettings
from ..errors import QueryError
from .shared import (AUDITS, CorpusReq, DeviceOpt, JsonOpt, TargetArg, ThreadsOpt, app, config_option, console, emit,
                     err, escape, open_index, read_queries, read_text_file, read_texts, refuse_together)

CheckpointsOpt = Annotated[Optional[str], typer.Option(
    "--checkpoints", help="Of a run: all, last (default), or steps like 64,128,last.")]
EraseOpt = Annotated[Optional[Path], typer.Option(
    "--erase", metavar="ERASER", help="An eraser folder (seethrough erase --out), on while the model runs; the output "
                                      "records it (kind, path, sha256).")]
CheckpointsRayOpt = Annotated[Optional[str], typer.Option(
    "--ray", metavar="ADDRESS", help="Measure the checkpoints on the Ray cluster at ADDRESS, one task each "
                                     "(docs/scale.md); every node must see the model and corpus at the same paths. "
                                     "Same results.")]


@app.command(rich_help_panel=AUDITS)
def memorization(
    target: TargetArg,
    corpus: CorpusReq,
    sample: Annotated[Optional[int], typer.Option("--sample", help="Sequences to draw from what the model saw (a run's data order; else the corpus). Default 1000.")] = None,
    sequences: Annotated[Optional[Path], typer.Option("--sequences", help='JSON lines {"text": ...} or {"ids": [...]}; the first --prompt-len tokens are the prompt (instead of --sample).')] = None,
    prompt_len: Annotated[str, typer.Option("--prompt-len", help="Prompt tokens (Pythia: 32); several, like 8,16,32, compare prompt lengths on the same continuations.")] = "32",
    cont_len: Annotated[int, typer.Option("--cont-len", help="Continuation tokens to reproduce (Pythia: 32).")] = 32,
    checkpoints: CheckpointsOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for memorization.parquet/.csv, summary.json and the plot.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts decoded together.")] = 128,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the --sample draw (default 0).")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    ray: CheckpointsRayOpt = None,
    erase: EraseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Extractable memorization (greedy), per sequence, with duplication, step and position."""
    from ..audit.memorization import Sequence, evaluate_memorization, write_report

    parts = [x.strip() for x in prompt_len.split(",") if x.strip()]
    if not parts or not all(p.isascii() and p.isdigit() for p in parts):
        raise QueryError(f"--prompt-len {prompt_len!r}: give a number of tokens, or several like 8,16,32")
    if sequences is not None:
        refuse_together("--sequences", {"--sample": sample, "--seed": seed})
    index = open_index(corpus)
    given = None
    if sequences is not None:
        given = [Sequence(index.encode(q).tolist(), {"line": i}) for i, q in enumerate(read_queries(sequences, "--sequences"))]
    with err.status("[bold]memorization[/] decoding..."):
        report = evaluate_memorization(_with_eraser(target, checkpoints, erase), index, given,
                                       1000 if sample is None else sample,
                                       [int(p) for p in parts], cont_len, checkpoints, batch_size,
                                       0 if seed is None else seed, threads, device or "cpu", ray=ray)
    summary = write_report(report, out) if out is not None else report.summary()
    if as_json:
        for label, items in report.results.items():
            intervention = summary[label].get("intervention")
            for r in items:
                emit({"model": label, **r.to_dict(), **({"intervention": intervention} if intervention else {})})
        return
    for label, row in summary.items():
        console.print(f"[bold]{label}[/]: {row['sequences']} sequences, extracted {row['extracted']:.1%}, "
                      f"mean score {row['score']:.3f}")
        for bucket in row["by_duplicates"]:
            lo, hi = bucket["extracted_ci"]
            console.print(f"  copies ~{bucket['duplicates']:>6}: {bucket['extracted']:6.1%} [{lo:.1%}, {hi:.1%}]  "
                          f"score {bucket['score']:.3f}  n={bucket['n']}")
    if out is not None:
        console.print(f"table, summary and plot in {out}")


@app.command(rich_help_panel=AUDITS)
def membership(
    target: TargetArg,
    corpus: CorpusReq,
    text: Annotated[Optional[str], typer.Argument(help="The text to test.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="A text file to test (its whole content).")] = None,
    evaluate: Annotated[Optional[tuple[Path, Path]], typer.Option("--evaluate", help="MEMBERS NONMEMBERS: two JSON-lines files; ROC AUC (bootstrap CI) and TPR at 1% / 0.1% FPR per signal.")] = None,
    reference: Annotated[Optional[Path], typer.Option("--reference", help="A reference model folder (same tokenizer) for the reference-ratio signal.")] = None,
    reference_set: Annotated[Optional[Path], typer.Option("--reference-set", help="JSON lines of known non-members: each score of TEXT/--file is also given as a percentile among theirs.")] = None,
    k: Annotated[float, typer.Option("--k", help="Share of lowest-scoring tokens for Min-K% and Min-K%++.")] = 0.2,
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", help="Of a run: the step to test (default: the last).")] = None,
    checkpoints: Annotated[Optional[str], typer.Option("--checkpoints", help="With --evaluate, of a run: all, last, or steps like 64,128,last; one evaluation each (in --out/step-N when several).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for scores.jsonl, evaluation.json and roc.png (with --evaluate).")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="With --evaluate: the checkpoints on the Ray cluster at ADDRESS, one task each (docs/scale.md). Same results.")] = None,
    erase: EraseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Was this text in the training data? The exact answer from the index, and model-only signals."""
    from ..audit.membership import MembershipAuditor, check_one_checkpoint, evaluate_checkpoints, write_evaluation

    if evaluate is not None:
        refuse_together("--evaluate", {"TEXT": text, "--file": file, "--reference-set": reference_set})
        if checkpoint is not None and checkpoints is not None:
            raise QueryError("give --checkpoint STEP or --checkpoints LIST, not both")
        check_one_checkpoint(checkpoint)
    else:
        refuse_together("TEXT or --file (they are --evaluate's)", {"--out": out, "--checkpoints": checkpoints,
                                                                   "--ray": ray})
        if (text is None) == (file is None):
            raise QueryError("give the text to test, as TEXT or --file (or --evaluate MEMBERS NONMEMBERS)")
    index = open_index(corpus)
    if evaluate is not None:
        tok = index.tokenizer
        members, nonmembers = read_texts(evaluate[0], tok, "--evaluate"), read_texts(evaluate[1], tok, "--evaluate")
        chosen = checkpoint if checkpoints is None else checkpoints
        found = evaluate_checkpoints(_with_eraser(target, chosen, erase), index, members, nonmembers, reference, k,
                                     chosen, threads, device or "cpu", ray=ray)
        several = len(found) > 1
        for label, result in found.items():
            if out is not None:
                write_evaluation(result, out / label if several else out)
            if as_json:
                emit({"checkpoint": label, **result.to_dict()} if several else result.to_dict())
                continue
            if several:
                console.print(f"[bold]{label}[/]")
            for name, row in result.signals.items():
                lo, hi = row["auc_ci"]
                console.print(f"{name:>16}: AUC {row['auc']:.3f} [{lo:.3f}, {hi:.3f}]  TPR@1%FPR "
                              f"{row['tpr_at_1pct_fpr']:.3f}  TPR@0.1%FPR {row['tpr_at_0.1pct_fpr']:.3f}")
        return
    auditor = MembershipAuditor(_with_eraser(target, checkpoint, erase), index, reference, k, checkpoint, threads,
                                device or "cpu")
    names = auditor.signal_names
    if file is not None:
        text = read_text_file(file)
    pool = read_texts(reference_set, index.tokenizer, "--reference-set") if reference_set is not None else None
    record = auditor.score([text], pool)[0]  # type: ignore[list-item]
    if as_json:
        intervention = auditor.checkpoint.intervention
        emit({**record.to_dict(), **({"intervention": intervention.to_dict()} if intervention is not None else {})})
        return
    evidence = record.evidence or {}
    verdict = "the whole text is in the corpus" if evidence["whole_text_count"] else \
        f"not verbatim in the corpus; longest span {evidence['longest_span']} of {record.tokens} tokens"
    console.print(f"[bold]index[/]: {verdict} ({evidence['covered']:.0%} of tokens covered by found spans)")
    for name in names[:-1]:
        extra = f" (percentile {record.percentile[name]:.0%})" if record.percentile else ""
        console.print(f"{name:>16}: {record.signals[name]:.4f}{extra}")


@app.command(rich_help_panel=AUDITS)
def trace(
    target: Annotated[Path, typer.Argument(help="The model (run or model folder) whose training data is searched: "
                                                "it writes the text with --prompt, and --corpus is checked against it.")],
    corpus: CorpusReq,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="Generate a continuation of this prompt with the model (greedy), and trace it.")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Trace this text instead of generating one.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Trace the content of this file.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", help="Tokens to generate with --prompt (default 64).")] = None,
    min_length: Annotated[int, config_option(TraceSettings, "min_length")] = TraceSettings.min_length,
    span_density: Annotated[float, config_option(TraceSettings, "span_density")] = TraceSettings.span_density,
    docs_per_span: Annotated[int, config_option(TraceSettings, "docs_per_span")] = TraceSettings.docs_per_span,
    context: Annotated[int, config_option(TraceSettings, "context")] = TraceSettings.context,
    novelty_max_n: Annotated[int, config_option(TraceSettings, "novelty_max_n")] = TraceSettings.novelty_max_n,
    max_count: Annotated[Optional[int], config_option(TraceSettings, "max_count")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    erase: EraseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find which spans of a (generated) text occur in the training data, and where; its novelty."""
    from ..audit.trace import trace as trace_text, trace_generation
    from ..model import resolve_target

    if sum(x is not None for x in (prompt, text, file)) != 1:
        raise QueryError("give exactly one of --prompt, --text or --file")
    if prompt is None:
        refuse_together("--text or --file (nothing is generated)", {"--max-new-tokens": max_new_tokens,
                                                                    "--threads": threads, "--device": device,
                                                                    "--erase": erase})
    index = open_index(corpus)
    tok = index.tokenizer
    if tok is None:
        raise QueryError(f"{corpus} has no tokenizer; tracing needs text")
    settings = TraceSettings(min_length, span_density, docs_per_span, context, novelty_max_n, max_count)
    resolved = resolve_target(target) if erase is None else _with_eraser(target, None, erase)
    if prompt is not None:
        result = trace_generation(resolved, index, prompt, 64 if max_new_tokens is None else max_new_tokens, settings,
                                  threads, device or "cpu")
    else:
        resolved.check_corpus(index)
        result = trace_text(index, index.encode(read_text_file(file) if file is not None else text).tolist(),
                            settings)
    if as_json:
        emit(result.to_dict())
        return
    record = result.to_dict()
    console.print(_highlighted(tok, result.ids, result.merged))
    found = result.novelty["found_share_by_n"]
    console.print(f"longest copied span: {result.novelty['longest_copied_span']} tokens; n-grams found in the data: "
                  + ", ".join(f"n={n}: {v:.0%}" for n, v in found.items() if int(n) in (1, 2, 4, 8, 16)))
    for span in record["spans"]:
        console.print(f"[bold]{span['start']}:{span['end']}[/] x{span['count']} {escape(repr(span['text']))}")
        for d in span["documents"][:3]:
            console.print(f"    doc {d['doc']} @{d['position']} (bm25 {d['bm25']:.2f}): {escape(repr(d['snippet']))}")


def _with_eraser(target: Path, checkpoints: str | None, erase: Path | None) -> Any:
    """MODEL as given, or, with ``--erase``, resolved with the eraser on every checkpoint (installed by
    ``load_model``)."""
    if erase is None:
        return target
    from ..model import resolve_target
    from ..model.interventions import load_eraser

    return resolve_target(target, checkpoints, intervention=load_eraser(erase))


def _highlighted(tok: Any, ids: list[int], merged: list[dict[str, Any]]) -> str:
    """The text with copied pieces in reverse video (rich markup)."""
    from rich.markup import escape as markup_escape

    cuts, pieces, at = [(m["start"], m["end"]) for m in merged], [], 0
    for start, end in cuts:
        pieces += [(ids[at:start], False), (ids[start:end], True)]
        at = end
    pieces.append((ids[at:], False))
    pieces = [(p, copied) for p, copied in pieces if p]
    # word-level decoders drop the space between separately decoded pieces; byte-level ones keep it
    glue = "" if len(pieces) < 2 or tok.decode(pieces[0][0] + pieces[1][0]) == \
        tok.decode(pieces[0][0]) + tok.decode(pieces[1][0]) else " "
    return glue.join(f"[reverse]{markup_escape(tok.decode(p))}[/]" if copied else markup_escape(tok.decode(p))
                     for p, copied in pieces)


@app.command(rich_help_panel=AUDITS)
def facts(
    target: TargetArg,
    corpus: CorpusReq,
    questions: Annotated[Path, typer.Option("--questions", help='JSON lines {"id", "subject", "prompt", "answer", "candidates": [...], "relation"?, "format"?: "direct"|"chain", "hops"?: [{"subject", "answer"}, ...], "group"?}.')],
    checkpoints: CheckpointsOpt = None,
    window: Annotated[Optional[int], config_option(FactsSettings, "window")] = None,
    control: Annotated[Optional[str], config_option(FactsSettings, "control")] = None,
    max_documents: Annotated[Optional[int], config_option(FactsSettings, "max_documents")] = None,
    delimiter: Annotated[Optional[str], config_option(FactsSettings, "delimiter")] = None,
    max_new_tokens: Annotated[Optional[int], config_option(FactsSettings, "max_new_tokens")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for facts.parquet/.csv (per item and checkpoint), summary.json and the plots.")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stated, derived or guessed: each answer beside the documents (and training steps) that state it."""
    from ..audit.facts import audit_facts, read_questions, write_facts

    defaults = FactsSettings()
    settings = FactsSettings(window, defaults.max_documents if max_documents is None else max_documents,
                             defaults.delimiter if delimiter is None else delimiter, control,
                             defaults.max_new_tokens if max_new_tokens is None else max_new_tokens)
    items = read_questions(questions)
    if not as_json and out is None:
        refuse_together("the terminal summary (documents are listed with --json or --out)",
                        {"--max-documents": max_documents})
    if all(q.format == "direct" for q in items):
        refuse_together("questions all of format direct (nothing is generated)", {"--max-new-tokens": max_new_tokens})
    if all(q.format == "chain" for q in items):
        refuse_together("questions all of format chain (nothing is ranked)", {"--delimiter": delimiter})
    index = open_index(corpus)
    with err.status("[bold]facts[/] searching the corpus and scoring..."):
        report = audit_facts(target, index, items, settings, checkpoints, threads, device or "cpu")
    summary = write_facts(report, out) if out is not None else report.summary()
    if as_json:
        for results in report.results.values():
            for r in results:
                emit(r.to_dict(settings.max_documents))
        return
    console.print("categories: " + ", ".join(f"{k} {v}" for k, v in summary["categories"].items()))
    for checkpoint in summary["checkpoints"]:
        console.print(f"[bold]{checkpoint['checkpoint']}[/]")
        for row in checkpoint["aggregates"]:
            console.print("  " + _aggregate_line(row))
    learned = summary["first_learned"]["by_group"]
    if learned and len(summary["checkpoints"]) > 1:
        console.print("[bold]first learned[/] (first checkpoint answered correctly)")
        for row in learned:
            name = " · ".join(str(v) for v in (row["category"], row["format"], row["group"], row["relation"])
                              if v is not None)
            console.print(f"  {escape(name)}: {row['learned']}/{row['n']} learned, median step "
                          f"{row['median_first_correct_step']}, median exposures before "
                          f"{row['median_exposures_before']}, {row['stays_correct']} stay correct")
    if out is not None:
        console.print(f"table, summary and plots in {out}")


def _aggregate_line(row: dict[str, Any]) -> str:
    """One aggregate row: accuracy with its interval, chance, the control and the difference, the verdict."""
    name = " · ".join(str(v) for v in (row["category"], row["format"], row["group"], row["relation"]) if v is not None)
    lo, hi = row["accuracy_ci"]
    line = (f"{escape(name)}: {row['correct']}/{row['n']} = {row['accuracy']:.1%} [{lo:.1%}, {hi:.1%}], chance "
            f"{row['chance']:.1%} (p {row['p_vs_chance']:.3g})")
    if row["control"] is not None:
        c = row["control"]
        d_lo, d_hi = row["difference_ci"]
        line += (f"; control {c['accuracy']:.1%} [{c['accuracy_ci'][0]:.1%}, {c['accuracy_ci'][1]:.1%}], "
                 f"difference {row['difference']:+.1%} [{d_lo:+.1%}, {d_hi:+.1%}]")
    return line + f" -> [bold]{row['verdict']}[/]"
