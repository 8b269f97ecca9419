"""content.py: every band of a file checked for unusable pixels, each fault naming the band."""

from __future__ import annotations

import numpy as np
import pytest

from tml_cloudremoval.data.checks import validate_triplets
from tml_cloudremoval.data.content import check_triplet_content, content_faults
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.triplets import TripletSamples, read_triplet


def _s1(h: int = 8, w: int = 8) -> np.ndarray:
    return np.random.default_rng(1).uniform(-25, -5, (h, w, 2)).astype(np.float32)


def _s2(h: int = 8, w: int = 8) -> np.ndarray:
    return np.random.default_rng(2).integers(100, 3000, (h, w, 13), dtype=np.uint16)


def test_good_pixels_have_no_faults():
    s1 = _s1()
    s1[0, 0, 0] = np.nan  # a few missing pixels are filled later, not a fault
    s2 = _s2()
    s2[0, 0, 3] = 65535  # saturation code
    s2[1, 1, 4] = 0  # nodata
    assert content_faults("s1", s1) == []
    assert content_faults("s2", s2) == []
    assert content_faults("s2_cloudy", s2) == []


def test_s1_faults_name_the_band():
    s1 = _s1()
    s1[..., 1] = np.nan
    assert content_faults("s1", s1) == ["band VH: all NaN (no data)"]
    s1 = _s1()
    s1[..., 0] = -12.5
    assert content_faults("s1", s1) == ["band VV: constant (every pixel is -12.5)"]
    s1 = _s1()
    s1[2, 3, 1] = np.inf
    s1[2, 4, 1] = -np.inf
    assert content_faults("s1", s1) == ["band VH: 2 infinite value(s)"]
    s1 = _s1()
    s1[0, 0, 0] = -9999.0  # an undeclared fill value
    (fault,) = content_faults("s1", s1)
    assert (
        fault.startswith("band VV: values -9999..") and "outside the plausible -100..50 dB" in fault
    )


def test_s2_faults_name_the_band():
    s2 = _s2()
    s2[..., 0] = 0  # B1 all zero
    s2[4, 4, 10] = 40000  # B10 far above any reflectance
    assert content_faults("s2", s2) == [
        "band B1: constant (every pixel is 0)",
        "band B10: DN 0..40000 outside 0..30000 (65535 = saturated is accepted)",
    ]
    wrong_count = _s2()[..., :3].copy()
    wrong_count[..., 2] = 7
    assert content_faults("s2", wrong_count) == ["band 3: constant (every pixel is 7)"]
    assert content_faults("s1", np.zeros((0, 4, 2), np.float32))  # empty image


def test_check_triplet_content_names_every_file_and_band():
    row = {"s1_path": "/d/s1.tif", "s2_path": "/d/s2.tif", "s2_cloudy_path": "/d/cloudy.tif"}
    s1 = _s1()
    s1[..., 0] = np.nan
    cloudy = _s2()
    cloudy[..., 12] = 5
    with pytest.raises(DataError) as err:
        check_triplet_content(row, {"s1": s1, "s2": _s2(), "s2_cloudy": cloudy})
    message = str(err.value)
    assert "/d/s1.tif: band VV: all NaN (no data)" in message
    assert "/d/cloudy.tif: band B12: constant (every pixel is 5)" in message
    assert "/d/s2.tif" not in message
    check_triplet_content(row, {"s1": _s1(), "s2": _s2(), "s2_cloudy": _s2()})  # no error


def _all_nan_s1(table, write_triplet, patch="p7"):
    """Rewrite one triplet of ``table`` with an all-NaN VV band -> its S1 path."""
    row = table[table["patch"] == patch].iloc[0]
    paths = {m: row[f"{m}_path"] for m in ("s1", "s2", "s2_cloudy")}
    s1 = _s1(16, 16)
    s1[..., 0] = np.nan
    write_triplet(paths, s1=s1)
    return row["s1_path"]


def test_validation_reports_content_faults_by_file_and_band(table, write_triplet):
    s1_path = _all_nan_s1(table, write_triplet)
    problems = validate_triplets(table)
    assert [(p.path, p.fault) for p in problems] == [(s1_path, "band VV: all NaN (no data)")]
    assert validate_triplets(table, content=False) == []  # the header alone is fine


def test_build_names_the_s1_file_not_the_cloudy_one(table, write_triplet):
    """Issue 12 defect 4: an all-NaN S1 band reaching the build is named by its own file."""
    s1_path = _all_nan_s1(table, write_triplet)
    row = table[table["patch"] == "p7"].iloc[0]
    samples = TripletSamples(table[table["patch"] == "p7"], progress=False, workers=1)
    with pytest.raises(DataError) as err:
        samples[0]
    assert f"{s1_path}: band VV: all NaN (no data)" in str(err.value)
    assert row["s2_cloudy_path"] not in str(err.value)
    raw = read_triplet(row)  # reading without the check still works (windows, notebooks)
    assert np.isnan(raw["s1"][..., 0]).all()
