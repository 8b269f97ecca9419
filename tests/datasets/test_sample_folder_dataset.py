"""Sen12mscrSampleDataset / TmlSceneSampleDataset: lazy products saved as whole folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import DataCatalog, DatasetError

from tml_cloudremoval.data.discovery import TRIPLET_COLUMNS
from tml_cloudremoval.data.synthetic.sen12mscr_sample import sen12mscr_sample
from tml_cloudremoval.data.synthetic.tml_scene import tml_scene
from tml_cloudremoval.datasets.sample_folder_dataset import (
    Sen12mscrSampleDataset,
    TmlSceneSampleDataset,
)

TYPE = "tml_cloudremoval.datasets.sample_folder_dataset."
TINY = {
    "seasons": ["ROIs1158_spring"],
    "scenes_per_season": 2,
    "patch_grid": [1, 1],
    "patch_size": 32,
    "patch_stride": 16,
    "land_cover_scale_px": 8.0,
    "cloud_scale_px": 8.0,
    "shadow_distance_px": [2.0, 4.0],
}
TINY_SCENE = {"height": 32, "width": 24, "land_cover_scale_px": 8.0, "cloud_scale_px": 8.0}


def test_catalog_round_trip_by_full_type_path(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "sen12mscr_sample": {
                "type": TYPE + "Sen12mscrSampleDataset",
                "filepath": str(tmp_path / "sen"),
            },
            "tml_scene_sample": {
                "type": TYPE + "TmlSceneSampleDataset",
                "filepath": str(tmp_path / "scene"),
            },
        }
    )
    assert not catalog.exists("sen12mscr_sample")
    catalog.save("sen12mscr_sample", sen12mscr_sample(seed=3, **TINY))
    catalog.save(
        "tml_scene_sample",
        tml_scene(seed=3, **TINY_SCENE, write_clear=False, write_products=False),
    )
    table = catalog.load("sen12mscr_sample")
    assert list(table.columns) == list(TRIPLET_COLUMNS)
    assert list(table["scene_id"]) == ["ROIs1158_spring_1", "ROIs1158_spring_2"]
    assert all(Path(p).is_file() for p in table["s2_cloudy_path"])
    scene = catalog.load("tml_scene_sample")
    assert scene == {"s2_cloudy": tmp_path / "scene/s2_cloudy.tif", "s1": tmp_path / "scene/s1.tif"}
    assert catalog.exists("tml_scene_sample")


def test_save_refuses_other_products_and_foreign_folders(tmp_path: Path) -> None:
    dataset = Sen12mscrSampleDataset(filepath=str(tmp_path / "sen"))
    with pytest.raises(
        DatasetError, match="needs a 'sen12mscr' sample product, got TmlSceneSample"
    ):
        dataset.save(tml_scene(seed=1, **TINY_SCENE))
    real = tmp_path / "real"  # e.g. a user's SEN12MS-CR download
    (real / "ROIs1158_spring_s1/s1_1").mkdir(parents=True)
    (real / "ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p1.tif").write_bytes(b"real")
    with pytest.raises(DatasetError, match="refusing to write synthetic data into it"):
        Sen12mscrSampleDataset(filepath=str(real)).save(sen12mscr_sample(seed=1, **TINY))
    assert [p.name for p in real.rglob("*") if p.is_file()] == ["ROIs1158_spring_s1_1_p1.tif"]
    with pytest.raises(DatasetError, match="holds no complete 'tml_scene' sample"):
        TmlSceneSampleDataset(filepath=str(tmp_path / "none")).load()
    assert "sen" in str(dataset)
