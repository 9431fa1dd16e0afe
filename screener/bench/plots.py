"""PNG plots for the benchmark reports (matplotlib, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def pyplot() -> Any:
    """matplotlib's pyplot, set up for files (no display)."""
    return plt


def roc(scores: Mapping[str, Any], path: Path, title: str) -> None:
    """ROC curves of every score, false-positive rate on a log axis."""
    fig, ax = plt.subplots(figsize=(7, 5), dpi=90)
    for name, entry in scores.items():
        curve = entry["roc"]
        fpr = [max(f, 1e-4) for f in curve["fpr"]]
        ax.plot(
            fpr,
            curve["tpr"],
            label=f"{name} (AUC {entry['auc']:.3f})",
            linewidth=2.5 if name == "fused" else 1.2,
        )
    for x in (0.001, 0.01):
        ax.axvline(x, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("recall")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def recall_bars(
    scores: Mapping[str, Any], names: Sequence[str], fpr: str, path: Path, title: str
) -> None:
    """Recall per category at one false-positive rate, one bar per score."""
    categories = sorted(
        c
        for c, v in scores["fused"]["at_fpr"][fpr]["per_category"].items()
        if v["recall"] is not None
    )
    shown = [n for n in names if n in scores]
    fig, ax = plt.subplots(figsize=(max(8, len(categories) * 0.75), 4.5), dpi=90)
    width = 0.8 / max(1, len(shown))
    for i, name in enumerate(shown):
        per = scores[name]["at_fpr"][fpr]["per_category"]
        values = [per[c]["recall"] or 0.0 for c in categories]
        ax.bar([j + i * width for j in range(len(categories))], values, width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(categories))])
    ax.set_xticklabels(categories, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"recall at FPR {fpr}")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
