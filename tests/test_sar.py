"""SAR to 40 m: block means by hand, NaN handling, linear power, warping onto a scene grid."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from tml_cloudremoval.raster import write_geotiff_atomic
from tml_cloudremoval.sar import (
    db_to_linear,
    fill_nan_with_channel_mean,
    grid_40m,
    linear_to_db,
    sar_to_40m,
    warp_sar_to_grid,
)

UTM32 = CRS.from_epsg(32632)


def write_sar(path, data_hwc, transform, crs=UTM32, nodata=np.nan):
    """Write a (H, W, C) array as a float32 GeoTIFF."""
    return write_geotiff_atomic(
        path, data_hwc, crs=crs, transform=transform, nodata=nodata, dtype="float32"
    )


def test_block_mean_by_hand():
    sar = np.arange(8 * 8 * 2, dtype=np.float32).reshape(8, 8, 2)
    out = sar_to_40m(sar)
    assert out.shape == (2, 2, 2)
    # top-left block of channel 0: rows 0-3, cols 0-3 -> values 2 * (8 r + c)
    expected = np.mean([2 * (8 * r + c) for r in range(4) for c in range(4)])
    assert out[0, 0, 0] == pytest.approx(expected)
    assert out[1, 1, 1] == pytest.approx(np.mean(sar[4:, 4:, 1]))


def test_nan_ignored_and_all_nan_block_stays_nan():
    sar = np.full((4, 8, 2), -10.0, dtype=np.float32)
    sar[0, 0, 0] = np.nan
    sar[0, 1, 0] = -30.0  # one of 15 finite values in that block
    sar[:, 4:, 1] = np.nan  # second block of VH entirely NaN
    out = sar_to_40m(sar)
    assert out[0, 0, 0] == pytest.approx((14 * -10.0 - 30.0) / 15)
    assert np.isnan(out[0, 1, 1])
    assert out[0, 1, 0] == pytest.approx(-10.0)


def test_linear_power_mean_by_hand():
    sar = np.zeros((4, 4, 2), dtype=np.float32)
    sar[:2, :, :] = -10.0  # 0.1 in power
    sar[2:, :, :] = -20.0  # 0.01 in power
    out = sar_to_40m(sar, method="linear_power")
    assert out[0, 0, 0] == pytest.approx(10 * np.log10(0.055), abs=1e-5)
    assert sar_to_40m(sar, method="mean")[0, 0, 0] == pytest.approx(-15.0)


def test_db_linear_round_trip():
    db = np.array([-25.0, -12.5, 0.0, np.nan], dtype=np.float32)
    np.testing.assert_allclose(linear_to_db(db_to_linear(db)), db, atol=1e-5)


def test_unaligned_size_and_unknown_method_are_rejected():
    with pytest.raises(ValueError, match="multiple of 4"):
        sar_to_40m(np.zeros((6, 8, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="unknown SAR averaging method"):
        sar_to_40m(np.zeros((8, 8, 2), dtype=np.float32), method="median")


def test_fill_nan_with_channel_mean():
    image = np.array([[[1.0, np.nan], [3.0, 4.0]], [[np.nan, 6.0], [5.0, 8.0]]], np.float32)
    out = fill_nan_with_channel_mean(image)
    assert out[1, 0, 0] == pytest.approx(3.0)  # mean of 1, 3, 5
    assert out[0, 0, 1] == pytest.approx(6.0)  # mean of 4, 6, 8
    assert not np.isnan(out).any()
    with pytest.raises(ValueError, match="no finite value"):
        fill_nan_with_channel_mean(np.full((2, 2, 2), np.nan, np.float32))


def test_grid_40m_is_aligned_and_covers():
    transform = Affine(10, 0, 500000, 0, -10, 4600000)
    t40, h, w = grid_40m(transform, 1501, 1500)
    assert (t40.a, t40.e, t40.c, t40.f) == (40, -40, 500000, 4600000)
    assert (h, w) == (376, 375)


def test_warp_aligned_10m_equals_block_mean(tmp_path):
    rng = np.random.default_rng(0)
    sar = rng.uniform(-25, 0, size=(32, 32, 2)).astype(np.float32)
    sar[3, 5, 0] = np.nan
    transform = Affine(10, 0, 600000, 0, -10, 5000000)
    path = write_sar(tmp_path / "s1.tif", sar, transform)
    t40, h, w = grid_40m(transform, 32, 32)
    for method in ("mean", "linear_power"):
        warped = warp_sar_to_grid(path, UTM32, t40, h, w, method=method)
        np.testing.assert_allclose(warped, sar_to_40m(sar, method=method), atol=1e-4)


def test_warp_from_other_crs_and_resolution(tmp_path):
    # A constant 20 m SAR in another UTM zone covering the target: the warp keeps the constant.
    sar = np.stack([np.full((200, 200), -11.0), np.full((200, 200), -17.0)], -1)
    src_t = Affine(20, 0, 795000, 0, -20, 5005000)  # EPSG:32631, east of zone 31
    path = write_sar(tmp_path / "s1_20m.tif", sar, src_t, crs=CRS.from_epsg(32631))
    # target grid in EPSG:32632 inside that footprint
    from rasterio.warp import transform as warp_points

    xs, ys = warp_points(CRS.from_epsg(32631), UTM32, [797000], [5002000])
    t40 = Affine(40, 0, round(xs[0]), 0, -40, round(ys[0]))
    out = warp_sar_to_grid(path, UTM32, t40, 16, 16)
    assert out.shape == (16, 16, 2)
    np.testing.assert_allclose(out[..., 0], -11.0, atol=1e-4)
    np.testing.assert_allclose(out[..., 1], -17.0, atol=1e-4)


def test_warp_errors_name_the_file(tmp_path):
    sar = np.zeros((8, 8, 2), np.float32)
    path = write_sar(tmp_path / "far.tif", sar, Affine(10, 0, 100000, 0, -10, 1000000))
    with pytest.raises(ValueError, match=r"far\.tif.*does not overlap"):
        warp_sar_to_grid(path, UTM32, Affine(40, 0, 600000, 0, -40, 5000000), 4, 4)
    three = write_sar(tmp_path / "three.tif", np.zeros((8, 8, 3)), Affine(10, 0, 0, 0, -10, 0))
    with pytest.raises(ValueError, match=r"three\.tif.*3 bands"):
        warp_sar_to_grid(three, UTM32, Affine(40, 0, 0, 0, -40, 0), 2, 2)


def test_warp_in_strips_equals_one_strip(tmp_path):
    rng = np.random.default_rng(3)
    sar = rng.uniform(-25, 0, size=(200, 180, 2)).astype(np.float32)
    sar[rng.random(sar.shape) < 0.01] = np.nan
    path = write_sar(tmp_path / "s1_20m.tif", sar, Affine(20, 0, 600010, 0, -20, 5000030))
    t40 = Affine(40, 0, 600100, 0, -40, 4999900)
    whole = warp_sar_to_grid(path, UTM32, t40, 90, 80, method="linear_power", strip_rows=1000)
    strips = warp_sar_to_grid(path, UTM32, t40, 90, 80, method="linear_power", strip_rows=7)
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(strips))
    np.testing.assert_allclose(strips, whole, atol=1e-5)
    assert np.isfinite(whole[:80]).all()  # covered rows are all finite
