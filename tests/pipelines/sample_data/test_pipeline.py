"""The sample_data pipeline through kedro's DataCatalog + SequentialRunner (tiny parameters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from tml_cloudremoval.data.sample_data import sample_dataset_exists, sample_scene_exists
from tml_cloudremoval.pipelines.sample_data import create_pipeline


def _catalog(tmp_path: Path) -> DataCatalog:
    catalog = DataCatalog()
    catalog["params:sample_data.seed"] = 11
    catalog["params:sample_data.sen12mscr"] = {
        "root": str(tmp_path / "sen12mscr_sample"),
        "seasons": ["ROIs1158_spring", "ROIs1868_summer", "ROIs1970_fall"],
        "scenes_per_season": 1,
        "patch_grid": [1, 2],
        "patch_size": 32,
        "patch_stride": 16,
        "cloud_cover": [0.0, 0.9],
        "land_cover_scale_px": 8.0,
        "cloud_scale_px": 8.0,
        "shadow_distance_px": [2.0, 4.0],
        "overwrite": False,
    }
    catalog["params:sample_data.tml_scene"] = {
        "root": str(tmp_path / "tml_scene"),
        "height": 48,
        "width": 40,
        "land_cover_scale_px": 8.0,
        "cloud_scale_px": 10.0,
        "shadow_distance_px": [2.0, 4.0],
        "overwrite": False,
    }
    return catalog


def test_pipeline_shape() -> None:
    pipe = create_pipeline()
    assert {n.name for n in pipe.nodes} == {"make_sample_sen12mscr", "make_sample_tml_scene"}
    assert pipe.outputs() == {"sample_sen12mscr_summary", "sample_tml_scene_summary"}


def test_pipeline_writes_both_parts_then_skips(tmp_path: Path) -> None:
    outputs = SequentialRunner().run(create_pipeline(), _catalog(tmp_path))
    sen = outputs["sample_sen12mscr_summary"].load()
    scene = outputs["sample_tml_scene_summary"].load()
    assert sen["skipped"] is False and sen["n_triplets"] == 6 and sen["n_scenes"] == 3
    assert len(list((tmp_path / "sen12mscr_sample").rglob("*.tif"))) == 18
    assert sample_dataset_exists(tmp_path / "sen12mscr_sample")
    assert scene["skipped"] is False and scene["height"] == 48 and scene["width"] == 40
    assert sample_scene_exists(tmp_path / "tml_scene")
    with rasterio.open(tmp_path / "tml_scene" / "s2_cloudy.tif") as src:
        assert (src.count, src.height, src.width, src.dtypes[0]) == (10, 48, 40, "uint16")
        assert np.any(src.read() == 0)  # the nodata wedge

    again = SequentialRunner().run(create_pipeline(), _catalog(tmp_path))
    assert again["sample_sen12mscr_summary"].load()["skipped"] is True
    assert again["sample_tml_scene_summary"].load()["skipped"] is True
