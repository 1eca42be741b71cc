"""The report's sections: one small function per section, each taking the gathered ``Artefacts`` and
returning a ``Section`` (its HTML and the numbers it shows) or None when its artefacts are absent.

``SECTIONS`` is the registry, in page order. To add one (a new audit): write a function here (or in its
own module) that reads its files through ``art.sources`` and shows every number through a ``Numbers``
(``n.show`` for a value read from a file at a JSON pointer, ``n.derive`` for one computed from a file),
add its kind to ``artefacts.KINDS`` if it comes from a ``--results`` folder, and append it to
``SECTIONS``. ``docs/architecture.md`` ("Where to add a report section") says the same.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .markup import Html, code, esc, facts_list, figure, join, para, table, tag
from .sources import Number, Numbers, SourceFile, format_value, pointer as ptr
from .svg import bar_chart, line_chart


@dataclass
class Section:
    id: str
    title: str
    html: Html
    numbers: list[Number] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)
    """Short statements other sections may cite (the transparency checklist), by name."""


SectionFunction = Callable[[Any], "Section | None"]
"""A section of the report from the artefacts (``artefacts.Artefacts``), or None where they hold nothing for it."""
FolderPart = Callable[[Any, Numbers, int, Path], list[Html]]
"""One results folder's part of a section: (artefacts, the section's numbers, folder number, folder) -> its HTML."""


def _ci(n: Numbers, key: str, source: SourceFile, where: str, style: str = "auto") -> Html:
    """``[low, high]`` of an interval at ``where`` (a two-element list), both recorded."""
    value = source.get(where)
    if value is None:
        n.value(key, source, where)  # recorded as null, as it stands in the file
        return esc("")
    low = n.show(f"{key}.low", source, where + "/0", style)
    high = n.show(f"{key}.high", source, where + "/1", style)
    return Html(f"[{low}, {high}]")


def _cell(n: Numbers, key: str, source: SourceFile, where: str, style: str = "auto") -> Html:
    """The value at ``where``, or an empty cell when the path is not there (recorded either way if there)."""
    try:
        source.get(where)
    except (KeyError, IndexError, TypeError):
        return esc("")
    return n.show(key, source, where, style)


def _heading(text: Any) -> Html:
    return tag("h3", text)


def _folder_heading(folders: list[Path], folder: Path) -> Html:
    return _heading(str(folder)) if len(folders) > 1 else Html("")


def _one_part_per_folder(kind: str, section_id: str, title: str) -> Callable[[FolderPart], SectionFunction]:
    """A section made of one part per ``--results`` folder of ``kind``, each under its folder's heading (absent
    without such a folder): ``part(art, numbers, fi, folder)`` writes folder number ``fi``'s part."""
    def section_of(part: FolderPart) -> SectionFunction:
        @functools.wraps(part)
        def section(art: Any) -> Section | None:
            folders = art.folders(kind)
            if not folders:
                return None
            n = Numbers(section_id)
            parts: list[Html] = []
            for fi, folder in enumerate(folders):
                parts.append(_folder_heading(folders, folder))
                parts += part(art, n, fi, folder)
            return Section(section_id, title, Html("".join(parts)), n.items)
        return section
    return section_of


def _thin(count: int, limit: int) -> list[int]:
    """At most ``limit`` indexes of ``range(count)``, evenly spread, the last included."""
    if count <= limit:
        return list(range(count))
    step = math.ceil(count / limit)
    chosen = list(range(0, count, step))
    if chosen[-1] != count - 1:
        chosen.append(count - 1)
    return chosen


# ---- provenance -----------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def reproduce_commands(art: Any) -> list[str]:
    """Shell commands that rebuild the corpus, the index and the run (and the evaluations given)."""
    manifest = art.corpus_manifest().value
    config = manifest.get("config", {})
    inputs = " ".join(i["path"] for i in manifest.get("inputs", [])) or "INPUT"
    corpus = str(art.corpus_path)
    flags = "".join(f" --{k.replace('_', '-')} {v}" for k, v in config.items()
                    if k in ("text_field", "shard_tokens", "on_error", "split") and v is not None)
    tokenizer = manifest.get("tokenizer", {}).get("source") or f"{corpus}/tokenizer.json"
    lines = [f"seethrough corpus build {inputs} --tokenizer {tokenizer} --out {corpus}{flags}"]
    if art.indexed:
        lines.append(f"seethrough index build {corpus}")
    train_config = art.run_manifest().value["config"]
    toml = "\n".join(f"{k} = {_toml_value(v)}" for k, v in train_config.items() if v is not None)
    lines.append(f"cat > train.toml <<'EOF'\n{toml}\nEOF")
    lines.append(f"seethrough train {corpus} --out {art.run_path} --config train.toml")
    for folder in art.folders("eval"):
        results = art.sources.json(folder / "results.json").value if (folder / "results.json").is_file() else None
        if results is None:
            continue
        info = results["seethrough"]
        parts = [f"seethrough eval {info['model'].get('run') or info['model']['path']}",
                 f"--tasks {','.join(info.get('task_names') or list(info['requests_sha256']))}", f"--out {folder}"]
        if info.get("include_path"):
            parts.append(f"--include-path {info['include_path']}")
        if info.get("num_fewshot") is not None:
            parts.append(f"--num-fewshot {info['num_fewshot']}")
        if info.get("limit") is not None:
            parts.append(f"--limit {info['limit']}")
        if info.get("corpus"):
            parts.append(f"--corpus {info['corpus']['path']} --ngram {info.get('ngram', 13)}")
        seed = info.get("seed")
        if seed is not None:
            parts.append("--seed " + (",".join("None" if s is None else str(s) for s in seed)
                                      if isinstance(seed, list) else str(seed)))
        lines.append(" ".join(parts))
    return lines


