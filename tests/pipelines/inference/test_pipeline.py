"""inference pipeline: the project's catalog entries (paths moved into tmp_path), small
georeferenced scenes made here, a tiny DSen2-CR model, SequentialRunner."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from rasterio.crs import CRS

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.pipelines.inference import create_pipeline
from tml_cloudremoval.raster import write_geotiff_atomic

PROJECT = Path(__file__).resolve().parents[3]
CATALOG_YML = PROJECT / "conf" / "base" / "catalog_inference.yml"
PARAMS_YML = PROJECT / "conf" / "base" / "parameters_inference.yml"
TRANSFORM = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 4500000.0)
CRS_UTM = CRS.from_epsg(32633)


def write_tif(path: Path, array: np.ndarray, transform: Affine, nodata=None) -> Path:
    return write_geotiff_atomic(path, array, crs=CRS_UTM, transform=transform, nodata=nodata)


def make_pair(folder: Path, s2_name: str, s1_name: str, seed: int, x_shift: float = 0.0):
    rng = np.random.default_rng(seed)
    optical = rng.integers(200, 6000, (64, 72, 10)).astype(np.uint16)
    optical[:5, :] = 0  # a nodata strip
    sar = rng.uniform(-20, -5, (16, 18, 2)).astype(np.float32)
    s1_transform = Affine(40.0, 0.0, 300000.0 + x_shift, 0.0, -40.0, 4500000.0)
    return (
        write_tif(folder / s2_name, optical, TRANSFORM, nodata=0),
        write_tif(folder / s1_name, sar, s1_transform),
    )


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return build_dsen2cr(features=8, blocks=1)


def run(model, params: dict, out: Path) -> dict:
    config = yaml.safe_load(CATALOG_YML.read_text())
    assert set(config) == {"inference_plan", "inference_report", "inference_quicklooks"}
    for entry in config.values():
        entry["filepath"] = str(out / entry["filepath"])
    catalog = DataCatalog.from_config(config)
    catalog["dsen2cr_model"] = MemoryDataset(model, copy_mode="assign")
    catalog["params:inference"] = MemoryDataset(params)
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in config}


def base_params(tmp_path: Path) -> dict:
    params = yaml.safe_load(PARAMS_YML.read_text())["inference"]
    params.update(tile_size=48, progress=False, quicklook_max_size=64)
    return params


def test_pipeline_nodes_are_named_and_outputs_persisted():
    pipe = create_pipeline()
    assert {n.name for n in pipe.nodes} == {
        "plan_inference",
        "predict_scenes",
        "make_inference_quicklooks",
    }
    assert set(pipe.outputs()) <= set(yaml.safe_load(CATALOG_YML.read_text()))
    assert pipe.inputs() == {"dsen2cr_model", "params:inference"}


def test_single_scene(model, tmp_path):
    s2, s1 = make_pair(tmp_path, "s2_cloudy.tif", "s1.tif", seed=0)
    params = base_params(tmp_path)
    params.update(
        s2_path=str(s2),
        s1_path=str(s1),
        output_path=str(tmp_path / "out" / "clean.tif"),
        quicklook_path=str(tmp_path / "reporting" / "ql.png"),
    )
    results = run(model, params, tmp_path)
    report = results["inference_report"]
    assert report["total"]["scenes"] == 1 and report["total"]["mpx_per_s"] > 0
    assert report["scenes"][0]["output_path"] == params["output_path"]
    with rasterio.open(params["output_path"]) as ds:
        assert ds.crs == CRS_UTM and ds.transform == TRANSFORM and ds.shape == (64, 72)
        assert ds.descriptions == TML_BAND_NAMES and ds.nodata == 0 and ds.dtypes[0] == "uint16"
        out = ds.read()
    assert (out[:, :5] == 0).all() and (out[:, 5:] > 0).all()
    assert results["inference_quicklooks"] == {"s2_cloudy": params["quicklook_path"]}
    assert Path(params["quicklook_path"]).stat().st_size > 1000
    saved = json.loads((tmp_path / "data/07_model_output/inference_report.json").read_text())
    assert saved == report


def test_folder_of_scenes(model, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    make_pair(scenes, "a_s2_cloudy.tif", "a_s1.tif", seed=1)
    make_pair(scenes, "b_s2_cloudy.tif", "b_s1.tif", seed=2)
    params = base_params(tmp_path)
    params.update(
        scenes_dir=str(scenes),
        output_dir=str(tmp_path / "out"),
        quicklook_dir=str(tmp_path / "ql"),
    )
    results = run(model, params, tmp_path)
    assert [s["name"] for s in results["inference_plan"]["scenes"]] == ["a_", "b_"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_cloudfree.tif",
        "b_cloudfree.tif",
    ]
    assert sorted(p.name for p in (tmp_path / "ql").iterdir()) == [
        "a_quicklook.png",
        "b_quicklook.png",
    ]
    assert results["inference_report"]["total"]["scenes"] == 2


def test_folder_with_a_bad_scene_predicts_nothing(model, tmp_path, monkeypatch):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    make_pair(scenes, "a_s2_cloudy.tif", "a_s1.tif", seed=1)
    make_pair(scenes, "b_s2_cloudy.tif", "b_s1.tif", seed=2, x_shift=50000.0)  # SAR elsewhere
    params = base_params(tmp_path)
    params.update(scenes_dir=str(scenes), output_dir=str(tmp_path / "out"))
    monkeypatch.setattr(model, "predict_on_batch", lambda *a: pytest.fail("predicted"))
    with pytest.raises(ValueError, match=r"b_s1.tif: SAR footprint .* does not overlap"):
        run(model, params, tmp_path)
    assert not (tmp_path / "out").exists()
