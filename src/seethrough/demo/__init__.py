"""``seethrough demo``: the whole pipeline on the built-in synthetic world, scored against its truth.

Steps: generate the world (``world.py``) and its word-level tokenizer, build the corpus and its
index, check the index against the planted truth and brute force, train a small GPT-NeoX on the
CPU with a replayable data order, replay a batch, then audit the model: greedy extraction of
canaries by duplication count, membership signals, a traced generation, facts (stated, derived or
guessed, against a control group), the planted bias in the data and the model, probes of hidden
states in ordinary and quirky contexts, AI-text detectors on the model's own text, the planted gender
concept erased and steered (and what that costs), and the world's lm-eval tasks. Everything lands in ``OUT/``: ``world/``, ``corpus/``, ``run/``, one folder per audit,
``summary.json`` and ``summary.txt``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write_bytes, atomic_write_json
from ..errors import SeethroughError
from .bias_world import bias_lines, demo_bias
from .control_step import control_lines, demo_control
from .detect_step import demo_detect, detect_lines
from .quirk_world import demo_probes, probe_lines
from .world import generate_world, write_world

PRESETS: dict[str, dict[str, Any]] = {
    # default: the 1M-parameter model, ~0.6M tokens x 2 epochs (the world holds each fact's documents twice
    # over, so two passes read each fact as often as four would, and each canary copy twice). Batches of 24
    # rows, not 32: the same tokens in a third more steps, and facts are learned late (measured at 32 rows:
    # birth city 94% for the best-informed group, still rising; at 24: 100%)
    "default": {"world": "default", "model_size": "small", "epochs": 2, "seq_len": 64, "batch_size": 24, "lr": 3e-3},
    # ci: a small world, 4 epochs, same model (well under 2 minutes)
    "ci": {"world": "ci", "model_size": "small", "epochs": 4, "seq_len": 64, "batch_size": 32, "lr": 2e-3},
}


def _brute_count(stream: np.ndarray, query: np.ndarray) -> int:
    if len(query) > len(stream):
        return 0
    windows = np.lib.stride_tricks.sliding_window_view(stream, len(query))
    return int(np.all(windows == query, axis=1).sum())


def run_demo(out: str | Path, preset: str = "default", seed: int = 0, threads: int | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the demo into ``out`` (replaced if it holds an earlier demo); returns the summary."""
    import shutil

    from ..corpus import CorpusBuildConfig, build_corpus
    from ..index import build_index, open_corpus

    if preset not in PRESETS:
        raise SeethroughError(f"unknown --preset {preset!r}; use one of {', '.join(PRESETS)}")
    settings = PRESETS[preset]
    say = progress or (lambda step: None)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "summary.json").exists() and not (out / "world").exists():
        raise SeethroughError(f"{out} exists and does not hold a demo; choose another --out")
    for part in ("world", "corpus", "run", "eval", "memorization", "membership", "facts", "bias", "probe", "detect",
                 "control", "report"):
        shutil.rmtree(out / part, ignore_errors=True)
    seconds: dict[str, float] = {}

    def timed(name: str, what: str, fn: Callable[[], Any]) -> Any:
        say(what)
        began = time.perf_counter()
        value = fn()
        seconds[name] = round(time.perf_counter() - began, 2)
        return value

    world = timed("generate", "generating the world", lambda: generate_world(seed, settings["world"]))
    hashes = write_world(world, out / "world")
    truth = world.truth
    manifest = timed("corpus_build", "building the corpus", lambda: build_corpus(
        [out / "world" / "docs.jsonl"], out / "world" / "tokenizer.json", out / "corpus",
        CorpusBuildConfig(shard_tokens=200_000, overwrite=True)))
    timed("index_build", "building the index", lambda: build_index(out / "corpus"))
    corpus = open_corpus(out / "corpus")
    index_checks = timed("index_checks", "checking the index", lambda: _index_checks(corpus, truth, seed))

    from ..train import open_run, train

    stream = manifest["counts"]["tokens"] + manifest["counts"]["documents"]  # one end-of-document token each
    steps = math.ceil(settings["epochs"] * (stream // (settings["seq_len"] + 1)) / settings["batch_size"])
    config = {"model_size": settings["model_size"], "seq_len": settings["seq_len"],
              "batch_size": settings["batch_size"], "lr": settings["lr"], "steps": steps, "seed": seed,
              "threads": threads, "save_every": _quarter(steps)}
    losses: list[float] = []
    run_manifest = timed("train", "training", lambda: train(
        out / "corpus", out / "run", {k: v for k, v in config.items() if v is not None},
        progress=lambda r: (losses.append(r["loss"]), say(f"training: step {r['step'] + 1}/{steps}, loss {r['loss']:.3f}"))))
    run = open_run(out / "run")
    replay = _replay_check(run)

    from ..model import load_model, resolve_target

    model = load_model(resolve_target(run.path).last, threads=threads)
    eod = run.order.spec.eod_id  # the token before every document in training
    extraction = timed("memorization", "extracting canaries",
                       lambda: _extraction(model, corpus, truth, eod, out / "memorization"))
    membership = timed("membership", "membership signals",
                       lambda: _membership(model, corpus, truth, eod, out / "membership"))
    traced = timed("trace", "tracing a generated canary", lambda: _trace_example(model, corpus, truth, eod))
    facts = timed("facts", "asking facts: stated, derived or guessed",
                  lambda: _facts(run, corpus, world, out / "facts", threads))
    final = resolve_target(run.path).last
    bias = timed("bias", "measuring planted bias: data and model",
                 lambda: demo_bias(corpus, final, world.bias, out / "bias", threads))
    probes = timed("probe", "probing hidden states: ordinary vs quirky contexts",
                   lambda: demo_probes(corpus, final, truth["people"], truth["cities"], world.quirk, out / "probe",
                                       threads))
    detection = timed("detect", "testing AI-text detectors on the model's own text",
                      lambda: demo_detect(truth, corpus, final, out / "detect", threads))
    control = timed("control", "erasing and steering the planted gender concept",
                    lambda: demo_control(corpus, final, world.bias, out / "control", threads))
    evaluation = timed("eval", "evaluating (lm-eval tasks)", lambda: _evaluation(world, run, corpus, out, threads))
    seen = _seen_example(run, truth)
    from ..show import demo_report

    report = timed("report", "writing the transparency report", lambda: demo_report(out, threads))

    summary = {
        "preset": preset, "seed": seed, "code_version": manifest["code_version"],
        "world": {"documents": truth["documents"], "files_sha256": hashes,
                  "canaries": len(truth["canaries"]), "heldout_canaries": len(truth["heldout_canaries"]),
                  "people": len(truth["people"]),
                  "groups": {g: sum(p["group"] == g for p in truth["people"]) for g in truth["groups"]}},
        "corpus": {"documents": manifest["counts"]["documents"], "tokens": manifest["counts"]["tokens"],
                   "corpus_hash": manifest["corpus_hash"]},
        "index": index_checks,
        "training": {"model_size": settings["model_size"], "parameters": run_manifest["model"]["parameters"],
                     "steps": steps, "epochs": settings["epochs"],
                     "tokens_seen": steps * settings["batch_size"] * settings["seq_len"],
                     "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                     "checkpoints": run.checkpoints, "replay": replay},
        "memorization": extraction,
        "membership": membership,
        "trace": traced,
        "facts": facts,
        "bias": bias,
        "probe": probes,
        "detect": detection,
        "control": control,
        "eval": evaluation,
        "seen": seen,
        "report": report,
        "seconds": seconds,
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_bytes(out / "summary.txt", _readable(summary).encode("utf-8"))
    return summary


def _index_checks(corpus: Any, truth: dict[str, Any], seed: int) -> dict[str, Any]:
    """Every planted canary counted exactly; held-out ones absent; a sample of n-grams vs brute force."""
    members, heldout = truth["canaries"], truth["heldout_canaries"]
    counts = corpus.count_many([c["text"] for c in members])
    doc_freqs = corpus.doc_freq_many([c["text"] for c in members])
    exact = sum(int(n == c["copies"] == d) for n, d, c in zip(counts, doc_freqs, members))
    heldout_found = sum(corpus.count_many([c["text"] for c in heldout]))
    probe = max(members, key=lambda c: c["copies"])
    found = corpus.find(probe["text"], limit=probe["copies"])
    rng = random.Random(seed)
    stream = np.concatenate([s.tokens for s in corpus.corpus.shards]).astype(np.int64)
    stream[stream == corpus.corpus.separator] = -1
    sample = []
    while len(sample) < 50:
        n = rng.choice([1, 2, 3, 5, 8])
        start = rng.randrange(0, len(stream) - n)
        if (stream[start:start + n] >= 0).all():
            sample.append(stream[start:start + n])
    agree = sum(int(a == _brute_count(stream, q)) for a, q in zip(corpus.count_many(sample), sample))
    return {"canaries_counted_exactly": exact, "canaries": len(members), "heldout_occurrences": heldout_found,
            "find_matches_truth": sorted({m.doc for m in found.matches}) == probe["documents"],
            "brute_force_agree": agree, "brute_force_queries": len(sample)}


def _replay_check(run: Any) -> dict[str, Any]:
    """Recompute the batches of a few steps from the data order and compare with the training log."""
    logged = run.logged_batch_sha256()
    steps = sorted(logged)
    chosen = [steps[0], steps[len(steps) // 2], steps[-1]] if steps else []
    return {"steps": chosen, "match": all(run.batch(s).sha256 == logged[s] for s in chosen)}


def _extraction(model: Any, corpus: Any, truth: dict[str, Any], eod: int, out: Path) -> dict[str, Any]:
    """Greedy continuation of each canary's prompt (after the end-of-document token that precedes
    every document in training): Pythia's score and exact extraction, by copies in the corpus."""
    from ..audit.memorization import MemorizationReport, Sequence, add_duplicates, measure, summarize, write_report

    canaries = truth["canaries"] + truth["heldout_canaries"]
    tok = corpus.tokenizer
    texts = tok.encode_batch([c["text"] for c in canaries])
    prompt_len = truth["prompt_words"] + 1
    sequences = [Sequence([eod, *ids], {"canary": c["id"], "copies": c["copies"]}) for c, ids in zip(canaries, texts)]
    results = measure(model, sequences, prompt_len, truth["continuation_words"])
    add_duplicates(results, corpus, eod)
    write_report(MemorizationReport({"final": results}), out)
    curve = summarize(results, "duplicates")
    return {"prompt_tokens": prompt_len, "continuation_tokens": truth["continuation_words"],
            "duplicates_match_truth": all(r.duplicates == r.source["copies"] for r in results),
            "by_copies": {str(row["duplicates"]): {"n": row["n"], "extracted": round(row["extracted"], 4),
                                                   "extracted_ci": [round(x, 4) for x in row["extracted_ci"]],
                                                   "score": round(row["score"], 4)} for row in curve},
            "files": str(out)}


def _membership(model: Any, corpus: Any, truth: dict[str, Any], eod: int, out: Path) -> dict[str, Any]:
    """Model-only signals and the index's exact answer, member canaries (by copies) vs held-out ones."""
    import numpy as np

    from ..audit.membership import MODEL_SIGNALS, MembershipEvaluation, evaluate_signal, score_texts, write_evaluation

    tok = corpus.tokenizer
    members = score_texts([c["text"] for c in truth["canaries"]], tok, model, eod, corpus)
    heldout = score_texts([c["text"] for c in truth["heldout_canaries"]], tok, model, eod, corpus)
    names = [*MODEL_SIGNALS, "index"]
    negatives = {n: np.array([r.signals[n] for r in heldout]) for n in names}

    def signals(chosen: list[Any], rounds: int) -> dict[str, dict[str, Any]]:
        return {n: evaluate_signal(np.array([r.signals[n] for r in chosen]), negatives[n], rounds=rounds)
                for n in names}

    def table(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {n: {"auc": round(row["auc"], 4), "auc_ci": [round(x, 4) for x in row["auc_ci"]],
                    "tpr_at_1pct_fpr": round(row["tpr_at_1pct_fpr"], 4)} for n, row in rows.items()}

    by_copies = {}
    for copies in truth["duplication"]:
        chosen = [r for r, c in zip(members, truth["canaries"]) if c["copies"] == copies]
        by_copies[str(copies)] = table(signals(chosen, 300))
    everyone = signals(members, 1000)
    write_evaluation(MembershipEvaluation(everyone, members, heldout), out)  # scores.jsonl, evaluation.json, roc.png
    return {"members": len(members), "nonmembers": len(heldout), "all_members": table(everyone),
            "by_copies": by_copies, "files": str(out)}


def _trace_example(model: Any, corpus: Any, truth: dict[str, Any], eod: int) -> dict[str, Any]:
    """Generate from a 64-copy canary's prompt and trace the output back to the corpus."""
    from ..model import greedy_continuations
    from ..audit.trace import TraceSettings, trace

    tok = corpus.tokenizer
    canary = max(truth["canaries"], key=lambda c: (c["copies"], -c["id"]))
    generated = greedy_continuations(model, [[eod, *tok.encode(canary["prompt"])]], 2 * truth["continuation_words"])[0]
    if eod in generated:
        generated = generated[:generated.index(eod)]
    if not generated:
        return {"canary": canary["id"], "generated": "", "spans": [], "documents_are_the_canary_copies": False}
    result = trace(corpus, generated, TraceSettings(min_length=4, span_density=0.2))
    longest = max(result.to_dict()["spans"], key=lambda s: s["end"] - s["start"], default=None)
    docs = sorted(d["doc"] for d in longest["documents"]) if longest else []
    return {"canary": canary["id"], "copies": canary["copies"], "prompt": canary["prompt"],
            "generated": tok.decode(generated), "reproduced": tok.decode(generated).startswith(canary["continuation"]),
            "longest_span": {k: longest[k] for k in ("start", "end", "count", "text")} if longest else None,
            "documents": docs, "documents_are_the_canary_copies": bool(docs) and set(docs) <= set(canary["documents"]),
            "novelty": result.novelty["found_share_by_n"]}


def _quarter(steps: int) -> int:
    """Checkpoints every quarter of training: the facts audit asks when each fact was learned."""
    return max(1, math.ceil(steps / 4))


def _facts(run: Any, corpus: Any, world: Any, out: Path, threads: int | None) -> dict[str, Any]:
    """``seethrough facts`` on the world's questions at a quarter, half, three quarters and the end of
    training, with group C (known names, facts never stated) as the control; each item's category and
    evidence documents set against the truth, which found them by a plain word scan."""
    from ..audit.facts import FactsSettings, audit_facts, parse_questions, write_facts

    questions = parse_questions(world.questions, "the world's questions")
    last = run.checkpoints[-1]
    quarter = _quarter(last)
    steps = sorted({s for s in run.checkpoints if s > 0 and s % quarter == 0} | {last})
    report = audit_facts(run.path, corpus, questions, FactsSettings(control="C"), checkpoints=",".join(map(str, steps)),
                         threads=threads)
    summary = write_facts(report, out)
    truth = {(f["relation"], f["subject"]): f for f in world.truth["facts"]}
    agree = sum(int(e.category == truth[(q.relation, q.subject)]["category"]
                    and e.pair.documents.tolist() == truth[(q.relation, q.subject)]["documents"])
                for q, e in zip(report.questions, report.evidence))
    keep = ("category", "format", "group", "relation", "n", "correct", "accuracy", "accuracy_ci", "chance",
            "difference", "difference_ci", "verdict")
    by_step = [{"step": c["step"], "rows": [{k: row[k] for k in keep} for row in c["aggregates"]]}
               for c in summary["checkpoints"]]
    return {"questions": len(questions), "categories": summary["categories"], "match_truth": agree,
            "control": "C", "steps": steps, "final": by_step[-1]["rows"], "by_step": by_step,
            "first_learned": summary["first_learned"]["by_group"], "files": str(out)}


def _evaluation(world: Any, run: Any, corpus: Any, out: Path, threads: int | None) -> dict[str, Any]:
    """The world's lm-eval tasks through seethrough's backend, with contamination against the corpus."""
    from ..evaluate.run import evaluate_model, run_provenance, write_results
    from ..model import resolve_target
    from .world import write_tasks

    names = write_tasks(world, out / "world" / "tasks")
    checkpoint = resolve_target(run.path).last
    result = evaluate_model(checkpoint, names, include_path=out / "world" / "tasks", num_fewshot=0, corpus=corpus,
                            threads=threads, extra_provenance=run_provenance(run, checkpoint))
    write_results(result, out / "eval")
    table = {}
    for task in names:
        metrics = {s.label: round(s.value, 4) for s in result.scores(task)}
        report = result.contamination[task]
        table[task] = {**metrics, "items": report["items"], "contaminated": report["flagged"],
                       "clean": {k: round(v, 4) for k, v in report["clean"].items()}}
    return {"tasks": table, "files": str(out / "eval")}


def _seen_example(run: Any, truth: dict[str, Any]) -> dict[str, Any]:
    from ..audit.seen import seen_before

    canary = max(truth["canaries"], key=lambda c: c["copies"])
    final = run.checkpoints[-1]
    result = seen_before(run, canary["text"], final)
    return {"canary": canary["id"], "copies": canary["copies"], "before_step": final, "seen": result.count,
            "first_step": result.first_step, "split_by_rows": result.split_by_rows}


def _readable(s: dict[str, Any]) -> str:
    c, ix, tr, mem = s["corpus"], s["index"], s["training"], s["memorization"]
    lines = [
        f"seethrough demo ({s['preset']} preset, seed {s['seed']})",
        f"world: {s['world']['canaries']} canaries planted 1-64 times, {s['world']['heldout_canaries']} held out; "
        f"{s['world']['people']} people in groups " + ", ".join(f"{g} {n}" for g, n in s['world']['groups'].items()),
        f"corpus: {c['documents']:,} documents, {c['tokens']:,} tokens, hash {c['corpus_hash'][:12]}",
        f"index: {ix['canaries_counted_exactly']}/{ix['canaries']} canaries counted exactly, held-out occurrences "
        f"{ix['heldout_occurrences']}, find = truth: {ix['find_matches_truth']}, brute force "
        f"{ix['brute_force_agree']}/{ix['brute_force_queries']}",
        f"training: {tr['parameters']:,} parameters, {tr['steps']} steps ({tr['epochs']} epochs, "
        f"{tr['tokens_seen']:,} tokens), loss {tr['first_loss']:.3f} -> {tr['last_loss']:.3f}; replayed batches of "
        f"steps {tr['replay']['steps']} match the log: {tr['replay']['match']}",
        f"memorization (greedy, {mem['prompt_tokens']}-token prompt, {mem['continuation_tokens']} tokens):",
    ]
    for copies, row in mem["by_copies"].items():
        label = "held-out" if copies == "0" else f"{copies:>3} copies"
        lo, hi = row["extracted_ci"]
        lines.append(f"  {label:>10}: extracted {row['extracted']:6.1%} [{lo:.0%}, {hi:.0%}]  score {row['score']:.3f}"
                     f"  (n={row['n']})")
    mia = s["membership"]
    lines.append(f"membership, member canaries vs {mia['nonmembers']} held-out ones: ROC AUC [95% bootstrap CI]")
    signals = list(mia["all_members"])
    lines.append(f"  {'copies':>10}  " + "  ".join(f"{n:>20}" for n in signals))
    for copies, rows in [*mia["by_copies"].items(), ("all", mia["all_members"])]:
        lines.append(f"  {copies:>10}  " + "  ".join(
            f"{rows[n]['auc']:.3f} [{rows[n]['auc_ci'][0]:.2f},{rows[n]['auc_ci'][1]:.2f}]".rjust(20) for n in signals))
    tr = s["trace"]
    if tr.get("longest_span"):
        lines.append(f"trace: canary {tr['canary']} ({tr['copies']} copies), prompt -> {tr['generated']!r}; longest span "
                     f"{tr['longest_span']['end'] - tr['longest_span']['start']} tokens found {tr['longest_span']['count']}x"
                     f" in documents {tr['documents'][:5]}{'...' if len(tr['documents']) > 5 else ''}; all of them copies "
                     f"of the canary: {tr['documents_are_the_canary_copies']}")
    lines += _facts_table(s["facts"])
    lines += bias_lines(s["bias"]) + probe_lines(s["probe"]) + detect_lines(s["detect"]) + control_lines(s["control"])
    for task, row in s["eval"]["tasks"].items():
        metric = "acc" if "acc" in row else "exact_match"
        clean = row["clean"].get(metric)
        lines.append(f"eval {task}: {metric} {row[metric]:.3f} on {row['items']} items; {row['contaminated']} found in the "
                     f"training data, {metric} on the clean rest: " + (f"{clean:.3f}" if clean is not None else "n/a"))
    seen = s["seen"]
    lines.append(f"seen: canary {seen['canary']} ({seen['copies']} copies) was in the batches {seen['seen']} times "
                 f"before step {seen['before_step']}, first at step {seen['first_step']} "
                 f"({seen['split_by_rows']} copies split across rows)")
    from ..serve.demo_step import serve_command

    r = s["report"]
    folder = Path(r["path"]).parent
    lines += [f"report: {r['path']} ({len(r['sections'])} sections, {r['numbers']:,} numbers, each with its source "
              f"file's sha256; FMTI upstream indicators filled automatically: {r['fmti_auto']}/{r['fmti_indicators']})",
              f"  open it offline: {folder.resolve().as_uri()}/index.html",
              f"  explore the data in the browser: {serve_command(folder.parent / 'corpus', folder.parent / 'run')}"
              "  (then http://127.0.0.1:8000)"]
    lines.append("seconds: " + ", ".join(f"{k} {v}" for k, v in s["seconds"].items()))
    return "\n".join(lines) + "\n"


def _group_order(group: str | None) -> tuple[str, int]:
    """A, B4, B8, ..., B128, C: the letter, then the number of bio documents."""
    group = group or ""
    digits = group.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return group[:len(group) - len(digits)], int(digits) if digits.isdigit() else -1


def _facts_table(facts: dict[str, Any]) -> list[str]:
    """The facts audit at the last checkpoint: accuracy per question kind and group, then the verdicts
    of the two-hop rows against the control."""
    rows = facts["final"]
    groups = sorted({r["group"] for r in rows}, key=_group_order)
    kinds = sorted({(r["relation"] or "", r["format"]) for r in rows}, key=lambda k: (k[1] == "chain", k[0]))
    cell = {(r["relation"], r["format"], r["group"]): r for r in rows}
    lines = [f"facts: {facts['questions']} questions, categories {facts['categories']}; category and evidence "
             f"documents equal the truth for {facts['match_truth']}/{facts['questions']}",
             f"  top-1 accuracy among all candidates [Wilson 95%] at step {facts['steps'][-1]} (chance 1/16; "
             f"{facts['control']}: the control, known names whose facts were never stated):",
             "  " + " " * 22 + "".join(f"{g:>16}" for g in groups)]
    for relation, form in kinds:
        values = []
        for g in groups:
            r = cell.get((relation, form, g))
            values.append(f"{r['accuracy']:4.0%} [{r['accuracy_ci'][0]:3.0%},{r['accuracy_ci'][1]:4.0%}]".rjust(16)
                          if r else " " * 16)
        lines.append(f"  {relation + ' ' + form:<22}" + "".join(values))
    for relation, form in kinds:
        for g in groups:
            r = cell.get((relation, form, g))
            if r and r["category"] == "derivable" and r["difference_ci"]:
                lo, hi = r["difference_ci"]
                lines.append(f"  {relation} {form}, {g} ({r['category']}): {r['difference']:+.2f} vs control "
                             f"[{lo:+.2f}, {hi:+.2f}]: {r['verdict']}")
    steps = {c["step"]: {(r["relation"], r["format"], r["group"]): r["accuracy"] for r in c["rows"]}
             for c in facts["by_step"]}
    if len(steps) > 1 and any(k[1] == "chain" for k in kinds):
        lines.append("  chain-format accuracy at steps " + ", ".join(map(str, sorted(steps))) + ": " + "; ".join(
            f"{g} " + " ".join(f"{steps[st].get(('employer_city', 'chain', g), 0):.0%}" for st in sorted(steps))
            for g in groups))
    return lines