def provenance(art: Any) -> Section:
    n = Numbers("provenance")
    rm, cm, im = art.run_manifest(), art.corpus_manifest(), art.index_manifest()
    last = len(rm.value["checkpoints"]) - 1
    rows: list[tuple[Any, Any]] = [
        ("run", esc(str(art.run_path))),
        ("run.json sha256", Html(f'<span class="hash">{n.derive("run_json_sha256", rm.sha256, rm, "sha256 of the file")}</span>')),
        ("status", n.show("status", rm, "/status")),
        ("code version (training)", n.show("code_version", rm, "/code_version")),
        ("corpus", esc(str(art.corpus_path))),
        ("corpus hash", Html(f'<span class="hash">{n.show("corpus_hash", cm, "/corpus_hash")}</span>')),
        ("tokenizer sha256", Html(f'<span class="hash">{n.show("tokenizer_sha256", cm, "/tokenizer/sha256")}</span>')),
        ("vocabulary", n.show("vocab_size", cm, "/tokenizer/vocab_size")),
    ]
    if im is not None:
        rows.append(("index", Html(f'{n.show("suffix_sort", im, "/suffix_sort")}, corpus hash '
                                   f'<span class="hash">{n.show("index_corpus_hash", im, "/corpus_hash")}</span>')))
    if last >= 0:
        rows.append(("final checkpoint", Html(
            f'step {n.show("final_step", rm, ptr("checkpoints", last, "step"))}, weights sha256 '
            f'<span class="hash">{n.show("final_weights_sha256", rm, ptr("checkpoints", last, "sha256"))}</span>')))
    rows.append(("model", Html(f'{n.show("model_size", rm, "/config/model_size")}, '
                               f'{n.show("parameters", rm, "/model/parameters")} parameters')))
    hardware = rm.value.get("hardware", {})
    if hardware:
        rows.append(("trained on", Html(
            f'{n.show("device", rm, "/hardware/device")}, {n.show("processes", rm, "/hardware/processes")} '
            f'process(es), {n.show("threads", rm, "/hardware/threads")} thread(s), torch '
            f'{n.show("torch", rm, "/hardware/torch")}')))
    rows.append(("data order", Html(
        f'version {n.show("order_version", rm, "/data_order/spec/version")}, seed '
        f'{n.show("order_seed", rm, "/data_order/spec/seed")}, seq_len {n.show("seq_len", rm, "/data_order/spec/seq_len")}'
        f', batch {n.show("batch_size", rm, "/data_order/spec/batch_size")}, end-of-document id '
        f'{n.show("eod_id", rm, "/data_order/spec/eod_id")} (definition: docs/formats.md, "Data order")')))
    for i, folder in enumerate(art.folders("eval")):
        path = folder / "results.json"
        if path.is_file():
            results = art.sources.json(path)
            versions = ", ".join(f"{k} {v}" for k, v in results.value["seethrough"].get("versions", {}).items())
            rows.append((f"evaluation {folder.name}", Html(
                f'{esc(versions)} (results.json sha256 <span class="hash">'
                f'{n.derive(f"eval_{i}_results_sha256", results.sha256, results, "sha256 of the file")}</span>)')))
    from .. import __version__

    html = Html(facts_list(rows) + _heading("Reproduce") +
                para("These commands rebuild the corpus, its index and the run from the same inputs (same hashes "
                     "expected), and re-run the evaluations; ", tag("code", "seethrough eval --verify RESULTS"),
                     " re-checks a recorded evaluation value by value.")
                + code("\n".join(reproduce_commands(art)))
                + para(f"Report written by seethrough {__version__}. Every number on this page is in report.json "
                       "with the sha256 of the file it came from."))
    return Section("provenance", "Provenance", html, n.items,
                   {"hardware": f"{hardware.get('device', '?')} x {hardware.get('processes', '?')}",
                    "torch": str(hardware.get("torch", "?"))})


# ---- datasheet ------------------------------------------------------------------------------------

def _decode(art: Any, ids: list[int]) -> str:
    tokenizer = art.run.corpus.tokenizer
    if tokenizer is None:
        return " ".join(map(str, ids))
    return tokenizer.decode(ids) if ids else ""


def datasheet(art: Any) -> Section:
    from . import corpus_stats as cs

    n = Numbers("datasheet")
    cm = art.corpus_manifest()
    manifest = cm.value
    corpus = art.run.corpus
    parts: list[Html] = []
    parts.append(facts_list([
        ("documents", n.show("documents", cm, "/counts/documents")),
        ("tokens", n.show("tokens", cm, "/counts/tokens")),
        ("shards", n.show("shards", cm, "/counts/shards")),
        ("input files", n.show("inputs", cm, "/counts/inputs")),
        ("lines skipped at build", n.show("skipped_lines", cm, "/counts/skipped_lines")),
        ("token type", n.show("token_dtype", cm, "/token_dtype")),
        ("text field", n.show("text_field", cm, "/config/text_field")),
    ]))
    parts.append(_heading("Sources"))
    rows = []
    for i, item in enumerate(manifest.get("inputs", [])):
        rows.append([esc(item.get("path")), n.show(f"inputs.{i}.documents", cm, ptr("inputs", i, "documents")),
                     n.show(f"inputs.{i}.bytes", cm, ptr("inputs", i, "bytes")),
                     Html(f'<span class="hash">{n.show(f"inputs.{i}.sha256", cm, ptr("inputs", i, "sha256"))}</span>')])
    parts.append(table(["input", "documents", "bytes", "sha256"], rows))
    # document lengths, from the offsets
    lengths = cs.document_lengths(corpus)
    how = "document lengths in tokens, from the shards' offset files (covered by the manifest's sha256s)"
    if len(lengths):
        parts.append(_heading("Document lengths"))
        parts.append(facts_list([
            ("shortest", n.derive("length.min", int(lengths.min()), cm, how)),
            ("median", n.derive("length.median", float(statistics.median(lengths.tolist())), cm, how)),
            ("mean", n.derive("length.mean", float(lengths.mean()), cm, how)),
            ("longest", n.derive("length.max", int(lengths.max()), cm, how)),
            ("empty documents", n.derive("length.empty", int((lengths == 0).sum()), cm, how)),
        ]))
        hist = cs.length_histogram(lengths)
        values = [n.derived_value(f"length.histogram.{label}", count, cm, how + ", binned by powers of two")
                  for label, count in hist.items()]
        parts.append(figure(bar_chart(list(hist), values, "document lengths", "tokens per document", "documents"),
                            "Documents per length bin (tokens; bins 0, 1, 2-3, 4-7, ...)."))
    # duplication and n-grams, from the index
    index_source = art.index_manifest()
    if index_source is not None and len(lengths):
        dup = cs.measure_duplication(art.corpus, lengths)
        how_dup = (f"index count of the first {dup.prefix_tokens} tokens (the whole document when shorter) of "
                   f"{len(dup.documents)} documents spread evenly over the corpus")
        parts.append(_heading("Duplication (measured with the index)"))
        hist = dup.histogram()
        values = [n.derived_value(f"duplication.histogram.{label}", count, index_source, how_dup)
                  for label, count in hist.items()]
        parts.append(para(
            "Of ", n.derive("duplication.sampled", len(dup.documents), index_source, how_dup), " documents sampled, ",
            n.derive("duplication.duplicated", dup.duplicated, index_source, how_dup),
            f" have their first {dup.prefix_tokens} tokens elsewhere in the corpus too (share ",
            n.derive("duplication.share", dup.duplicated / len(dup.counts) if dup.counts else None, index_source,
                     how_dup, "pct"), "); the most repeated occurs ",
            n.derive("duplication.max", max(dup.counts, default=0), index_source, how_dup), " times."))
        parts.append(figure(bar_chart(list(hist), values, "occurrences of document openings",
                                      "occurrences in the corpus", "documents"),
                            "Sampled documents by how often their opening occurs in the whole corpus (exact counts)."))
        top = cs.top_ngrams(art.corpus)
        how_top = "exact counts from the index (next-token distributions)"
        parts.append(_heading("Most frequent tokens and bigrams"))
        uni = [[esc(_decode(art, ids)), esc(" ".join(map(str, ids))),
                n.derive(f"top_unigrams.{i}", count, index_source, how_top)]
               for i, (ids, count) in enumerate(top.unigrams)]
        bi = [[esc(_decode(art, ids)), esc(" ".join(map(str, ids))),
               n.derive(f"top_bigrams.{i}", count, index_source, how_top)] for i, (ids, count) in enumerate(top.bigrams)]
        note = ("exact: every first token not searched is rarer than the last bigram listed" if top.bigrams_exact else
                f"among bigrams starting with the {top.prefixes_searched} most frequent tokens")
        parts.append(Html('<div class="grid2">' + table(["token", "id", "count"], uni)
                          + table(["bigram", "ids", "count"], bi, caption=f"bigrams ({note})")
                          + "</div>"))
    elif index_source is None:
        parts.append(para("No index is built for this corpus, so duplication and n-gram counts are left out "
                          "(seethrough index build CORPUS)."))
    # metadata fields and licences
    meta = cs.metadata_fields(corpus)
    how_meta = (f"metadata of {len(meta.documents):,} documents"
                + (" (all)" if len(meta.documents) == corpus.num_documents else " spread evenly over the corpus"))
    parts.append(_heading("Metadata fields present"))
    if meta.fields:
        rows = []
        for key, count in meta.fields.items():
            shown = ", ".join(f"{v} ({c})" for v, c in meta.values.get(key, []))
            rows.append([esc(key), n.derive(f"metadata.{key}.documents", count, cm, how_meta),
                         n.derive(f"metadata.{key}.distinct", meta.distinct.get(key), cm, how_meta), esc(shown)])
        parts.append(table(["field", "documents with it", "distinct values", "most common values"], rows,
                           caption=how_meta))
    else:
        parts.append(para("The documents carry no metadata fields besides their text."))
    licence = [k for k in meta.fields if k.lower() in cs.LICENCE_FIELDS]
    parts.append(para("Licence fields: " + (", ".join(licence) if licence else
                                            "none in the metadata; the licence of the data is for the user to state.")))
    return Section("datasheet", "Data (datasheet)", Html("".join(parts)), n.items,
                   {"licence_fields": ", ".join(licence), "metadata_fields": ", ".join(meta.fields)})


