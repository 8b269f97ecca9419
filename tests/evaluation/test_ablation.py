"""Ablation report: the comparison table from hand-made metrics, the zoom window, the figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from tml_cloudremoval.evaluation.ablation import (
    METRICS,
    ZOOM_PX,
    comparison_table,
    plot_ablation,
    zoom_window,
)


def _metrics(scale: float, covered: bool = True) -> dict:
    figures = {m: scale * (i + 1) for i, m in enumerate(METRICS)}
    return {
        "model": {"all": figures, "covered": figures if covered else None},
        "baseline_cloudy_input": {"all": {m: 9.0 for m in METRICS}, "covered": {"mae": 0.5}},
    }


def test_one_row_per_variant_with_its_overrides_and_figures():
    variants = {"reference": {}, "no_sar": {"model": {"include_sar": False}}}
    results = {
        "reference": (
            _metrics(0.1),
            {"parameters": 1000, "seconds_this_session": 12.5, "history": [{}, {}]},
        ),
        "no_sar": (_metrics(0.2, covered=False), {"parameters": 900, "reused": True}),
    }
    table = comparison_table(variants, results)
    assert list(table["variant"]) == ["reference", "no_sar"]
    assert [json.loads(o) for o in table["overrides"]] == [{}, {"model": {"include_sar": False}}]
    assert list(table["parameters"]) == [1000, 900]
    assert list(table["epochs"]) == [2, 0] and list(table["reused"]) == [False, True]
    ref, no_sar = table.iloc[0], table.iloc[1]
    assert ref["training_seconds"] == 12.5 and math.isnan(no_sar["training_seconds"])
    assert ref["model_all_sam_deg"] == pytest.approx(0.5)  # 5th figure: 0.1 * 5
    assert ref["model_covered_psnr"] == pytest.approx(0.3)
    assert math.isnan(no_sar["model_covered_mae"])  # no covered region: NaN, not an error
    assert ref["baseline_all_ssim"] == 9.0 and ref["baseline_covered_mae"] == 0.5
    assert math.isnan(ref["baseline_covered_rmse"])
    assert len(table.columns) == 6 + 2 * 2 * len(METRICS)


def test_the_zoom_sits_on_the_cloud_edge_on_the_40m_grid():
    mask = np.zeros((256, 256), np.uint8)
    mask[100:, :] = 1  # a horizontal cloud edge between rows 99 and 100
    rows, cols = zoom_window(mask)
    assert rows.stop - rows.start == ZOOM_PX and cols.stop - cols.start == ZOOM_PX
    assert rows.start <= 100 < rows.stop and rows.start % 4 == 0 and cols.start % 4 == 0
    # no edge: the centre; a small patch: the whole patch
    assert zoom_window(np.zeros((256, 256))) == (slice(128 - 24, 128 + 24),) * 2
    assert zoom_window(np.ones((32, 32))) == (slice(0, 32), slice(0, 32))


def test_the_figure_has_the_bars_and_a_full_and_zoomed_row_per_example():
    variants = {"a": {}, "b": {"training": {"loss": "l1"}}}
    results = {n: (_metrics(0.1), {"parameters": 10}) for n in variants}
    table = comparison_table(variants, results)
    rng = np.random.default_rng(0)
    rgb = lambda: rng.uniform(0, 0.3, (64, 64, 3))  # noqa: E731
    mask = np.zeros((64, 64), np.uint8)
    mask[:, 30:] = 1
    example = {
        "title": "scene p1",
        "cloudy_rgb": rgb(),
        "target_rgb": rgb(),
        "mask": mask,
        "cloud_cover": 0.53,
        "predictions": {"a": rgb(), "b": rgb()},
    }
    fig = plot_ablation(table, [example, example])
    assert isinstance(fig, Figure)
    images = [ax for ax in fig.get_axes() if ax.get_images()]
    assert len(images) == 2 * 2 * (2 + len(variants))  # 2 examples x (full, zoom) x panels
    titles = [ax.get_title() for ax in images if ax.get_title()]
    assert titles[:4] == ["cloudy input", "a", "b", "target"]
    bars = [ax for ax in fig.get_axes() if ax.patches and not ax.get_images()]
    assert [ax.get_title() for ax in bars] == [
        "covered MAE (reflectance)",
        "covered SAM (deg)",
        "covered SSIM",
    ]
    assert [p.get_height() for p in bars[0].patches] == pytest.approx([0.1, 0.1])
    zoom = images[len(variants) + 2].get_images()[0].get_array()
    assert zoom.shape[:2] == (ZOOM_PX, ZOOM_PX)
