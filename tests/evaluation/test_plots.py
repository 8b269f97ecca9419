"""Report figures: content of the axes, empty/missing inputs, PNG output."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.evaluation.plots import (
    plot_band_errors,
    plot_examples,
    plot_training_curves,
    plot_triplet,
    rgb_stretch,
    to_display,
)


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def texts(fig: Figure) -> str:
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_rgb_stretch_and_display():
    ref = np.linspace(0, 1, 101 * 3).reshape(101, 1, 3)
    lo, hi = rgb_stretch(ref, (10, 90))
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.9)
    assert rgb_stretch(np.full((4, 4, 3), 0.2)) == (0.0, 0.3)  # flat image: fallback
    shown = to_display(np.array([[[0.0, 0.5, 1.0]]]), (0.1, 0.9))
    np.testing.assert_allclose(shown, [[[0.0, 0.5, 1.0]]])


def example(cover: float) -> dict:
    rng = np.random.default_rng(0)
    mask = np.zeros((16, 16), np.uint8)
    mask[:, : int(16 * cover)] = 1
    return {
        "title": "ROIs1_spring_1 p3",
        "sar_vv_db": rng.uniform(-20, -5, (4, 4)),
        "cloudy_rgb": rng.uniform(0, 1, (16, 16, 3)),
        "predicted_rgb": rng.uniform(0, 0.3, (16, 16, 3)),
        "target_rgb": rng.uniform(0, 0.3, (16, 16, 3)),
        "mask": mask,
        "cloud_cover": cover,
        "mae_model": 0.02,
        "mae_baseline": 0.2,
    }


def test_plot_examples_rows_and_columns():
    fig = plot_examples([example(0.5), example(0.25)])
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 10  # 2 rows x 5 panels (colour bars hold no image)
    assert images[0].images[0].get_array().shape == (4, 4)  # SAR at 40 m, shown on the full extent
    assert images[0].images[0].get_extent() == [0, 16, 16, 0]
    shown = texts(fig)
    for word in ("SAR VV", "cloudy input", "prediction", "target", "mask", "cover 50 %"):
        assert word in shown
    assert png_bytes(fig).startswith(b"\x89PNG")


def test_plot_examples_without_patches():
    fig = plot_examples([])
    assert "no test patch" in texts(fig)
    png_bytes(fig)


def metrics_layout(covered: bool = True) -> dict:
    model = {b: 0.01 * (i + 1) for i, b in enumerate(TML_BAND_NAMES)}
    base = {b: 0.05 for b in TML_BAND_NAMES}
    return {
        "model": {"per_band_rmse": model, "per_band_rmse_covered": model if covered else None},
        "baseline_cloudy_input": {
            "per_band_rmse": base,
            "per_band_rmse_covered": base if covered else None,
        },
    }


def test_plot_band_errors_bar_heights():
    fig = plot_band_errors(metrics_layout())
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.01 * (i + 1) for i in range(10)] + [0.05] * 10)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(TML_BAND_NAMES)
    png_bytes(fig)


def test_plot_band_errors_without_cover():
    fig = plot_band_errors(metrics_layout(covered=False))
    assert len(fig.axes[1].patches) == 0
    assert "no cloud/shadow pixels" in texts(fig)


def test_plot_training_curves():
    log = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [0.3, 0.2, 0.1],
            "val_loss": [0.35, 0.25, 0.2],
            "lr": 1e-4,
            "seconds": 3.5,
        }
    )
    fig = plot_training_curves(log)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    np.testing.assert_allclose(lines["training loss"].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines["validation loss"].get_ydata(), [0.35, 0.25, 0.2])
    assert len(fig.axes) == 1  # lr and seconds are not plotted
    png_bytes(fig)


def test_plot_training_curves_extra_metric_gets_a_panel():
    log = pd.DataFrame({"loss": [0.3, 0.2], "mae": [0.1, 0.05], "val_mae": [0.2, 0.1]})
    fig = plot_training_curves(log)
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].lines[0].get_xdata(), [1, 2])  # no epoch column


def test_plot_training_curves_missing_log_says_so():
    fig = plot_training_curves(None, "No training log at data/x.csv")
    assert "No training log at data/x.csv" in texts(fig)
    fig = plot_training_curves(pd.DataFrame({"acc": [1.0]}), "log.csv")
    assert "have no 'loss'" in texts(fig)
    png_bytes(fig)


def test_plot_triplet():
    ex = example(0.25)
    sar = np.stack([ex["sar_vv_db"], ex["sar_vv_db"] - 7], axis=-1)
    fig = plot_triplet(sar, ex["cloudy_rgb"], ex["target_rgb"], ex["mask"], "ROIs1 p3")
    assert len([ax for ax in fig.axes if ax.images]) == 5
    shown = texts(fig)
    for word in ("SAR VV", "SAR VH", "cloudy input", "target", "mask (25 %)", "ROIs1 p3"):
        assert word in shown
    png_bytes(fig)
