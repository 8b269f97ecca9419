"""sen12mscr.py: discovery in both layouts, file lists, scene splits, header checks, reading."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS

from tml_cloudremoval.bands import select_tml_bands
from tml_cloudremoval.data import sen12mscr as s
from tml_cloudremoval.data.cloud_mask import cloud_shadow_mask
from tml_cloudremoval.data.sen12mscr import DataError
from tml_cloudremoval.raster import RasterError, write_geotiff_atomic

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
UTM = CRS.from_epsg(32631)
TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)
# (roi_season, scene, patch): 4 scenes, 7 triplets
TRIPLETS = [
    ("ROIs1158_spring", 1, 30),
    ("ROIs1158_spring", 1, 4),
    ("ROIs1158_spring", 2, 7),
    ("ROIs1868_summer", 10, 2),
    ("ROIs1868_summer", 10, 11),
    ("ROIs1868_summer", 3, 5),
    ("ROIs0000_nogeo", 0, 1),
]


def write_triplet(paths, size=(16, 16), seed=0, georef=True, s1=None, s2=None, cloudy=None):
    """Tiny random triplet at ``paths`` ({"s1", "s2", "s2_cloudy"}); arrays may be overridden."""
    rng = np.random.default_rng(seed)
    h, w = size
    arrays = {
        "s1": rng.uniform(-25, -5, (h, w, 2)).astype(np.float32) if s1 is None else s1,
        "s2": rng.integers(100, 3000, (h, w, 13), dtype=np.uint16) if s2 is None else s2,
    }
    if cloudy is None:
        cloudy = arrays["s2"].copy()
        cloudy[: h // 2, : w // 2] = 6000  # a bright cloud in the top-left quarter
    arrays["s2_cloudy"] = cloudy
    geo = {"crs": UTM, "transform": TRANSFORM} if georef else {}
    for modality, array in arrays.items():
        write_geotiff_atomic(paths[modality], array, **geo)
    return arrays


def make_tree(root: Path, layout: str = "official", triplets=TRIPLETS, size=(16, 16)) -> Path:
    paths_of = s.official_paths if layout == "official" else s.flattened_paths
    for i, (rs, scene, patch) in enumerate(triplets):
        write_triplet(paths_of(root, rs, scene, patch), size, seed=i, georef=rs != "ROIs0000_nogeo")
    return root


@pytest.fixture
def official_root(tmp_path) -> Path:
    return make_tree(tmp_path / "official")


@pytest.fixture
def table(official_root) -> pd.DataFrame:
    return s.split_by_scene(s.discover_triplets(official_root), FRACTIONS, seed=42)


# ---------------------------------------------------------------- names and layouts


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
    assert s.parse_patch_name(name) == ("ROIs1158_spring_1", "p30")
    assert s.parse_patch_name("ROIs0000_nogeo_s1_0_p1302.tif") == ("ROIs0000_nogeo_0", "p1302")


def test_parse_patch_name_rejects_other_names():
    with pytest.raises(ValueError, match="'scene.tif' does not follow the SEN12MS-CR naming"):
        s.parse_patch_name("scene.tif")


def test_layout_paths(tmp_path):
    official = s.official_paths(tmp_path, "ROIs1158_spring", 1, "p30")
    assert official["s1"] == tmp_path / "ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p30.tif"
    assert official["s2"] == tmp_path / "ROIs1158_spring_s2/s2_1/ROIs1158_spring_s2_1_p30.tif"
    assert official["s2_cloudy"] == (
        tmp_path / "ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p30.tif"
    )
    flat = s.flattened_paths(tmp_path, "ROIs1158_spring", 1, 30)
    assert {m: p.relative_to(tmp_path).as_posix() for m, p in flat.items()} == {
        "s1": "s1/ROIs1158_spring_1_p30.tif",
        "s2": "s2_cloudFree/ROIs1158_spring_1_p30.tif",
        "s2_cloudy": "s2_cloudy/ROIs1158_spring_1_p30.tif",
    }


def test_detect_layout(tmp_path, official_root):
    assert s.detect_layout(official_root) == "official"
    flat = make_tree(tmp_path / "flat", "flattened", TRIPLETS[:1])
    assert s.detect_layout(flat) == "flattened"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no SEN12MS-CR data found") as err:
        s.detect_layout(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value)
    with pytest.raises(DataError, match="data root does not exist"):
        s.discover_triplets(tmp_path / "absent")


# ---------------------------------------------------------------- discovery


def _expected_order():
    return sorted(TRIPLETS, key=lambda t: (t[0], t[1], t[2]))


def test_discover_official(official_root):
    table = s.discover_triplets(official_root)
    assert list(table.columns) == list(s.TRIPLET_COLUMNS)
    assert len(table) == len(TRIPLETS)
    # natural order: ROI/season, scene number, patch number (p4 before p30, scene 3 before 10)
    assert list(zip(table["scene_id"], table["patch"], strict=True)) == [
        (f"{rs}_{scene}", f"p{patch}") for rs, scene, patch in _expected_order()
    ]
    assert (table["split"] == "").all()
    for m in s.MODALITIES:
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in table[f"{m}_path"])
    row = table[table["patch"] == "p30"].iloc[0]
    assert row["s1_path"] == str(s.official_paths(official_root, "ROIs1158_spring", 1, 30)["s1"])


@pytest.mark.parametrize("cloudfree_folder", ["s2_cloudFree", "s2_cloudfree"])
def test_discover_flattened(tmp_path, cloudfree_folder):
    root = tmp_path / "flat"
    for i, (rs, scene, patch) in enumerate(TRIPLETS):
        paths = s.flattened_paths(root, rs, scene, patch, {"s2": cloudfree_folder})
        write_triplet(paths, seed=i)
    table = s.discover_triplets(root)  # auto-detected
    assert s.discover_triplets(root, layout="flattened").equals(table)
    assert len(table) == len(TRIPLETS)
    assert table["s2_path"].str.contains(f"/{cloudfree_folder}/").all()
    assert table.loc[0, "s1_path"].endswith("/s1/ROIs0000_nogeo_0_p1.tif")


def test_discover_empty_root_and_unknown_layout(tmp_path):
    root = tmp_path / "root"
    (root / "ROIs1158_spring_s1" / "s1_1").mkdir(parents=True)
    with pytest.raises(DataError, match="no SEN12MS-CR triplets found") as err:
        s.discover_triplets(root)
    assert str(root) in str(err.value)
    with pytest.raises(DataError, match="unknown layout 'weird'"):
        s.discover_triplets(root, layout="weird")


def test_missing_partner_is_listed_and_reported(official_root, caplog):
    gone = s.official_paths(official_root, "ROIs1158_spring", 2, 7)
    gone["s2"].unlink()
    gone["s2_cloudy"].unlink()
    with caplog.at_level(logging.WARNING):
        table = s.discover_triplets(official_root)
    assert len(table) == len(TRIPLETS)  # not dropped
    assert "2 triplet file(s)" in caplog.text
    problems = s.validate_triplets(table)
    assert {(p.path, p.fault) for p in problems} == {
        (str(gone["s2"]), "file does not exist"),
        (str(gone["s2_cloudy"]), "file does not exist"),
    }


def test_s2_without_s1_is_listed(official_root):
    s.official_paths(official_root, "ROIs1158_spring", 1, 4)["s1"].unlink()
    table = s.discover_triplets(official_root)
    assert len(table) == len(TRIPLETS)
    problems = s.validate_triplets(table)
    assert [p.fault for p in problems] == ["file does not exist"]
    assert problems[0].path.endswith("ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p4.tif")


# ---------------------------------------------------------------- file lists


FILE_LIST_ROWS = [
    ("1", "ROIs1158_spring_1_p30.tif"),
    ("2", "ROIs1868_summer_10_p2.tif"),
    ("3", "ROIs0000_nogeo_0_p1.tif"),
]


@pytest.mark.parametrize("sep", ["\t", ",", ", "])
def test_read_file_list_separators(tmp_path, sep):
    lines = ["", "  # a comment"]
    lines += [sep.join([code, "s1", "s2_cloudFree", "s2_cloudy", f]) for code, f in FILE_LIST_ROWS]
    lines[3] = "  " + lines[3] + "  "
    path = tmp_path / "list.csv"
    path.write_text("\n".join([*lines, "", ""]))
    rows = s.read_file_list(path)
    assert rows == [
        ("train", "s1", "s2_cloudFree", "s2_cloudy", "ROIs1158_spring_1_p30.tif"),
        ("val", "s1", "s2_cloudFree", "s2_cloudy", "ROIs1868_summer_10_p2.tif"),
        ("test", "s1", "s2_cloudFree", "s2_cloudy", "ROIs0000_nogeo_0_p1.tif"),
    ]


def test_read_file_list_header_line_is_skipped(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "split,s1,s2,s2_cloudy,file\n1,s1,s2_cloudFree,s2_cloudy,ROIs1_spring_1_p3.tif\n"
    )
    assert len(s.read_file_list(path)) == 1


def test_read_file_list_bad_lines_all_named(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "1\ts1\ts2_cloudFree\ts2_cloudy\tA_1_p1.tif\n"
        "4\ts1\ts2_cloudFree\ts2_cloudy\tA_1_p2.tif\n"
        "1\ts1\ts2_cloudFree\tA_1_p3.tif\n"
    )
    with pytest.raises(DataError, match="2 line") as err:
        s.read_file_list(path)
    message = str(err.value)
    assert str(path) in message and "line 2:" in message and "line 3:" in message
    with pytest.raises(DataError, match="file list does not exist"):
        s.read_file_list(tmp_path / "absent.csv")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(DataError, match="holds no triplet rows"):
        s.read_file_list(tmp_path / "blank.csv")


def test_triplets_from_file_list(tmp_path):
    root = make_tree(tmp_path / "flat", "flattened")
    path = tmp_path / "list.txt"
    path.write_text(
        "\n".join(f"{c}, s1, s2_cloudFree, s2_cloudy, {f}" for c, f in FILE_LIST_ROWS) + "\n"
    )
    table = s.build_triplet_table(root, file_list=path)
    assert list(table["split"]) == ["test", "train", "val"]  # sorted by ROI/scene/patch
    assert list(table["scene_id"]) == [
        "ROIs0000_nogeo_0",
        "ROIs1158_spring_1",
        "ROIs1868_summer_10",
    ]
    assert table.loc[1, "s2_path"] == str(root.resolve() / "s2_cloudFree/ROIs1158_spring_1_p30.tif")
    assert s.validate_triplets(table) == []


def test_file_list_with_unparseable_name(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("1\ts1\ts2\ts2_cloudy\tscene.tif\n")
    with pytest.raises(DataError, match="1 file name") as err:
        s.triplets_from_file_list(path, tmp_path)
    assert "scene.tif" in str(err.value)


# ---------------------------------------------------------------- splits


def _many_scenes(n_scenes: int, patches: int = 3) -> pd.DataFrame:
    rows = [
        {
            "scene_id": f"ROIs1158_spring_{i}",
            "patch": f"p{j}",
            **{f"{m}_path": f"/x/{m}_{i}_{j}.tif" for m in s.MODALITIES},
            "split": "",
        }
        for i in range(n_scenes)
        for j in range(patches)
    ]
    return pd.DataFrame(rows, columns=list(s.TRIPLET_COLUMNS))


def test_split_by_scene_no_scene_in_two_splits():
    table = s.split_by_scene(_many_scenes(40), FRACTIONS, seed=42)
    scenes = {name: set(part["scene_id"]) for name, part in table.groupby("split")}
    assert set(scenes) == {"train", "val", "test"}
    assert not scenes["train"] & scenes["val"]
    assert not scenes["train"] & scenes["test"]
    assert not scenes["val"] & scenes["test"]
    assert table.groupby("scene_id")["split"].nunique().max() == 1
    assert {k: len(v) for k, v in scenes.items()} == {"train": 28, "val": 6, "test": 6}


def test_split_by_scene_deterministic_and_order_independent():
    table = _many_scenes(20)
    a = s.split_by_scene(table, FRACTIONS, seed=7)
    b = s.split_by_scene(table.sample(frac=1.0, random_state=1), FRACTIONS, seed=7)
    key = ["scene_id", "patch"]
    assert (
        a.sort_values(key).reset_index(drop=True).equals(b.sort_values(key).reset_index(drop=True))
    )
    c = s.split_by_scene(table, FRACTIONS, seed=8)
    assert not a["split"].equals(c["split"])  # another seed, another split


@pytest.mark.parametrize(("n", "expected"), [(3, (1, 1, 1)), (4, (2, 1, 1)), (10, (7, 2, 1))])
def test_split_every_split_non_empty(n, expected):
    table = s.split_by_scene(_many_scenes(n, patches=1), FRACTIONS, seed=0)
    counts = table["split"].value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == expected


def test_split_needs_three_scenes():
    with pytest.raises(DataError, match=r"2 scene\(s\) .* at least 3 scenes, 1 more") as err:
        s.split_by_scene(_many_scenes(2), FRACTIONS, seed=0)
    assert "ROIs1158_spring_0" in str(err.value)
    with pytest.raises(DataError, match="triplet table is empty"):
        s.split_by_scene(_many_scenes(0), FRACTIONS, seed=0)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"train": 0.8, "val": 0.2}, "exactly the keys"),
        ({"train": 1.0, "val": 0.0, "test": 0.0}, "must be > 0"),
        ({"train": 0.7, "val": 0.2, "test": 0.2}, "must sum to 1"),
    ],
)
def test_split_fractions_checked(fractions, message):
    with pytest.raises(DataError, match=message):
        s.split_by_scene(_many_scenes(5), fractions, seed=0)


def test_split_tables_reports_empty_split():
    table = _many_scenes(3)
    table["split"] = ["train"] * 6 + ["test"] * 3
    with pytest.raises(DataError, match=r"empty split\(s\) \['val'\] \(train: 6, val: 0, test: 3"):
        s.split_tables(table)
    table["split"] = ["train"] * 3 + ["val"] * 3 + ["test"] * 3
    parts = s.split_tables(table)
    assert [len(parts[k]) for k in s.SPLITS] == [3, 3, 3]
    table.loc[0, "split"] = "holdout"
    with pytest.raises(DataError, match="unknown split value"):
        s.split_tables(table)


def test_fingerprint_follows_paths():
    table = _many_scenes(3)
    assert s.table_fingerprint(table) == s.table_fingerprint(table.copy())
    assert s.table_fingerprint(table) != s.table_fingerprint(table.iloc[1:])


# ---------------------------------------------------------------- validation


def _paths(table: pd.DataFrame, patch: str) -> dict[str, Path]:
    row = table[table["patch"] == patch].iloc[0]
    return {m: Path(row[f"{m}_path"]) for m in s.MODALITIES}


def test_validate_good_tree_including_no_crs_files(table):
    assert "ROIs0000_nogeo_0" in set(table["scene_id"])
    assert s.validate_triplets(table) == []


def _faults(problems) -> dict[str, str]:
    return {p.path: p.fault for p in problems}


def test_validate_wrong_band_count_and_dtype(table):
    paths = _paths(table, "p30")
    write_geotiff_atomic(paths["s1"], np.zeros((16, 16, 3), np.float32))
    write_geotiff_atomic(paths["s2"], np.zeros((16, 16, 13), np.int16))
    faults = [(p.path, p.fault) for p in s.validate_triplets(table)]
    assert (str(paths["s1"]), "S1 file has 3 bands, expected 2") in faults
    assert (str(paths["s2"]), "S2 (cloud-free) file has dtype int16, expected uint16") in faults
    assert all(p.split for p in s.validate_triplets(table))


def test_validate_size_mismatch_names_both_files(table):
    paths = _paths(table, "p7")
    write_triplet(paths, size=(16, 16), georef=True, s1=np.zeros((8, 16, 2), np.float32))
    problems = s.validate_triplets(table)
    assert len(problems) == 1
    assert problems[0].path == str(paths["s1"])
    assert problems[0].fault == (
        f"size 16x8 (width x height) differs from its S2 partner {paths['s2']} (16x16)"
    )
    assert str(problems[0]) == f"{paths['s1']}: {problems[0].fault}"


def test_validate_size_not_multiple_of_four_and_odd_patch_size(table):
    paths = _paths(table, "p2")
    write_triplet(paths, size=(18, 18))
    faults = _faults(s.validate_triplets(table))
    for m in s.MODALITIES:
        assert faults[str(paths[m])] == "size 18x18 (width x height) is not a multiple of 4"
    write_triplet(paths, size=(32, 32))
    problems = s.validate_triplets(table)
    assert [(p.path, p.fault) for p in problems] == [
        (
            str(paths["s2"]),
            "size 32x32 (width x height) differs from the 16x16 of the other triplets "
            "(a patch store holds one size)",
        )
    ]
    assert s.validate_triplets(table, same_size=False) == []


def test_validate_grid_mismatch(table):
    paths = _paths(table, "p11")
    other = write_triplet(paths)  # georeferenced on TRANSFORM
    write_geotiff_atomic(
        paths["s2_cloudy"],
        other["s2_cloudy"],
        crs=UTM,
        transform=TRANSFORM @ Affine.translation(1, 0),
    )
    write_geotiff_atomic(paths["s1"], other["s1"], crs=CRS.from_epsg(32632), transform=TRANSFORM)
    faults = _faults(s.validate_triplets(table))
    assert faults[str(paths["s2_cloudy"])].startswith("geotransform (10.0, 0.0, 600010.0")
    assert faults[str(paths["s2_cloudy"])].endswith(f"of its S2 partner {paths['s2']}")
    assert faults[str(paths["s1"])].startswith("CRS EPSG:32632 differs from EPSG:32631")


def test_validate_truncated_and_corrupt_files(table):
    paths = _paths(table, "p5")
    write_geotiff_atomic(paths["s2"], np.ones((16, 16, 13), np.uint16), tiled=False, compress=None)
    data = paths["s2"].read_bytes()
    paths["s2"].write_bytes(data[: len(data) - 200])
    paths["s1"].write_bytes(b"garbage" * 20)
    faults = _faults(s.validate_triplets(table))
    assert faults[str(paths["s2"])].startswith("truncated: pixel data should end at byte")
    assert faults[str(paths["s1"])].startswith("not a readable GeoTIFF")
    assert len(faults) == 2


def test_validate_collects_every_problem(table):
    a, b = _paths(table, "p30"), _paths(table, "p1")
    a["s1"].unlink()
    b["s2_cloudy"].write_bytes(b"")
    faults = _faults(s.validate_triplets(table, progress=True))
    assert faults == {
        str(a["s1"]): "file does not exist",
        str(b["s2_cloudy"]): "file is empty (0 bytes)",
    }


# ---------------------------------------------------------------- reading and preparing


def test_read_triplet_raw_arrays_and_window(tmp_path):
    paths = s.official_paths(tmp_path, "ROIs1158_spring", 1, 30)
    written = write_triplet(paths, size=(16, 12))
    row = {f"{m}_path": str(p) for m, p in paths.items()}
    raw = s.read_triplet(row)
    assert raw["s1"].dtype == np.float32 and raw["s1"].shape == (16, 12, 2)
    assert raw["s2"].dtype == np.uint16 and raw["s2"].shape == (16, 12, 13)
    for m in s.MODALITIES:
        np.testing.assert_array_equal(raw[m], written[m])
    crop = s.read_triplet(pd.Series(row), window=(slice(4, 12), slice(0, 8)))
    for m in s.MODALITIES:
        np.testing.assert_array_equal(crop[m], written[m][4:12, 0:8])


def test_read_triplet_missing_file_names_it(tmp_path):
    paths = s.official_paths(tmp_path, "ROIs1158_spring", 1, 30)
    write_triplet(paths)
    paths["s2"].unlink()
    with pytest.raises(RasterError, match="file does not exist") as err:
        s.read_triplet({f"{m}_path": str(p) for m, p in paths.items()})
    assert str(paths["s2"]) in str(err.value)


def _block_mean_oracle(sar: np.ndarray) -> np.ndarray:
    """Independent: per-channel NaN fill with the channel mean, then plain 4 x 4 loops."""
    filled = sar.astype(np.float64).copy()
    for c in range(sar.shape[-1]):
        channel = filled[..., c]
        channel[np.isnan(channel)] = np.nanmean(channel)
    h, w, ch = sar.shape
    out = np.zeros((h // 4, w // 4, ch))
    for i in range(h // 4):
        for j in range(w // 4):
            out[i, j] = filled[4 * i : 4 * i + 4, 4 * j : 4 * j + 4].mean(axis=(0, 1))
    return out


def test_prepare_patch_matches_independent_computation():
    rng = np.random.default_rng(3)
    s1 = rng.uniform(-25, -5, (16, 16, 2)).astype(np.float32)
    s1[0:4, 0:4, 0] = np.nan  # an all-NaN 40 m block in VV
    s1[5, 7, 1] = np.nan
    s2 = rng.integers(100, 3000, (16, 16, 13), dtype=np.uint16)
    cloudy = s2.copy()
    cloudy[:8] = 7000
    raw = {"s1": s1, "s2": s2, "s2_cloudy": cloudy}
    out = s.prepare_patch(raw, cloud_threshold=0.3, sar_method="mean")
    assert {k: (v.shape, v.dtype) for k, v in out.items()} == {
        "s2_cloudy": ((16, 16, 10), np.dtype(np.uint16)),
        "s2": ((16, 16, 10), np.dtype(np.uint16)),
        "s1": ((4, 4, 2), np.dtype(np.float32)),
        "mask": ((16, 16), np.dtype(np.uint8)),
    }
    np.testing.assert_array_equal(out["s2"], s2[..., [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]])
    np.testing.assert_array_equal(out["s2_cloudy"], select_tml_bands(cloudy))
    np.testing.assert_allclose(out["s1"], _block_mean_oracle(s1), rtol=1e-5)
    assert not np.isnan(out["s1"]).any()
    np.testing.assert_array_equal(out["mask"], cloud_shadow_mask(cloudy, cloud_threshold=0.3))
    assert out["mask"][:8].mean() > 0.9  # the bright half is cloud


def test_prepare_patch_linear_power_and_all_nan_channel():
    s1 = np.full((8, 8, 2), -10.0, np.float32)
    s1[:4, :4, 0] = -20.0
    raw = {
        "s1": s1,
        "s2": np.ones((8, 8, 13), np.uint16),
        "s2_cloudy": np.ones((8, 8, 13), np.uint16),
    }
    out = s.prepare_patch(raw, sar_method="linear_power")
    assert out["s1"][0, 0, 0] == pytest.approx(-20.0, abs=1e-4)
    assert out["s1"][1, 1, 1] == pytest.approx(-10.0, abs=1e-4)
    raw["s1"] = s1.copy()
    raw["s1"][..., 1] = np.nan
    with pytest.raises(ValueError, match=r"^/some/file.tif: S1 channel\(s\) \[1\]"):
        s.prepare_patch(raw, source="/some/file.tif")


def test_triplet_samples_lazy_sequence(table):
    samples = s.TripletSamples(table, cloud_threshold=0.2, sar_method="mean", progress=False)
    assert len(samples) == len(table)
    assert (samples.height, samples.width) == (16, 16)
    assert samples.meta == {"sar_method": "mean", "cloud_threshold": 0.2}
    assert list(samples.index.columns) == list(s.TRIPLET_COLUMNS)
    first = samples[0]
    expected = s.prepare_patch(s.read_triplet(table.iloc[0]))
    for key, value in expected.items():
        np.testing.assert_array_equal(first[key], value)
    np.testing.assert_array_equal(samples[-1]["s2"], samples[len(table) - 1]["s2"])
    assert sum(1 for _ in samples) == len(table)
    with pytest.raises(IndexError):
        samples[len(table)]
    with pytest.raises(TypeError):
        samples["0"]  # type: ignore[index]


def test_triplet_samples_in_worker_processes_equal_one_process(table):
    one = list(s.TripletSamples(table, progress=False, workers=1))
    many = s.TripletSamples(table, progress=False, workers=3, min_per_worker=1)
    assert many.workers == 3 and len(one) == len(table)
    two = list(many)  # 7 triplets, 12 in flight at most: the window and the tail both run
    assert len(two) == len(one)
    for a, b in zip(one, two, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert s.TripletSamples(table, workers=None).workers == s.usable_cores()


def test_triplet_samples_worker_error_names_the_file(table):
    bad = _paths(table, "p5")["s2"]
    bad.write_bytes(b"garbage" * 20)
    with pytest.raises(RasterError, match="not a readable GeoTIFF") as err:
        list(s.TripletSamples(table, progress=False, workers=2, min_per_worker=1))
    assert err.value.path == bad  # raised in a worker, arrives whole


def test_triplet_samples_checks_settings(table):
    with pytest.raises(ValueError, match="unknown sar_method 'median'"):
        s.TripletSamples(table, sar_method="median")
    with pytest.raises(ValueError, match=r"cloud_threshold must be in \(0, 1\]"):
        s.TripletSamples(table, cloud_threshold=0)
    with pytest.raises(ValueError, match="patch size is unknown"):
        _ = s.TripletSamples(table.iloc[:0]).height
    with pytest.raises(ValueError, match="workers must be >= 1"):
        s.TripletSamples(table, workers=0)


# ---------------------------------------------------------------- real samples


@pytest.mark.realdata
def test_real_samples_found_split_and_valid(real_samples_root):
    table = s.build_triplet_table(real_samples_root)
    assert len(table) == 22
    assert set(table["scene_id"]) == {
        "ROIs0000_nogeo_0",
        "ROIs1970_fall_139",
        "ROIs2017_winter_112",
    }
    assert ("ROIs1970_fall_139", "p839") in set(zip(table["scene_id"], table["patch"], strict=True))
    split = s.split_by_scene(table, FRACTIONS, seed=42)
    parts = s.split_tables(split)
    assert sum(len(p) for p in parts.values()) == 22
    assert all(p["scene_id"].nunique() == 1 for p in parts.values())  # 3 scenes, one per split
    assert s.validate_triplets(split) == []


@pytest.mark.realdata
def test_real_sample_prepared(real_samples_root):
    table = s.build_triplet_table(real_samples_root)
    row = table[(table["scene_id"] == "ROIs1970_fall_139")].iloc[0]
    raw = s.read_triplet(row)
    assert raw["s1"].shape == (256, 256, 2) and raw["s2_cloudy"].shape == (256, 256, 13)
    sample = s.prepare_patch(raw)
    assert sample["s1"].shape == (64, 64, 2) and not np.isnan(sample["s1"]).any()
    assert sample["mask"].mean() == pytest.approx(0.931, abs=0.01)  # cloud + shadow (issue 2)
