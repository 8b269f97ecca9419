"""Radiometry: the DN offset and quantification value applied to a file's DN, and why."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.radiometry import (
    MetadataRadiometry,
    Radiometry,
    resolve_radiometry,
)

N = len(TML_BAND_NAMES)


def test_to_model_dn_removes_the_offset_and_keeps_nodata():
    dn = np.array([[[0] * N, [1000] * N, [3500] * N]], dtype=np.uint16)  # (1, 3, 10)
    out = Radiometry((-1000.0,) * N, 10000.0, "t").to_model_dn(dn)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, :, 0], [0.0, 0.0, 2500.0])  # DN 0 stays 0 (nodata)


def test_to_model_dn_rescales_another_quantification():
    dn = np.full((1, 1, N), 2000, np.uint16)
    out = Radiometry((0.0,) * N, 20000.0, "t").to_model_dn(dn)  # reflectance 0.1
    np.testing.assert_allclose(out, 1000.0)


def test_identity_is_a_plain_cast():
    dn = np.arange(2 * N, dtype=np.uint16).reshape(1, 2, N)
    radiometry = Radiometry((0.0,) * N, 10000.0, "t")
    assert radiometry.is_identity
    np.testing.assert_array_equal(radiometry.to_model_dn(dn), dn.astype(np.float32))


def test_auto_without_metadata_is_zero_and_says_why():
    r = resolve_radiometry(None, "auto", "a.tif")
    assert r.offsets == (0.0,) * N and r.quantification == 10000.0
    assert "a.tif" in r.reason and "auto" in r.reason


def test_an_int_without_metadata_is_used():
    r = resolve_radiometry(None, -1000, "a.tif")
    assert r.offsets == (-1000.0,) * N and "inference.dn_offset" in r.reason


def test_metadata_is_used_and_an_agreeing_int_accepted():
    meta = MetadataRadiometry((-1000.0,) * N, 10000.0, "MTD_MSIL1C.xml (baseline 04.00)")
    for value in ("auto", -1000):
        r = resolve_radiometry(meta, value, "p.SAFE")
        assert r.offsets == (-1000.0,) * N and "MTD_MSIL1C.xml" in r.reason


def test_an_int_contradicting_the_metadata_names_both_values():
    meta = MetadataRadiometry((-1000.0,) * N, 10000.0, "MTD_MSIL1C.xml (baseline 04.00)")
    with pytest.raises(SceneError, match=r"p\.SAFE: inference.dn_offset is 0 .* states -1000"):
        resolve_radiometry(meta, 0, "p.SAFE")


def test_as_json_names_every_band():
    facts = Radiometry((-1000.0,) * N, 10000.0, "why").as_json()
    assert list(facts["dn_offset"]) == list(TML_BAND_NAMES) and facts["reason"] == "why"
