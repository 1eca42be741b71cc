"""``seethrough release``: a folder ready to push to the Hugging Face Hub as it is (nothing is uploaded).

    BUNDLE/model.safetensors, config.json, generation_config.json   the checkpoint's weights and config
    BUNDLE/tokenizer.json, tokenizer_config.json                     its tokenizer
    BUNDLE/README.md                                                 the model card (YAML front matter + text)
    BUNDLE/dataset/README.md, dataset/manifest.json                  the dataset card and the corpus manifest
    BUNDLE/run/run.json, run/data_order.json, run/log.jsonl          enough to replay every batch
    BUNDLE/eval/NAME/results.json                                    each evaluation the model index cites
    BUNDLE/report/index.html, report/report.json                     the transparency report
    BUNDLE/SHA256SUMS                                                every other file, ``sha256sum -c`` format

The bundle is built in a temporary folder beside ``out`` and renamed into place when complete; an
existing ``out`` is replaced only when it is empty or a bundle written here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .._files import atomic_write_bytes, sha256_file
from ..errors import ConfigError, ModelError

CHECKPOINT_FILES = ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                    "tokenizer_config.json", "special_tokens_map.json")
"""What a bundle takes from the checkpoint folder (the optimizer state and step record stay behind)."""
SUMS = "SHA256SUMS"
MARKER = ".seethrough-release"


@dataclass
class Release:
    path: Path
    checkpoint_step: int
    files: dict[str, str]
    """Relative path -> sha256, as in SHA256SUMS."""
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": str(self.path), "checkpoint_step": self.checkpoint_step, "files": len(self.files),
                "bytes": self.bytes, "sha256sums": str(self.path / SUMS)}


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")):
        if n < limit:
            return label
    return "n>1B"


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-.")
    return out or "corpus"


def model_index_results(results: dict[str, Any]) -> list[Any]:
    """``EvalResult``s of one results.json: every numeric metric of every task, and (with a corpus) its
    clean-subset value as the same metric with ``dataset_config: clean``."""
    from huggingface_hub import EvalResult

    from .sections import metric_pairs

    out = []
    contamination = results.get("seethrough", {}).get("contamination") or {}
    split = None
    for task, metrics in results.get("results", {}).items():
        config = results.get("configs", {}).get(task, {})
        split = config.get("test_split") or config.get("validation_split")
        for key, _ in metric_pairs(metrics):
            name = key.split(",", 1)[0]
            out.append(EvalResult(task_type="text-generation", dataset_type=task, dataset_name=task,
                                  dataset_split=split, metric_type=name, metric_value=metrics[key], metric_name=key))
            clean = (contamination.get(task) or {}).get("clean") or {}
            if isinstance(clean.get(name), (int, float)):
                out.append(EvalResult(task_type="text-generation", dataset_type=task, dataset_name=f"{task} (clean)",
                                      dataset_config="clean", dataset_split=split, metric_type=name,
                                      metric_value=clean[name], metric_name=f"{key} (clean subset)"))
    return out


def _card_text(yaml_text: str, body: str) -> str:
    # to_yaml() has no trailing newline; without one the Hub's parser finds no metadata block
    return f"---\n{yaml_text.rstrip()}\n---\n\n{body.rstrip()}\n"


def _md_escape(text: Any) -> str:
    """Text for a Markdown table cell: no raw HTML (a renderer would run it), no cell or line break."""
    from html import escape

    return escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def model_card(art: Any, step: int, file_sha256: str, weights_sha256: str, name: str, dataset_id: str,
               language: list[str], license: str, license_name: str | None,
               eval_results: list[tuple[str, dict[str, Any]]]) -> str:
    from huggingface_hub import ModelCardData

    rm = art.run_manifest().value
    cm = art.corpus_manifest().value
    config = json.loads((art.run.checkpoint(step) / "config.json").read_text(encoding="utf-8"))
    index = [r for _, results in eval_results for r in model_index_results(results)]
    extra: dict[str, Any] = {"seethrough": {
        "code_version": rm.get("code_version"), "checkpoint_step": step, "weights_sha256": weights_sha256,
        "model_safetensors_sha256": file_sha256,
        "corpus_hash": cm.get("corpus_hash"), "tokenizer_sha256": cm.get("tokenizer", {}).get("sha256"),
        "data_order": rm["data_order"]["spec"]}}
    if license == "other" and license_name:
        extra["license_name"] = license_name
    data = ModelCardData(language=language, license=license, library_name="transformers",
                         pipeline_tag="text-generation", tags=["seethrough", "gpt-neox", "causal-lm", "transparency"],
                         datasets=[dataset_id], model_name=name, eval_results=index or None, **extra)
    log = art.log().value
    counts = cm.get("counts", {})
    lines = [f"# {name}", "",
             f"A GPT-NeoX (Pythia-architecture) language model of {rm['model']['parameters']:,} parameters trained "
             f"with seethrough on an inspectable corpus of {counts.get('documents', 0):,} documents "
             f"({counts.get('tokens', 0):,} tokens), with a data order anyone can replay. This is checkpoint step "
             f"{step} of run `{art.run_path.name}`.", "",
             "The transparency report is in `report/index.html` (one file, opens offline); every number in it is in "
             "`report/report.json` with the sha256 of the file it came from. `SHA256SUMS` lists every file of this "
             "folder (`sha256sum -c SHA256SUMS`).", "",
             "## Model details", "", "| | |", "|---|---|",
             f"| architecture | {_md_escape(config.get('model_type'))} ({_md_escape(', '.join(config.get('architectures', [])))}) |",
             f"| parameters | {rm['model']['parameters']:,} |",
             f"| layers | {config.get('num_hidden_layers')} |", f"| hidden size | {config.get('hidden_size')} |",
             f"| attention heads | {config.get('num_attention_heads')} |", f"| vocabulary | {config.get('vocab_size')} |",
             f"| context used in training | {rm['data_order']['spec']['seq_len']} tokens |",
             f"| model.safetensors sha256 | `{file_sha256}` |",
             f"| weights hash (as evaluations record it) | `{weights_sha256}` |",
             f"| seethrough | {_md_escape(rm.get('code_version'))} |", "",
             "## How to use", "", "```python",
             "from transformers import AutoModelForCausalLM, AutoTokenizer",
             'model = AutoModelForCausalLM.from_pretrained(".")   # this folder', 'tokenizer = AutoTokenizer.from_pretrained(".")',
             "```", "",
             "## Training data", "",
             f"The corpus is described in its dataset card, `dataset/README.md` (corpus hash `{cm.get('corpus_hash')}`). "
             "It was used as built: seethrough applies no filtering, deduplication or augmentation.", "",
             "## Training procedure", "",
             f"{len(log):,} optimizer steps of AdamW on next-token cross-entropy, batch "
             f"{rm['data_order']['spec']['batch_size']} x {rm['data_order']['spec']['seq_len']} tokens, peak learning rate "
             f"{rm['config'].get('lr')}, seed {rm['config'].get('seed')}; the whole configuration is in `run/run.json`, "
             "the per-step loss, learning rate and batch hash in `run/log.jsonl`.", "",
             "### Replay the batches", "",
             "The tokens of every step are a pure function of the corpus hash, the seed, the sequence length and the "
             "batch size (`run/data_order.json`; definition in seethrough's docs/formats.md, \"Data order\"). With "
             "the corpus built again from the same inputs:", "", "```",
             "seethrough batch run/ --step S --corpus CORPUS --json", "```", "",
             "### Checkpoints", "", "| step | model.safetensors sha256 |", "|---|---|"]
    lines += [f"| {c['step']} | `{c['sha256']}` |" for c in rm["checkpoints"]]
    lines += ["", "## Evaluation", ""]
    if eval_results:
        lines += ["| task | metric | value | stderr | clean subset |", "|---|---|---|---|---|"]
        from .sections import metric_pairs

        for _, results in eval_results:
            contamination = results.get("seethrough", {}).get("contamination") or {}
            for task, metrics in results.get("results", {}).items():
                for key, stderr in metric_pairs(metrics):
                    clean = ((contamination.get(task) or {}).get("clean") or {}).get(key.split(",", 1)[0])
                    lines.append(f"| {_md_escape(task)} | {_md_escape(key)} | {metrics[key]:.4f} | "
                                 f"{'' if stderr is None else format(metrics[stderr], '.4f')} | "
                                 f"{'' if clean is None else format(clean, '.4f')} |")
        lines += ["", "Evaluated with lm-evaluation-harness through seethrough's backend (`eval/*/results.json`, "
                      "provenance in its `seethrough` block; `seethrough eval --verify` re-checks every value). The clean "
                      "subset leaves out items with an n-gram found in the training data."]
    else:
        lines.append("No evaluation was included in this release.")
    lines += ["", "## Uses and limitations", "",
              "A research model: made to be inspected (its data, data order and checkpoints are all open), not "
              "deployed. The licence of the weights and the data, the intended uses, and the risks of the data's "
              "content are for the people releasing it to state here"
              + (f" (the licence is recorded as `other`: {license_name})." if license == "other" else "."), ""]
    return _card_text(data.to_yaml(), "\n".join(lines))


def dataset_card(art: Any, dataset_id: str, language: list[str], license: str, license_name: str | None) -> str:
    from huggingface_hub import DatasetCardData

    from . import corpus_stats as cs

    cm = art.corpus_manifest().value
    counts = cm.get("counts", {})
    extra: dict[str, Any] = {"seethrough": {"corpus_hash": cm.get("corpus_hash"),
                                            "tokenizer_sha256": cm.get("tokenizer", {}).get("sha256"),
                                            "documents": counts.get("documents"), "tokens": counts.get("tokens")}}
    if license == "other" and license_name:
        extra["license_name"] = license_name
    data = DatasetCardData(language=language, license=license, pretty_name=dataset_id,
                           size_categories=[_size_category(int(counts.get("documents", 0)))],
                           task_categories=["text-generation"], **extra)
    lengths = cs.document_lengths(art.run.corpus)
    meta = cs.metadata_fields(art.run.corpus)
    lines = [f"# {dataset_id}", "",
             f"The training corpus of the model in the folder above: {counts.get('documents', 0):,} documents, "
             f"{counts.get('tokens', 0):,} tokens, tokenized with the tokenizer of sha256 "
             f"`{cm.get('tokenizer', {}).get('sha256')}` ({cm.get('tokenizer', {}).get('vocab_size')} ids). Corpus hash "
             f"`{cm.get('corpus_hash')}`: it names the tokenizer and the content of every token shard, so a corpus "
             "rebuilt from the same inputs can be checked against it (`seethrough corpus info`).", "",
             "## Sources", "", "| input | documents | bytes | sha256 |", "|---|---|---|---|"]
    lines += [f"| {_md_escape(i.get('path'))} | {i.get('documents', 0):,} | {i.get('bytes', 0):,} | `{i.get('sha256')}` |"
              for i in cm.get("inputs", [])]
    lines += ["", "Who created these documents, why they were chosen and how they were collected is for the "
                  "people releasing the data to state here.", "",
              "## Structure", "",
              "`manifest.json` (in this folder) is the corpus manifest: build settings, counts, and the sha256 of "
              "every shard file. The corpus itself (token shards in infini-gram's layout, one JSON line of metadata "
              "per document, the suffix-array index) is not part of this folder.", ""]
    if len(lengths):
        lines.append(f"Document lengths: {int(lengths.min())} to {int(lengths.max())} tokens, mean "
                     f"{float(lengths.mean()):.1f}.")
    if meta.fields:
        lines += ["", "| metadata field | documents with it (of those read) |", "|---|---|"]
        lines += [f"| {_md_escape(k)} | {v:,} of {len(meta.documents):,} |" for k, v in meta.fields.items()]
    lines += ["", "## Creation", "",
              f"Built by `seethrough corpus build` with {_md_escape(json.dumps(cm.get('config', {})))}; "
              f"{counts.get('skipped_lines', 0)} unreadable input lines skipped. No filtering, deduplication or "
              "augmentation is applied by seethrough.", "",
              "## Bias, risks and limitations", "",
              "The transparency report (`../report/index.html`) measures the data's duplication, most frequent "
              "n-grams and, where audited, its group statistics. Personal or sensitive information, licences and "
              "copyright of the documents are for the people releasing the data to state here"
              + (f" (licence recorded as `other`: {license_name})." if license == "other" else ".")]
    return _card_text(data.to_yaml(), "\n".join(lines))


def _released_evaluations(art: Any, step: int, weights: str) -> list[tuple[Path, Path]]:
    """(folder, results.json) of each eval folder given, for the released checkpoint: the folder's own
    results.json, or its ``step-N/results.json`` when it evaluated several checkpoints. An evaluation of
    other weights is refused: the model card's model-index would credit them to these."""
    out = []
    for folder in art.folders("eval"):
        path = folder / "results.json"
        if not path.is_file():
            path = folder / f"step-{step}" / "results.json"
            if not path.is_file():
                raise ConfigError(f"--results {folder} evaluated several checkpoints but not step {step}, the one "
                                  "released; evaluate it too (seethrough eval --checkpoints) or release one it has")
        model = art.sources.json(path).value.get("seethrough", {}).get("model", {})
        if model.get("weights_sha256") != weights:
            raise ConfigError(f"--results {folder} evaluated other weights (step {model.get('checkpoint_step')}, "
                              f"weights sha256 {str(model.get('weights_sha256'))[:12]}) than the released step {step} "
                              f"({weights[:12]}); pass an evaluation of the released checkpoint, or --checkpoint its "
                              "step")
        out.append((folder, path))
    return out


