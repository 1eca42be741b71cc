"""Testing AI-text detectors honestly: any detector, any open model, TPR at low false-positive rates.

    from seethrough.audit.detect import DetectSettings, evaluate_detectors, write_detection
    report = evaluate_detectors("run/", human="human.jsonl", settings=DetectSettings(decoding="greedy,sampling"))
    report.summary()                 # per detector: AUROC, TPR at 1% / 0.1% FPR, realised FPR, with intervals
    write_detection(report, "out/")  # scores.jsonl, detect.json, tables (CSV), report.txt, ROC plots

- ``texts``: human and machine sets, the held-out check against the training index, trimming, splits.
- ``generation``: decoding settings and seeded, batch-independent continuations of human prefixes.
- ``detectors``: the eight one-pass scores, the paired Fast-DetectGPT / Binoculars, user callables.
- ``attacks``: deterministic text edits (RAID's text-only set, decoherence) and the sanitiser.
- ``metrics``: exact-quantile thresholds, Clopper-Pearson, bootstrap TPR at FPR, AUROC.
- ``report``: the tables and the files; ``run``: ``evaluate_detectors``, the whole test.
"""

from .attacks import ATTACKS, sanitise
from .detectors import ONE_PASS, PAIRED, DetectorSet
from .generation import DEFAULT_DECODINGS, Decoding, parse_decodings
from .report import DetectionReport, ScoredText, report_lines, write_detection
from .run import DetectSettings, evaluate_detectors
from .texts import Text

__all__ = ["ATTACKS", "DEFAULT_DECODINGS", "Decoding", "DetectSettings", "DetectionReport", "DetectorSet", "ONE_PASS",
           "PAIRED", "ScoredText", "Text", "evaluate_detectors", "parse_decodings", "report_lines", "sanitise",
           "write_detection"]
