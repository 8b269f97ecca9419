"""The sample_data pipeline through kedro's DataCatalog + SequentialRunner (tiny parameters):
the project's catalog entries (folders moved into tmp_path) write the products."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.data.discovery import TRIPLET_COLUMNS
from tml_cloudremoval.data.synthetic.sample_folder import is_complete
from tml_cloudremoval.data.synthetic.sen12mscr_sample import SEN12MSCR_KIND
from tml_cloudremoval.data.synthetic.tml_scene import TML_SCENE_KIND
from tml_cloudremoval.pipelines.sample_data import create_pipeline

PROJECT = Path(__file__).resolve().parents[3]
PARAMS = {
    "seed": 11,
    "sen12mscr": {
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
    },
    "tml_scene": {
        "height": 48,
        "width": 40,
        "land_cover_scale_px": 8.0,
        "cloud_scale_px": 10.0,
        "shadow_distance_px": [2.0, 4.0],
        "overwrite": False,
    },
}


def _project_config(name: str) -> dict:
    loader = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    return loader[name]


def _catalog(tmp_path: Path, params: dict = PARAMS) -> DataCatalog:
    config = {
        name: entry
        for name, entry in _project_config("catalog").items()
        if name in {"sen12mscr_sample", "tml_scene_sample"}
    }
    for entry in config.values():
        entry["filepath"] = str(tmp_path / entry["filepath"])
    catalog = DataCatalog.from_config(config)
    catalog["params:sample_data"] = MemoryDataset(params)
    return catalog


def test_pipeline_shape_and_catalog_folders() -> None:
    pipe = create_pipeline()
    assert {n.name for n in pipe.nodes} == {"make_sample_sen12mscr", "make_sample_tml_scene"}
    assert pipe.inputs() == {"params:sample_data"}
    assert pipe.outputs() == {"sen12mscr_sample", "tml_scene_sample"}
    catalog = _project_config("catalog")
    parameters = _project_config("parameters")
    # the folders are named once (globals.yml): data.root and the inference inputs follow them
    assert catalog["sen12mscr_sample"]["filepath"] == parameters["data"]["root"]
    tml_root = catalog["tml_scene_sample"]["filepath"]
    assert parameters["inference"]["s2_path"] == f"{tml_root}/s2_cloudy.tif"
    for name in ("sen12mscr_sample", "tml_scene_sample"):
        assert catalog[name]["metadata"]["kedro-viz"]["layer"] == "raw"


def test_pipeline_writes_both_parts_then_skips(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    SequentialRunner().run(create_pipeline(), catalog)
    sen_root = tmp_path / "data/01_raw/sen12mscr_sample"
    scene_root = tmp_path / "data/01_raw/tml_scene"
    assert is_complete(sen_root, SEN12MSCR_KIND) and is_complete(scene_root, TML_SCENE_KIND)
    assert len(list(sen_root.rglob("*.tif"))) == 18
    triplets = catalog.load("sen12mscr_sample")  # a user's catalog.load gives the triplets
    assert list(triplets.columns) == list(TRIPLET_COLUMNS) and len(triplets) == 6
    assert triplets["scene_id"].nunique() == 3
    scene = catalog.load("tml_scene_sample")
    assert set(scene) == {"s2_cloudy", "s1", "s2_clear", "safe", "safe_zip", "tml_layout"}
    assert scene["safe"].is_dir() and scene["safe_zip"].suffix == ".zip"
    with rasterio.open(scene["s2_cloudy"]) as src:
        assert (src.count, src.height, src.width, src.dtypes[0]) == (10, 48, 40, "uint16")
        assert np.any(src.read() == 0)  # the nodata wedge

    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.tif")}
    SequentialRunner().run(create_pipeline(), _catalog(tmp_path))  # up to date: nothing written
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.tif")} == stamps


def test_bad_parameter_stops_before_any_file(tmp_path: Path) -> None:
    params = {**PARAMS, "tml_scene": {**PARAMS["tml_scene"], "hieght": 48}}
    with pytest.raises(ConfigError, match=r"sample_data\.tml_scene\.hieght: unknown .* height"):
        SequentialRunner().run(create_pipeline(), _catalog(tmp_path, params))
    assert not (tmp_path / "data").exists()  # whichever node ran first, nothing was written


def test_load_before_generation_says_what_to_run(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    assert not catalog.exists("sen12mscr_sample")
    with pytest.raises(Exception, match="kedro run --pipelines sample_data"):
        catalog.load("sen12mscr_sample")
