"""The detection report: the tables a reader checks a detector by, and the files they are written to.

Tables (every row carries ``models_sha256``, ``texts_sha256`` and ``config_sha256``):

- ``headline``: per detector, on clean text, all decodings pooled: AUROC with its bootstrap
  interval (every clean text: AUROC needs no threshold), TPR at 1% and 0.1% FPR with bootstrap
  intervals (threshold from the calibration humans, recomputed in every resample; TPR on the
  test-split machine texts), the realised FPR on the test humans with a Clopper-Pearson interval,
  or "not estimable" where the calibration split is too small for the rate.
- ``decoding``: the same per decoding (one threshold for all: it is set on human text).
- ``attacks``: per attack, TPR at the *clean* threshold on attacked machine text, its change from
  clean, the FPR on attacked *human* text at that threshold, AUROC of attacked machine against
  clean human text; and the same with the sanitiser as a defence (everything sanitised, the
  threshold recalibrated on sanitised clean humans), with a row for the sanitiser on clean text.
- ``length``: per length bin (tokens of the scoring tokenizer), TPR and FPR at the global threshold.
- ``domain_transfer``: thresholds set on one domain's calibration humans, FPR and TPR on each
  domain's test texts (the field named by ``domain_field``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import RATE_KEYS, RATES, RateResult, auroc, auroc_with_interval, rate_metrics
from .texts import CALIBRATION, HUMAN, MACHINE, TEST, Text

LENGTH_BINS = ((0, 32), (32, 64), (64, 128), (128, 256), (256, 512), (512, None))
"""Token-count bins of the length table, [low, high)."""


@dataclass
class ScoredText:
    """One text as scored: the text, the attack and defence applied (None: clean), its token count
    under the scoring tokenizer, every detector's score and, for clean text with an index, the
    longest span it shares with the training data."""
    source: Text
    attack: str | None
    defence: str | None
    tokens: int
    scores: dict[str, float]
    longest_training_span: int | None = None
    text: str = ""
    """The text as scored (attacked and sanitised where it was)."""

    def to_dict(self) -> dict[str, Any]:
        record = self.source.to_dict()
        if self.attack is not None:
            record["attack"] = self.attack
        if self.defence is not None:
            record["defence"] = self.defence
        record["tokens"] = self.tokens
        record["scores"] = {k: (v if np.isfinite(v) else None) for k, v in self.scores.items()}
        if self.longest_training_span is not None:
            record["longest_training_span"] = self.longest_training_span
        record["text"] = self.text
        return record


@dataclass
class DetectionReport:
    """Every table of a detector test (``to_dict`` is ``detect.json``), with the per-text records."""
    detectors: list[str]
    headline: list[dict[str, Any]]
    decoding: list[dict[str, Any]]
    attacks: list[dict[str, Any]]
    length: list[dict[str, Any]]
    domain_transfer: list[dict[str, Any]]
    records: list[ScoredText]
    settings: dict[str, Any]
    hashes: dict[str, str]
    models: dict[str, Any]
    texts: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The ``--json`` answer: per detector the clean-text figures, then counts, hashes and notes."""
        keys = ("auroc", "auroc_ci", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci", "tpr_at_0.1pct_fpr",
                "tpr_at_0.1pct_fpr_ci", "fpr_realised", "fpr_realised_ci", "fpr_realised_0.1pct",
                "fpr_realised_0.1pct_ci", "not_estimable")
        return {"detectors": {row["detector"]: {k: row[k] for k in keys} for row in self.headline},
                "humans": self.texts["humans"], "machines": self.texts["machines"], **self.hashes,
                "notes": self.notes}

    def to_dict(self) -> dict[str, Any]:
        return {"detectors": self.detectors, "settings": self.settings, "models": self.models, "hashes": self.hashes,
                "texts": self.texts, "notes": self.notes, "headline": self.headline, "decoding": self.decoding,
                "attacks": self.attacks, "length": self.length, "domain_transfer": self.domain_transfer}


