"""The demo's report step: ``demo-out/report/`` from the folders the demo wrote (called by
``seethrough.demo.run_demo`` at its end)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

DEMO_FOLDERS = ("eval", "memorization", "membership", "facts", "bias/data", "bias/model", "probe", "lens", "detect",
                "control/eraser", "control/vector")
"""Where the demo's audits write, in report order; each one present and recognised is included."""


def demo_report(out: str | Path, threads: int | None = None) -> dict[str, Any]:
    """Write ``OUT/report/index.html`` and ``report.json`` for the demo folder ``OUT`` (its ``run`` and every
    folder of ``DEMO_FOLDERS`` that holds a known artefact); returns the summary entry for summary.json."""
    from .artefacts import KINDS
    from .report import build_report, write_report

    out = Path(out)
    began = time.perf_counter()
    folders = [out / name for name in DEMO_FOLDERS
               if (out / name).is_dir() and any(test(out / name) for _, test in KINDS.values())]
    report = build_report(out / "run", results=folders, threads=threads)
    write_report(report, out / "report")
    return {"path": str(out / "report" / "index.html"), "sections": report.sections,
            "numbers": len(report.numbers["numbers"]), "sources": len(report.numbers["sources"]),
            "fmti_auto": sum(i["status"] == "auto" for i in report.numbers["fmti"]),
            "fmti_indicators": len(report.numbers["fmti"]), "seconds": round(time.perf_counter() - began, 2)}
