"""The 10 m VRT stack: exact 10 m bands, lanczos 20 m bands, nodata, radiometry, grid checks."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

from tml_cloudremoval.bands import TML_BANDS
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.products.band_vrt import RESAMPLING_20M, BandFile, stack_bands
from tml_cloudremoval.raster import write_geotiff_atomic


def _layout(tmp_path, ground, values=None, shift_b11=0.0, dtype=np.uint16):
    """One file per TML band: 10 m bands as given, 20 m bands as 2 x 2 means (or ``values``)."""
    files = []
    for band in TML_BANDS:
        factor = band.resolution_m // 10
        data = ground.bands[band.name].astype(np.float64)
        data = data.reshape(ground.H // factor, factor, ground.W // factor, factor).mean((1, 3))
        if values is not None and factor == 2:
            data[:] = values
        transform = ground.transform @ ground.transform.scale(factor)
        if band.name == "B11":
            transform = transform @ transform.translation(shift_b11, 0)
        path = write_geotiff_atomic(
            tmp_path / f"{band.name}.tif", data.astype(dtype), crs=ground.crs, transform=transform
        )
        files.append(BandFile(band.name, str(path), 1, str(path)))
    return files


def _read(stack):
    with rasterio.open(stack.vrt) as ds:
        return ds.read(), ds.crs, ds.transform, ds.descriptions


def test_10m_bands_exact_20m_bands_lanczos(tmp_path, ground):
    files = _layout(tmp_path, ground)
    data, crs, transform, descriptions = _read(stack_bands(files, (0.0,) * 10, 10000.0))
    assert crs == ground.crs and transform == ground.transform
    assert descriptions == tuple(b.name for b in TML_BANDS)
    b2 = ground.bands["B2"].astype(np.float32)
    np.testing.assert_array_equal(data[0], np.where(b2 > 0, b2, np.nan))
    with rasterio.open(files[3].gdal_path) as src:  # B5, an independent GDAL upsampling
        up = src.read(1, out_shape=(ground.H, ground.W), resampling=Resampling[RESAMPLING_20M])
    inside = np.s_[:, 30:]  # away from the nodata wedge
    np.testing.assert_allclose(data[3][inside], up[inside], atol=0.5)


def test_a_constant_20m_band_stays_constant(tmp_path, ground):
    data, *_ = _read(stack_bands(_layout(tmp_path, ground, values=1234), (0.0,) * 10, 10000.0))
    np.testing.assert_allclose(data[3], 1234.0, atol=1e-3)  # every pixel, edges included


def test_radiometry_is_applied_and_zero_stays_nodata(tmp_path, ground):
    files = _layout(tmp_path, ground)
    plain, *_ = _read(stack_bands(files, (0.0,) * 10, 10000.0))
    shifted, *_ = _read(stack_bands(files, (-1000.0,) * 10, 20000.0))
    np.testing.assert_allclose(shifted, (plain - 1000.0) / 2.0, atol=1e-3)
    np.testing.assert_array_equal(np.isnan(shifted), np.isnan(plain))
    assert np.isnan(plain[0][0, 0])  # DN 0 in the wedge


def test_inconsistent_grids_and_types_are_named(tmp_path, ground):
    with pytest.raises(SceneError, match=r"B11\.tif: band B11: grid .* does not cover B2"):
        stack_bands(_layout(tmp_path, ground, shift_b11=0.5), (0.0,) * 10, 10000.0)
    with pytest.raises(SceneError, match=r"B2\.tif: band B2: data type float32, expected uint16"):
        stack_bands(_layout(tmp_path, ground, dtype=np.float32), (0.0,) * 10, 10000.0)
    files = _layout(tmp_path, ground)
    with pytest.raises(SceneError, match=r"B3: unreadable"):
        stack_bands(
            [files[0], BandFile("B3", str(tmp_path / "no.tif"), 1, "no.tif"), *files[2:]],
            (0.0,) * 10,
            10000.0,
        )
