"""``bias data``: what the training data says about groups, counted exactly from the index.

For each axis (gender, religion, ...) and its groups of terms (``terms.py``):

- **Counts**: occurrences and documents of every term (all its surface variants) and of every group
  (all its terms), and per million tokens. Exact: every occurrence the index holds, nothing sampled.
- **Co-occurrence** (defined in ``counting.py``): for each target, its occurrences that have a term
  of the group within ``window`` tokens before or after, in the same document (``with``). From those:
  - ``share``: ``with[g] / sum of with over the axis' groups`` (null when no occurrence of the target
    has any group's term near it);
  - ``pmi``: ``log(share[g] / base[g])``, natural log, where ``base[g]`` is the group's share of
    all occurrences of the axis' terms in the corpus: how much more often than the groups' overall
    frequency the target appears near group g (0: as often; null when ``with[g]`` is 0);
  - ``log_odds``: the log-odds ratio with an informative Dirichlet prior of Monroe, Colaresi and
    Quinn (2008, eqs. 16-22), each group against the rest of its axis, the "words" being the targets:
    ``delta = log((y_g + a) / (n_g + a0 - y_g - a)) - log((y_r + a) / (n_r + a0 - y_r - a))`` with
    ``y_g = with[g]`` for the target, ``n_g`` its sum over all targets, ``r`` the other groups pooled,
    and ``z = delta / sqrt(1 / (y_g + a) + 1 / (y_r + a))``. The prior ``a`` of a target is its
    frequency among all the targets' occurrences in the corpus, given the total weight of the axis'
    co-occurrence counts (``a0 = sum of n_g over the groups``): the corpus itself is the background;
  - the targets most associated with each group: highest ``z``.
- **Sentiment**: the VADER compound score (Hutto and Gilbert 2014, ``vaderSentiment``, offline)
  of the text of the window around each occurrence of a group's terms (``window`` tokens either
  side, within the document, decoded with the corpus tokenizer), mean and 95% bootstrap interval
  per group; every occurrence, or a seeded uniform sample of ``max_windows`` of them (said in the
  output as ``sampled``): the occurrences in corpus order, indexes drawn by
  ``numpy.random.default_rng([seed, k]).choice(n, max_windows, replace=False)`` for the k-th group
  (axes in order, groups in order). VADER is an English social-media lexicon: it scores words, not
  meaning.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError
from .counting import count_by_owner, document_bounds, occurrence_spans, cooccurrence_counts
from .stats import mean_interval
from .terms import Groups, Term, Variant, resolve_groups, resolve_targets
from ..._files import finite_json as _finite  # NaN and infinity written as null

DATA_FILE = "bias_data.json"


@dataclass
class BiasDataSettings:
    window: int = 10
    """Tokens before and after a target (or a group term, for sentiment) that count as near it, inside its document."""
    max_windows: int = 10_000
    """Sentiment: at most this many windows per group, a seeded uniform sample of its occurrences (0: every occurrence)."""
    seed: int = 0
    """Seed of the sentiment sample and of the bootstrap intervals."""
    top: int = 10
    """Targets listed as most associated with each group (highest log-odds z)."""

    def __post_init__(self) -> None:
        for name, least in (("window", 1), ("max_windows", 0), ("top", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"--{name.replace('_', '-')} {value!r}: give a whole number of at least {least}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed {self.seed!r}: give a whole number of at least 0")


@dataclass
class BiasDataReport:
    """Everything ``measure_data_bias`` found; ``to_dict()`` is ``bias_data.json`` (and ``--json``)."""
    corpus: dict[str, Any]
    settings: BiasDataSettings
    terms: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    cooccurrence: list[dict[str, Any]]
    most_associated: list[dict[str, Any]]
    sentiment: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"corpus": self.corpus, "settings": dict(self.settings.__dict__), "terms": self.terms,
                "groups": self.groups, "cooccurrence": self.cooccurrence, "most_associated": self.most_associated,
                "sentiment": self.sentiment, "notes": self.notes}


# ---- the statistics, on plain counts ---------------------------------------------------------------


def shares(together: np.ndarray) -> np.ndarray:
    """(groups, targets) co-occurrence counts -> each group's share per target (NaN where a target has none)."""
    total = together.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, together / np.maximum(total, 1), np.nan)


def pmi(together: np.ndarray, group_occurrences: np.ndarray) -> np.ndarray:
    """``log(share[g] / base[g])`` per (group, target); NaN where the share is 0 or undefined, or the
    axis' terms never occur."""
    base = group_occurrences / group_occurrences.sum() if group_occurrences.sum() else np.full(len(group_occurrences), np.nan)
    share = shares(together)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log(share / base[:, None])
    return np.where(np.isfinite(out), out, np.nan)


