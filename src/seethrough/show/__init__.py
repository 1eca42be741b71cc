"""Layer 5, showing: the one-file transparency report and the Hugging Face release bundle.

    from seethrough.show import build_report, write_report, build_release

    report = build_report("run/", corpus=None, results=["eval/", "memorization/", "membership/"])
    write_report(report, "report/")          # report/index.html (self-contained) + report/report.json
    build_release("run/", results=["eval/"], out="bundle/")   # weights, config, tokenizer, cards, SHA256SUMS

Sections are pluggable (``sections.SECTIONS``); ``--results`` folders are recognised by the files they
hold (``artefacts.KINDS``). Every number on the page is in report.json with the sha256 of its source.
"""

from .artefacts import KINDS, recognise_folder
from .demo_step import demo_report
from .release import Release, build_release, verify_sha256sums
from .report import Report, build_report, write_report

__all__ = ["KINDS", "Release", "Report", "build_release", "build_report", "demo_report", "recognise_folder",
           "verify_sha256sums", "write_report"]
