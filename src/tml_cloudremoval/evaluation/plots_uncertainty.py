"""The uncertainty figure of the evaluation report: reliability diagram and sparsification.

Made without pyplot, as :mod:`~tml_cloudremoval.evaluation.plots`; drawn from the report of
:func:`~tml_cloudremoval.evaluation.uncertainty.evaluate_uncertainty` (plain JSON values), so it
can be redrawn from ``uncertainty.json`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

REGION_STYLE = {"covered": "tab:red", "clear": "tab:blue"}
"""Regions drawn, and their colours (``all`` is in the JSON, not in the figure)."""


def _message_figure(text: str) -> Figure:
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return fig


def _reliability(ax: Any, regions: Mapping[str, Any]) -> None:
    """Predicted against observed RMSE per variance bin, log-log, with the diagonal."""
    values = []
    for region, colour in REGION_STYLE.items():
        v = regions.get(region)
        if v is None:
            continue
        rel = v["reliability"]
        predicted, observed = np.asarray(rel["predicted_rmse"]), np.asarray(rel["observed_rmse"])
        size = 10 + 90 * np.sqrt(np.asarray(rel["n"]) / max(rel["n"]))
        ax.plot(predicted, observed, "-", color=colour, lw=1, alpha=0.6)
        label = f"{region} (UCE {v['uce']:.1e})"
        ax.scatter(predicted, observed, s=size, color=colour, label=label)
        values += [*predicted, *observed]
    positive = [x for x in values if x > 0]
    if positive:
        lo, hi = min(positive) / 1.5, max(positive) * 1.5
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="calibrated")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xlabel("predicted RMSE sqrt(mean sigma^2) (reflectance)")
    ax.set_ylabel("observed RMSE (reflectance)")
    ax.set_title("Reliability (dot area ~ values in the bin)")
    ax.legend(fontsize=8)


def _sparsification(ax: Any, regions: Mapping[str, Any]) -> None:
    """RMSE of the values left against the fraction removed: model (solid), oracle (dashed)."""
    for region, colour in REGION_STYLE.items():
        v = regions.get(region)
        if v is None:
            continue
        curve = v["sparsification"]
        f = 100 * np.asarray(curve["fraction_removed"])
        ax.plot(f, curve["model_rmse"], "-", color=colour, label=f"{region} (AUSE {v['ause']:.4f})")
        ax.plot(f, curve["oracle_rmse"], "--", color=colour, label=f"{region} oracle")
    ax.set_xlabel("most uncertain values removed (%)")
    ax.set_ylabel("RMSE of the rest (reflectance)")
    ax.set_title("Sparsification (dashed: largest errors removed first)")
    ax.legend(fontsize=8)


def plot_uncertainty(report: Mapping[str, Any]) -> Figure:
    """Reliability diagram and sparsification curves over covered and clear pixels; for a
    model without uncertainty (``{"uncertainty": "none"}``) a figure that says so."""
    if report.get("uncertainty") != "aleatoric":
        return _message_figure(
            "This model predicts no uncertainty (model.uncertainty: none): nothing to calibrate.\n"
            "Train with model.uncertainty=aleatoric for the reliability and sparsification plots."
        )
    regions = report.get("regions") or {}
    if all(regions.get(region) is None for region in REGION_STYLE):
        return _message_figure("No covered or clear pixel in the evaluated patches")
    fig = Figure(figsize=(12, 5), layout="constrained")
    left, right = fig.subplots(1, 2)
    _reliability(left, regions)
    _sparsification(right, regions)
    fig.suptitle(f"Predicted uncertainty on {report.get('n_patches', '?')} test patches")
    return fig
