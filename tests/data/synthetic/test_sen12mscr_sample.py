"""synthetic/sen12mscr_sample.py: the official layout, file contents, seeds, settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tml_cloudremoval.bands import S1_BAND_NAMES, S2_BAND_NAMES, band_indices
from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.data.discovery import discover_triplets
from tml_cloudremoval.data.layout import official_relpaths
from tml_cloudremoval.data.synthetic.sample_folder import (
    MANIFEST_NAME,
    is_complete,
    write_sample_folder,
)
from tml_cloudremoval.data.synthetic.sen12mscr_sample import SEN12MSCR_KIND, sen12mscr_sample
from tml_cloudremoval.data.synthetic.tml_scene import TML_SCENE_KIND

SEASONS = ["ROIs1158_spring", "ROIs2017_winter"]
TINY = {
    "seasons": SEASONS,
    "scenes_per_season": 1,
    "patch_grid": [1, 2],
    "patch_size": 64,
    "patch_stride": 32,
    "cloud_cover": [0.3, 0.6],
    "land_cover_scale_px": 12.0,
    "cloud_scale_px": 16.0,
    "shadow_distance_px": [4.0, 8.0],
}
B2 = band_indices(["B2"])[0]


def _read(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile, tuple]:
    with rasterio.open(path) as src:
        return np.moveaxis(src.read(), 0, -1), src.profile, src.descriptions


def _rel(season: str, scene: int, patch: int) -> list[str]:
    return list(official_relpaths(season, scene, patch).values())


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample") / "sen12mscr"
    summary = write_sample_folder(root, sen12mscr_sample(seed=7, **TINY))
    assert summary["skipped"] is False and summary["n_triplets"] == 4
    return root


def test_official_layout_and_manifest(tiny_root: Path) -> None:
    found = sorted(str(p.relative_to(tiny_root)) for p in tiny_root.rglob("*.tif"))
    expected = sorted(rel for s in SEASONS for p in (1, 2) for rel in _rel(s, 1, p))
    assert found == expected
    assert "ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p2.tif" in found
    manifest = json.loads((tiny_root / MANIFEST_NAME).read_text())
    assert manifest["status"] == "complete"
    assert sorted(manifest["files"]) == expected
    assert manifest["settings"]["seed"] == 7 and "overwrite" not in manifest["settings"]
    assert [t["scene_id"] for t in manifest["triplets"]] == [
        f"{s}_1" for s in SEASONS for _ in "ab"
    ]
    assert is_complete(tiny_root, SEN12MSCR_KIND)
    assert not is_complete(tiny_root, TML_SCENE_KIND)
    assert not is_complete(tiny_root / "nowhere", SEN12MSCR_KIND)
    # discovery reads what the generator wrote: one layout definition on both sides
    table = discover_triplets(tiny_root)
    assert len(table) == 4 and set(table["scene_id"]) == {f"{s}_1" for s in SEASONS}


def test_file_contents_dtypes_bands_georef(tiny_root: Path) -> None:
    rel_s1, rel_s2, rel_cloudy = _rel(SEASONS[0], 1, 1)
    s1, p1, d1 = _read(tiny_root / rel_s1)
    s2, p2, d2 = _read(tiny_root / rel_s2)
    cloudy, pc, dc = _read(tiny_root / rel_cloudy)
    assert s1.shape == (64, 64, 2) and s1.dtype == np.float32 and d1 == S1_BAND_NAMES
    assert s2.shape == (64, 64, 13) and s2.dtype == np.uint16 and d2 == S2_BAND_NAMES
    assert cloudy.shape == (64, 64, 13) and cloudy.dtype == np.uint16 and dc == S2_BAND_NAMES
    for profile in (p1, p2, pc):
        assert profile["crs"] == p1["crs"] and profile["transform"] == p1["transform"]
    epsg = p1["crs"].to_epsg()
    assert 32601 <= epsg <= 32660  # UTM north
    t = p1["transform"]
    assert (t.a, t.e, t.b, t.d) == (10.0, -10.0, 0.0, 0.0)
    # the neighbouring patch p2 lies patch_stride px (320 m) east, same row
    _, p_next, _ = _read(tiny_root / _rel(SEASONS[0], 1, 2)[0])
    assert p_next["crs"] == p1["crs"]
    assert p_next["transform"].c - t.c == 320.0 and p_next["transform"].f == t.f
    # plausible values: S2 DN of clear land, S1 dB, NaN present
    assert 300 < np.median(s2[..., B2]) < 2500
    assert np.isnan(s1).any()
    finite = s1[np.isfinite(s1)]
    assert -45.0 < finite.min() and finite.max() < 25.0
    assert np.nanmean(s1[..., 1]) < np.nanmean(s1[..., 0]) - 3.0  # VH below VV


def test_seeded_determinism(tiny_root: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_sample_folder(again, sen12mscr_sample(seed=7, **TINY))
    other = tmp_path / "other"
    write_sample_folder(other, sen12mscr_sample(seed=8, **TINY))
    for rel in json.loads((tiny_root / MANIFEST_NAME).read_text())["files"]:
        assert (tiny_root / rel).read_bytes() == (again / rel).read_bytes()  # byte-identical
        a, _, _ = _read(tiny_root / rel)
        c, _, _ = _read(other / rel)
        assert not np.array_equal(a, c, equal_nan=True)


def test_skip_when_up_to_date_and_rewrite_when_settings_change(tmp_path: Path) -> None:
    root = tmp_path / "d"
    settings = {**TINY, "seasons": SEASONS[:1]}
    fewer = {**settings, "patch_grid": [1, 1]}
    write_sample_folder(root, sen12mscr_sample(seed=1, **settings))
    s2 = root / _rel(SEASONS[0], 1, 2)[1]
    stamp = s2.stat().st_mtime_ns
    again = write_sample_folder(root, sen12mscr_sample(seed=1, **settings))
    assert again["skipped"] is True and again["n_triplets"] == 2
    assert s2.stat().st_mtime_ns == stamp
    # fewer patches: rewritten as a whole, the stale p2 files are gone (no orphan triplets)
    smaller = write_sample_folder(root, sen12mscr_sample(seed=1, **fewer))
    assert smaller["skipped"] is False and smaller["n_triplets"] == 1
    assert not s2.exists() and len(list(root.rglob("*.tif"))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary left behind
    # overwrite forces a rewrite with the same settings
    forced = sen12mscr_sample(seed=1, **fewer, overwrite=True)
    assert write_sample_folder(root, forced)["skipped"] is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"patch_size": 66}, r"sample_data\.sen12mscr\.patch_size: must be a multiple of 4"),
        ({"seasons": ["ROIs9999_monsoon"]}, r"sample_data\.sen12mscr\.seasons: .*monsoon"),
        ({"cloud_cover": [0.5, 1.5]}, r"sample_data\.sen12mscr\.cloud_cover: must be <= 1"),
        ({"cloud_cover": [0.6, 0.5]}, r"sample_data\.sen12mscr\.cloud_cover: .* not \[low, high\]"),
        ({"patch_stride": 80}, r"sample_data\.sen12mscr\.patch_stride: 80 exceeds patch_size 64"),
        ({"seasons": []}, r"sample_data\.sen12mscr\.seasons: must name at least one"),
        ({"patch_grid": [2]}, r"sample_data\.sen12mscr\.patch_grid: expected 2 values"),
        ({"patch_sise": 64}, r"did you mean sample_data\.sen12mscr\.patch_size\?"),
    ],
)
def test_bad_settings_rejected_naming_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sen12mscr_sample(seed=1, **{**TINY, **change})
