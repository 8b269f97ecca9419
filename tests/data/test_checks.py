"""checks.py: header checks of every file, the validation report, acting on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS

from tml_cloudremoval.data.checks import select_valid_triplets, validate_triplets, validation_report
from tml_cloudremoval.data.discovery import table_fingerprint
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import MODALITIES
from tml_cloudremoval.data.splits import SPLITS
from tml_cloudremoval.raster import write_geotiff_atomic


def _paths(table: pd.DataFrame, patch: str) -> dict[str, Path]:
    row = table[table["patch"] == patch].iloc[0]
    return {m: Path(row[f"{m}_path"]) for m in MODALITIES}


def test_validate_good_tree_including_no_crs_files(table):
    assert "ROIs0000_nogeo_0" in set(table["scene_id"])
    assert validate_triplets(table) == []


def _faults(problems) -> dict[str, str]:
    return {p.path: p.fault for p in problems}


def test_validate_wrong_band_count_and_dtype(table):
    paths = _paths(table, "p30")
    write_geotiff_atomic(paths["s1"], np.zeros((16, 16, 3), np.float32))
    write_geotiff_atomic(paths["s2"], np.zeros((16, 16, 13), np.int16))
    faults = [(p.path, p.fault) for p in validate_triplets(table)]
    assert (str(paths["s1"]), "S1 file has 3 bands, expected 2") in faults
    assert (str(paths["s2"]), "S2 (cloud-free) file has dtype int16, expected uint16") in faults
    assert all(p.split for p in validate_triplets(table))


def test_validate_size_mismatch_names_both_files(table, write_triplet):
    paths = _paths(table, "p7")
    s1 = np.random.default_rng(0).uniform(-25, -5, (8, 16, 2)).astype(np.float32)
    write_triplet(paths, size=(16, 16), georef=True, s1=s1)
    problems = validate_triplets(table)
    assert len(problems) == 1
    assert problems[0].path == str(paths["s1"])
    assert problems[0].fault == (
        f"size 16x8 (width x height) differs from its S2 partner {paths['s2']} (16x16)"
    )
    assert str(problems[0]) == f"{paths['s1']}: {problems[0].fault}"


def test_validate_size_not_multiple_of_four_and_odd_patch_size(table, write_triplet):
    paths = _paths(table, "p2")
    write_triplet(paths, size=(18, 18))
    faults = _faults(validate_triplets(table))
    for m in MODALITIES:
        assert faults[str(paths[m])] == "size 18x18 (width x height) is not a multiple of 4"
    write_triplet(paths, size=(32, 32))
    problems = validate_triplets(table)
    assert [(p.path, p.fault) for p in problems] == [
        (
            str(paths["s2"]),
            "size 32x32 (width x height) differs from the 16x16 of the other triplets "
            "(a patch store holds one size)",
        )
    ]
    assert validate_triplets(table, same_size=False) == []


def test_validate_grid_mismatch(table, write_triplet, grid):
    utm, transform = grid
    paths = _paths(table, "p11")
    other = write_triplet(paths)  # georeferenced on transform
    write_geotiff_atomic(
        paths["s2_cloudy"],
        other["s2_cloudy"],
        crs=utm,
        transform=transform @ Affine.translation(1, 0),
    )
    write_geotiff_atomic(paths["s1"], other["s1"], crs=CRS.from_epsg(32632), transform=transform)
    faults = _faults(validate_triplets(table))
    assert faults[str(paths["s2_cloudy"])].startswith("geotransform (10.0, 0.0, 600010.0")
    assert faults[str(paths["s2_cloudy"])].endswith(f"of its S2 partner {paths['s2']}")
    assert faults[str(paths["s1"])].startswith("CRS EPSG:32632 differs from EPSG:32631")


def test_validate_truncated_and_corrupt_files(table):
    paths = _paths(table, "p5")
    write_geotiff_atomic(paths["s2"], np.ones((16, 16, 13), np.uint16), tiled=False, compress=None)
    data = paths["s2"].read_bytes()
    paths["s2"].write_bytes(data[: len(data) - 200])
    paths["s1"].write_bytes(b"garbage" * 20)
    faults = _faults(validate_triplets(table))
    assert faults[str(paths["s2"])].startswith("truncated: pixel data should end at byte")
    assert faults[str(paths["s1"])].startswith("not a readable GeoTIFF")
    assert len(faults) == 2


def test_validate_collects_every_problem(table):
    a, b = _paths(table, "p30"), _paths(table, "p1")
    a["s1"].unlink()
    b["s2_cloudy"].write_bytes(b"")
    faults = _faults(validate_triplets(table, progress=True))
    assert faults == {
        str(a["s1"]): "file does not exist",
        str(b["s2_cloudy"]): "file is empty (0 bytes)",
    }


def _tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {s: table[table["split"] == s].reset_index(drop=True) for s in SPLITS}


def test_report_then_selection_keeps_everything_when_all_good(table):
    tables = _tables(table)
    report = validation_report(tables)
    assert report["n_triplets"] == {s: len(t) for s, t in tables.items()}
    assert report["n_problems"] == 0 and report["problems"] == []
    assert report["fingerprints"] == {s: table_fingerprint(t) for s, t in tables.items()}
    selected = select_valid_triplets(tables, report, "error")
    assert all(selected[s].equals(tables[s]) for s in SPLITS)


def test_selection_error_skip_and_stale_report(table):
    tables = _tables(table)
    victim = tables["train"].iloc[0]
    Path(victim["s1_path"]).unlink()
    report = validation_report(tables)
    assert report["n_bad_triplets"]["train"] == 1 and report["n_problems"] == 1
    with pytest.raises(
        DataError, match=r"^1 triplet\(s\) have bad files \(1 problem\(s\)\)"
    ) as err:
        select_valid_triplets(tables, report, "error")
    assert f"{victim['s1_path']}: file does not exist" in str(err.value)
    kept = select_valid_triplets(tables, report, "skip")
    assert len(kept["train"]) == len(tables["train"]) - 1
    assert victim["s1_path"] not in set(kept["train"]["s1_path"])
    assert kept["val"].equals(tables["val"])
    stale = {**tables, "val": tables["val"].iloc[:0]}
    with pytest.raises(DataError, match=r"does not describe the current \['val'\] list"):
        select_valid_triplets(stale, report, "skip")
    with pytest.raises(DataError, match="on_bad_file must be one of"):
        select_valid_triplets(tables, report, "warn")


def test_a_split_listed_empty_stays_empty_but_skipping_may_not_empty_one(table):
    """The official split may list an empty split (no such scene under data.root): selection
    keeps it empty; a split that skipping empties is still refused."""
    tables = {**_tables(table), "val": table.iloc[:0]}
    report = validation_report(tables)
    assert report["n_triplets"]["val"] == 0
    for on_bad_file in ("error", "skip"):
        selected = select_valid_triplets(tables, report, on_bad_file)
        assert selected["val"].empty and selected["train"].equals(tables["train"])
    for path in tables["test"]["s1_path"]:
        Path(path).unlink()
    with pytest.raises(DataError, match=r"split\(s\) \['test'\] are empty after skipping"):
        select_valid_triplets(tables, validation_report(tables), "skip")
