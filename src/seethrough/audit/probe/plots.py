"""Plots of the probe and lens reports (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_probe(summary: dict[str, Any], path: str | Path) -> None:
    """AUROC (left) and accuracy (right) per layer, one line per method with its 95% band; the model's own
    output accuracy on the same test items as a dashed line with its band."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    layers = summary["layers"]
    for method in summary["methods"]:
        rows = sorted((r for r in summary["results"] if r["method"] == method), key=lambda r: r["layer"])
        x = [r["layer"] for r in rows]
        for axis, metric in zip(axes, ("auroc", "accuracy")):
            values = [r[metric] for r in rows]
            line = axis.plot(x, values, marker="o", label=method)[0]
            bands = [r[f"{metric}_ci"] for r in rows]
            if all(b is not None for b in bands):
                axis.fill_between(x, [b[0] for b in bands], [b[1] for b in bands], color=line.get_color(), alpha=0.15)
    if summary.get("output_accuracy") is not None:
        low, high = summary["output_accuracy_ci"]
        axes[1].axhline(summary["output_accuracy"], color="black", linestyle="--", label="model output")
        axes[1].axhspan(low, high, color="black", alpha=0.08)
    for axis, name in zip(axes, ("AUROC", "accuracy")):
        axis.axhline(0.5, color="grey", linewidth=0.8)
        axis.set_ylim(0, 1.02)
        axis.set_xticks(layers)
        axis.set_xlabel("layer (0: embeddings, L: output of block L)")
        axis.set_ylabel(f"test {name}")
    axes[1].legend(fontsize=8, loc="lower right")
    test = summary["test"]
    figure.suptitle(f"probes on {test['items']} test items" + (f" (group {test['group']})" if test["group"] else "")
                    + ", 95% bootstrap bands")
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)


def plot_lens_metrics(summary: dict[str, Any], path: str | Path) -> None:
    """KL to the final distribution (left) and cross-entropy (right) per layer, logit and tuned lens."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    rows = summary["layers"]
    x = [r["layer"] for r in rows]
    for lens in ("logit", "tuned"):
        if rows and rows[0].get(f"{lens}_kl") is not None:
            axes[0].plot(x, [r[f"{lens}_kl"] for r in rows], marker="o", label=f"{lens} lens")
            axes[1].plot(x, [r[f"{lens}_ce"] for r in rows], marker="o", label=f"{lens} lens")
    if summary.get("model_ce") is not None:
        axes[1].axhline(summary["model_ce"], color="black", linestyle="--", label="model")
    axes[0].set_ylabel("KL(final || lens), nats")
    axes[1].set_ylabel("cross-entropy, nats")
    for axis in axes:
        axis.set_xlabel("layer")
        axis.set_xticks(x)
        axis.legend(fontsize=8)
    figure.suptitle(f"lenses on {summary['heldout_tokens']:,} held-out tokens")
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)


def plot_lens_picture(picture: dict[str, Any], lens: str, path: str | Path) -> None:
    """Layers x positions: the top token of ``lens`` at each, coloured by its probability."""
    import numpy as np

    plt = _pyplot()
    grid = picture[lens]
    layers = picture["layers"]
    tokens = picture["tokens"]
    probabilities = np.array([[cell["p"] for cell in row] for row in grid])
    figure, axis = plt.subplots(figsize=(max(4, 0.9 * len(tokens) + 1.5), max(2.5, 0.45 * len(layers) + 1.2)))
    axis.imshow(probabilities, aspect="auto", cmap="Blues", vmin=0, vmax=1, origin="lower")
    for i, row in enumerate(grid):
        for j, cell in enumerate(row):
            axis.text(j, i, cell["token"][:10], ha="center", va="center", fontsize=7,
                      color="white" if cell["p"] > 0.6 else "black")
    axis.set_yticks(range(len(layers)), [str(layer) for layer in layers])
    axis.set_xticks(range(len(tokens)), [t[:10] for t in tokens], rotation=45, ha="right", fontsize=7)
    axis.set_ylabel("layer")
    axis.set_xlabel("input token (each cell: the top next token and its probability)")
    axis.set_title(f"{lens} lens")
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)


def plot_contexts(section: dict[str, Any], path: str | Path) -> None:
    """One panel per test context (``section["results"][context]``): each method's AUROC per layer with its
    95% band, and the model's own output accuracy in that context (dashed, with its Wilson band)."""
    plt = _pyplot()
    contexts = list(section["results"])
    figure, axes = plt.subplots(1, len(contexts), figsize=(5.5 * len(contexts), 4.2), sharey=True, squeeze=False)
    for axis, context in zip(axes[0], contexts):
        rows = section["results"][context]
        for method in section["methods"]:
            mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["layer"])
            x = [r["layer"] for r in mine]
            line = axis.plot(x, [r["auroc"] for r in mine], marker="o", label=f"{method} AUROC")[0]
            if all(r["auroc_ci"] for r in mine):
                axis.fill_between(x, [r["auroc_ci"][0] for r in mine], [r["auroc_ci"][1] for r in mine],
                                  color=line.get_color(), alpha=0.12)
        output = section["output_accuracy"][context]
        axis.axhline(output["accuracy"], color="black", linestyle="--", label="model output accuracy")
        axis.axhspan(output["ci"][0], output["ci"][1], color="black", alpha=0.08)
        axis.axhline(0.5, color="grey", linewidth=0.8)
        axis.set_ylim(0, 1.02)
        axis.set_xticks(section["layers"])
        axis.set_xlabel("layer (0: embeddings, L: output of block L)")
        axis.set_title(f"tested on {context} contexts ({output['items']} items)")
    axes[0][0].set_ylabel("AUROC against the truth / accuracy")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.suptitle(f"probes fitted on ordinary contexts; marker \"{section['marker']}\"")
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
