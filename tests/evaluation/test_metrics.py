"""Metrics against hand-computed values and an independent numpy SSIM."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from support.numpy_metrics import numpy_ssim_map

from tml_cloudremoval.evaluation.metrics import (
    MetricAccumulator,
    figures,
    patch_sums,
    per_band_rmse,
    psnr_from_mse,
    sam_degrees,
    ssim,
    ssim_map,
    to_reflectance,
)

pytestmark = pytest.mark.filterwarnings("error")  # no RuntimeWarning (0/0, log of 0) anywhere


def test_to_reflectance_clips_to_valid_range():
    dn = np.array([[[0, 500, 10000, 12000, 65535]]], dtype=np.uint16)
    np.testing.assert_allclose(to_reflectance(dn), [[[0, 0.05, 1, 1, 1]]], atol=1e-7)


def test_mae_rmse_psnr_of_constant_offset():
    rng = np.random.default_rng(0)
    target = rng.uniform(0.1, 0.5, (16, 16, 3)).astype(np.float32)
    sums = patch_sums(target + 0.1, target, np.zeros((16, 16), np.uint8))
    f = figures(sums["all"])
    assert f["mae"] == pytest.approx(0.1, rel=1e-5)
    assert f["rmse"] == pytest.approx(0.1, rel=1e-5)
    assert f["psnr"] == pytest.approx(20.0, abs=1e-3)  # 20 log10(1 / 0.1)
    assert f["n_pixels"] == 256
    assert f["n_pixels_ssim"] == 6 * 6  # 16 - 2 * 5 interior pixels each way


def test_psnr_of_zero_error_is_none():
    assert psnr_from_mse(0.0) is None
    assert psnr_from_mse(1e-4) == pytest.approx(40.0)
    image = np.full((12, 12, 2), 0.3, np.float32)
    f = figures(patch_sums(image, image, np.zeros((12, 12)))["all"])
    assert f["mae"] == 0 and f["rmse"] == 0 and f["psnr"] is None
    assert f["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_sam_hand_values_and_zero_vectors():
    pred = np.array([[1, 0], [1, 1], [2, 4], [0, 0], [0, 0], [3, 1], [1, 1e-8]], np.float64)
    target = np.array([[0, 1], [1, 0], [1, 2], [0, 0], [1, 1], [0, 0], [1, 0]], np.float64)
    angles = sam_degrees(pred, target)
    expected = [90, 45, 0, 0, 90, 90, math.degrees(1e-8)]
    np.testing.assert_allclose(angles, expected, rtol=1e-6, atol=1e-12)
    assert not np.isnan(angles).any()


def test_sam_matches_arccos_on_random_spectra():
    rng = np.random.default_rng(1)
    p, t = rng.uniform(0, 1, (50, 10)), rng.uniform(0, 1, (50, 10))
    cos = (p * t).sum(-1) / np.linalg.norm(p, axis=-1) / np.linalg.norm(t, axis=-1)
    np.testing.assert_allclose(sam_degrees(p, t), np.degrees(np.arccos(cos)), atol=1e-9)


def test_ssim_map_matches_independent_numpy():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (20, 23, 3)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    got = ssim_map(y, x)
    assert got.shape == (1, 10, 13)
    np.testing.assert_allclose(got[0], numpy_ssim_map(y, x), atol=2e-5)
    assert ssim(y, x) == pytest.approx(float(numpy_ssim_map(y, x).mean()), abs=2e-5)


def test_ssim_of_constant_images_is_luminance_term():
    a, b = 0.2, 0.3
    x = np.full((11, 11, 1), a, np.float32)
    y = np.full((11, 11, 1), b, np.float32)
    c1 = 0.01**2
    assert ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-4)


def test_regions_covered_and_clear():
    target = np.full((2, 16, 16, 2), 0.3, np.float32)
    mask = np.zeros((2, 16, 16), np.uint8)
    mask[:, :, :8] = 1  # left half covered
    pred = target.copy()
    pred[:, :, :8] += 0.2
    pred[:, :, 8:] -= 0.05
    sums = patch_sums(pred, target, mask)
    cov, clr, al = (figures(sums[r].total()) for r in ("covered", "clear", "all"))
    assert cov["mae"] == pytest.approx(0.2, rel=1e-5)
    assert clr["mae"] == pytest.approx(0.05, rel=1e-5)
    assert al["mae"] == pytest.approx(0.125, rel=1e-5)
    assert al["rmse"] == pytest.approx(math.sqrt((0.04 + 0.0025) / 2), rel=1e-5)
    assert cov["n_pixels"] == 2 * 128 and clr["n_pixels"] == 2 * 128
    assert cov["sam_deg"] == pytest.approx(0.0, abs=1e-4)  # same spectral direction
    # SSIM over a region = mean of the map over the region's interior pixels
    smap = np.stack([numpy_ssim_map(pred[i], target[i]) for i in range(2)])
    inner = mask[:, 5:-5, 5:-5] == 1
    assert cov["ssim"] == pytest.approx(smap[inner].mean(), abs=1e-4)  # TF SSIM is float32
    assert cov["n_pixels_ssim"] == int(inner.sum())


def test_all_clear_and_all_cloud_patches_give_none_not_nan():
    rng = np.random.default_rng(3)
    target = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    pred = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    clear = patch_sums(pred, target, np.zeros((16, 16), np.uint8))
    assert figures(clear["covered"]) is None
    assert per_band_rmse(clear["covered"], ["a", "b", "c"]) is None
    assert figures(clear["clear"]) == figures(clear["all"])
    cloud = patch_sums(pred, target, np.ones((16, 16), np.uint8))
    assert figures(cloud["clear"]) is None
    assert figures(cloud["covered"]) == figures(cloud["all"])


def test_covered_pixels_only_on_border_have_no_ssim():
    image = np.full((16, 16, 2), 0.4, np.float32)
    mask = np.zeros((16, 16), np.uint8)
    mask[0, :] = 1
    f = figures(patch_sums(image * 0.9, image, mask)["covered"])
    assert f["n_pixels"] == 16 and f["n_pixels_ssim"] == 0 and f["ssim"] is None


def test_per_band_rmse():
    target = np.zeros((12, 12, 3), np.float32)
    pred = target + np.array([0.01, 0.02, 0.04], np.float32)
    sums = patch_sums(pred, target, np.zeros((12, 12)))
    got = per_band_rmse(sums["all"], ["B2", "B3", "B4"])
    assert got == pytest.approx({"B2": 0.01, "B3": 0.02, "B4": 0.04}, rel=1e-5)


def test_accumulator_pools_pixels():
    """Pixel-weighted pooling: a patch with few covered pixels weighs little."""
    target = np.zeros((2, 12, 12, 1), np.float32)
    pred = np.zeros_like(target)
    pred[0] += 0.1  # patch 0: 4 covered pixels with error 0.1
    pred[1] += 0.3  # patch 1: 140 covered pixels with error 0.3
    mask = np.zeros((2, 12, 12), np.uint8)
    mask[0, :2, :2] = 1
    mask[1].flat[:140] = 1
    acc = MetricAccumulator(["B2"])
    acc.add(patch_sums(pred[:1], target[:1], mask[:1]))  # two batches, streamed
    acc.add(patch_sums(pred[1:], target[1:], mask[1:]))
    result = acc.result()
    cov = result["covered"]
    assert cov["n_patches"] == 2 and cov["n_pixels"] == 144
    assert cov["mae"] == pytest.approx((4 * 0.1 + 140 * 0.3) / 144, rel=1e-5)
    assert cov["rmse"] == pytest.approx(math.sqrt((4 * 0.01 + 140 * 0.09) / 144), rel=1e-5)
    assert cov["psnr"] == pytest.approx(-10 * math.log10((4 * 0.01 + 140 * 0.09) / 144), rel=1e-5)
    assert result["clear"]["n_patches"] == 2
    assert result["per_band_rmse"]["B2"] == pytest.approx(
        math.sqrt((144 * 0.01 + 144 * 0.09) / 288), rel=1e-5
    )
    assert result["per_band_rmse_covered"]["B2"] == pytest.approx(cov["rmse"], rel=1e-6)


def test_accumulator_without_cover_reports_none():
    acc = MetricAccumulator(["B2"])
    image = np.full((1, 12, 12, 1), 0.5, np.float32)
    acc.add(patch_sums(image * 0.5, image, np.zeros((1, 12, 12))))
    result = acc.result()
    assert result["covered"] is None and result["per_band_rmse_covered"] is None
    assert result["all"]["n_patches"] == 1


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="differs from target shape"):
        patch_sums(np.zeros((12, 12, 2)), np.zeros((12, 12, 3)), np.zeros((12, 12)))
    with pytest.raises(ValueError, match="mask shape"):
        patch_sums(np.zeros((12, 12, 2)), np.zeros((12, 12, 2)), np.zeros((12, 11)))


def _tf_ssim_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is the reference SSIM here")
    return tf.image.ssim(
        tf.constant(pred, tf.float32),
        tf.constant(target, tf.float32),
        max_val=1.0,
        filter_size=11,
        filter_sigma=1.5,
        return_index_map=True,
    ).numpy()


def test_ssim_map_agrees_with_tf_image_ssim_on_random_images():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (2, 30, 37, 4)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1).astype(np.float32)
    np.testing.assert_allclose(ssim_map(y, x), _tf_ssim_map(y, x), atol=1e-5)


def test_ssim_map_agrees_with_tf_image_ssim_on_real_patches(real_samples_root):
    """Cloudy vs clear SEN12MS-CR patches (256 x 256 x 13, reflectance): the case evaluation
    meets. TF computes in float32, whose cancellation in E[x^2] - E[x]^2 at small variances
    costs up to ~3e-5 per map pixel there (the float64 map here is exact to 1e-7 against the
    independent float64 oracle); the patch means agree to 1e-6."""
    rasterio = pytest.importorskip("rasterio")
    cloudy = [
        p for p in sorted(real_samples_root.glob("*_s2_cloudy/*/*.tif")) if "nogeo" not in p.name
    ]
    cloudy = cloudy[:2]
    pairs = []
    for path in cloudy:
        clear = Path(str(path).replace("s2_cloudy", "s2"))
        with rasterio.open(path) as a, rasterio.open(clear) as b:
            pairs.append((a.read(), b.read()))
    pred = to_reflectance(np.stack([np.moveaxis(a, 0, -1) for a, _ in pairs]))
    target = to_reflectance(np.stack([np.moveaxis(b, 0, -1) for _, b in pairs]))
    got, want = ssim_map(pred, target), _tf_ssim_map(pred, target)
    assert got.shape == want.shape == (2, 246, 246)
    np.testing.assert_allclose(got, want, atol=5e-5)
    np.testing.assert_allclose(got[0], numpy_ssim_map(pred[0], target[0]), atol=1e-7)
    np.testing.assert_allclose(got.mean(axis=(1, 2)), want.mean(axis=(1, 2)), atol=1e-6)
    assert ssim(pred, target) == pytest.approx(float(want.mean()), abs=1e-6)
