"""triplets.py: reading a triplet, preparing a patch-store sample, the lazy sequence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tml_cloudremoval.bands import select_tml_bands
from tml_cloudremoval.data.cloud_mask import cloud_shadow_mask
from tml_cloudremoval.data.discovery import TRIPLET_COLUMNS, build_triplet_table, table_fingerprint
from tml_cloudremoval.data.layout import MODALITIES, official_paths
from tml_cloudremoval.data.store_build import build_patch_store
from tml_cloudremoval.data.triplets import (
    TripletSamples,
    prepare_patch,
    read_triplet,
    split_samples,
    usable_cores,
)
from tml_cloudremoval.raster import RasterError


def _paths(table: pd.DataFrame, patch: str) -> dict[str, Path]:
    row = table[table["patch"] == patch].iloc[0]
    return {m: Path(row[f"{m}_path"]) for m in MODALITIES}


def test_read_triplet_raw_arrays_and_window(tmp_path, write_triplet):
    paths = official_paths(tmp_path, "ROIs1158_spring", 1, 30)
    written = write_triplet(paths, size=(16, 12))
    row = {f"{m}_path": str(p) for m, p in paths.items()}
    raw = read_triplet(row)
    assert raw["s1"].dtype == np.float32 and raw["s1"].shape == (16, 12, 2)
    assert raw["s2"].dtype == np.uint16 and raw["s2"].shape == (16, 12, 13)
    for m in MODALITIES:
        np.testing.assert_array_equal(raw[m], written[m])
    crop = read_triplet(pd.Series(row), window=(slice(4, 12), slice(0, 8)))
    for m in MODALITIES:
        np.testing.assert_array_equal(crop[m], written[m][4:12, 0:8])


def test_read_triplet_missing_file_names_it(tmp_path, write_triplet):
    paths = official_paths(tmp_path, "ROIs1158_spring", 1, 30)
    write_triplet(paths)
    paths["s2"].unlink()
    with pytest.raises(RasterError, match="file does not exist") as err:
        read_triplet({f"{m}_path": str(p) for m, p in paths.items()})
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
    out = prepare_patch(raw, cloud_threshold=0.3, sar_method="mean")
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
    out = prepare_patch(raw, sar_method="linear_power")
    assert out["s1"][0, 0, 0] == pytest.approx(-20.0, abs=1e-4)
    assert out["s1"][1, 1, 1] == pytest.approx(-10.0, abs=1e-4)
    raw["s1"] = s1.copy()
    raw["s1"][..., 1] = np.nan
    with pytest.raises(ValueError, match=r"^/some/file.tif: S1 channel\(s\) \[1\]"):
        prepare_patch(raw, source="/some/file.tif")


def test_triplet_samples_lazy_sequence(table):
    samples = TripletSamples(table, cloud_threshold=0.2, sar_method="mean", progress=False)
    assert len(samples) == len(table)
    assert (samples.height, samples.width) == (16, 16)
    assert samples.meta == {"sar_method": "mean", "cloud_threshold": 0.2}
    key = json.loads(samples.resume_key)
    assert key["table"] == table_fingerprint(table) and key["size"] == [16, 16]
    assert (key["cloud_threshold"], key["sar_method"], key["n"]) == (0.2, "mean", len(table))
    assert TripletSamples(table, sar_method="linear_power").resume_key != samples.resume_key
    assert list(samples.index.columns) == list(TRIPLET_COLUMNS)
    first = samples[0]
    expected = prepare_patch(read_triplet(table.iloc[0]))
    for key, value in expected.items():
        np.testing.assert_array_equal(first[key], value)
    np.testing.assert_array_equal(samples[-1]["s2"], samples[len(table) - 1]["s2"])
    assert sum(1 for _ in samples) == len(table)
    with pytest.raises(IndexError):
        samples[len(table)]
    with pytest.raises(TypeError):
        samples["0"]  # type: ignore[index]


def test_split_samples_one_group_and_an_empty_split_of_the_others_size(table):
    tables = {"train": table.iloc[:3], "val": table.iloc[:0], "test": table.iloc[3:]}
    out = split_samples(tables, meta={"split_method": "official"}, progress=False, workers=1)
    assert list(out) == ["train", "val", "test"]
    assert [len(s) for s in out.values()] == [3, 0, len(table) - 3]
    assert (out["val"].height, out["val"].width) == (16, 16) and list(out["val"]) == []
    assert len({id(s.store_group) for s in out.values()}) == 1
    assert [s.store_member for s in out.values()] == ["train", "val", "test"]
    assert out["val"].meta == {
        "sar_method": "mean",
        "cloud_threshold": 0.2,
        "split_method": "official",
        "split": "val",
    }
    assert out["test"].description == "test patches" and out["train"].workers == 1
    assert TripletSamples(table.iloc[:0], patch_size=(8, 12)).width == 12


def test_triplet_samples_in_worker_processes_equal_one_process(table):
    one = list(TripletSamples(table, progress=False, workers=1))
    many = TripletSamples(table, progress=False, workers=3, min_per_worker=1)
    assert many.workers == 3 and len(one) == len(table)
    two = list(many)  # 7 triplets, 12 in flight at most: the window and the tail both run
    assert len(two) == len(one)
    for a, b in zip(one, two, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert TripletSamples(table, workers=None).workers == usable_cores()


def test_triplet_samples_worker_error_names_the_file(table, tmp_path):
    """The store build (workers write into the store): the error arrives whole, the build
    folder is removed (a fault is not resumed), nothing is put in place."""
    bad = _paths(table, "p5")["s2"]
    bad.write_bytes(b"garbage" * 20)
    samples = TripletSamples(table, progress=False, workers=2, min_per_worker=1, chunk=2)
    with pytest.raises(RasterError, match="not a readable GeoTIFF") as err:
        build_patch_store(tmp_path / "store" / "train", samples)
    assert err.value.path == bad  # raised in a worker, arrives whole
    assert [p.name for p in (tmp_path / "store").iterdir()] == [".train.lock"]


def test_triplet_samples_checks_settings(table):
    with pytest.raises(ValueError, match="unknown sar_method 'median'"):
        TripletSamples(table, sar_method="median")
    with pytest.raises(ValueError, match=r"cloud_threshold must be in \(0, 1\]"):
        TripletSamples(table, cloud_threshold=0)
    with pytest.raises(ValueError, match="patch size is unknown"):
        _ = TripletSamples(table.iloc[:0]).height
    with pytest.raises(ValueError, match="workers must be >= 1"):
        TripletSamples(table, workers=0)
    with pytest.raises(ValueError, match="chunk must be >= 1 rows"):
        TripletSamples(table, chunk=0)


@pytest.mark.realdata
def test_real_sample_prepared(real_samples_root):
    table = build_triplet_table(real_samples_root)
    row = table[(table["scene_id"] == "ROIs1970_fall_139")].iloc[0]
    raw = read_triplet(row)
    assert raw["s1"].shape == (256, 256, 2) and raw["s2_cloudy"].shape == (256, 256, 13)
    sample = prepare_patch(raw)
    assert sample["s1"].shape == (64, 64, 2) and not np.isnan(sample["s1"]).any()
    assert sample["mask"].mean() == pytest.approx(0.931, abs=0.01)  # cloud + shadow (issue 2)