# ---- training -------------------------------------------------------------------------------------

def training(art: Any) -> Section:
    n = Numbers("training")
    rm, log = art.run_manifest(), art.log()
    records = log.value
    parts: list[Html] = []
    if records:
        chosen = _thin(len(records), 400)
        steps = [n.value(f"log.{i}.step", log, ptr(i, "step")) for i in chosen]
        losses = [n.value(f"log.{i}.loss", log, ptr(i, "loss")) for i in chosen]
        lrs = [n.value(f"log.{i}.lr", log, ptr(i, "lr")) for i in chosen]
        rates = [r.get("tokens_per_s") for r in records if isinstance(r.get("tokens_per_s"), (int, float))]
        seconds = [r.get("seconds") for r in records if isinstance(r.get("seconds"), (int, float))]
        mfu = [r.get("mfu") for r in records if isinstance(r.get("mfu"), (int, float))]
        last = len(records) - 1
        parts.append(facts_list([
            ("steps logged", n.derive("steps_logged", len(records), log, "lines of log.jsonl")),
            ("first loss", n.show("first_loss", log, ptr(0, "loss"))),
            ("last loss", n.show("last_loss", log, ptr(last, "loss"))),
            ("tokens seen", n.show("tokens_seen", log, ptr(last, "tokens_seen"))),
            ("median throughput (tokens/s)", n.derive("median_tokens_per_s", statistics.median(rates) if rates else None,
                                                      log, "median of tokens_per_s over the steps")),
            ("training time (s, steps only)", n.derive("seconds", sum(seconds), log, "sum of seconds over the steps")),
            ("median MFU", n.derive("median_mfu", statistics.median(mfu) if mfu else None, log,
                                    "median of mfu over the steps", "pct")),
            ("peak FLOP/s source", n.show("peak_flops_source", log, ptr(last, "peak_flops_source"))),
        ]))
        parts.append(Html('<div class="grid2">'
                          + figure(line_chart([("", steps, losses)], "training loss", "step", "cross-entropy (nats)"),
                                   "Mean cross-entropy of each step's batch, before the update.")
                          + figure(line_chart([("", steps, lrs)], "learning rate", "step", "learning rate"),
                                   "Learning rate per step (warmup, then cosine).") + "</div>"))
    else:
        parts.append(para("The run has no training log yet."))
    spec = rm.value["data_order"]["spec"]
    rows = []
    for i, c in enumerate(rm.value["checkpoints"]):
        rows.append([n.show(f"checkpoints.{i}.step", rm, ptr("checkpoints", i, "step")),
                     n.derive(f"checkpoints.{i}.tokens", c["step"] * spec["batch_size"] * spec["seq_len"], rm,
                              "step x batch_size x seq_len"),
                     Html(f'<span class="hash">{n.show(f"checkpoints.{i}.sha256", rm, ptr("checkpoints", i, "sha256"))}'
                          "</span>")])
    parts.append(_heading("Checkpoints"))
    parts.append(table(["step", "tokens seen", "model.safetensors sha256"], rows))
    # replay: recompute the batch hashes of a few logged steps from the data order alone
    logged = {r["step"]: r.get("batch_sha256") for r in records if r.get("batch_sha256")}
    trained = art.run.steps_trained
    check = sorted({s for s in (0, trained // 2, trained - 1) if s in logged and 0 <= s < max(1, trained)})
    parts.append(_heading("Replay a batch"))
    if check:
        replayed = [art.run.order.batch(s).sha256 == logged[s] for s in check]
        parts.append(para(
            "The batches of steps ", esc(", ".join(map(str, check))),
            " were rebuilt from the data order alone (corpus hash, seed, sequence length, batch size) and their "
            "sha256 compared with the log: ",
            n.derive("replay_match", all(replayed), log, f"DataOrder.batch(s).sha256 == batch_sha256 for steps {check}"),
            "."))
    parts.append(code(f"seethrough batch {art.run_path} --step S --json     # the tokens of step S and their documents\n"
                      f"python -c \"from seethrough.train import open_run; print(open_run('{art.run_path}').batch(S)"
                      ".token_ids)\""))
    return Section("training", "Training", Html("".join(parts)), n.items)


# ---- evaluation -----------------------------------------------------------------------------------

def metric_pairs(metrics: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(metric key, its stderr key or None) of lm-eval's ``results`` entry for one task: the keys of
    ``evaluate.task_scores``'s scores (None where lm-eval's stderr is N/A, not a number)."""
    from ..evaluate.run import STDERR_SUFFIX, task_scores

    return [(f"{s.metric},{s.filter}", None if s.stderr is None else f"{s.metric}{STDERR_SUFFIX},{s.filter}")
            for s in task_scores("", metrics)]


def _eval_folder(art: Any, n: Numbers, folder: Path, tag_: str) -> list[Html]:
    parts: list[Html] = []
    path = folder / "results.json"
    if not path.is_file():  # several checkpoints: the last one's results
        steps = sorted(folder.glob("step-*/results.json"), key=lambda p: int(p.parent.name.split("-")[1]))
        path = steps[-1] if steps else None
    if path is not None:
        rs = art.sources.json(path)
        info = rs.value.get("seethrough", {})
        nshot = rs.value.get("n-shot", {})
        rows = []
        for task, metrics in rs.value.get("results", {}).items():
            for key, stderr in metric_pairs(metrics):
                base = f"{tag_}.{task}.{key}"
                rows.append([esc(task), esc(key), n.show(base, rs, ptr("results", task, key), ".4"),
                             n.show(base + ".stderr", rs, ptr("results", task, stderr), ".4") if stderr else esc(""),
                             _cell(n, f"{tag_}.{task}.n_shot", rs, ptr("n-shot", task)) if task in nshot else esc(""),
                             _cell(n, f"{tag_}.{task}.samples", rs, ptr("n-samples", task, "effective"))])
        model = info.get("model", {})
        parts.append(para("Model ", esc(model.get("path")), " (step ",
                          _cell(n, f"{tag_}.checkpoint_step", rs, "/seethrough/model/checkpoint_step"),
                          "), weights sha256 ", Html('<span class="hash">'),
                          _cell(n, f"{tag_}.weights_sha256", rs, "/seethrough/model/weights_sha256"), Html("</span>"),
                          "; lm-eval ", _cell(n, f"{tag_}.lm_eval", rs, "/seethrough/versions/lm_eval"), "."))
        parts.append(table(["task", "metric", "value", "stderr", "shots", "items"], rows))
        contamination = info.get("contamination") or {}
        if contamination:
            rows = []
            for task, c in contamination.items():
                base = f"{tag_}.{task}.contamination"
                for metric in c.get("all", {}):
                    rows.append([esc(task), esc(metric), n.show(base + ".items", rs, ptr("seethrough", "contamination", task, "items")),
                                 n.show(base + ".flagged", rs, ptr("seethrough", "contamination", task, "flagged")),
                                 n.show(f"{base}.all.{metric}", rs, ptr("seethrough", "contamination", task, "all", metric), ".4"),
                                 _cell(n, f"{base}.clean.{metric}", rs, ptr("seethrough", "contamination", task, "clean", metric), ".4"),
                                 n.show(base + ".clean_items", rs, ptr("seethrough", "contamination", task, "clean_items"))])
            parts.append(_heading("Clean subset (items with no n-gram in the training data)"))
            parts.append(para("An item is contaminated when one of its ", esc(str(info.get("ngram", 13))),
                              "-grams (the whole item, if shorter) occurs in the training corpus (exact, from the index)."))
            parts.append(table(["task", "metric", "items", "contaminated", "all items", "clean items", "clean n"], rows))
    by_checkpoint = folder / "by_checkpoint.json"
    if by_checkpoint.is_file():
        bc = art.sources.json(by_checkpoint)
        series = []
        for name, values in bc.value.items():
            steps = [int(s) for s in values]
            ys = [n.value(f"{tag_}.by_checkpoint.{name}.{s}", bc, ptr(name, s)) for s in values]
            series.append((name, [max(s, 0.5) for s in steps], ys))
        parts.append(_heading("Metric against checkpoint"))
        parts.append(figure(line_chart(series, "metric by checkpoint", "step (log; step 0 drawn at 0.5)", "value",
                                       log_x=True), "Each metric at each evaluated checkpoint."))
    bias = folder / "bias_summary.json"
    if bias.is_file():
        parts += _bias_benchmarks(art, n, art.sources.json(bias), tag_)
    return parts


def _bias_benchmarks(art: Any, n: Numbers, bs: SourceFile, tag_: str) -> list[Html]:
    parts = [_heading("Bias benchmarks (CrowS-Pairs, BBQ)")]
    rows = []
    for task, entry in (bs.value.get("crows_pairs") or {}).items():
        base = ptr("crows_pairs", task)
        rows.append([esc(task), esc("all"), n.show(f"{tag_}.crows.{task}.items", bs, base + "/items"),
                     n.show(f"{tag_}.crows.{task}.pct_stereotype", bs, base + "/pct_stereotype/value", ".3"),
                     _ci(n, f"{tag_}.crows.{task}.pct_stereotype_ci", bs, base + "/pct_stereotype/ci", ".3")])
    if rows:
        parts.append(table(["task", "category", "pairs", "% stereotype (0.5: no preference)", "95% CI"], rows))
    rows = []
    for task, entry in (bs.value.get("bbq") or {}).items():
        base = ptr("bbq", task)
        rows.append([esc(task), n.show(f"{tag_}.bbq.{task}.items", bs, base + "/items"),
                     _cell(n, f"{tag_}.bbq.{task}.accuracy", bs, base + "/accuracy/value", ".3"),
                     _cell(n, f"{tag_}.bbq.{task}.amb_bias", bs, base + "/ambiguous/bias_score/value", ".3"),
                     _cell(n, f"{tag_}.bbq.{task}.dis_bias", bs, base + "/disambiguated/bias_score/value", ".3")])
    if rows:
        parts.append(table(["task", "items", "accuracy", "bias score (ambiguous)", "bias score (disambiguated)"], rows))
    caveats = bs.value.get("caveats")
    if caveats:
        parts.append(para(esc(" ".join(caveats) if isinstance(caveats, list) else caveats)))
    return parts


def evaluation(art: Any) -> Section | None:
    folders = art.folders("eval")
    if not folders:
        return None
    n = Numbers("evaluation")
    parts: list[Html] = []
    for i, folder in enumerate(folders):
        parts.append(_folder_heading(folders, folder))
        parts += _eval_folder(art, n, folder, f"eval{i}")
    others = [f for f in art.folders("bias_benchmarks") if f not in folders]
    for i, folder in enumerate(others):
        parts += _bias_benchmarks(art, n, art.sources.json(folder / "bias_summary.json"), f"bias{i}")
    return Section("evaluation", "Evaluation", Html("".join(parts)), n.items)


# ---- memorization ---------------------------------------------------------------------------------

@_one_part_per_folder("memorization", "memorization", "Memorization")
def memorization(art: Any, n: Numbers, fi: int, folder: Path) -> list[Html]:
    parts: list[Html] = []
    ms = art.sources.json(folder / "summary.json")
    for label, entry in ms.value.items():
        base = f"{fi}.{label}"
        parts.append(para(esc(label), ": ", n.show(f"{base}.sequences", ms, ptr(label, "sequences")),
                          " sequences; extracted exactly (greedy continuation equals the true one): ",
                          n.show(f"{base}.extracted", ms, ptr(label, "extracted"), "pct"),
                          "; mean memorization score: ", n.show(f"{base}.score", ms, ptr(label, "score"), ".3"), "."))
        for table_key, column, title in (("by_duplicates", "duplicates", "copies in the corpus"),
                                         ("by_doc_position", "doc_position", "position in document"),
                                         ("by_step", "step", "step first seen")):
            rows_in = entry.get(table_key) or []
            if not rows_in:
                continue
            rows, labels, values, intervals = [], [], [], []
            for j, row in enumerate(rows_in):
                where = ptr(label, table_key, j)
                key = f"{base}.{table_key}.{j}"
                value = n.value(key + ".extracted", ms, where + "/extracted")
                ci = row.get("extracted_ci")
                rows.append([n.show(key + f".{column}", ms, where + f"/{column}"),
                             n.show(key + ".n", ms, where + "/n"), esc(format_value(value, "pct")),
                             _ci(n, key + ".extracted_ci", ms, where + "/extracted_ci", "pct"),
                             n.show(key + ".score", ms, where + "/score", ".3")])
                labels.append(str(row.get(column)))
                values.append(value)
                intervals.append(tuple(ci) if ci else None)
            parts.append(table([title, "sequences", "extracted", "95% Wilson", "mean score"], rows,
                               caption=f"{label}: extraction by {title}"))
            if table_key == "by_duplicates":
                parts.append(figure(bar_chart(labels, values, "extraction by duplication", title,
                                              "share extracted", intervals, y_range=(0.0, 1.0)),
                                    "Share of sequences the model reproduces exactly, by how often they occur in "
                                    "the training data (95% Wilson intervals)."))
    return parts


# ---- membership -----------------------------------------------------------------------------------

@_one_part_per_folder("membership", "membership", "Membership inference")
def membership(art: Any, n: Numbers, fi: int, folder: Path) -> list[Html]:
    parts: list[Html] = []
    ev = art.sources.json(folder / "evaluation.json")
    rows, labels, values, intervals = [], [], [], []
    for name, s in ev.value.get("signals", {}).items():
        where, key = ptr("signals", name), f"{fi}.{name}"
        auc = n.value(key + ".auc", ev, where + "/auc")
        rows.append([esc(name), esc(format_value(auc, ".3")), _ci(n, key + ".auc_ci", ev, where + "/auc_ci", ".3"),
                     n.show(key + ".tpr_at_1pct_fpr", ev, where + "/tpr_at_1pct_fpr", "pct"),
                     n.show(key + ".tpr_at_0.1pct_fpr", ev, where + "/tpr_at_0.1pct_fpr", "pct"),
                     n.show(key + ".members", ev, where + "/members"),
                     n.show(key + ".nonmembers", ev, where + "/nonmembers")])
        labels.append(name)
        values.append(auc)
        intervals.append(tuple(s["auc_ci"]) if s.get("auc_ci") else None)
    parts.append(para("Model-only membership signals against known members and non-members: an AUC near 0.5 "
                      "means the signal cannot tell them apart. The index answers membership exactly; these "
                      "signals are what remains without the data."))
    parts.append(table(["signal", "ROC AUC", "95% bootstrap", "TPR at 1% FPR", "TPR at 0.1% FPR", "members",
                        "non-members"], rows))
    parts.append(figure(bar_chart(labels, values, "membership AUC", "signal", "ROC AUC", intervals,
                                  y_range=(0.0, 1.0), reference=0.5),
                        "ROC AUC per signal with its bootstrap interval; dashed: chance (0.5)."))
    return parts


# ---- traced generations ---------------------------------------------------------------------------

def _highlighted(art: Any, ids: list[int], merged: list[dict[str, Any]]) -> Html:
    """The text of ``ids`` with the merged copied ranges in <mark> (decoded by prefixes, so spacing is
    the tokenizer's own)."""
    bounds = sorted({0, len(ids), *[m["start"] for m in merged], *[m["end"] for m in merged]})
    texts = [_decode(art, ids[:b]) for b in bounds]
    marked = {(m["start"], m["end"]) for m in merged}
    out = []
    for (a, b), (ta, tb) in zip(zip(bounds, bounds[1:]), zip(texts, texts[1:])):
        piece = tb[len(ta):] if tb.startswith(ta) else " " + _decode(art, ids[a:b])
        inside = any(s <= a and b <= e for s, e in marked)
        out.append(f'<mark class="copied">{esc(piece)}</mark>' if inside else str(esc(piece)))
    return Html("".join(out))


def choose_trace_prompts(art: Any, count: int = 2, prompt_tokens: int = 8) -> list[list[int]]:
    """Openings of the most duplicated documents (a model repeats what it saw often), then of evenly spread
    ones: the first ``prompt_tokens`` tokens of each, distinct."""
    from . import corpus_stats as cs

    lengths = cs.document_lengths(art.run.corpus)
    dup = cs.measure_duplication(art.corpus, lengths, limit=500)
    ranked = sorted(zip(dup.counts, dup.documents), key=lambda x: (-x[0], x[1]))
    prompts: list[list[int]] = []
    for _, doc in ranked:
        ids = art.run.corpus.document_tokens(doc)[:prompt_tokens].tolist()
        if len(ids) >= 2 and ids not in prompts:
            prompts.append(ids)
        if len(prompts) >= count:
            break
    return prompts


def traces(art: Any) -> Section | None:
    if not art.indexed or not art.run.checkpoints or not art.options.get("trace", True):
        return None
    from ..audit.trace import TraceSettings, trace
    from ..model import greedy_continuations, load_model, resolve_target

    n = Numbers("trace")
    rm = art.run_manifest()
    step = art.options.get("checkpoint")
    target = resolve_target(art.run_path, None if step is None else str(step))
    checkpoint = target.last
    given = art.options.get("trace_prompts")
    tokenizer = art.run.corpus.tokenizer
    if given:
        prompts = [tokenizer.encode(p) for p in given]
    else:
        prompts = choose_trace_prompts(art)
    if not prompts:
        return None
    model = load_model(checkpoint, device=art.options.get("device", "cpu"), threads=art.options.get("threads"))
    bos, eos = model.config.bos_token_id, model.config.eos_token_id
    new_tokens = int(art.options.get("trace_tokens", 32))
    parts = [para("Greedy generations of checkpoint step ", esc(str(checkpoint.step)),
                  " from the prompts below, traced back to the training data as OLMoTrace does: highlighted spans "
                  "occur verbatim in the corpus (long and rare ones kept), with the documents that contain them. "
                  "The model never saw these lists; they are found after generation.")]
    how = (f"greedy continuation ({new_tokens} tokens) by checkpoint step-{checkpoint.step} (weights sha256 in "
           "run.json), traced in the index with seethrough.audit.trace defaults")
    for i, prompt_ids in enumerate(prompts):
        ids = greedy_continuations(model, [([bos] if bos is not None else []) + list(prompt_ids)], new_tokens)[0]
        if eos in ids:
            ids = ids[:ids.index(eos)]
        if not ids:
            continue
        result = trace(art.corpus, ids, TraceSettings(min_length=4))
        key = f"{i}"
        found = result.novelty.get("found_share_by_n", {})
        parts.append(_heading(f"Prompt {i + 1}"))
        parts.append(para(Html("<b>prompt:</b> "), esc(_decode(art, list(prompt_ids)))))
        parts.append(Html(f'<div class="traced">{_highlighted(art, ids, result.merged)}</div>'))
        n.derived_value(f"{key}.prompt_ids", " ".join(map(str, prompt_ids)), rm, "the prompt's token ids")
        n.derived_value(f"{key}.generated_ids", " ".join(map(str, ids)), rm, how)
        parts.append(para(
            "Tokens generated: ", n.derive(f"{key}.tokens", result.tokens, rm, how),
            "; longest span found in the training data: ",
            n.derive(f"{key}.longest_copied_span", result.novelty.get("longest_copied_span"), rm, how),
            " tokens; share of its 8-grams found: ", n.derive(f"{key}.found_share_8", found.get("8"), rm, how, "pct"),
            "."))
        rows = []
        for j, span in enumerate(result.spans):
            docs = span.documents[:3]
            listed = "".join(f'<div class="snippet">doc {esc(d["doc"])}: {esc(d["snippet"])}</div>' for d in docs)
            n.derived_value(f"{key}.spans.{j}.start", span.start, rm, how)
            rows.append([esc(span.text), n.derive(f"{key}.spans.{j}.count", span.count, rm, how),
                         n.derive(f"{key}.spans.{j}.length", span.end - span.start, rm, how), Html(listed)])
        if rows:
            parts.append(table(["span", "occurrences", "tokens", "documents (best BM25 first, up to 3)"], rows))
    return Section("trace", "Traced generations", Html("".join(parts)), n.items)


# ---- facts ----------------------------------------------------------------------------------------

@_one_part_per_folder("facts", "facts", "Facts: stated, derivable, unknowable")
def facts(art: Any, n: Numbers, fi: int, folder: Path) -> list[Html]:
    parts: list[Html] = []
    fs = art.sources.json(folder / "summary.json")
    cats = fs.value.get("categories", {})
    parts.append(para("Each question is stated (subject and answer co-occur in a training document), derivable "
                      "(every hop stated), or unknowable; counts: ",
                      join([Html(f"{esc(c)} {n.show(f'{fi}.categories.{c}', fs, ptr('categories', c))}")
                            for c in cats], ", "), "."))
    checkpoints = fs.value.get("checkpoints", [])
    if not checkpoints:
        return parts
    last = len(checkpoints) - 1
    rows = []
    for j, row in enumerate(checkpoints[last].get("aggregates", [])):
        where, key = ptr("checkpoints", last, "aggregates", j), f"{fi}.final.{j}"
        control = row.get("control")
        rows.append([esc(row.get("category")), esc(row.get("format")), esc(row.get("group")),
                     esc(row.get("relation")), n.show(key + ".n", fs, where + "/n"),
                     n.show(key + ".accuracy", fs, where + "/accuracy", "pct"),
                     _ci(n, key + ".accuracy_ci", fs, where + "/accuracy_ci", "pct"),
                     n.show(key + ".chance", fs, where + "/chance", "pct"),
                     n.show(key + ".control", fs, where + "/control/accuracy", "pct") if control else esc(""),
                     _ci(n, key + ".difference_ci", fs, where + "/difference_ci", "pct")
                     if row.get("difference_ci") is not None else esc(""),
                     esc(row.get("verdict"))])
    parts.append(table(["category", "format", "group", "relation", "n", "accuracy", "95% Wilson", "chance",
                        "control", "difference 95%", "verdict"], rows,
                       caption=f"at {checkpoints[last].get('checkpoint')}"))
    # accuracy by step, pooled per category and format
    series: dict[str, tuple[list[float], list[float]]] = {}
    for ci_, c in enumerate(checkpoints):
        pooled: dict[str, list[int]] = {}
        for row in c.get("aggregates", []):
            name = f"{row.get('category')}/{row.get('format')}"
            pooled.setdefault(name, [0, 0])
            pooled[name][0] += row.get("correct", 0)
            pooled[name][1] += row.get("n", 0)
        for name, (correct, total) in pooled.items():
            value = n.derived_value(f"{fi}.by_step.{name}.{c.get('step')}", correct / total if total else None, fs,
                                    "pooled accuracy: sum of correct / sum of n over the checkpoint's aggregates "
                                    "of that category and format")
            xs, ys = series.setdefault(name, ([], []))
            xs.append(max(c.get("step") or 0, 0.5))
            ys.append(value)
    if len(checkpoints) > 1:
        parts.append(figure(line_chart([(k, v[0], v[1]) for k, v in sorted(series.items())], "accuracy by step",
                                       "step (log)", "accuracy", log_x=True, y_range=(0.0, 1.0)),
                            "Accuracy per category and format, pooled over groups and relations, at each "
                            "checkpoint audited."))
    return parts


# ---- bias -----------------------------------------------------------------------------------------

def bias(art: Any) -> Section | None:
    data_folders, model_folders = art.folders("bias_data"), art.folders("bias_model")
    if not data_folders and not model_folders:
        return None
    n = Numbers("bias")
    parts: list[Html] = []
    for fi, folder in enumerate(data_folders):
        bd = art.sources.json(folder / "bias_data.json")
        parts.append(_heading(f"In the data ({folder})" if len(data_folders) > 1 else "In the data"))
        rows = []
        for j, row in enumerate(bd.value.get("sentiment", [])):
            where, key = ptr("sentiment", j), f"data{fi}.sentiment.{j}"
            rows.append([esc(row.get("axis")), esc(row.get("group")),
                         n.show(key + ".occurrences", bd, where + "/occurrences"),
                         n.show(key + ".windows", bd, where + "/windows"),
                         n.show(key + ".mean", bd, where + "/mean", ".3"),
                         _ci(n, key + ".ci", bd, where + "/ci", ".3")])
        if rows:
            parts.append(table(["axis", "group", "occurrences", "windows scored", "mean VADER", "95% bootstrap"], rows,
                               caption="sentiment of the words around each group's terms"))
        rows = []
        for j, row in enumerate(bd.value.get("cooccurrence", [])[:30]):
            where, key = ptr("cooccurrence", j), f"data{fi}.cooccurrence.{j}"
            shares = join([Html(f"{esc(g)} {n.show(f'{key}.share.{g}', bd, where + ptr('share', g), 'pct')}")
                           for g in (row.get("share") or {}) if row["share"][g] is not None], ", ")
            zs = join([Html(f"{esc(g)} {n.show(f'{key}.z.{g}', bd, where + ptr('log_odds', g, 'z'), '.2')}")
                       for g in (row.get("log_odds") or {}) if (row["log_odds"][g] or {}).get("z") is not None], ", ")
            rows.append([esc(row.get("axis")), esc(row.get("target")), n.show(key + ".occurrences", bd, where + "/occurrences"),
                         shares, zs])
        if rows:
            parts.append(table(["axis", "target", "occurrences", "share with each group", "log-odds z"], rows,
                               caption="co-occurrence of targets with each group's terms (exact, from the index; "
                                       "first 30 targets)"))
        notes = bd.value.get("notes") or []
        if notes:
            parts.append(para(esc("Notes: " + " ".join(map(str, notes)))))
    for fi, folder in enumerate(model_folders):
        bm = art.sources.json(folder / "bias_model.json")
        parts.append(_heading(f"Model against data ({folder})" if len(model_folders) > 1 else "Model against data"))
        corr = bm.value.get("correlation") or {}
        if corr:
            parts.append(para("Across ", n.show(f"model{fi}.correlation.units", bm, "/correlation/units"),
                              " targets, the model's group shares follow the data's with Pearson r ",
                              n.show(f"model{fi}.correlation.pearson", bm, "/correlation/pearson", ".3"), " ",
                              _ci(n, f"model{fi}.correlation.pearson_ci", bm, "/correlation/pearson_ci", ".3"),
                              " and Spearman ", n.show(f"model{fi}.correlation.spearman", bm, "/correlation/spearman", ".3"),
                              "."))
        rows = []
        for axis, g in (bm.value.get("greedy") or {}).items():
            where, key = ptr("greedy", axis), f"model{fi}.greedy.{axis}"
            rows.append([esc(axis), n.show(key + ".contexts", bm, where + "/contexts"),
                         n.show(key + ".data_majority_rate", bm, where + "/data_majority_rate", "pct"),
                         n.show(key + ".majority_chosen", bm, where + "/majority_chosen", "pct"),
                         _ci(n, key + ".majority_chosen_ci", bm, where + "/majority_chosen_ci", "pct"),
                         n.show(key + ".amplification", bm, where + "/amplification", ".3")])
        if rows:
            parts.append(table(["axis", "contexts", "data's majority share", "greedy picks the majority", "95% Wilson",
                                "amplification"], rows))
        rows = []
        for j, t in enumerate(bm.value.get("targets", [])[:30]):
            where, key = ptr("targets", j), f"model{fi}.targets.{j}"
            groups = list((t.get("model") or {}))
            rows.append([esc(t.get("axis")), esc(t.get("target")),
                         join([Html(f"{esc(g)} {n.show(f'{key}.model.{g}', bm, where + ptr('model', g), 'pct')}")
                               for g in groups if t["model"][g] is not None], ", "),
                         join([Html(f"{esc(g)} {n.show(f'{key}.data.{g}', bm, where + ptr('data', g), 'pct')}")
                               for g in (t.get("data") or {}) if t["data"][g] is not None], ", ")])
        if rows:
            parts.append(table(["axis", "target", "model's share", "data's share"], rows,
                               caption="each target's group shares, model against data (first 30)"))
    return Section("bias", "Bias", Html("".join(parts)), n.items)


# ---- probes and lenses ----------------------------------------------------------------------------

@_one_part_per_folder("probe", "probe", "Probes of internal beliefs")
def probes(art: Any, n: Numbers, fi: int, folder: Path) -> list[Html]:
    parts: list[Html] = []
    pj = art.sources.json(folder / "probe.json")
    results = pj.value.get("results")
    contexts = results if isinstance(results, dict) else {"": results or []}
    verdict = pj.value.get("verdict")
    statement = pj.value.get("statement") or (verdict.get("statement") if isinstance(verdict, dict) else None)
    if statement:
        parts.append(para(esc(statement)))
    if isinstance(verdict, dict) and verdict.get("kind"):
        parts.append(para("Verdict: ", tag("b", verdict["kind"])))
    for context, rows_in in contexts.items():
        base_where = ptr("results", context) if context else "/results"
        by_method: dict[str, tuple[list[float], list[float]]] = {}
        best: dict[str, tuple[int, float]] = {}
        for j, row in enumerate(rows_in):
            where, key = f"{base_where}/{j}", f"{fi}.{context or 'test'}.{j}"
            auroc = n.value(key + ".auroc", pj, where + "/auroc")
            layer = row.get("layer")
            xs, ys = by_method.setdefault(str(row.get("method")), ([], []))
            xs.append(layer)
            ys.append(auroc)
            if auroc is not None and (row["method"] not in best or auroc > best[row["method"]][1]):
                best[row["method"]] = (j, auroc)
        title = f"probe AUROC per layer{' (' + context + ')' if context else ''}"
        parts.append(figure(line_chart([(m, xs, ys) for m, (xs, ys) in by_method.items()], title, "layer",
                                       "AUROC", y_range=(0.0, 1.0), reference=0.5),
                            f"Held-out AUROC of each probe method per layer{' in ' + context + ' contexts' if context else ''}; "
                            "dashed: chance."))
        rows = []
        for method, (j, _) in best.items():
            where, key = f"{base_where}/{j}", f"{fi}.{context or 'test'}.{j}"
            rows.append([esc(method), n.show(key + ".layer", pj, where + "/layer"),
                         n.show(key + ".accuracy", pj, where + "/accuracy", "pct"),
                         _ci(n, key + ".accuracy_ci", pj, where + "/accuracy_ci", "pct"),
                         esc(format_value(rows_in[j].get("auroc"), ".3")),
                         _ci(n, key + ".auroc_ci", pj, where + "/auroc_ci", ".3")])
        parts.append(table(["method", "best layer", "accuracy", "95% CI", "AUROC", "95% CI"], rows,
                           caption=f"the layer with the highest held-out AUROC, per method{' (' + context + ')' if context else ''}"))
    return parts


@_one_part_per_folder("lens", "lens", "Lenses")
def lens(art: Any, n: Numbers, fi: int, folder: Path) -> list[Html]:
    parts: list[Html] = []
    lj = art.sources.json(folder / "lens.json")
    layers = lj.value.get("layers", [])
    xs = [row.get("layer") for row in layers]
    series = []
    for name in ("logit_kl", "tuned_kl"):
        ys = [n.value(f"{fi}.{j}.{name}", lj, ptr("layers", j, name)) for j in range(len(layers))]
        if any(y is not None for y in ys):
            series.append((name.replace("_", " "), xs, ys))
    parts.append(figure(line_chart(series, "lens KL per layer", "layer", "KL to the final distribution (nats)"),
                        "How far each layer's lens is from the model's own next-token distribution (held-out text)."))
    parts.append(para("Model cross-entropy on the held-out text: ", _cell(n, f"{fi}.model_ce", lj, "/model_ce", ".3"),
                      " nats over ", _cell(n, f"{fi}.heldout_tokens", lj, "/heldout_tokens"), " tokens."))
    return parts


# ---- detectors ------------------------------------------------------------------------------------

@_one_part_per_folder("detect", "detect", "AI-text detectors")
def detect(art: Any, n: Numbers, fi: int, folder: Path) -> list[Html]:
    parts: list[Html] = []
    dj = art.sources.json(folder / "detect.json")
    rows = []
    for j, row in enumerate(dj.value.get("headline", [])):
        where, key = ptr("headline", j), f"{fi}.headline.{j}"
        rows.append([esc(row.get("detector")), n.show(key + ".auroc", dj, where + "/auroc", ".3"),
                     _ci(n, key + ".auroc_ci", dj, where + "/auroc_ci", ".3"),
                     n.show(key + ".tpr_at_1pct_fpr", dj, where + "/tpr_at_1pct_fpr", "pct"),
                     _ci(n, key + ".tpr_at_1pct_fpr_ci", dj, where + "/tpr_at_1pct_fpr_ci", "pct"),
                     n.show(key + ".fpr_realised", dj, where + "/fpr_realised", "pct"),
                     n.show(key + ".test_humans", dj, where + "/test_humans"),
                     n.show(key + ".test_machines", dj, where + "/test_machines")])
    parts.append(para("AI-text detectors tested on human text checked against the training data and machine text "
                      "from the model: thresholds from calibration humans, the false-positive rate realised on "
                      "test humans."))
    parts.append(table(["detector", "AUROC", "95% CI", "TPR at 1% FPR", "95% CI", "FPR realised", "test humans",
                        "test machines"], rows))
    notes = dj.value.get("notes") or []
    if notes:
        parts.append(para(esc("Notes: " + " ".join(map(str, notes)))))
    return parts


# ---- control (erase / steer) ----------------------------------------------------------------------

def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _flat(record: dict[str, Any], where: str, label: str = "", depth: int = 0) -> list[tuple[str, str, Any]]:
    """(column, pointer, value) of a record's scalars and [low, high] pairs, nested records flattened
    (``before/accuracy``) up to two levels."""
    out: list[tuple[str, str, Any]] = []
    for key, value in record.items():
        column, at = f"{label}{key}", f"{where}{ptr(key)}"
        if _scalar(value):
            out.append((column, at, value))
        elif (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            out.append((column, at, value))
        elif isinstance(value, dict) and depth < 2:
            out += _flat(value, at, f"{column}/", depth + 1)
    return out


def _shown(n: Numbers, key: str, source: SourceFile, where: str, value: Any) -> Html:
    if isinstance(value, list):
        return _ci(n, key, source, where)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return n.show(key, source, where)
    return esc("" if value is None else format_value(value))


def _generic_tables(n: Numbers, source: SourceFile, value: dict[str, Any], key: str, skip: tuple[str, ...] = (),
                    where: str = "", title: str = "", depth: int = 0) -> list[Html]:
    """Every field of a summary, shown: scalars as a list, a list of records as a table (up to 60 rows,
    nested records flattened into columns), a record of records recursively; numbers recorded at their
    pointers, text escaped."""
    parts: list[Html] = []
    scalars = []
    for name, field_value in value.items():
        if name in skip:
            continue
        at, label = f"{where}{ptr(name)}", f"{title}{name}".replace("_", " ")
        number_key = f"{key}.{name}"
        if field_value is None:
            continue
        if _scalar(field_value) and not isinstance(field_value, str):
            scalars.append((label, _shown(n, number_key, source, at, field_value)))
        elif isinstance(field_value, list) and field_value and all(isinstance(r, dict) for r in field_value):
            flats = [_flat(r, f"{at}/{j}") for j, r in enumerate(field_value[:60])]
            columns = list(dict.fromkeys(c for f in flats for c, _, _ in f))
            rows = []
            for j, flat in enumerate(flats):
                cells = {c: _shown(n, f"{number_key}.{j}.{c}", source, p, v) for c, p, v in flat}
                rows.append([cells.get(c, esc("")) for c in columns])
            if columns:
                parts.append(table(columns, rows, caption=label))
        elif isinstance(field_value, dict) and field_value and depth < 2:
            parts += _generic_tables(n, source, field_value, number_key, (), at, f"{label} / ", depth + 1)
    if scalars:
        parts.insert(0, facts_list(scalars))
    return parts


def control(art: Any) -> Section | None:
    folders = art.folders("control")
    if not folders:
        return None
    n = Numbers("control")
    parts: list[Html] = []
    for fi, folder in enumerate(folders):
        cj = art.sources.json(folder / "summary.json")
        value = cj.value
        kind = value.get("kind")
        parts.append(_heading(f"{'Erasure (LEACE)' if kind == 'erase' else 'Steering'}: {folder}"))
        model = value.get("model") or {}
        if model:
            parts.append(para("Model ", esc(model.get("path")), ", step ", esc(str(model.get("step"))),
                              ", weights sha256 ", Html('<span class="hash">'), esc(model.get("weights_sha256")),
                              Html("</span>")))
        curve = value.get("curve") if kind == "steer" else None
        if isinstance(curve, list) and curve and all(isinstance(r, dict) for r in curve):
            by_layer: dict[str, tuple[list[float], list[float]]] = {}
            for row in curve:  # the same values as the curve table below, where they are recorded
                xs, ys = by_layer.setdefault(f"layer {row.get('layer')}", ([], []))
                xs.append(row.get("multiplier"))
                ys.append(row.get("p_matching"))
            parts.append(figure(line_chart([(k, xs, ys) for k, (xs, ys) in by_layer.items()], "steering curve",
                                           "multiplier", "P(matching answer)", y_range=(0.0, 1.0), reference=0.5),
                                "Mean probability of the matching answer on held-out pairs against the steering "
                                "multiplier (0: the model as trained)."))
        parts += _generic_tables(n, cj, value, str(fi), skip=("model", "notes", "settings", "sha256", "path",
                                                              "formula", "layer_meaning", "data"))
        notes = value.get("notes") or []
        if notes:
            parts.append(para(esc("Notes: " + " ".join(map(str, notes)))))
    return Section("control", "Deployment-time control", Html("".join(parts)), n.items)


SECTIONS: list[SectionFunction] = [provenance, datasheet, training, evaluation, memorization, membership, traces, facts,
                                   bias, probes, lens, detect, control]
"""The report's sections in page order; the transparency checklist (``fmti.checklist``) comes last."""
