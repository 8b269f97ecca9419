"""The per-image protocol and its cloud-cover bins against a plain numpy implementation.

Six hand-made 16 x 16 x 10 patches whose cloud covers fall in chosen bins (one bin left empty,
one patch exactly on an edge), predicted by a linear Keras model whose output is known in
closed form; every per-image mean, standard deviation and count is recomputed from the arrays
with tests/support/numpy_metrics.py.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from support.evaluation_cases import EDGES, linear_model, make_store
from support.numpy_metrics import numpy_patch_figures

from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.evaluation.evaluate import evaluate_store, headline
from tml_cloudremoval.evaluation.protocol import (
    by_cloud_cover,
    check_coverage_bins,
    coverage_bin_index,
    region_summary,
)

METRICS = ("mae", "rmse", "psnr", "ssim", "sam_deg")
PREFIX = {"model": "model", "baseline_cloudy_input": "baseline"}


def numpy_per_patch(store: PatchStore) -> dict[str, list[dict]]:
    """{predictor: [per-patch figures by region]} straight from the store's arrays."""
    target = np.asarray(store.s2, np.float64) / 10000
    cloudy = np.clip(np.asarray(store.s2_cloudy, np.float64), 0, 10000)
    preds = {
        "model": np.clip(0.9 * cloudy + 100, 0, 10000) / 10000,
        "baseline_cloudy_input": cloudy / 10000,
    }
    return {
        who: [
            numpy_patch_figures(p, t, m) for p, t, m in zip(pred, target, store.mask, strict=True)
        ]
        for who, pred in preds.items()
    }


def expected_summary(patches: list[dict], region: str) -> dict | None:
    """Mean and population std over the patches having the region, per metric (plain numpy)."""
    having = [p[region] for p in patches if p[region] is not None]
    if not having:
        return None
    out = {"n_patches": len(having)}
    for metric in METRICS:
        values = np.array([p[metric] for p in having if p[metric] is not None], np.float64)
        out[metric] = values.mean() if values.size else None
        out[f"{metric}_std"] = values.std() if values.size else None
        if metric in ("psnr", "ssim"):
            out[f"n_patches_{metric}"] = int(values.size)
    return out


def assert_summary(got: dict | None, want: dict | None) -> None:
    assert (got is None) == (want is None)
    if want is None:
        return
    assert set(got) == set(want)
    for key, value in want.items():
        if value is None or key.startswith("n_"):
            assert got[key] == value, key
        else:
            tol = 2e-4 if key.startswith("ssim") else 1e-5  # TF SSIM runs in float32
            assert got[key] == pytest.approx(value, rel=1e-5, abs=tol), key


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    store = make_store(tmp_path_factory.mktemp("protocol") / "test")
    metrics, per_patch = evaluate_store(linear_model(), store, batch_size=4, coverage_bins=EDGES)
    return store, metrics, per_patch


def test_per_image_means_and_std_equal_plain_numpy(evaluated):
    store, metrics, _ = evaluated
    expected = numpy_per_patch(store)
    for who in ("model", "baseline_cloudy_input"):
        for region in ("all", "covered", "clear"):
            assert_summary(
                metrics["per_image"][who][region], expected_summary(expected[who], region)
            )
    covered = metrics["per_image"]["model"]["covered"]
    assert covered["n_patches"] == 5 and covered["n_patches_ssim"] == 4  # p0 clear; p2 border
    clear = metrics["per_image"]["baseline_cloudy_input"]["clear"]
    assert clear["n_patches"] == 5 and clear["n_patches_psnr"] == 4  # p1 all cloud; p3 exact
    # per-image PSNR is the mean of per-patch PSNRs, not the PSNR of the pooled error
    assert metrics["per_image"]["model"]["all"]["psnr"] != pytest.approx(
        metrics["model"]["all"]["psnr"], rel=1e-3
    )
    assert any(
        "baseline_cloudy_input clear: 1 of 5 patches left out of the PSNR mean" in note
        for note in metrics["notes"]
    )
    json.dumps(metrics, allow_nan=False)


def test_per_patch_table_has_clear_columns(evaluated):
    store, _, per_patch = evaluated
    expected = numpy_per_patch(store)
    row = per_patch.set_index("position").loc[5]
    for metric in METRICS:
        assert row[f"model_{metric}_clear"] == pytest.approx(
            expected["model"][5]["clear"][metric], rel=1e-5, abs=2e-4
        )
    assert np.isnan(per_patch.set_index("position").loc[1, "model_mae_clear"])


