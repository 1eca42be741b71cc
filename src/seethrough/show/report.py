"""``seethrough report``: one self-contained HTML page (inline CSS and SVG, no script, a CSP that forbids
every request) and ``report.json`` with every number the page shows and the sha256 of its source file.

    report = build_report("run/", results=["eval/", "memorization/"])
    write_report(report, "report/")     # report/index.html + report/report.json, written atomically
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .._files import atomic_write_bytes, finite_json
from ..errors import ConfigError, RunError, SeethroughError
from .artefacts import Artefacts, gather, refuse_out_inside
from .fmti import checklist
from .markup import Html, esc, page, para, table, tag
from .sections import SECTIONS, Section
from .sources import Numbers

REPORT_FORMAT = "seethrough.report"
REPORT_FILES = ("index.html", "report.json")


@dataclass
class Report:
    """A built report: ``html`` (the page) and ``numbers`` (report.json's content)."""
    html: str
    numbers: dict[str, Any]
    sections: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.numbers


def _fmti_section(art: Artefacts) -> Section:
    n = Numbers("fmti")
    indicators = checklist(art)
    rm, cm, log = art.run_manifest(), art.corpus_manifest(), art.log()
    # the numbers quoted in the evidence, recorded like every other
    n.value("documents", cm, "/counts/documents")
    n.value("tokens", cm, "/counts/tokens")
    if log.value:
        tokens = log.value[-1].get("tokens_seen") or 0
        n.derived_value("compute_flops", (rm.value.get("model", {}).get("flops_per_token") or 0) * tokens, rm,
                        "run.json model.flops_per_token x tokens_seen of log.jsonl's last line")
        n.derived_value("training_seconds", sum(r.get("seconds", 0) or 0 for r in log.value), log,
                        "sum of seconds over the steps")
    auto = sum(i.status == "auto" for i in indicators)
    user = sum(i.status == "user" for i in indicators)
    na = sum(i.status == "n/a" for i in indicators)
    labels = {"auto": ("filled automatically", "auto"), "user": ("to be given by the user", "user"),
              "n/a": ("not applicable", "na")}
    rows = []
    for i in indicators:
        label, css = labels[i.status]
        where = Html(f' (<a href="#{esc(i.section)}">{esc(i.section)}</a>)') if i.section in art.built else Html("")
        rows.append([esc(i.domain), esc(i.name), Html(f'<span class="badge {css}">{esc(label)}</span>'),
                     Html(esc(i.evidence) + where)])
    html = Html(para("The Foundation Model Transparency Index's upstream indicators (v1.0: data, data labor, data "
                     "access, compute, methods, data mitigations): ", tag("b", f"{auto} of {len(indicators)}"),
                     " filled automatically from the artefacts, ", esc(str(user)), " to be given by the people who "
                     "made the data and ran the training", f", {na} not applicable" if na else "", ".")
                + table(["domain", "indicator", "status", "evidence"], rows))
    section = Section("fmti", "Transparency checklist (FMTI upstream)", html, n.items)
    section.evidence = {"indicators": json.dumps([i.to_dict() for i in indicators])}
    return section


def _built_section(build: Callable[[Artefacts], Section | None], art: Artefacts) -> Section | None:
    """One section; an artefact that parses as JSON but lacks the fields its command writes (hand-edited,
    truncated, another tool's file of the same name) is refused naming the files the section read."""
    read_before = set(art.sources.files)
    try:
        return build(art)
    except SeethroughError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
        read_here = [path for path in art.sources.files if path not in read_before] or list(art.sources.files)[-1:]
        suspects = ([path for path in read_here if art.sources.in_results(path)] or read_here)[-3:]
        files = ", ".join(suspects) or "its artefacts"
        fix = art.sources.fix_for(suspects[-1] if suspects else art.run_path)
        raise RunError(f"the {build.__name__} section cannot read {files} ({type(error).__name__}: "
                       f"{str(error)[:80]}): not in the shape seethrough writes; {fix}") from None


def build_report(run: str | Path, corpus: str | Path | None = None, results: Sequence[str | Path] = (),
                 trace: bool = True, trace_prompts: Sequence[str] | None = None, checkpoint: int | None = None,
                 device: str = "cpu", threads: int | None = None) -> Report:
    """The report of ``run`` (its corpus, or ``corpus`` if it moved) and the ``results`` folders (each
    recognised by the files it holds; see ``artefacts.KINDS``). ``trace``: generate from the final
    checkpoint and trace the text in the index (needs the index; prompts chosen from the most duplicated
    documents' openings unless ``trace_prompts`` are given) with checkpoint ``checkpoint`` (default: the newest)."""
    art = gather(run, corpus, results, trace=trace, trace_prompts=list(trace_prompts or []), checkpoint=checkpoint,
                 device=device, threads=threads)
    sections: list[Section] = []
    for fn in SECTIONS:
        section = _built_section(fn, art)
        if section is not None:
            sections.append(section)
            art.built[section.id] = section
    fmti = _fmti_section(art)
    sections.append(fmti)
    keys = [num.key for s in sections for num in s.numbers]
    duplicates = sorted({k for k in keys if keys.count(k) > 1}) if len(set(keys)) != len(keys) else []
    if duplicates:  # a programming error in a section, never the user's
        raise AssertionError(f"report number keys recorded twice: {duplicates[:5]}")
    rm = art.run_manifest()
    title = f"Transparency report: {art.run_path.name or art.run_path}"
    subtitle = (f"run {art.run_path} ({rm.value['config'].get('model_size')}, {rm.value['model'].get('parameters'):,} "
                f"parameters), corpus {art.corpus_path}; {len(sections)} sections")
    html = page(title, subtitle, [(s.id, s.title, s.html) for s in sections])
    from .. import __version__

    numbers = {
        "format": REPORT_FORMAT, "format_version": 1, "code_version": __version__,
        "run": str(art.run_path), "corpus": str(art.corpus_path),
        "results": {kind: [str(f) for f in folders] for kind, folders in art.results.items()},
        "sections": [{"id": s.id, "title": s.title} for s in sections],
        "sources": {path: f.to_dict() for path, f in sorted(art.sources.files.items())},
        "fmti": json.loads(fmti.evidence["indicators"]),
        "numbers": [num.to_dict() for s in sections for num in s.numbers],
    }
    return Report(html, finite_json(numbers), [s.id for s in sections])


def _is_report_folder(folder: Path) -> bool:
    return (folder / "report.json").is_file() and (folder / "index.html").is_file()


def write_report(report: Report, out: str | Path | None = None) -> Path:
    """``out/index.html`` and ``out/report.json`` (default ``out``: ``RUN-report`` beside the run), the folder
    returned. ``out`` is created if missing; an existing folder must be empty or a report (its two files are
    replaced, each atomically); anything else is refused."""
    run = Path(report.numbers["run"])
    out = Path(out) if out is not None else run.parent / f"{run.name}-report"
    refuse_out_inside(out, run, Path(report.numbers["corpus"]))
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder for the report")
    if out.is_dir() and any(out.iterdir()) and not _is_report_folder(out):
        raise ConfigError(f"--out {out} is a folder that is not a report (no index.html + report.json); pass a new "
                          "or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.numbers, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write_bytes(out / "report.json", text.encode("utf-8"))
    atomic_write_bytes(out / "index.html", report.html.encode("utf-8"))
    for name in REPORT_FILES:  # temporary files are created private; a report is for reading
        os.chmod(out / name, 0o644)
    return out
