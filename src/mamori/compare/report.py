"""Render a comparison's results as one self-contained ``report.html`` (plots embedded, nothing fetched)."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")  # reports are written on headless servers
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["write_report"]

logger = logging.getLogger(__name__)

REGIMES = ("local", "federated", "centralized")
REGIME_LABELS = {"local": "each bank alone", "federated": "federated (Flower)", "centralized": "centralized (pooled)"}
COLOURS = {"local": "#9e9e9e", "federated": "#1565c0", "centralized": "#2e7d32"}


def _png(fig: Any) -> str:
    """Encode a figure as a data URI and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plot_bank_pr_auc(results: dict[str, Any]) -> str:
    banks = [b["bank"] for b in results["data"]["banks"]]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    width = 0.27
    for i, regime in enumerate(REGIMES):
        values = [results["regimes"][regime]["banks"][b]["overall"]["pr_auc"] for b in banks]
        ax.bar([x + (i - 1) * width for x in range(len(banks))], values, width, label=REGIME_LABELS[regime],
               color=COLOURS[regime])
    ax.set_xticks(range(len(banks)), banks)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("PR-AUC on the test days")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _plot_rounds(results: dict[str, Any]) -> str:
    rounds = results["regimes"]["federated"].get("rounds", [])
    fig, ax1 = plt.subplots(figsize=(7.5, 3.0))
    xs = [r["round"] for r in rounds]
    ax1.plot(xs, [r.get("pr_auc", float("nan")) for r in rounds], marker="o", color=COLOURS["federated"],
             label="federated evaluation PR-AUC")
    ax1.set_xlabel("round")
    ax1.set_ylabel("PR-AUC (members' evaluation)")
    ax1.set_ylim(0, 1.02)
    ax2 = ax1.twinx()
    ax2.plot(xs, [r.get("loss", float("nan")) for r in rounds], marker=".", color="#c62828", label="loss")
    ax2.set_ylabel("evaluation loss")
    fig.legend(loc="lower center", ncol=2, fontsize=8)
    ax1.grid(alpha=0.3)
    return _png(fig)


def _plot_family_recall(results: dict[str, Any]) -> str:
    families = sorted(results["families"])
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width = 0.27
    for i, regime in enumerate(REGIMES):
        values = [results["regimes"][regime]["families"].get(f, {}).get("recall", 0.0) for f in families]
        ax.bar([x + (i - 1) * width for x in range(len(families))], values, width, label=REGIME_LABELS[regime],
               color=COLOURS[regime])
    ax.set_xticks(range(len(families)), families, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("recall at each bank's threshold")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def write_report(results: dict[str, Any], path: Path) -> Path:
    """Write ``results`` (the structure of ``results.json``) as a self-contained HTML report.

    Parameters
    ----------
    results : dict
        The comparison results, as written to ``results.json``.
    path : pathlib.Path
        Where to write the HTML file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mamori.compare", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("report.html.j2")
    html = template.render(
        r=results,
        regimes=REGIMES,
        regime_labels=REGIME_LABELS,
        plot_banks=_plot_bank_pr_auc(results),
        plot_rounds=_plot_rounds(results),
        plot_families=_plot_family_recall(results),
    )
    path.write_text(html, encoding="utf-8")
    logger.info("report written to %s", path)
    return path
