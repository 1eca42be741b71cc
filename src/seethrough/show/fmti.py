"""The Foundation Model Transparency Index's 32 upstream indicators (v1.0, stanford-crfm/fmti), each
marked ``auto`` (filled from the artefacts, with the evidence and the section that shows it), ``user``
(only the people who made the data or ran the training can say) or ``n/a`` (does not apply, with the
reason)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UPSTREAM: list[tuple[str, str]] = [
    ("Data", "Data size"), ("Data", "Data sources"), ("Data", "Data creators"), ("Data", "Data source selection"),
    ("Data", "Data curation"), ("Data", "Data augmentation"), ("Data", "Harmful data filtration"),
    ("Data", "Copyrighted data"), ("Data", "Data license"), ("Data", "Personal information in data"),
    ("Data labor", "Use of human labor"), ("Data labor", "Employment of data laborers"),
    ("Data labor", "Geographic distribution of data laborers"), ("Data labor", "Wages"),
    ("Data labor", "Instructions for creating data"), ("Data labor", "Labor protections"),
    ("Data labor", "Third party partners"),
    ("Data access", "Queryable external data access"), ("Data access", "Direct external data access"),
    ("Compute", "Compute usage"), ("Compute", "Development duration"), ("Compute", "Compute hardware"),
    ("Compute", "Hardware owner"), ("Compute", "Energy usage"), ("Compute", "Carbon emissions"),
    ("Compute", "Broader environmental impact"),
    ("Methods", "Model stages"), ("Methods", "Model objectives"), ("Methods", "Core frameworks"),
    ("Methods", "Additional dependencies"),
    ("Data mitigations", "Mitigations for privacy"), ("Data mitigations", "Mitigations for copyright"),
]


@dataclass(frozen=True)
class Indicator:
    domain: str
    name: str
    status: str
    """``auto``, ``user`` or ``n/a``."""
    evidence: str
    section: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "indicator": self.name, "status": self.status, "evidence": self.evidence,
                "section": self.section}


def checklist(art: Any) -> list[Indicator]:
    rm = art.run_manifest().value
    cm = art.corpus_manifest().value
    built = art.built
    counts = cm.get("counts", {})
    hardware = rm.get("hardware", {})
    log = art.log().value
    tokens_seen = log[-1].get("tokens_seen") if log else 0
    flops = (rm.get("model", {}).get("flops_per_token") or 0) * (tokens_seen or 0)
    seconds = sum(r.get("seconds", 0) or 0 for r in log)
    datasheet = built.get("datasheet")
    licences = datasheet.evidence.get("licence_fields") if datasheet else ""
    versions: dict[str, str] = {"torch": str(hardware.get("torch", "?"))}
    for folder in art.folders("eval"):
        if (folder / "results.json").is_file():
            versions.update(art.sources.json(folder / "results.json").value["seethrough"].get("versions", {}))
    inputs = ", ".join(f"{i.get('path')} (sha256 {str(i.get('sha256'))[:12]}...)" for i in cm.get("inputs", []))
    user = "user"
    auto = "auto"
    labor_detail = ("to be given by the user (not applicable if the data involved no human labor: say so under "
                    "'Use of human labor')")
    marks = {
        "Data size": (auto, f"{counts.get('documents', 0):,} documents, {counts.get('tokens', 0):,} tokens in "
                            f"{counts.get('shards', 0)} shards (corpus manifest)", "datasheet"),
        "Data sources": (auto, f"input files with their sha256: {inputs}; where they came from is for the user to "
                               "describe", "datasheet"),
        "Data creators": (user, "who wrote the documents: to be given by the user", None),
        "Data source selection": (user, "why these sources: to be given by the user", None),
        "Data curation": (auto, f"seethrough's build applies no filter: every input line becomes a document "
                                f"({counts.get('skipped_lines', 0)} unreadable lines skipped); curation before it is "
                                "for the user to describe", "datasheet"),
        "Data augmentation": (user, "seethrough adds no synthetic or augmented data; any done upstream is for the "
                                    "user to describe", None),
        "Harmful data filtration": (user, "no filter for harmful content ran inside seethrough; any upstream "
                                          "filtration is for the user to describe", None),
        "Copyrighted data": (user, "copyright status of the documents: to be given by the user", None),
        "Data license": ((auto, f"licence fields present in the documents' metadata: {licences}", "datasheet")
                         if licences else (user, "no licence field in the documents' metadata", None)),
        "Personal information in data": (user, "no scan for personal information ran; to be given by the user "
                                               "(the index can search for known identifiers)", None),
        "Use of human labor": (user, "to be given by the user", None),
        "Employment of data laborers": (user, labor_detail, None),
        "Geographic distribution of data laborers": (user, labor_detail, None),
        "Wages": (user, labor_detail, None),
        "Instructions for creating data": (user, labor_detail, None),
        "Labor protections": (user, labor_detail, None),
        "Third party partners": (user, "to be given by the user", None),
        "Queryable external data access": ((auto, "the suffix-array index of the whole corpus is built: exact counts, "
                                                  "documents and tracing with `seethrough serve CORPUS` or the query "
                                                  "commands", "datasheet")
                                           if art.indexed else (user, "no index built (seethrough index build)", None)),
        "Direct external data access": (user, "whether the corpus itself is published: to be given by the user (the "
                                              "release bundle carries its dataset card and hashes, not its text)",
                                        None),
        "Compute usage": (auto, f"{flops:.3g} FLOPs (model FLOPs per token x {tokens_seen:,} tokens seen)", "training"),
        "Development duration": (auto, f"{seconds:,.0f} s of training steps (sum of log.jsonl's seconds; data "
                                       "preparation and evaluation not included)", "training"),
        "Compute hardware": (auto, f"{hardware.get('device', '?')}, {hardware.get('processes', '?')} process(es), "
                                   f"{hardware.get('threads', '?')} thread(s) (run manifest)", "provenance"),
        "Hardware owner": (user, "to be given by the user", None),
        "Energy usage": (user, "not measured; to be given by the user", None),
        "Carbon emissions": (user, "not measured; to be given by the user", None),
        "Broader environmental impact": (user, "to be given by the user", None),
        "Model stages": (auto, f"one stage: pre-training from random initialization for {len(log):,} steps "
                               "(no fine-tuning in this run)", "training"),
        "Model objectives": (auto, "next-token cross-entropy on packed rows of the data order (docs/formats.md)",
                             "training"),
        "Core frameworks": (auto, "PyTorch " + versions.get("torch", "?") + ", Hugging Face transformers (GPT-NeoX)",
                            "provenance"),
        "Additional dependencies": (auto, ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), "provenance"),
        "Mitigations for privacy": (user, "none applied by seethrough; to be given by the user", None),
        "Mitigations for copyright": (user, "none applied by seethrough; to be given by the user", None),
    }
    out = []
    for domain, name in UPSTREAM:
        status, evidence, section = marks[name]
        out.append(Indicator(domain, name, status, evidence, section))
    return out