def _rng(seed: int, *key: Any) -> np.random.Generator:
    """A generator per table cell, so adding a cell never changes another's interval."""
    digest = hashlib.sha256(json.dumps([seed, *key], default=str).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _threshold(value: float | None) -> float | None:
    """A threshold for JSON: an infinite one (every calibration score infinite, as LRR is when every
    token ranks first) is written as null, beside its TPR and FPR."""
    return value if value is not None and math.isfinite(value) else None


def _rate_fields(result: RateResult) -> dict[str, Any]:
    key = RATE_KEYS[result.rate]
    return {f"tpr_at_{key}_fpr": result.tpr, f"tpr_at_{key}_fpr_ci": _list(result.tpr_ci),
            f"threshold_{key}": _threshold(result.threshold), f"fpr_at_{key}_threshold": result.fpr,
            f"fpr_at_{key}_threshold_ci": _list(result.fpr_ci)}


def _list(ci: Any) -> list[float] | None:
    return [float(ci[0]), float(ci[1])] if ci is not None else None


class _Pool:
    """Scores of the records by label, split, attack, defence, decoding, domain and length bin (numpy
    masks over every record, so a table of many cells stays fast on tens of thousands of texts)."""

    def __init__(self, records: list[ScoredText]) -> None:
        def column(values: list[Any]) -> np.ndarray:
            return np.array(["\x00none" if v is None else str(v) for v in values], dtype=object)

        self.label = column([r.source.label for r in records])
        self.split = column([r.source.split for r in records])
        self.attack = column([r.attack for r in records])
        self.defence = column([r.defence for r in records])
        self.decoding = column([r.source.decoding for r in records])
        self.domain = column([r.source.domain for r in records])
        self.tokens = np.array([r.tokens for r in records], dtype=np.int64)
        names = list(records[0].scores) if records else []
        self.values = {n: np.array([r.scores[n] for r in records], dtype=np.float64) for n in names}

    def scores(self, detector: str, label: str, split: str | None = None, attack: str | None = None,
               defence: str | None = None, **where: Any) -> np.ndarray:
        def value(v: Any) -> str:
            return "\x00none" if v is None else str(v)

        mask = (self.label == label) & (self.attack == value(attack)) & (self.defence == value(defence))
        if split is not None:
            mask &= self.split == split
        if "decoding" in where:
            mask &= self.decoding == value(where["decoding"])
        if "domain" in where:
            mask &= self.domain == value(where["domain"])
        if "length" in where:
            low, high = where["length"]
            mask &= (self.tokens >= low) & ((self.tokens < high) if high is not None else True)
        return self.values[detector][mask]


def _bin_name(bounds: tuple[int, int | None]) -> str:
    return f"{bounds[0]}-{bounds[1]}" if bounds[1] is not None else f"{bounds[0]}+"


def build_report(records: list[ScoredText], detectors: list[str], settings: Any, hashes: dict[str, str],
                 models: dict[str, Any], config: dict[str, Any], texts: dict[str, Any], notes: list[str],
                 decodings: list[str], attacks: list[str]) -> DetectionReport:
    """Every table from the scored records (see the module docstring)."""
    from ...errors import QueryError

    pool = _Pool(records)
    rounds, seed, above = settings.rounds, settings.seed, settings.min_humans_above
    calibration = {d: pool.scores(d, HUMAN, CALIBRATION) for d in detectors}
    if not len(next(iter(calibration.values()))) or not len(pool.scores(detectors[0], HUMAN, TEST)):
        raise QueryError(f"{texts['humans']} human text(s) cannot fill both a calibration and a test split; give more "
                         "human text (or another --calibration-share)")
    if not len(pool.scores(detectors[0], MACHINE, TEST)):
        raise QueryError("no machine text falls in the test split; give more machine text")

    headline = []
    clean_tpr: dict[tuple[str, float], float | None] = {}
    for d in detectors:
        human_test, machine_test = pool.scores(d, HUMAN, TEST), pool.scores(d, MACHINE, TEST)
        every_human, every_machine = pool.scores(d, HUMAN), pool.scores(d, MACHINE)
        value, interval = auroc_with_interval(every_machine, every_human, max(rounds, 1), seed)
        row: dict[str, Any] = {"detector": d, "auroc": value, "auroc_ci": [float(x) for x in interval]}
        results = [rate_metrics(calibration[d], human_test, machine_test, rate, rounds, _rng(seed, "headline", d, rate),
                                above) for rate in RATES]
        for result in results:
            clean_tpr[(d, result.rate)] = result.tpr
            key = RATE_KEYS[result.rate]
            row[f"tpr_at_{key}_fpr"] = result.tpr
            row[f"tpr_at_{key}_fpr_ci"] = _list(result.tpr_ci)
            suffix = "" if result.rate == 0.01 else f"_{key}"
            row[f"fpr_realised{suffix}"] = result.fpr
            row[f"fpr_realised{suffix}_ci"] = _list(result.fpr_ci)
            row[f"threshold_{key}"] = _threshold(result.threshold)
            row[f"ties_at_threshold_{key}"] = result.ties_at_threshold
        row["not_estimable"] = [RATE_KEYS[r.rate] for r in results if not r.estimable]
        row.update({"calibration_humans": len(calibration[d]), "test_humans": len(human_test),
                    "test_machines": len(machine_test), **hashes})
        headline.append(row)

    decoding_rows = []
    for name in decodings:
        for d in detectors:
            machine_test = pool.scores(d, MACHINE, TEST, decoding=name)
            if not len(machine_test):
                continue
            row = {"decoding": name, "detector": d,
                   "auroc": auroc(pool.scores(d, MACHINE, decoding=name), pool.scores(d, HUMAN)),
                   "test_machines": len(machine_test)}
            for rate in RATES:
                row.update(_rate_fields(rate_metrics(calibration[d], pool.scores(d, HUMAN, TEST), machine_test, rate,
                                                     rounds, _rng(seed, "decoding", name, d, rate), above)))
            decoding_rows.append({**row, **hashes})

    attack_rows = []
    for name in [None, *attacks]:
        for defence in (None, "sanitise"):
            if name is None and defence is None:
                continue  # clean without a defence is the headline
            for d in detectors:
                cal = calibration[d] if defence is None else pool.scores(d, HUMAN, CALIBRATION, defence=defence)
                human_test = pool.scores(d, HUMAN, TEST, attack=name, defence=defence)
                machine_test = pool.scores(d, MACHINE, TEST, attack=name, defence=defence)
                row = {"attack": name or "none", "defence": defence or "none", "detector": d,
                       "auroc": auroc(pool.scores(d, MACHINE, attack=name, defence=defence),
                                      pool.scores(d, HUMAN, defence=defence)),
                       "test_machines": len(machine_test), "test_humans": len(human_test)}
                for rate in RATES:
                    result = rate_metrics(cal, human_test, machine_test, rate, rounds,
                                          _rng(seed, "attack", name, defence, d, rate), above)
                    row.update(_rate_fields(result))
                    key = RATE_KEYS[rate]
                    before = clean_tpr[(d, rate)]
                    row[f"tpr_at_{key}_fpr_change"] = (result.tpr - before if result.tpr is not None
                                                       and before is not None else None)
                attack_rows.append({**row, **hashes})

    length_rows = []
    for bounds in LENGTH_BINS:
        for d in detectors:
            machine_test = pool.scores(d, MACHINE, TEST, length=bounds)
            human_test = pool.scores(d, HUMAN, TEST, length=bounds)
            if not len(machine_test) and not len(human_test):
                continue
            row = {"tokens": _bin_name(bounds), "detector": d, "test_machines": len(machine_test),
                   "test_humans": len(human_test)}
            for rate in RATES:
                row.update(_rate_fields(rate_metrics(calibration[d], human_test, machine_test, rate, rounds,
                                                     _rng(seed, "length", bounds, d, rate), above)))
            length_rows.append({**row, **hashes})

    domains = sorted({r.source.domain for r in records if r.source.label == HUMAN and r.source.domain is not None})
    transfer_rows = []
    for source in domains:
        for target in domains:
            for d in detectors:
                cal = pool.scores(d, HUMAN, CALIBRATION, domain=source)
                row = {"calibration_domain": source, "test_domain": target, "detector": d,
                       "calibration_humans": len(cal)}
                human_test = pool.scores(d, HUMAN, TEST, domain=target)
                machine_test = pool.scores(d, MACHINE, TEST, domain=target)
                row.update({"test_humans": len(human_test), "test_machines": len(machine_test)})
                for rate in RATES:
                    row.update(_rate_fields(rate_metrics(cal, human_test, machine_test, rate, rounds,
                                                         _rng(seed, "transfer", source, target, d, rate), above)))
                transfer_rows.append({**row, **hashes})
    n = len(next(iter(calibration.values())))
    for rate in RATES:
        if any(RATE_KEYS[rate] in row["not_estimable"] for row in headline):
            notes = [*notes, f"TPR at {rate:.1%} FPR is not estimable with {n} calibration humans: it needs "
                             f"{math.ceil(above / rate - 1e-9)} (floor({rate} x n) >= {above} may lie above the "
                             "threshold); give more human text"]
    if not domains:
        notes = [*notes, f"no human text has a {settings.domain_field!r} field, so there is no domain transfer table"]
    return DetectionReport(detectors, headline, decoding_rows, attack_rows, length_rows, transfer_rows, records,
                           config, hashes, models, texts, notes)


# ---- text ---------------------------------------------------------------------------------------

def _rate(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "not estimable"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def headline_lines(report: DetectionReport) -> list[str]:
    """The headline table as text: one line per detector."""
    n_cal = report.headline[0]["calibration_humans"] if report.headline else 0
    lines = [f"{'detector':<26} {'AUROC [95% CI]':<22} {'TPR@1%FPR [95% CI]':<24} {'realised FPR [CP 95%]':<24} "
             f"{'TPR@0.1%FPR':<22} ({n_cal} calibration humans, {report.headline[0]['test_humans']} test humans, "
             f"{report.headline[0]['test_machines']} test machine texts)" if report.headline else ""]
    for row in report.headline:
        auc = f"{row['auroc']:.3f} [{row['auroc_ci'][0]:.3f}, {row['auroc_ci'][1]:.3f}]"
        lines.append(f"{row['detector']:<26} {auc:<22} {_rate(row['tpr_at_1pct_fpr'], row['tpr_at_1pct_fpr_ci']):<24} "
                     f"{_rate(row['fpr_realised'], row['fpr_realised_ci']):<24} "
                     f"{_rate(row['tpr_at_0.1pct_fpr'], row['tpr_at_0.1pct_fpr_ci']):<22}")
    return lines


def grid_lines(rows: list[dict[str, Any]], key: str, value: str, detectors: list[str], label: str) -> list[str]:
    """A key x detector grid of one value (3 decimals; "n/e" where not estimable)."""
    keys = list(dict.fromkeys(r[key] for r in rows))
    cell = {(r[key], r["detector"]): r[value] for r in rows}
    width = max(8, *(len(d) for d in detectors)) if detectors else 8
    first = max(22, len(label), *(len(str(k)) + 1 for k in keys)) if keys else 22
    lines = [f"{label:<{first}}" + "".join(f"{d[:width]:>{width + 1}}" for d in detectors)]
    for k in keys:
        lines.append(f"{str(k):<{first}}" + "".join(
            f"{('n/e' if cell.get((k, d)) is None else format(cell[(k, d)], '.3f')):>{width + 1}}" for d in detectors))
    return lines


def report_lines(report: DetectionReport) -> list[str]:
    """The readable report: headline, TPR@1% by decoding, attacks (with the human FPR), length."""
    lines = ["headline (clean text):", *headline_lines(report)]
    if report.decoding:
        lines += ["", "TPR at 1% FPR by decoding:",
                  *grid_lines(report.decoding, "decoding", "tpr_at_1pct_fpr", report.detectors, "decoding")]
    if report.attacks:
        plain = [r for r in report.attacks if r["defence"] == "none"]
        defended = [dict(r, attack=f"{r['attack']}+sanitise") for r in report.attacks if r["defence"] == "sanitise"]
        lines += ["", "TPR at 1% FPR (clean threshold) under attack:",
                  *grid_lines(plain + defended, "attack", "tpr_at_1pct_fpr", report.detectors, "attack"),
                  "", "human FPR at the 1% threshold under the same attack:",
                  *grid_lines(plain + defended, "attack", "fpr_at_1pct_threshold", report.detectors, "attack")]
    if report.length:
        lines += ["", "TPR at 1% FPR by length (tokens):",
                  *grid_lines(report.length, "tokens", "tpr_at_1pct_fpr", report.detectors, "tokens")]
    lines += [f"note: {n}" for n in report.notes]
    return lines


# ---- files --------------------------------------------------------------------------------------

def _csv(rows: list[dict[str, Any]]) -> bytes:
    """Rows as CSV; an interval becomes two columns (``_lo``, ``_hi``), a list its JSON text."""
    flat = []
    for row in rows:
        out: dict[str, Any] = {}
        for k, v in row.items():
            if k.endswith("_ci"):
                out[f"{k}_lo"], out[f"{k}_hi"] = (v[0], v[1]) if v else (None, None)
            elif isinstance(v, list):
                out[k] = json.dumps(v)
            else:
                out[k] = v
        flat.append(out)
    buffer = io.StringIO()
    if flat:
        writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for r in flat for k in r)), lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
    return buffer.getvalue().encode("utf-8")


