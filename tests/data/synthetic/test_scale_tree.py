"""synthetic/scale_tree.py: the full-size fixture in small (2 seasons x 3 scenes x 50 patches):
official layout and scene ids, real headers on a grid, discovery, the official split,
validation in worker processes finding a planted bad file (the same as in one process)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from tml_cloudremoval.atomic import pid_alive, temporary_sibling
from tml_cloudremoval.data import checks
from tml_cloudremoval.data.checks import validate_triplets
from tml_cloudremoval.data.content import content_faults
from tml_cloudremoval.data.discovery import discover_triplets
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import official_paths
from tml_cloudremoval.data.splits import assign_splits
from tml_cloudremoval.data.synthetic.scale_tree import (
    OFFICIAL_SPLIT_CSV,
    distribute,
    make_scale_tree,
    official_scenes,
    scene_arrays,
    scene_origin,
)

SEASONS = ("ROIs1158_spring", "ROIs1868_summer")
PER_SCENE = 50


def _scenes() -> list[tuple[str, int]]:
    """Per season, the first train, val and test scene of the official table."""
    official = pd.read_csv(OFFICIAL_SPLIT_CSV)
    picked = []
    for season in SEASONS:
        rows = official[official["roi_season"] == season]
        for split in ("train", "val", "test"):
            picked.append((season, int(rows[rows["split"] == split]["scene"].iloc[0])))
    return picked


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scale") / "sen12mscr"
    make_scale_tree(root, 6 * PER_SCENE, _scenes(), workers=1, progress=False)
    return root


def test_distribute_is_exact_and_even():
    counts = distribute(122_218, 175)
    assert sum(counts) == 122_218
    assert set(counts) == {698, 699}  # 122218 = 175 * 698 + 68
    assert counts[:68] == [699] * 68
    with pytest.raises(DataError, match="cannot fill"):
        distribute(3, 5)


def test_official_scenes_are_the_table():
    scenes = official_scenes()
    assert len(scenes) == 175
    assert {rs for rs, _ in scenes} == {
        "ROIs1158_spring",
        "ROIs1868_summer",
        "ROIs1970_fall",
        "ROIs2017_winter",
    }


def test_pixels_pass_the_content_checks():
    for modality, image in scene_arrays(7).items():
        assert content_faults(modality, image) == []
        assert image.shape[:2] == (256, 256)


def test_tree_has_the_official_layout_and_headers(tree):
    for season, scene in _scenes():
        crs, x0, y0 = scene_origin(season, scene)
        for patch in (1, 2, 9, PER_SCENE):
            paths = official_paths(tree, season, scene, patch)
            headers = {}
            for modality, path in paths.items():
                with rasterio.open(path) as src:
                    headers[modality] = (
                        src.count,
                        src.dtypes[0],
                        src.shape,
                        src.crs,
                        src.transform,
                    )
            assert headers["s1"][:3] == (2, "float32", (256, 256))
            assert headers["s2"][:3] == (13, "uint16", (256, 256))
            assert headers["s2_cloudy"][:3] == (13, "uint16", (256, 256))
            # patch p on a ceil(sqrt(50)) = 8 wide grid, 128 px = 1280 m apart
            r, c = divmod(patch - 1, 8)
            for *_, file_crs, transform in headers.values():
                assert file_crs == crs
                assert transform == rasterio.Affine(10, 0, x0 + 1280 * c, 0, -10, y0 - 1280 * r)
        folder = official_paths(tree, season, scene, 1)["s2"].parent
        assert len(os.listdir(folder)) == PER_SCENE
    assert max(p.stat().st_size for p in tree.glob("*/*/*.tif")) < 4096


def test_pixels_read_back_as_written(tree):
    season, scene = _scenes()[0]
    for modality, path in official_paths(tree, season, scene, 3).items():
        with rasterio.open(path) as src:
            image = np.moveaxis(src.read(), 0, -1)
        np.testing.assert_array_equal(image, scene_arrays(scene)[modality])


def test_discovery_and_official_split(tree):
    table = discover_triplets(tree)
    expected = {(f"{rs}_{scene}", f"p{p}") for rs, scene in _scenes() for p in range(1, 51)}
    assert len(table) == len(expected) == 300
    assert set(zip(table["scene_id"], table["patch"], strict=True)) == expected
    official = pd.read_csv(OFFICIAL_SPLIT_CSV)
    parts = assign_splits(table, "official", seed=0, official=official)
    want = {f"{rs}_{n}": s for rs, n, s in official.itertuples(index=False)}
    for split, part in parts.items():
        assert len(part) == 2 * PER_SCENE  # one scene per season per split
        assert {want[s] for s in part["scene_id"]} == {split}


def test_rerun_skips_and_an_incomplete_folder_is_rewritten(tree):
    again = make_scale_tree(tree, 300, _scenes(), workers=1, progress=False)
    assert (again["written"], again["skipped"]) == (0, 900)
    season, scene = _scenes()[1]
    victim = official_paths(tree, season, scene, 5)["s1"]
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])  # a half-written file
    # a killed run's temporary folder: the sibling naming with a pid that no longer exists
    dead = next(pid for pid in range(4_000_000, 4_100_000) if not pid_alive(pid))
    ours = temporary_sibling(victim.parent)
    stale = ours.with_name(ours.name.replace(f".{os.getpid()}.", f".{dead}.", 1))
    stale.mkdir()
    fixed = make_scale_tree(tree, 300, _scenes(), workers=1, progress=False)
    assert (fixed["written"], fixed["skipped"]) == (PER_SCENE, 850)
    assert victim.read_bytes() == good
    assert not stale.exists()
    assert len(discover_triplets(tree)) == 300


def _plant_faults(tree: Path, table: pd.DataFrame) -> tuple[str, str]:
    """Truncate one S2 file and give one cloudy S2 12 bands -> their paths."""
    truncated = table.loc[17, "s2_path"]
    data = Path(truncated).read_bytes()
    Path(truncated).write_bytes(data[: len(data) - 200])
    wrong = table.loc[263, "s2_cloudy_path"]
    image = np.moveaxis(scene_arrays(1)["s2"][..., :12], -1, 0)
    with rasterio.open(wrong, "r+") as src:
        profile = src.profile
    profile.update(count=12)
    with rasterio.open(wrong, "w", **profile) as dst:
        dst.write(image)
    return truncated, wrong


@pytest.mark.slow
def test_validation_in_workers_finds_planted_files(tmp_path, monkeypatch):
    root = tmp_path / "sen12mscr"
    make_scale_tree(root, 300, _scenes(), workers=2, progress=False)
    table = discover_triplets(root)
    truncated, wrong = _plant_faults(root, table)
    monkeypatch.setattr(checks, "MIN_PER_WORKER", 50)  # 300 triplets -> 2 workers
    monkeypatch.setattr(checks, "CHUNK_TRIPLETS", 64)
    assert checks.check_workers(2, len(table)) == 2
    in_workers = validate_triplets(table, workers=2, progress=True)
    alone = validate_triplets(table, workers=1)
    assert in_workers == alone
    faults = {(p.path, p.fault.split(":")[0]) for p in in_workers}
    assert faults == {(truncated, "truncated"), (wrong, "S2 cloudy file has 12 bands, expected 13")}
    assert {(p.scene_id, p.patch) for p in in_workers} == {
        tuple(table.loc[i, ["scene_id", "patch"]]) for i in (17, 263)
    }
