"""Figures for the evaluation report: example patches, per-band errors, training curves.

Every function returns a ``matplotlib.figure.Figure`` made without pyplot (no global figure
state, no GUI backend needed); the catalog saves them with ``matplotlib.MatplotlibDataset`` and a
notebook shows them with ``display(fig)``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tml_cloudremoval.bands import RGB_BAND_NAMES, S1_BAND_NAMES, TML_BAND_NAMES
from tml_cloudremoval.normalise import SAR_CLIP_DB

RGB_PERCENTILES: tuple[float, float] = (2.0, 98.0)
"""Percentiles of the target's RGB reflectance mapped to black and white."""

COLOURS = {"model": "tab:blue", "baseline": "tab:grey"}


def rgb_stretch(
    reference: np.ndarray, percentiles: tuple[float, float] = RGB_PERCENTILES
) -> tuple[float, float]:
    """(low, high) reflectance for display, from percentiles of ``reference`` (H, W, 3).

    One pair for all three channels keeps the colour balance. Falls back to (0, 0.3) for an
    empty or flat image.
    """
    values = np.asarray(reference, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 0.3
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    if hi - lo < 1e-6:
        return 0.0, max(hi, 0.3)
    return lo, hi


def to_display(rgb: np.ndarray, stretch: tuple[float, float]) -> np.ndarray:
    """Reflectance (H, W, 3) -> [0, 1] float for imshow, linear between the stretch bounds."""
    lo, hi = stretch
    return np.clip((np.asarray(rgb, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _off(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_examples(examples: Sequence[Mapping[str, Any]]) -> Figure:
    """One row per patch: SAR VV, cloudy RGB, predicted RGB, target RGB, cloud/shadow mask.

    ``examples`` as :func:`~tml_cloudremoval.evaluation.examples.example_data` returns them. The
    three RGB images (bands RGB_BAND_NAMES) share one stretch, taken from the cloud-free target,
    so they compare directly (clouds saturate to white). SAR VV is shown in dB over its clip range.
    """
    n = max(len(examples), 1)
    fig = Figure(figsize=(13.5, 2.9 * n + 0.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n, 5, squeeze=False))
    if not examples:
        for ax in axes[0]:
            ax.set_axis_off()
        axes[0, 2].text(0.5, 0.5, "no test patch to show", ha="center", va="center")
        return fig
    rgb_label = "-".join(RGB_BAND_NAMES)
    vv_lo, vv_hi = SAR_CLIP_DB[0]
    for row, ex in zip(axes, examples, strict=True):
        stretch = rgb_stretch(ex["target_rgb"])
        h, w = ex["mask"].shape
        image = row[0].imshow(
            ex["sar_vv_db"],
            cmap="gray",
            vmin=vv_lo,
            vmax=vv_hi,
            extent=(0, w, h, 0),
            interpolation="nearest",
        )
        fig.colorbar(image, ax=row[0], fraction=0.046, pad=0.02, label="dB")
        row[0].set_title("SAR VV (40 m)")
        row[0].set_ylabel(f"{ex['title']}\ncover {100 * ex['cloud_cover']:.0f} %", fontsize=9)
        row[1].imshow(to_display(ex["cloudy_rgb"], stretch))
        row[1].set_title(f"cloudy input (MAE {ex['mae_baseline']:.3f})")
        row[2].imshow(to_display(ex["predicted_rgb"], stretch))
        row[2].set_title(f"prediction (MAE {ex['mae_model']:.3f})")
        row[3].imshow(to_display(ex["target_rgb"], stretch))
        row[3].set_title(f"cloud-free target ({rgb_label})")
        row[4].imshow(ex["mask"], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        row[4].set_title("cloud/shadow mask (white)")
        for ax in row:
            _off(ax)
    fig.suptitle("Test patches: SAR, cloudy input, prediction, target, mask (MAE on reflectance)")
    return fig


def plot_triplet(
    sar_db: np.ndarray,
    cloudy_rgb: np.ndarray,
    target_rgb: np.ndarray,
    mask: np.ndarray,
    title: str = "",
) -> Figure:
    """One patch as stored: SAR VV and VH (h, w, 2) dB at 40 m, cloudy and cloud-free RGB
    (H, W, 3) reflectance (one stretch, from the target) and the cloud/shadow mask (H, W)."""
    fig = Figure(figsize=(15, 3.4), layout="constrained")
    axes = fig.subplots(1, 5)
    h, w = mask.shape
    for c, name in enumerate(S1_BAND_NAMES):
        lo, hi = SAR_CLIP_DB[c]
        image = axes[c].imshow(
            sar_db[..., c],
            cmap="gray",
            vmin=lo,
            vmax=hi,
            extent=(0, w, h, 0),
            interpolation="nearest",
        )
        fig.colorbar(image, ax=axes[c], fraction=0.046, pad=0.02, label="dB")
        axes[c].set_title(f"SAR {name} (40 m)")
    stretch = rgb_stretch(target_rgb)
    axes[2].imshow(to_display(cloudy_rgb, stretch))
    axes[2].set_title("cloudy input")
    axes[3].imshow(to_display(target_rgb, stretch))
    axes[3].set_title(f"cloud-free target ({'-'.join(RGB_BAND_NAMES)})")
    axes[4].imshow(mask, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[4].set_title(f"cloud/shadow mask ({100 * float(np.mean(mask != 0)):.0f} %)")
    for ax in axes:
        _off(ax)
    if title:
        fig.suptitle(title)
    return fig


def plot_band_errors(
    metrics: Mapping[str, Any], band_names: Sequence[str] = TML_BAND_NAMES
) -> Figure:
    """Per-band RMSE (reflectance) of the model and of the cloudy-input baseline.

    Two panels: all pixels (``per_band_rmse``) and cloud/shadow pixels (``per_band_rmse_covered``).
    ``metrics`` has the metrics.json layout.
    """
    panels = (("per_band_rmse", "all pixels"), ("per_band_rmse_covered", "cloud/shadow pixels"))
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    x = np.arange(len(band_names))
    width = 0.4
    for ax, (key, label) in zip(axes, panels, strict=True):
        model = metrics["model"].get(key)
        base = metrics["baseline_cloudy_input"].get(key)
        ax.set_title(f"RMSE per band, {label}")
        ax.set_xticks(x, band_names)
        ax.set_xlabel("band")
        ax.grid(axis="y", alpha=0.3)
        if model is None or base is None:
            ax.text(
                0.5,
                0.5,
                f"no {label} in the test split",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            continue
        ax.bar(
            x - width / 2,
            [model[b] for b in band_names],
            width,
            label="model",
            color=COLOURS["model"],
        )
        ax.bar(
            x + width / 2,
            [base[b] for b in band_names],
            width,
            label="baseline: cloudy input",
            color=COLOURS["baseline"],
        )
        ax.legend(loc="upper left", fontsize=9)
    axes[0].set_ylabel("RMSE (reflectance)")
    return fig


def plot_training_curves(log: pd.DataFrame | None, message: str = "") -> Figure:
    """Training and validation loss per epoch from the training log table.

    ``log`` (``training_log.csv`` of the training run folder) needs a ``loss`` column and may
    have ``epoch`` (plotted as written: the training pipeline counts from 1; without it rows
    are epochs 1, 2, ...) and ``val_loss``; other ``x`` / ``val_x`` pairs (e.g. ``mae``) get a
    panel each; ``lr``, ``learning_rate`` and ``seconds`` are not plotted. With ``log`` None or
    empty the figure shows ``message`` instead (e.g. where the log was expected).
    """
    if log is None or log.empty or "loss" not in log.columns:
        fig = Figure(figsize=(7, 3), layout="constrained")
        ax = fig.subplots()
        ax.set_axis_off()
        text = message or "no training log"
        if log is not None and not log.empty:
            text += f"\n(columns {list(log.columns)} have no 'loss')"
        wrapped = "\n".join(textwrap.fill(part, 70) for part in text.splitlines())
        ax.text(0.5, 0.5, wrapped, ha="center", va="center")
        ax.set_title("Training curves")
        return fig
    epochs = log["epoch"].to_numpy() if "epoch" in log.columns else np.arange(1, len(log) + 1)
    skip = {"epoch", "lr", "learning_rate", "seconds"}
    names = ["loss"] + [
        c for c in log.columns if c not in skip and not c.startswith("val_") and c != "loss"
    ]
    fig = Figure(figsize=(5.5 * len(names), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names), squeeze=False)[0])
    for ax, name in zip(axes, names, strict=True):
        ax.plot(epochs, log[name], "o-", label=f"training {name}")
        if f"val_{name}" in log.columns:
            ax.plot(epochs, log[f"val_{name}"], "s--", label=f"validation {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(message or "Training curves")
    return fig