def test_binned_figures_equal_plain_numpy_and_empty_bin_is_null(evaluated):
    store, metrics, _ = evaluated
    expected = numpy_per_patch(store)
    members = {"0-10 %": [0, 5], "10-30 %": [2], "30-50 %": [], "50-70 %": [3]}
    members |= {"70-90 %": [4], "90-100 %": [1]}
    bins = metrics["per_image_by_cloud_cover"]
    assert [b["bin"] for b in bins] == list(members)
    assert [b["interval"] for b in bins][-2:] == ["[70, 90)", "[90, 100]"]
    for entry in bins:
        patches = members[entry["bin"]]
        assert entry["n_patches"] == len(patches)
        for who in ("model", "baseline_cloudy_input"):
            if not patches:
                assert entry[who] is None
                continue
            for region in ("all", "covered", "clear"):
                want = expected_summary([expected[who][i] for i in patches], region)
                assert_summary(entry[who][region], want)
    assert (
        "cloud cover [30, 50) %: no test patch in this bin, its figures are null"
        in (metrics["notes"])
    )
    assert metrics["coverage_bins_percent"] == [float(e) for e in EDGES]
    assert "per image" in headline(metrics)


def test_bin_edges_half_open_except_the_last():
    cover = np.array([0.0, 0.0999, 0.1, 0.3, 0.5, 0.8999, 0.9, 0.95, 1.0])
    np.testing.assert_array_equal(coverage_bin_index(cover, EDGES), [0, 0, 1, 2, 3, 4, 5, 5, 5])
    np.testing.assert_array_equal(
        coverage_bin_index(np.array([0.05, 0.1, 0.5, 0.7]), [10, 50]), [-1, 0, 0, -1]
    )
    # k / n pixels exactly on an edge go to the bin above it, whatever the rounding of 100 c
    for k, n in ((7, 10), (3, 10), (9, 10), (65536 // 2, 65536)):
        i = coverage_bin_index(np.array([k / n]), EDGES)[0]
        assert EDGES[i] == round(100 * k / n)


def test_patches_outside_the_bins_are_counted_in_a_note(evaluated):
    store, _, _ = evaluated
    metrics, _ = evaluate_store(linear_model(), store, batch_size=6, coverage_bins=(20, 80))
    (only,) = metrics["per_image_by_cloud_cover"]
    assert only["bin"] == "20-80 %" and only["n_patches"] == 2  # p3 (50 %), p4 (75 %)
    assert "4 patches lie outside every coverage bin (evaluation.coverage_bins)" in metrics["notes"]


def test_region_summary_by_hand():
    """Three patches: MAE 0.1, 0.2, 0.6 -> mean 0.3, population std sqrt(0.14 / 3); the PSNR
    of the third is infinite (NaN in the table) and left out; the fourth has no pixel."""
    table = pd.DataFrame(
        {
            "model_mae_all": [0.1, 0.2, 0.6, np.nan],
            "model_rmse_all": [0.1, 0.2, 0.0, np.nan],
            "model_psnr_all": [20.0, 10 * np.log10(25), np.nan, np.nan],
            "model_ssim_all": [0.5, 0.7, 0.9, np.nan],
            "model_sam_deg_all": [1.0, 2.0, 6.0, np.nan],
        }
    )
    got = region_summary(table, "model", "all")
    assert got["n_patches"] == 3 and got["n_patches_psnr"] == 2 and got["n_patches_ssim"] == 3
    assert got["mae"] == pytest.approx(0.3) and got["mae_std"] == pytest.approx((0.14 / 3) ** 0.5)
    assert got["psnr"] == pytest.approx((20 + 13.979400086720377) / 2)
    assert got["psnr_std"] == pytest.approx((20 - 13.979400086720377) / 2)
    assert got["sam_deg"] == pytest.approx(3.0) and got["ssim_std"] == pytest.approx(
        np.std([0.5, 0.7, 0.9])
    )
    assert region_summary(table.iloc[3:], "model", "all") is None


def test_bins_and_regions_without_patches_are_null():
    table = pd.DataFrame({"cloud_cover": [0.05], "model_mae_all": [0.1]})
    for metric in METRICS[1:]:
        table[f"model_{metric}_all"] = 0.5
    for region in ("covered", "clear"):
        for metric in METRICS:
            table[f"model_{metric}_{region}"] = np.nan
    for metric in METRICS:
        for region in ("all", "covered", "clear"):
            table[f"baseline_{metric}_{region}"] = table[f"model_{metric}_{region}"]
    bins = by_cloud_cover(table, EDGES)
    assert bins[0]["n_patches"] == 1 and bins[0]["model"]["covered"] is None
    assert all(b["model"] is None and b["n_patches"] == 0 for b in bins[1:])


@pytest.mark.parametrize(
    ("edges", "fault"),
    [
        ([50], "at least two edges"),
        ([0, 50, 30], "strictly increasing"),
        ([0, 50, 50], "strictly increasing"),
        ([-5, 50], "within [0, 100]"),
        ([0, 120], "within [0, 100]"),
    ],
)
def test_bad_edges_are_named(edges, fault):
    assert any(fault in f for f in check_coverage_bins(edges))
    with pytest.raises(ValueError, match="coverage bins"):
        coverage_bin_index(np.array([0.5]), edges)
    assert check_coverage_bins(EDGES) == []