def log_odds_dirichlet(together: np.ndarray, target_occurrences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(delta, z) per (group, target): each group against the rest of its axis, with the informative
    Dirichlet prior described in the module docstring. NaN where undefined (a target that never occurs)."""
    together = together.astype(np.float64)
    weight = together.sum()
    occurrences = target_occurrences.astype(np.float64)
    alpha = occurrences * (weight / occurrences.sum()) if occurrences.sum() and weight else np.zeros_like(occurrences)
    alpha0 = alpha.sum()
    delta = np.full(together.shape, np.nan)
    z = np.full(together.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for g in range(len(together)):
            mine, rest = together[g], together.sum(axis=0) - together[g]
            n_mine, n_rest = mine.sum(), rest.sum()
            odds_mine = (mine + alpha) / (n_mine + alpha0 - mine - alpha)
            odds_rest = (rest + alpha) / (n_rest + alpha0 - rest - alpha)
            value = np.log(odds_mine) - np.log(odds_rest)
            spread = np.sqrt(1 / (mine + alpha) + 1 / (rest + alpha))
            ok = (alpha > 0) & np.isfinite(value) & (n_mine + alpha0 - mine - alpha > 0) & \
                (n_rest + alpha0 - rest - alpha > 0)
            delta[g] = np.where(ok, value, np.nan)
            z[g] = np.where(ok, value / spread, np.nan)
    return delta, z


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# ---- sentiment -------------------------------------------------------------------------------------


def sentiment_analyzer() -> Any:
    """VADER's analyzer (the lexicon ships with ``vaderSentiment``; nothing is downloaded)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise ConfigError("sentiment needs vaderSentiment; install it with `pip install 'seethrough[train]'`") from None
    return SentimentIntensityAnalyzer()


def window_texts(index: Any, spans: list[Any], picks: np.ndarray, window: int) -> list[str]:
    """Decoded text of the window around each picked occurrence (``picks`` index the occurrences of all
    shards in corpus order): ``window`` tokens either side, cut at the document's bounds."""
    tokenizer = index.tokenizer.tokenizer
    sizes = np.cumsum([0] + [len(part) for part in spans])
    rows: list[list[int]] = []
    for s, (ix, part) in enumerate(zip(index.shard_indexes, spans)):
        local = picks[(picks >= sizes[s]) & (picks < sizes[s + 1])] - sizes[s]
        if not len(local):
            continue
        starts, lengths = part.starts[local], part.lengths[local]
        first, end = document_bounds(ix, starts)
        lo, hi = np.maximum(first, starts - window), np.minimum(end, starts + lengths + window)
        tokens = ix.shard.tokens
        rows.extend(tokens[a:b].tolist() for a, b in zip(lo.tolist(), hi.tolist()))
    return tokenizer.decode_batch(rows, skip_special_tokens=False)


def measure_sentiment(index: Any, groups: Groups, settings: BiasDataSettings, spans: list[Any] | None = None,
                      first_owner: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """Mean VADER compound score of the windows around each group's terms, with its bootstrap interval.
    ``spans``: the groups' occurrences when already found (group k's owner ``first_owner + k``)."""
    names = [(axis, group) for axis in groups.axes for group in groups.terms[axis]]
    if spans is None:
        spans = occurrence_spans(index, [_union(groups.terms[axis][group]) for axis, group in names])
        first_owner = 0
    analyzer = sentiment_analyzer()
    rows, notes = [], []
    for number, (axis, group) in enumerate(names):
        mine = [part.of(first_owner + number) for part in spans]
        total = sum(len(part) for part in mine)
        sampled = bool(settings.max_windows) and total > settings.max_windows
        if sampled:
            rng = np.random.default_rng([settings.seed, number])
            picks = np.sort(rng.choice(total, size=settings.max_windows, replace=False))
        else:
            picks = np.arange(total)
        texts = window_texts(index, mine, picks, settings.window)
        scores = np.array([analyzer.polarity_scores(text)["compound"] for text in texts], dtype=np.float64)
        rows.append({"axis": axis, "group": group, "occurrences": total, "windows": len(scores), "sampled": sampled,
                     "mean": float(scores.mean()) if len(scores) else None,
                     "ci": mean_interval(scores, seed=settings.seed)})
        if sampled:
            notes.append(f"sentiment of {axis}/{group}: a seeded uniform sample (seed {settings.seed}) of "
                         f"{settings.max_windows:,} of its {total:,} occurrences (--max-windows)")
        elif not total:
            notes.append(f"sentiment of {axis}/{group}: its terms never occur, so there is no window to score")
    return rows, notes


def _union(terms: list[Term]) -> list[Variant]:
    """All variants of a group's terms, each distinct token sequence once."""
    return list({v.ids: v for term in terms for v in term.variants}.values())


# ---- the audit -------------------------------------------------------------------------------------


def measure_data_bias(index: Any, groups: Any = "builtin", targets: Any = "builtin",
                      settings: BiasDataSettings | None = None) -> BiasDataReport:
    """Counts, co-occurrence statistics and sentiment of ``groups`` (``builtin``, a JSON file or a dict
    ``{axis: {group: [terms]}}``) and ``targets`` (``builtin``, a JSON list / one-a-line file, or a
    list) in the indexed corpus ``index``; writes nothing."""
    settings = settings or BiasDataSettings()
    resolved = resolve_groups(index, groups)
    target_terms, target_notes = resolve_targets(index, targets)
    notes = [*resolved.notes, *target_notes]
    per_million = 1e6 / index.num_tokens if index.num_tokens else float("nan")

    # counts of every term and every group, in one pass over the index
    term_list = [t for axis in resolved.axes for terms in resolved.terms[axis].values() for t in terms]
    group_names = [(axis, group) for axis in resolved.axes for group in resolved.terms[axis]]
    sets = [t.variants for t in term_list] + [_union(resolved.terms[a][g]) for a, g in group_names]
    spans = occurrence_spans(index, sets)
    occurrences, documents = count_by_owner(index, spans, len(sets))
    terms_out = [{"axis": t.axis, "group": t.group, "term": t.text, "variants": [v.text for v in t.variants],
                  "occurrences": int(n), "documents": int(d), "per_million": _number(n * per_million)}
                 for t, n, d in zip(term_list, occurrences, documents)]
    group_counts = {name: (int(n), int(d)) for name, n, d in zip(group_names, occurrences[len(term_list):],
                                                                 documents[len(term_list):])}
    groups_out = [{"axis": a, "group": g, "terms": len(resolved.terms[a][g]), "occurrences": n, "documents": d,
                   "per_million": _number(n * per_million)} for (a, g), (n, d) in group_counts.items()]

    # co-occurrence of every target with every group, axis by axis (the targets' spans found once)
    target_sets = [t.variants for t in target_terms]
    target_spans = occurrence_spans(index, target_sets)
    target_occurrences, target_documents = count_by_owner(index, target_spans, len(target_sets))
    cooccurrence, associated = [], []
    for axis in resolved.axes:
        names = resolved.groups(axis)
        _, together = cooccurrence_counts(index, target_sets, [_union(resolved.terms[axis][g]) for g in names],
                                          settings.window, target_spans)
        share = shares(together)
        association = pmi(together, np.array([group_counts[(axis, g)][0] for g in names], dtype=np.float64))
        delta, z = log_odds_dirichlet(together, target_occurrences)
        for t, term in enumerate(target_terms):
            record = {"axis": axis, "target": term.text, "variants": [v.text for v in term.variants],
                      "occurrences": int(target_occurrences[t]), "documents": int(target_documents[t]),
                      "per_million": _number(target_occurrences[t] * per_million),
                      "with": {g: int(together[k, t]) for k, g in enumerate(names)},
                      "share": {g: _number(share[k, t]) for k, g in enumerate(names)},
                      "pmi": {g: _number(association[k, t]) for k, g in enumerate(names)},
                      "log_odds": {g: {"value": _number(delta[k, t]), "z": _number(z[k, t])}
                                   for k, g in enumerate(names)}}
            if not target_occurrences[t]:
                record["note"] = "never occurs in the corpus: counts are 0, the statistics undefined (null)"
            elif not together[:, t].any():
                record["note"] = f"no occurrence has a term of any {axis} group within the window: shares undefined"
            cooccurrence.append(record)
        for k, group in enumerate(names):
            ranked = sorted((t for t in range(len(target_terms)) if together[k, t] and np.isfinite(z[k, t])),
                            key=lambda t: (-z[k, t], target_terms[t].text))[:settings.top]
            associated.append({"axis": axis, "group": group, "targets": [
                {"target": target_terms[t].text, "z": float(z[k, t]), "log_odds": float(delta[k, t]),
                 "with": int(together[k, t])} for t in ranked]})
    absent = [t.text for t, n in zip(target_terms, target_occurrences) if not n]
    if absent:
        notes.append(f"{len(absent)} target(s) never occur in the corpus (reported as 0, statistics null): "
                     f"{', '.join(absent[:20])}{' ...' if len(absent) > 20 else ''}")
    sentiment, sentiment_notes = measure_sentiment(index, resolved, settings, spans, len(term_list))
    corpus = {"path": str(index.path), "corpus_hash": index.corpus.corpus_hash, "tokens": int(index.num_tokens),
              "documents": int(index.num_documents)}
    return BiasDataReport(corpus, settings, terms_out, groups_out, cooccurrence, associated, sentiment,
                          notes + sentiment_notes)


# ---- writing ---------------------------------------------------------------------------------------


def csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue().encode("utf-8")


def save_figure(fig: Any, path: Path) -> None:
    """A figure written under a temporary name, then renamed."""
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def plot_shares(report: BiasDataReport, path: Path) -> None:
    """Per axis, each target's share per group (stacked bars); targets without co-occurrences left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = list(dict.fromkeys(r["axis"] for r in report.cooccurrence))
    rows = {a: [r for r in report.cooccurrence if r["axis"] == a and any(v is not None for v in r["share"].values())]
            for a in axes}
    height = max(3.0, 0.22 * max((len(v) for v in rows.values()), default=1) + 1.5)
    fig, panels = plt.subplots(1, len(axes), figsize=(5 * len(axes), height), squeeze=False)
    for panel, axis in zip(panels[0], axes):
        records = rows[axis]
        names = list(records[0]["share"]) if records else []
        left = np.zeros(len(records))
        for group in names:
            values = np.array([r["share"][group] for r in records], dtype=np.float64)
            panel.barh(range(len(records)), values, left=left, label=group)
            left += values
        panel.set_yticks(range(len(records)), [r["target"] for r in records], fontsize=7)
        panel.invert_yaxis()
        panel.set_xlim(0, 1)
        panel.set_xlabel(f"share of co-occurrences ({axis}, window {report.settings.window})")
        if names:
            panel.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def plot_sentiment(report: BiasDataReport, path: Path) -> None:
    """Mean VADER compound score per group with its 95% bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.sentiment if r["mean"] is not None]
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(rows) + 1)))
    means = [r["mean"] for r in rows]
    low = [r["mean"] - r["ci"][0] for r in rows]
    high = [r["ci"][1] - r["mean"] for r in rows]
    ax.errorbar(means, range(len(rows)), xerr=[low, high], fmt="o", capsize=3)
    ax.set_yticks(range(len(rows)), [f"{r['axis']}/{r['group']} (n={r['windows']})" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(f"VADER compound, window ±{report.settings.window} tokens (95% bootstrap CI)")
    fig.tight_layout()
    save_figure(fig, path)


def write_bias_data(report: BiasDataReport, out: str | Path) -> dict[str, str]:
    """``out/bias_data.json`` (the report), ``terms.csv``, ``cooccurrence.csv``, ``sentiment.csv``,
    ``share_by_target.png`` and ``sentiment_by_group.png``; returns the paths. An earlier
    ``bias_data.json`` is removed first and the new one written last, so the tables beside a
    ``bias_data.json`` are always its own."""
    from ..._files import atomic_write_bytes, atomic_write_json

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder (it is created if missing)")
    out.mkdir(parents=True, exist_ok=True)
    (out / DATA_FILE).unlink(missing_ok=True)
    import json

    atomic_write_bytes(out / "terms.csv", csv_bytes(
        ["axis", "group", "term", "variants", "occurrences", "documents", "per_million"],
        [[r["axis"], r["group"], r["term"], json.dumps(r["variants"]), r["occurrences"], r["documents"],
          r["per_million"]] for r in report.terms]))
    atomic_write_bytes(out / "cooccurrence.csv", csv_bytes(
        ["axis", "target", "group", "occurrences", "with", "share", "pmi", "log_odds", "z"],
        [[r["axis"], r["target"], g, r["occurrences"], r["with"][g], r["share"][g], r["pmi"][g],
          r["log_odds"][g]["value"], r["log_odds"][g]["z"]] for r in report.cooccurrence for g in r["with"]]))
    atomic_write_bytes(out / "sentiment.csv", csv_bytes(
        ["axis", "group", "occurrences", "windows", "sampled", "mean", "ci_low", "ci_high"],
        [[r["axis"], r["group"], r["occurrences"], r["windows"], r["sampled"], r["mean"],
          *(r["ci"] or [None, None])] for r in report.sentiment]))
    plot_shares(report, out / "share_by_target.png")
    plot_sentiment(report, out / "sentiment_by_group.png")
    atomic_write_json(out / DATA_FILE, _finite(report.to_dict()))
    names = ["terms.csv", "cooccurrence.csv", "sentiment.csv", "share_by_target.png", "sentiment_by_group.png",
             DATA_FILE]
    return {name: str(out / name) for name in names}


