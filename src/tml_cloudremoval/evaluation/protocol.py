"""The published protocol: each metric per test patch, then mean and spread over patches.

UnCRtainTS (Ebel et al. 2023) and later SEN12MS-CR papers compute every metric on each test
image (here: one 256 x 256 patch) and average over images; DSen2-CR (Meraner et al. 2020)
reports pooled figures (:mod:`tml_cloudremoval.evaluation.metrics`, ``metrics.json`` "model").
This module works on the per-patch table of :func:`tml_cloudremoval.evaluation.evaluate.
evaluate_store` (one row per patch; columns ``<prefix>_<metric>_<region>`` with prefix
``model`` or ``baseline``, metric in ``METRIC_NAMES``, region all/covered/clear, NaN where a
patch has no figure; ``cloud_cover`` the fraction of cloud/shadow pixels of the patch, 0-1).

Per predictor and region (see :data:`PER_IMAGE_DEFINITION`): ``mae``, ``rmse``, ``psnr``,
``ssim``, ``sam_deg`` (means over patches, reflectance / dB / degrees), each with ``<metric>_std``
(population standard deviation over the same patches), and ``n_patches`` (patches with at least
one pixel of the region), ``n_patches_psnr``, ``n_patches_ssim`` (patches that have that figure).

The same by cloud cover of the patch: bins with edges in percent, e.g. [0, 10, 30, 50, 70, 90,
100]: each bin is half-open [lo, hi) except the last, [lo, hi] (so a fully covered patch
belongs to the last bin). A bin without patches, or a region without patches in a bin, has
``None`` figures and a note: never a division by zero.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tml_cloudremoval.evaluation.metrics import METRIC_NAMES, REGIONS, SSIM_BORDER

COVERAGE_BINS_PERCENT: tuple[float, ...] = (0.0, 10.0, 30.0, 50.0, 70.0, 90.0, 100.0)
"""Default edges of the cloud-coverage bins in percent (``evaluation.coverage_bins``)."""

PREFIXES: dict[str, str] = {"model": "model", "baseline_cloudy_input": "baseline"}
"""metrics.json key of each predictor -> its column prefix in the per-patch table."""

PER_IMAGE_DEFINITION = (
    "each metric computed on each test patch over the region's pixels, then the mean and the "
    "population standard deviation (ddof 0) over the patches that have at least one pixel of "
    "the region (n_patches; the others are left out). PSNR per patch = 20 log10(1 / RMSE of "
    "the patch), then averaged (not the PSNR of the mean error); a patch with RMSE 0 (infinite "
    "PSNR) is left out of the PSNR mean (n_patches_psnr), a patch whose region has no pixel "
    f"{SSIM_BORDER} px inside its border is left out of the SSIM mean (n_patches_ssim)"
)
BINS_DEFINITION = (
    "per-image figures of the patches whose cloud cover (fraction of cloud/shadow pixels, in "
    "percent) lies in [lo, hi); the last bin is [lo, hi]"
)


def check_coverage_bins(edges: Sequence[float]) -> list[str]:
    """Faults of a list of bin edges in percent (empty when fine): at least two edges, strictly
    increasing, each within [0, 100]."""
    faults = []
    if len(edges) < 2:
        faults.append(f"needs at least two edges (one bin), got {list(edges)}")
    if any(not 0 <= e <= 100 for e in edges):
        faults.append(f"edges must lie within [0, 100] percent, got {list(edges)}")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        faults.append(f"edges must be strictly increasing, got {list(edges)}")
    return faults


def bin_label(lo: float, hi: float) -> str:
    """``0-10 %`` for edges 0 and 10."""
    return f"{lo:g}-{hi:g} %"


def coverage_bin_index(cloud_cover: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bin of each patch: (N,) cloud cover as a fraction (0-1) -> (N,) int, -1 outside all bins.

    Bin i holds ``edges[i] <= 100 c < edges[i + 1]``, the last also ``100 c == edges[-1]``.
    The edges are compared as fractions (``edge / 100``), so a cover of exactly k / n pixels
    on an edge lands in the bin above it whatever the rounding of ``100 c``.
    """
    problems = check_coverage_bins(edges)
    if problems:
        raise ValueError("coverage bins: " + "; ".join(problems))
    cover = np.asarray(cloud_cover, dtype=np.float64)
    fractions = np.asarray(edges, dtype=np.float64) / 100.0
    index = np.full(cover.shape, -1, dtype=np.int64)
    for i, (lo, hi) in enumerate(itertools.pairwise(fractions)):
        last = i == len(fractions) - 2
        inside = (cover >= lo) & ((cover <= hi) if last else (cover < hi))
        index[inside] = i
    return index


