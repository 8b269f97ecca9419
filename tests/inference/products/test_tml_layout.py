"""The TML layout folder: both forms, the same reading as a .SAFE, faults, metadata tags."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio

from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.products.tml_layout import (
    band_file_stem,
    is_tml_layout,
    read_tml_layout,
)
from tml_cloudremoval.inference.reader import inspect_optical, open_optical


def _read(path, **kwargs):
    info = inspect_optical(path, **kwargs)
    with open_optical(info) as reader:
        return info, *reader.read_tile(0, 0, info.height, info.width)


def test_band_file_stem():
    assert [band_file_stem(b) for b in ("B2", "B8A", "B11")] == ["B02", "B8A", "B11"]


def test_both_forms_read_as_the_safe_of_the_same_ground(products, ground):
    _, safe, safe_valid = _read(products.safe_0209)
    for folder in (products.tml, products.tml_per_band):
        info, optical, valid = _read(folder)
        assert info.band_source == "tml_layout" and is_tml_layout(folder)
        assert info.crs == ground.crs and info.transform == ground.transform
        np.testing.assert_array_equal(optical, safe)
        np.testing.assert_array_equal(valid, safe_valid)
    assert sorted(p.name for p in products.tml.iterdir()) == ["s2_10m.tif", "s2_20m.tif"]


def test_a_missing_band_is_named(products, tmp_path):
    copy = shutil.copytree(products.tml_per_band, tmp_path / "scene")
    (copy / "B12.tif").unlink()
    with pytest.raises(SceneError, match=r"scene: TML layout lacks band\(s\) B12 \(expected B12"):
        read_tml_layout(copy)


def test_a_band_given_twice_is_refused(products, tmp_path):
    copy = shutil.copytree(products.tml, tmp_path / "scene")
    shutil.copy(products.tml_per_band / "B05.tif", copy / "B05.tif")
    with pytest.raises(SceneError, match=r"B05\.tif: band B5 is also in .*s2_20m\.tif"):
        read_tml_layout(copy)


def test_an_offset_tag_is_applied(products, tmp_path):
    copy = shutil.copytree(products.tml, tmp_path / "scene")
    for name in ("s2_10m.tif", "s2_20m.tif"):
        with rasterio.open(copy / name, "r+") as ds:
            data = ds.read()
            ds.write(np.where(data > 0, data + 1000, 0).astype(np.uint16))
            ds.update_tags(RADIO_ADD_OFFSET="-1000", QUANTIFICATION_VALUE="10000")
    info, optical, valid = _read(copy)
    assert info.radiometry.offsets == (-1000.0,) * 10 and "RADIO_ADD_OFFSET tag" in (
        info.radiometry.reason
    )
    _, plain, plain_valid = _read(products.tml)
    np.testing.assert_array_equal(optical, plain)
    np.testing.assert_array_equal(valid, plain_valid)


def test_files_stating_different_radiometry_are_refused(products, tmp_path):
    copy = shutil.copytree(products.tml, tmp_path / "scene")
    with rasterio.open(copy / "s2_20m.tif", "r+") as ds:
        ds.update_tags(RADIO_ADD_OFFSET="-1000")
    with pytest.raises(SceneError, match="state different radiometry"):
        read_tml_layout(copy)
