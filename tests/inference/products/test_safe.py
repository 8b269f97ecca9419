"""Sentinel-2 .SAFE products (folder and zip): bands, radiometry, level, faults."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.products.safe import is_safe, read_safe
from tml_cloudremoval.inference.reader import inspect_optical, open_optical


def _read(path, **kwargs):
    info = inspect_optical(path, **kwargs)
    with open_optical(info) as reader:
        optical, valid = reader.read_tile(0, 0, info.height, info.width)
    return info, optical, valid


def test_bands_are_found_in_model_order_with_the_products_grid(products, ground):
    info, optical, valid = _read(products.safe_0209)
    assert info.band_source == "safe L1C"
    assert (info.height, info.width) == (ground.H, ground.W)
    assert info.crs == ground.crs and info.transform == ground.transform
    assert info.header.descriptions == TML_BAND_NAMES and info.nodata == 0
    # the 10 m bands come through unchanged, in model order (B2 B3 B4 ... B8 at position 6)
    for position, name in ((0, "B2"), (1, "B3"), (2, "B4"), (6, "B8")):
        expected = np.where(valid, ground.bands[name], 0) / 2000.0
        np.testing.assert_allclose(optical[..., position], expected, atol=1e-6)
    np.testing.assert_array_equal(valid, (ground.bands["B2"] > 0))


def test_offset_products_read_exactly_as_those_without(products):
    _, plain, valid = _read(products.safe_0209)
    for path in (products.safe_0400, products.zip_0400):
        info, optical, valid2 = _read(path)
        assert info.radiometry.offsets == (-1000.0,) * 10
        assert "baseline 04.00" in info.radiometry.reason
        np.testing.assert_array_equal(optical, plain)
        np.testing.assert_array_equal(valid2, valid)


def test_the_offset_is_read_from_the_metadata(products):
    meta = read_safe(products.safe_0400).metadata
    assert meta.offsets == (-1000.0,) * 10 and meta.quantification == 10000.0
    assert read_safe(products.safe_0209).metadata.offsets == (0.0,) * 10


def test_l2a_is_refused_unless_allowed(products):
    with pytest.raises(SceneError, match="L2A .*trained on L1C.*allow_l2a"):
        inspect_optical(products.l2a)
    info, optical, _ = _read(products.l2a, allow_l2a=True)
    assert info.band_source == "safe L2A" and "BOA_ADD_OFFSET" in info.radiometry.reason
    np.testing.assert_array_equal(optical, _read(products.safe_0209)[1])


def test_a_contradicting_dn_offset_names_both_values(products):
    with pytest.raises(SceneError, match="dn_offset is 0 but .*MTD_MSIL1C.xml.* states -1000"):
        inspect_optical(products.safe_0400, dn_offset=0)


def test_a_missing_band_is_named(products, tmp_path):
    copy = shutil.copytree(products.safe_0209, tmp_path / products.safe_0209.name)
    next(copy.rglob("*_B8A.jp2")).unlink()
    with pytest.raises(SceneError, match=r"\.SAFE: band\(s\) B8A missing"):
        inspect_optical(copy)


def test_a_band_on_another_grid_is_named(products, ground, tmp_path):
    from tml_cloudremoval.data.synthetic.s2_products import _write_jp2

    copy = shutil.copytree(products.safe_0209, tmp_path / products.safe_0209.name)
    b11 = next(copy.rglob("*_B11.jp2"))
    shifted = ground.transform @ ground.transform.translation(3, 0)
    _write_jp2(b11, np.ones((ground.H // 2, ground.W // 2), np.uint16), ground.crs, shifted)
    with pytest.raises(SceneError, match=r"_B11\.jp2: band B11: grid .* does not cover B2"):
        inspect_optical(copy)


def test_other_folders_and_files_are_refused(products, tmp_path):
    (tmp_path / "x.SAFE").mkdir()
    with pytest.raises(SceneError, match=r"x\.SAFE: not a Sentinel-2 L1C product: no MTD"):
        inspect_optical(tmp_path / "x.SAFE")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(SceneError, match=r"bad\.zip: not a readable \.zip"):
        inspect_optical(tmp_path / "bad.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        SceneError, match=r"empty: a folder that is neither a Sentinel-2 \.SAFE product"
    ):
        inspect_optical(tmp_path / "empty")
    mtd = tmp_path / "odd.SAFE" / "MTD_MSIL1C.xml"
    mtd.parent.mkdir()
    mtd.write_text("<a><PRODUCT_TYPE>S1_GRD</PRODUCT_TYPE></a>")
    with pytest.raises(SceneError, match="product type 'S1_GRD' is not Sentinel-2"):
        inspect_optical(mtd.parent)


def test_is_safe(products, tmp_path):
    assert is_safe(products.safe_0209) and is_safe(products.zip_0400)
    assert not is_safe(products.tml) and not is_safe(tmp_path / "nothing")


def test_a_product_whose_size_is_no_multiple_of_6_reads_whole(tmp_path, ground):
    """Real tiles are 10980 px (a multiple of 6); a cut-out need not be: its last 20 m / 60 m
    row reaches past the 10 m grid, as in a real product."""
    from tml_cloudremoval.data.synthetic.s2_products import write_safe

    bands = {name: band[:50, :47] for name, band in ground.bands.items()}
    path = write_safe(tmp_path, bands, ground.crs, ground.transform, baseline="04.00")
    info, optical, valid = _read(path)
    assert (info.height, info.width) == (50, 47)
    np.testing.assert_array_equal(valid, bands["B2"] > 0)
    np.testing.assert_allclose(optical[..., 0], np.where(valid, bands["B2"], 0) / 2000.0)
    assert np.isfinite(optical).all() and (optical[valid][:, 3] > 0).all()