def _column(prefix: str, metric: str, region: str) -> str:
    return f"{prefix}_{metric}_{region}"


def region_summary(table: pd.DataFrame, prefix: str, region: str) -> dict[str, Any] | None:
    """Per-image mean and std of every metric over the rows of ``table`` that have the region
    (its MAE is defined); ``None`` when no row has. Counts as described in the module."""
    present = table[_column(prefix, "mae", region)].notna().to_numpy()
    n = int(present.sum())
    if n == 0:
        return None
    out: dict[str, Any] = {}
    counts = {}
    for metric in METRIC_NAMES:
        values = table[_column(prefix, metric, region)].to_numpy(dtype=np.float64)[present]
        values = values[np.isfinite(values)]
        counts[metric] = int(values.size)
        out[metric] = float(np.mean(values)) if values.size else None
        out[f"{metric}_std"] = float(np.std(values)) if values.size else None
    return out | {
        "n_patches": n,
        "n_patches_psnr": counts["psnr"],
        "n_patches_ssim": counts["ssim"],
    }


def per_image_summary(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """{predictor: {region: summary | None}} over all rows of the per-patch ``table``."""
    return {
        who: {region: region_summary(table, prefix, region) for region in REGIONS}
        for who, prefix in PREFIXES.items()
    }


def by_cloud_cover(table: pd.DataFrame, edges: Sequence[float]) -> list[dict[str, Any]]:
    """One entry per coverage bin: ``bin`` (label), ``lo``, ``hi`` (percent), ``interval``,
    ``n_patches``, and per predictor {region: summary | None}, or ``None`` for an empty bin."""
    index = coverage_bin_index(table["cloud_cover"].to_numpy(), edges)
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        rows = table[index == i]
        closing = "]" if i == len(edges) - 2 else ")"
        entry: dict[str, Any] = {
            "bin": bin_label(lo, hi),
            "lo": float(lo),
            "hi": float(hi),
            "interval": f"[{lo:g}, {hi:g}{closing}",
            "n_patches": len(rows),
        }
        summary = per_image_summary(rows) if len(rows) else dict.fromkeys(PREFIXES)
        out.append(entry | summary)
    return out


def outside_bins(table: pd.DataFrame, edges: Sequence[float]) -> int:
    """How many patches of ``table`` fall in no bin (edges not spanning 0-100 %)."""
    return int(np.sum(coverage_bin_index(table["cloud_cover"].to_numpy(), edges) < 0))


def _summary_notes(where: str, summaries: Mapping[str, Any]) -> list[str]:
    """Notes for one {predictor: {region: summary}}: null regions, patches left out of means."""
    notes = []
    for region in REGIONS:
        if all(summaries[who][region] is None for who in PREFIXES):
            notes.append(f"{where} {region}: no patch with a {region} pixel, figures null")
    for who in PREFIXES:
        for region in REGIONS:
            values = summaries[who][region]
            if values is None:
                continue
            for metric, why in (("psnr", "RMSE 0, infinite PSNR"), ("ssim", "no SSIM pixel")):
                left = values["n_patches"] - values[f"n_patches_{metric}"]
                if left:
                    notes.append(
                        f"{where} {who} {region}: {left} of {values['n_patches']} patches left "
                        f"out of the {metric.upper()} mean ({why})"
                    )
    return notes


def protocol_notes(metrics: Mapping[str, Any], n_outside: int = 0) -> list[str]:
    """Why a per-image or binned figure is null or rests on fewer patches (``metrics`` holds
    ``per_image`` and ``per_image_by_cloud_cover`` as this module makes them)."""
    notes = _summary_notes("per-image", metrics["per_image"])
    for entry in metrics["per_image_by_cloud_cover"]:
        where = f"cloud cover {entry['interval']} %"
        if entry["n_patches"] == 0:
            notes.append(f"{where}: no test patch in this bin, its figures are null")
            continue
        notes += _summary_notes(where, entry)
    if n_outside:
        notes.append(
            f"{n_outside} patches lie outside every coverage bin (evaluation.coverage_bins)"
        )
    return notes
