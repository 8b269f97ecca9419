"""layout.py: the one SEN12MS-CR file layout (official and flattened), name parsing."""

from __future__ import annotations

import pytest

from tml_cloudremoval.data.discovery import discover_triplets
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import (
    MODALITIES,
    detect_layout,
    flattened_paths,
    official_paths,
    official_relpaths,
    parse_patch_name,
    sort_key,
)


@pytest.mark.parametrize(
    "name",
    [
        "ROIs1158_spring_s1_1_p30.tif",
        "ROIs1158_spring_s2_1_p30.tif",
        "ROIs1158_spring_s2_cloudy_1_p30.tif",
        "ROIs1158_spring_1_p30.tif",
    ],
)
def test_parse_patch_name_both_namings(name):
    assert parse_patch_name(name) == ("ROIs1158_spring_1", "p30")
    assert parse_patch_name("ROIs0000_nogeo_s1_0_p1302.tif") == ("ROIs0000_nogeo_0", "p1302")


def test_parse_patch_name_rejects_other_names():
    with pytest.raises(ValueError, match="'scene.tif' does not follow the SEN12MS-CR naming"):
        parse_patch_name("scene.tif")


def test_layout_paths(tmp_path):
    official = official_paths(tmp_path, "ROIs1158_spring", 1, "p30")
    assert official["s1"] == tmp_path / "ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p30.tif"
    assert official["s2"] == tmp_path / "ROIs1158_spring_s2/s2_1/ROIs1158_spring_s2_1_p30.tif"
    assert official["s2_cloudy"] == (
        tmp_path / "ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p30.tif"
    )
    flat = flattened_paths(tmp_path, "ROIs1158_spring", 1, 30)
    assert {m: p.relative_to(tmp_path).as_posix() for m, p in flat.items()} == {
        "s1": "s1/ROIs1158_spring_1_p30.tif",
        "s2": "s2_cloudFree/ROIs1158_spring_1_p30.tif",
        "s2_cloudy": "s2_cloudy/ROIs1158_spring_1_p30.tif",
    }


def test_detect_layout(tmp_path, official_root, make_tree, triplets_written):
    assert detect_layout(official_root) == "official"
    flat = make_tree(tmp_path / "flat", "flattened", triplets_written[:1])
    assert detect_layout(flat) == "flattened"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no SEN12MS-CR data found") as err:
        detect_layout(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value)
    with pytest.raises(DataError, match="data root does not exist"):
        discover_triplets(tmp_path / "absent")


def test_official_relpaths_are_the_official_paths(tmp_path):
    rel = official_relpaths("ROIs1970_fall", 139, "p839")
    assert list(rel) == list(MODALITIES)
    assert rel == {
        "s1": "ROIs1970_fall_s1/s1_139/ROIs1970_fall_s1_139_p839.tif",
        "s2": "ROIs1970_fall_s2/s2_139/ROIs1970_fall_s2_139_p839.tif",
        "s2_cloudy": "ROIs1970_fall_s2_cloudy/s2_cloudy_139/ROIs1970_fall_s2_cloudy_139_p839.tif",
    }
    absolute = official_paths(tmp_path, "ROIs1970_fall", 139, 839)
    assert {m: p.relative_to(tmp_path).as_posix() for m, p in absolute.items()} == rel
    # every generated name parses back to its scene and patch
    assert {parse_patch_name(r) for r in rel.values()} == {("ROIs1970_fall_139", "p839")}


def test_sort_key_is_natural_order():
    names = [("A_10", "p2"), ("A_3", "p30"), ("A_3", "p4"), ("B_1", "p1")]
    assert sorted(names, key=lambda n: sort_key(*n)) == [
        ("A_3", "p4"),
        ("A_3", "p30"),
        ("A_10", "p2"),
        ("B_1", "p1"),
    ]


def test_detect_layout_refuses_a_root_holding_both(tmp_path, make_tree, triplets_written):
    root = make_tree(tmp_path / "both", "official", triplets_written[:1])
    make_tree(root, "flattened", triplets_written[:1])
    with pytest.raises(DataError, match="both the official layout .* and the flattened layout"):
        detect_layout(root)