TABLES = ("headline", "decoding", "attacks", "length", "domain_transfer")


def write_detection(report: DetectionReport, out: str | Path) -> dict[str, str]:
    """``scores.jsonl``, ``detect.json``, one CSV per table, ``report.txt``, ``roc.png`` and
    ``roc_by_decoding.png`` in ``out``, each written atomically; returns the files."""
    from ..._files import atomic_write_bytes, atomic_write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r.to_dict(), ensure_ascii=False, allow_nan=False) + "\n" for r in report.records)
    atomic_write_bytes(out / "scores.jsonl", lines.encode("utf-8"))
    atomic_write_json(out / "detect.json", report.to_dict())
    for table in TABLES:
        atomic_write_bytes(out / f"{table}.csv", _csv(getattr(report, table)))
    atomic_write_bytes(out / "report.txt", ("\n".join(report_lines(report)) + "\n").encode("utf-8"))
    write_roc_plots(report, out)
    files = ["scores.jsonl", "detect.json", *(f"{t}.csv" for t in TABLES), "report.txt", "roc.png",
             "roc_by_decoding.png"]
    return {name: str(out / name) for name in files if (out / name).exists()}


def write_roc_plots(report: DetectionReport, out: Path) -> None:
    """ROC curves on a log FPR axis (1% and 0.1% marked): every detector on clean text (``roc.png``),
    and one panel per detector with a curve per decoding (``roc_by_decoding.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..membership import roc_curve

    pool = _Pool(report.records)
    floor = 1e-4

    from matplotlib.ticker import NullLocator

    def draw(ax: Any, curves: list[tuple[str, np.ndarray, np.ndarray]], title: str, legend: bool = True) -> None:
        for label, machine, humans in curves:
            if len(machine) and len(humans):
                fpr, tpr = roc_curve(machine, humans)
                ax.step(np.maximum(fpr, floor), tpr, where="post", label=label, linewidth=1)
        for rate in RATES:
            ax.axvline(rate, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())  # minor log ticks cost most of the drawing time
        ax.set_xlim(floor, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate (log)", fontsize=8)
        ax.set_ylabel("true positive rate", fontsize=8)
        ax.set_title(title, fontsize=9)
        if legend:
            ax.legend(fontsize=6, loc="lower right")
        ax.grid(alpha=0.3)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    draw(ax, [(f"{d} ({row['auroc']:.3f})", pool.scores(d, MACHINE), pool.scores(d, HUMAN))
              for d, row in zip(report.detectors, report.headline)], "clean text, every decoding")
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.94)  # fixed margins: tight_layout costs seconds
    _save(fig, out / "roc.png")
    plt.close(fig)
    decodings = list(dict.fromkeys(r.source.decoding for r in report.records
                                   if r.source.label == MACHINE and r.source.decoding is not None))
    if not decodings:
        return
    columns = min(4, len(report.detectors))
    rows = -(-len(report.detectors) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.3 * rows), squeeze=False)
    for i, (ax, d) in enumerate(zip(axes.flat, report.detectors)):
        humans = pool.scores(d, HUMAN)
        draw(ax, [(name, pool.scores(d, MACHINE, decoding=name), humans) for name in decodings], d, legend=i == 0)
    for ax in list(axes.flat)[len(report.detectors):]:
        ax.axis("off")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.94, wspace=0.3, hspace=0.4)
    _save(fig, out / "roc_by_decoding.png")
    plt.close(fig)


def _save(fig: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(path)
