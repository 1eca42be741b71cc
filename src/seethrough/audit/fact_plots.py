"""The plots of ``seethrough facts --out``, drawn from its ``summary.json`` content (matplotlib, Agg):
accuracy against exposures, against the checkpoint step, and per category, each with 95% Wilson intervals."""

from __future__ import annotations

from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(row: dict[str, Any], with_relation: bool = True) -> str:
    parts = [row["category"], row["format"]]
    if row.get("group") is not None:
        parts.append(f"group {row['group']}")
    if with_relation and row.get("relation") is not None:
        parts.append(row["relation"])
    return " · ".join(parts)


def _errors(rows: list[dict[str, Any]]) -> list[list[float]]:
    return [[r["accuracy"] - r["accuracy_ci"][0] for r in rows], [r["accuracy_ci"][1] - r["accuracy"] for r in rows]]


def _finish(plt: Any, fig: Any, ax: Any, path: Any, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (top-1 among candidates)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_by_step(summary: dict[str, Any], path: Any) -> None:
    """Accuracy at each checkpoint, one line per category x format x group x relation."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for k, checkpoint in enumerate(summary["checkpoints"]):
        x = checkpoint["step"] if checkpoint["step"] is not None else k
        for row in checkpoint["aggregates"]:
            series.setdefault(_label(row), []).append((x, row))
    for label, points in series.items():
        points.sort(key=lambda p: p[0])
        rows = [p[1] for p in points]
        ax.errorbar([p[0] for p in points], [r["accuracy"] for r in rows], yerr=_errors(rows), marker="o",
                    capsize=3, label=label)
    _finish(plt, fig, ax, path, "checkpoint step")


def plot_by_category(summary: dict[str, Any], path: Any) -> None:
    """The last checkpoint's accuracy per category x format x group x relation, with chance marked."""
    plt = _pyplot()
    rows = summary["checkpoints"][-1]["aggregates"] if summary["checkpoints"] else []
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(rows) + 2), 4.5))
    xs = list(range(len(rows)))
    ax.bar(xs, [r["accuracy"] for r in rows], yerr=_errors(rows), capsize=3, color="#6a8fc7")
    ax.scatter(xs, [r["chance"] for r in rows], marker="_", s=400, color="black", label="chance", zorder=3)
    ax.set_xticks(xs, [_label(r) for r in rows], rotation=40, ha="right", fontsize=7)
    _finish(plt, fig, ax, path, f"category · format · group ({summary['checkpoints'][-1]['checkpoint']})"
            if summary["checkpoints"] else "category")


def plot_by_exposures(summary: dict[str, Any], path: Any) -> None:
    """The last checkpoint's accuracy against exposures before it (powers of two, 0 drawn at 0.5)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list[dict[str, Any]]] = {}
    for row in summary["checkpoints"][-1]["by_exposures"]:
        series.setdefault(_label(row, with_relation=False), []).append(row)
    for label, rows in series.items():
        ax.errorbar([max(r["exposures"], 0.5) for r in rows], [r["accuracy"] for r in rows], yerr=_errors(rows),
                    marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    _finish(plt, fig, ax, path, "exposures before the checkpoint (stated: the fact's rows; else the least "
                                "exposed hop's)")
