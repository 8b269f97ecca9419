"""Ablation report: one table and one figure that set the variants side by side.

:func:`comparison_table` has one row per variant: its overrides, the model's parameter count,
training time and epochs, and the pooled metrics (reflectance; SAM in degrees, PSNR in dB) of
the model and of the cloudy-input baseline over all and over covered pixels, as each variant's
``metrics.json`` gives them. :func:`plot_ablation` draws covered MAE, SAM and SSIM per variant as
bars (the baseline as a dashed line) and, for a few test patches, the cloudy input, the target
and every variant's prediction side by side, full patch and a zoom on the cloud edge at the
pixel scale (no smoothing), where artifacts such as 4 x 4 SAR blocks show.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.evaluation.examples import example_data
from tml_cloudremoval.evaluation.plots import COLOURS, rgb_stretch, to_display

METRICS: tuple[str, ...] = ("mae", "rmse", "psnr", "ssim", "sam_deg")
"""The pooled figures taken from metrics.json, by their keys there."""
REGIONS: tuple[str, ...] = ("all", "covered")
WHO = {"model": "model", "baseline": "baseline_cloudy_input"}
"""Column prefix -> key of metrics.json."""
BARS: tuple[tuple[str, str], ...] = (
    ("mae", "covered MAE (reflectance)"),
    ("sam_deg", "covered SAM (deg)"),
    ("ssim", "covered SSIM"),
)
ZOOM_PX = 48
"""Side of the zoom on the cloud edge, in 10 m pixels (a multiple of the 40 m SAR grid)."""


def _figure(metrics: Mapping[str, Any], who: str, region: str, metric: str) -> float:
    section = (metrics.get(WHO[who]) or {}).get(region) or {}
    value = section.get(metric)
    return float(value) if value is not None else float("nan")


def comparison_table(
    variants: Mapping[str, Mapping[str, Any]],
    results: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> pd.DataFrame:
    """One row per variant of ``variants`` (name -> overrides), in that order.

    ``results``: name -> (its ``evaluation_metrics``, its ``training_summary``). Columns:
    ``variant``, ``overrides`` (compact JSON), ``parameters``, ``training_seconds`` (of the
    session that trained it), ``epochs``, ``reused`` (the run folder's finished model was
    reused), then ``{model,baseline}_{all,covered}_{mae,rmse,psnr,ssim,sam_deg}`` (NaN where
    a region has no pixel).
    """
    rows = []
    for name, overrides in variants.items():
        metrics, summary = results[name]
        row: dict[str, Any] = {
            "variant": name,
            "overrides": json.dumps(overrides, sort_keys=True, separators=(",", ":")),
            "parameters": summary.get("parameters"),
            "training_seconds": summary.get("seconds_this_session"),
            "epochs": len(summary.get("history") or []),
            "reused": bool(summary.get("reused", False)),
        }
        for who in WHO:
            for region in REGIONS:
                for metric in METRICS:
                    row[f"{who}_{region}_{metric}"] = _figure(metrics, who, region, metric)
        rows.append(row)
    return pd.DataFrame(rows)


def zoom_window(mask: np.ndarray, size: int = ZOOM_PX) -> tuple[slice, slice]:
    """A ``size`` x ``size`` window on the 40 m grid centred near the cloud edge of ``mask``
    (H, W): the edge pixel closest to the edge's centroid; the patch centre without an edge."""
    h, w = mask.shape
    size = min(size, h, w)
    m = np.asarray(mask) != 0
    edge = np.zeros_like(m)
    edge[1:, :] |= m[1:, :] != m[:-1, :]
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    points = np.argwhere(edge)
    if len(points):
        centre = points[np.argmin(((points - points.mean(axis=0)) ** 2).sum(axis=1))]
    else:
        centre = np.array([h // 2, w // 2])
    starts = []
    for c, n in zip(centre, (h, w), strict=True):
        start = int(np.clip(c - size // 2, 0, n - size))
        starts.append(start - start % SAR_FACTOR)
    return slice(starts[0], starts[0] + size), slice(starts[1], starts[1] + size)


def ablation_examples(
    models: Mapping[str, Any], store: PatchStore, indices: Sequence[int]
) -> list[dict[str, Any]]:
    """What :func:`plot_ablation` shows of test patches ``indices``: per patch ``title``,
    ``cloudy_rgb``, ``target_rgb`` (H, W, 3) reflectance, ``mask`` (H, W), ``cloud_cover`` and
    ``predictions`` {variant: (H, W, 3) reflectance} for every Keras model of ``models``."""
    per_model = {name: example_data(model, store, indices) for name, model in models.items()}
    if not per_model or not indices:
        return []
    first = next(iter(per_model.values()))
    return [
        {
            **{k: first[i][k] for k in ("title", "cloudy_rgb", "target_rgb", "mask")},
            "cloud_cover": first[i]["cloud_cover"],
            "predictions": {name: rows[i]["predicted_rgb"] for name, rows in per_model.items()},
        }
        for i in range(len(indices))
    ]


def _bars(fig: Any, table: pd.DataFrame) -> None:
    axes = fig.subplots(1, len(BARS))
    names = list(table["variant"])
    x = np.arange(len(names))
    for ax, (metric, label) in zip(axes, BARS, strict=True):
        values = table[f"model_covered_{metric}"].to_numpy(dtype=float)
        ax.bar(x, values, color=COLOURS["model"])
        baseline = table[f"baseline_covered_{metric}"].to_numpy(dtype=float)
        if len(baseline) and np.isfinite(baseline[0]):
            ax.axhline(baseline[0], color=COLOURS["baseline"], ls="--", label="cloudy input")
            ax.legend(fontsize=7, loc="lower right")
        finite = [v for v in (*values, *baseline[:1]) if np.isfinite(v)]
        if finite:  # room for the value labels; SSIM may be negative
            lo, hi = min(0.0, *finite), max(0.0, *finite)
            ax.set_ylim(1.15 * lo, 1.15 * hi if hi > 0 else 0.1)
        for xi, v in zip(x, values, strict=True):
            if np.isfinite(v):
                ax.annotate(f"{v:.4g}", (xi, v), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)


def _example_rows(fig: Any, example: Mapping[str, Any]) -> None:
    panels = {"cloudy input": example["cloudy_rgb"], **example["predictions"]}
    panels["target"] = example["target_rgb"]
    stretch = rgb_stretch(example["target_rgb"])
    window = zoom_window(example["mask"])
    axes = fig.subplots(2, len(panels), squeeze=False)
    for col, (name, rgb) in enumerate(panels.items()):
        shown = to_display(rgb, stretch)
        full, zoom = axes[0, col], axes[1, col]
        full.imshow(shown, interpolation="nearest")
        r, c = window
        full.add_patch(_rectangle(c.start, r.start, c.stop - c.start, r.stop - r.start))
        zoom.imshow(shown[window], interpolation="nearest")
        full.set_title(name, fontsize=8)
        for ax in (full, zoom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel(f"zoom {ZOOM_PX} px", fontsize=8)
    fig.suptitle(f"{example['title']} (cloud cover {example['cloud_cover']:.0%})", fontsize=9)


def _rectangle(x: int, y: int, w: int, h: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec="yellow", lw=0.8)


def plot_ablation(table: pd.DataFrame, examples: Sequence[Mapping[str, Any]]) -> Figure:
    """Covered MAE, SAM and SSIM per variant (bars; the cloudy input dashed), then for each of
    ``examples`` (as :func:`ablation_examples` gives them) the cloudy input, every variant's
    prediction and the target, RGB with one stretch per patch (from the target), full patch
    above and a zoom on the cloud edge (yellow box) below, pixels shown as they are."""
    n_cols = 2 + len(table)
    fig = Figure(figsize=(max(9.0, 2.0 * n_cols), 3.2 + 4.2 * len(examples)), layout="constrained")
    subfigs = fig.subfigures(1 + len(examples), 1, height_ratios=[3.2] + [4.2] * len(examples))
    subfigs = np.atleast_1d(subfigs)
    _bars(subfigs[0], table)
    for sub, example in zip(subfigs[1:], examples, strict=True):
        _example_rows(sub, example)
    return fig