def _is_bundle(folder: Path) -> bool:
    return (folder / MARKER).is_file() and (folder / SUMS).is_file()


def write_sha256sums(folder: Path) -> dict[str, str]:
    """``folder/SHA256SUMS`` of every other file (sorted relative paths, ``sha256sum -c`` format)."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == SUMS:
            continue
        files[rel] = sha256_file(path)
    text = "".join(f"{digest}  {rel}\n" for rel, digest in files.items())
    atomic_write_bytes(folder / SUMS, text.encode("utf-8"))
    return files


def verify_sha256sums(folder: str | Path) -> list[str]:
    """The files of ``folder/SHA256SUMS`` whose content no longer matches (or that are missing)."""
    folder = Path(folder)
    bad = []
    for line in (folder / SUMS).read_text(encoding="utf-8").splitlines():
        digest, rel = line.split("  ", 1)
        path = folder / rel
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(rel)
    return bad


def build_release(run: str | Path, corpus: str | Path | None = None, results: Sequence[str | Path] = (),
                  checkpoint: int | None = None, out: str | Path | None = None, language: Sequence[str] = ("en",),
                  license: str = "other", license_name: str | None = "not stated by the trainer",
                  report: bool = True, trace: bool = True, threads: int | None = None) -> Release:
    """Write the release bundle of ``run``'s checkpoint ``checkpoint`` (default: the newest) to ``out``
    (default: ``RUN-release`` beside the run). ``results`` as for the report; the evaluations among them
    become the model card's model-index."""
    from .artefacts import gather, refuse_out_inside
    from .report import build_report, write_report

    run_path = Path(run)
    art = gather(run_path, corpus, results)
    steps = art.run.checkpoints
    if not steps:
        raise ModelError(f"run {run_path} has no checkpoints yet; train it first (seethrough train)")
    step = steps[-1] if checkpoint is None else checkpoint
    if step not in steps:
        raise ModelError(f"--checkpoint {checkpoint}: run {run_path} has no checkpoint at that step; it has {steps}")
    out = Path(out) if out is not None else run_path.parent / f"{run_path.name}-release"
    refuse_out_inside(out, run_path, art.corpus_path)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _is_bundle(out))):
        raise ConfigError(f"--out {out} exists and is not a release bundle; pass a new folder (or remove it)")
    source = art.run.checkpoint(step)
    recorded = next(c for c in art.run_manifest().value["checkpoints"] if c["step"] == step)
    if not (source / "model.safetensors").is_file():
        raise ModelError(f"checkpoint {source} has no model.safetensors (the run recorded one); restore the "
                         "checkpoint folder from a copy, or pass --checkpoint another step")
    weights = sha256_file(source / "model.safetensors")
    if weights != recorded["sha256"]:
        raise ModelError(f"checkpoint {source} does not match the weights hash its run recorded; it was damaged or "
                         "replaced: restore it from a copy or retrain that step")
    from ..model.weights import weights_sha256

    weights_hash = weights_sha256(source)  # the hash results and caches record (over the folder's weight files)
    name = _slug(run_path.resolve().name)
    dataset_id = _slug(art.corpus_path.resolve().name)
    language = list(language)
    released = _released_evaluations(art, step, weights_hash)
    eval_results = [(_slug(Path(folder).resolve().name), art.sources.json(path).value) for folder, path in released]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name_ in CHECKPOINT_FILES:
            if (source / name_).is_file():
                shutil.copyfile(source / name_, tmp / name_)
        if sha256_file(tmp / "model.safetensors") != weights:
            raise ModelError(f"copying {source / 'model.safetensors'} did not give the same bytes; check the disk")
        (tmp / "run").mkdir()
        shutil.copyfile(run_path / "run.json", tmp / "run" / "run.json")
        if (run_path / "log.jsonl").is_file():
            shutil.copyfile(run_path / "log.jsonl", tmp / "run" / "log.jsonl")
        order = art.run_manifest().value["data_order"]
        atomic_write_bytes(tmp / "run" / "data_order.json", (json.dumps(order, indent=2) + "\n").encode("utf-8"))
        (tmp / "dataset").mkdir()
        shutil.copyfile(art.corpus_path / "manifest.json", tmp / "dataset" / "manifest.json")
        atomic_write_bytes(tmp / "dataset" / "README.md",
                           dataset_card(art, dataset_id, language, license, license_name).encode("utf-8"))
        used: set[str] = set()
        for folder, path in released:
            label = _slug(Path(folder).resolve().name)
            while label in used:
                label += "-1"
            used.add(label)
            (tmp / "eval" / label).mkdir(parents=True)
            shutil.copyfile(path, tmp / "eval" / label / "results.json")
        atomic_write_bytes(tmp / "README.md", model_card(art, step, weights, weights_hash, name, dataset_id, language,
                                                         license, license_name, eval_results).encode("utf-8"))
        if report:
            write_report(build_report(run_path, corpus, results, trace=trace, checkpoint=step, threads=threads),
                         tmp / "report")
        atomic_write_bytes(tmp / MARKER, b"seethrough release bundle\n")
        for path in tmp.rglob("*"):  # temporary files are private; a bundle is for sharing
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        files = write_sha256sums(tmp)
        os.chmod(tmp / SUMS, 0o644)
        total = sum((tmp / rel).stat().st_size for rel in files)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "bundle")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Release(out, step, files, total)
