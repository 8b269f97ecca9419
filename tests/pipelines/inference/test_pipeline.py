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
from support.inference_run import (
    CATALOG_YML,
    CONTRACT,
    CRS_UTM,
    ENTRIES,
    TRANSFORM,
    base_params,
    catalog_config,
    make_pair,
    run,
    shard_output,
    write_tif,
)

from tml_cloudremoval.bands import TML_BAND_NAMES
from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.models.contract import ModelContract, SarNormalisation, TrainedModel
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.pipelines.inference import create_pipeline


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")


def test_pipeline_nodes_are_named_and_lineage_reaches_the_products():
    pipe = create_pipeline()
    assert [n.name for n in pipe.nodes] == [
        "plan_inference",
        "make_cloud_masks",
        "predict_cloudfree_scenes",
        "make_scene_quicklooks",
        "report_inference",
    ]
    made = {"inference_plan", "cloudfree_scenes", "cloud_masks", "uncertainty_scenes"}
    assert set(pipe.outputs()) | made | {"epistemic_scenes"} == ENTRIES
    assert pipe.inputs() == {"dsen2cr_model", "params:inference"}
    producer = next(n for n in pipe.nodes if "cloudfree_scenes" in n.outputs)
    assert {"dsen2cr_model", "inference_plan", "cloud_masks"} <= set(producer.inputs)
    users = {n.name for n in pipe.nodes if "cloudfree_scenes" in n.inputs}
    assert users == {"make_scene_quicklooks", "report_inference"}
    assert {"uncertainty_scenes", "epistemic_scenes"} <= set(producer.outputs)  # one pass
    quicklooks = next(n for n in pipe.nodes if n.name == "make_scene_quicklooks")
    assert {"uncertainty_scenes", "epistemic_scenes"} <= set(quicklooks.inputs)


def test_single_scene(model, tmp_path):
    folder = tmp_path / "raw" / "tml_scene"
    folder.mkdir(parents=True)
    s2, s1 = make_pair(folder, "s2_cloudy.tif", "s1.tif", seed=0)
    catalog = run(model, base_params(s2_path=str(s2), s1_path=str(s1)), tmp_path)
    report = shard_output(catalog, "inference_report")
    assert report["total"]["scenes"] == 1 and report["total"]["mpx_per_s"] > 0
    product = tmp_path / "data/07_model_output/cloudfree/tml_scene_cloudfree.tif"
    assert report["scenes"][0]["scene_id"] == "tml_scene"
    assert report["scenes"][0]["output_path"] == str(product)
    assert report["scenes"][0]["s2_path"] == str(s2)
    with rasterio.open(product) as ds:
        assert ds.crs == CRS_UTM and ds.transform == TRANSFORM and ds.shape == (64, 72)
        assert ds.descriptions == TML_BAND_NAMES and ds.nodata == 0 and ds.dtypes[0] == "uint16"
    scenes = catalog.load("cloudfree_scenes")
    out = scenes["tml_scene"]()  # the catalog hands the user the (H, W, C) array
    assert out.shape == (64, 72, 10) and (out[:5] == 0).all() and (out[5:] > 0).all()
    quicklooks = catalog.load("scene_quicklooks")
    assert list(quicklooks) == ["tml_scene"] and quicklooks["tml_scene"]().ndim == 3
    saved = json.loads((tmp_path / "data/07_model_output/inference_reports/all.json").read_text())
    assert saved == report


def test_folder_of_scenes(model, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    make_pair(scenes, "a_s2_cloudy.tif", "a_s1.tif", seed=1)
    make_pair(scenes, "b_s2_cloudy.tif", "b_s1.tif", seed=2)
    catalog = run(model, base_params(scenes_dir=str(scenes)), tmp_path)
    assert [s["scene_id"] for s in shard_output(catalog, "inference_plan")["scenes"]] == ["a", "b"]
    assert _products(tmp_path / "data/07_model_output/cloudfree") == [
        "a_cloudfree.tif",
        "b_cloudfree.tif",
    ]
    assert _products(tmp_path / "data/08_reporting/quicklooks") == [
        "a_quicklook.png",
        "b_quicklook.png",
    ]
    assert shard_output(catalog, "inference_report")["total"]["scenes"] == 2


def _products(folder: Path) -> list[str]:
    """The files of a product folder but the (hidden, tiny) locks of its products; no temporary
    file may be left."""
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.startswith(".") and not n.endswith(".lock")]
    return [n for n in names if not n.startswith(".")]


def test_folder_with_a_bad_scene_and_on_bad_scene_error_predicts_nothing(
    model, tmp_path, monkeypatch
):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    make_pair(scenes, "a_s2_cloudy.tif", "a_s1.tif", seed=1)
    make_pair(scenes, "b_s2_cloudy.tif", "b_s1.tif", seed=2, x_shift=50000.0)  # SAR elsewhere
    monkeypatch.setattr(model, "predict_on_batch", lambda *a: pytest.fail("predicted"))
    with pytest.raises(ValueError, match=r"b_s1.tif: SAR footprint .* does not overlap"):
        run(model, base_params(scenes_dir=str(scenes), on_bad_scene="error"), tmp_path)
    assert not (tmp_path / "data/07_model_output/cloudfree").exists()


@pytest.mark.parametrize(
    ("changes", "key"),
    [({"tilesize": 64}, "inference.tilesize"), ({"compress": "bogus"}, "inference.compress")],
)
def test_bad_parameters_stop_the_run_before_any_file_is_read(
    model, tmp_path, monkeypatch, changes, key
):
    from tml_cloudremoval.inference import reader

    monkeypatch.setattr(reader, "read_header", lambda *a: pytest.fail("a file was read"))
    with pytest.raises(ConfigError, match=key):
        run(model, base_params(s2_path=str(tmp_path / "none.tif"), **changes), tmp_path)


def test_product_over_an_input_is_refused_before_prediction(model, tmp_path, monkeypatch):
    """The catalog points the products at the inputs: refused, naming both, nothing predicted."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    s2, _ = make_pair(scenes, "a_s2_cloudy.tif", "a_s1.tif", seed=1)
    before = s2.read_bytes()
    config = catalog_config(tmp_path)
    config["cloudfree_scenes"].update(
        filepath=str(tmp_path / "x" / ".." / "scenes"), suffix="_s2_cloudy.tif"
    )
    monkeypatch.setattr(model, "predict_on_batch", lambda *a: pytest.fail("predicted"))
    with pytest.raises(
        Exception,
        match=r"a_s2_cloudy.tif: product 'a' would overwrite the input file .*a_s2_cloudy.tif",
    ):
        run(model, base_params(scenes_dir=str(scenes)), tmp_path, config)
    assert s2.read_bytes() == before


def test_catalog_defaults_are_the_sample_scene():
    """With the YAML defaults the run cleans the sample scene into the catalog's folder."""
    config = yaml.safe_load(CATALOG_YML.read_text())
    assert config["cloudfree_scenes"]["filepath"] == "data/07_model_output/cloudfree"
    assert config["cloudfree_scenes"]["suffix"] == "_cloudfree.tif"
    assert InferenceConfig().s2_path.endswith("tml_scene/s2_cloudy.tif")


# --- outputs (issue 11, item 3) ----------------------------------------------------------------


def test_13_band_scene_gets_a_detector_mask_and_fill_clouds_keeps_clear_pixels(model, tmp_path):
    from tml_cloudremoval.inference.cog import cog_layout_faults

    folder = tmp_path / "raw" / "tml_scene"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    dn = rng.integers(500, 2500, (64, 72, 13)).astype(np.uint16)
    dn[20:40, 25:50] = 7000  # a bright cloud
    s2 = write_tif(folder / "s2_cloudy.tif", dn, TRANSFORM, nodata=0)
    sar = rng.uniform(-20, -5, (16, 18, 2)).astype(np.float32)
    s1 = write_tif(folder / "s1.tif", sar, Affine(40.0, 0.0, 300000.0, 0.0, -40.0, 4500000.0))
    params = base_params(s2_path=str(s2), s1_path=str(s1), fill="clouds", feather_px=3)
    catalog = run(model, params, tmp_path)
    mask_file = catalog.load("cloud_masks")["tml_scene"]()
    with rasterio.open(mask_file) as ds:
        mask = ds.read(1)
        assert ds.transform == TRANSFORM and ds.crs == CRS_UTM and ds.nodata == 255
    assert mask[30, 37] == 1 and (mask == 0).sum() > 200  # shadow tests mark dark noise too
    out_path = catalog.load("cloudfree_scenes")["tml_scene"].path
    assert cog_layout_faults(out_path) == [] and cog_layout_faults(mask_file) == []
    with rasterio.open(out_path) as ds:
        out = np.moveaxis(ds.read(), 0, -1)
    tml = dn[..., [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]]
    assert np.array_equal(out[mask == 0], tml[mask == 0])  # clear pixels: the input itself
    assert not np.array_equal(out[mask == 1], tml[mask == 1])


def test_fill_clouds_without_a_mask_stops_in_the_plan(model, tmp_path):
    folder = tmp_path / "raw" / "tml_scene"
    folder.mkdir(parents=True)
    s2, s1 = make_pair(folder, "s2_cloudy.tif", "s1.tif", seed=0)
    with pytest.raises(Exception, match="inference.fill: clouds needs"):
        run(model, base_params(s2_path=str(s2), s1_path=str(s1), fill="clouds"), tmp_path)
    assert not (tmp_path / "data" / "07_model_output" / "cloudfree").exists()


def test_native_layout_through_the_pipeline(model, tmp_path):
    folder = tmp_path / "raw" / "tml_scene"
    folder.mkdir(parents=True)
    s2, s1 = make_pair(folder, "s2_cloudy.tif", "s1.tif", seed=0)
    catalog = run(
        model, base_params(s2_path=str(s2), s1_path=str(s1), output_layout="native"), tmp_path
    )
    path = Path(catalog.load("cloudfree_scenes")["tml_scene"].path)
    with rasterio.open(path.with_name("tml_scene_cloudfree_20m.tif")) as ds:
        assert ds.shape == (32, 36) and ds.transform == TRANSFORM @ Affine.scale(2)
    assert catalog.load("scene_quicklooks")["tml_scene"]().ndim == 3  # RGB of the 10 m file
    assert shard_output(catalog, "inference_report")["scenes"][0]["output_layout"] == "native"


# --- uncertainty (issue 15) -------------------------------------------------------------------


def test_plain_model_writes_no_uncertainty(model, tmp_path):
    folder = tmp_path / "raw" / "tml_scene"
    folder.mkdir(parents=True)
    s2, s1 = make_pair(folder, "s2_cloudy.tif", "s1.tif", seed=0)
    catalog = run(model, base_params(s2_path=str(s2), s1_path=str(s1)), tmp_path)
    report = shard_output(catalog, "inference_report")
    assert report["total"]["uncertainty_rasters"] == report["total"]["epistemic_rasters"] == 0
    assert report["scenes"][0]["uncertainty_path"] is None
    assert catalog.load("uncertainty_scenes") == {} and catalog.load("epistemic_scenes") == {}


def test_aleatoric_model_writes_the_uncertainty_scene(model, tmp_path):
    from support.aleatoric_model import aleatoric_twin

    folder = tmp_path / "raw" / "tml_scene"
    folder.mkdir(parents=True)
    s2, s1 = make_pair(folder, "s2_cloudy.tif", "s1.tif", seed=0)
    aleatoric = aleatoric_twin(model, seed=4, features=8, blocks=1)
    catalog = run(aleatoric, base_params(s2_path=str(s2), s1_path=str(s1)), tmp_path)
    path = tmp_path / "data/07_model_output/uncertainty/tml_scene_uncertainty.tif"
    report = shard_output(catalog, "inference_report")
    assert report["total"]["uncertainty_rasters"] == 1
    assert report["scenes"][0]["uncertainty_path"] == str(path)
    std = catalog.load("uncertainty_scenes")["tml_scene"]()
    assert std.shape == (64, 72, 10) and std.dtype == np.float32
    assert np.isnan(std[:5]).all() and (std[5:] > 0).all()  # nodata strip
    from tml_cloudremoval.inference.cog import cog_layout_faults

    assert cog_layout_faults(path) == []
    look = catalog.load("scene_quicklooks")["tml_scene"]()
    plain_look = run(model, base_params(s2_path=str(s2), s1_path=str(s1)), tmp_path / "p")
    assert look.shape[1] > plain_look.load("scene_quicklooks")["tml_scene"]().shape[1]


def _save_versions(root: Path, models: dict[str, object], contracts: dict | None = None) -> None:
    from kedro.io.core import Version

    from tml_cloudremoval.datasets.model_dataset import ModelDataset

    for version, network in models.items():
        contract = (contracts or {}).get(version, CONTRACT)
        dataset = ModelDataset(filepath=str(root), version=Version(None, version))
        dataset.save(TrainedModel(network, contract))


@pytest.fixture(scope="module")
def members(model) -> dict:
    keras.utils.set_random_seed(8)
    return {
        "2026-01-01T00.00.00.000Z": model,
        "2026-01-02T00.00.00.000Z": build_dsen2cr(8, 1, tail_init="he_uniform"),
    }


@pytest.mark.parametrize("spec", ["all", "list"])
def test_ensemble_of_saved_versions(members, tmp_path, spec):
    from tml_cloudremoval.datasets.model_dataset import load_model_version

    root = tmp_path / "models" / "dsen2cr.keras"
    _save_versions(root, members)
    versions = list(members)
    loaded = load_model_version(root, versions[-1])  # as dsen2cr_model loads the latest
    folder = tmp_path / "raw" / "tml_scene"
    folder.mkdir(parents=True)
    s2, s1 = make_pair(folder, "s2_cloudy.tif", "s1.tif", seed=0)
    ensemble = "all" if spec == "all" else versions
    params = base_params(s2_path=str(s2), s1_path=str(s1), ensemble=ensemble)
    catalog = run(loaded, params, tmp_path)
    facts = shard_output(catalog, "inference_report")["scenes"][0]
    assert facts["ensemble"] == versions and facts["uncertainty_path"] is None
    spread = catalog.load("epistemic_scenes")["tml_scene"]()
    # independent: each member on the whole scene, then numpy over the members
    with rasterio.open(s2) as ds:
        optical = np.moveaxis(ds.read(), 0, -1).astype(np.float32) / 2000.0
    with rasterio.open(s1) as ds:  # on the 40 m grid of the scene already: normalise only
        from tml_cloudremoval.normalise import normalise_sar

        sar = normalise_sar(np.moveaxis(ds.read(), 0, -1))
    inputs = {"optical": optical[None], "sar": sar[None]}
    preds = np.stack([m.predict_on_batch(inputs)[0] for m in members.values()]).astype(float)
    valid = (optical > 0).all(-1)
    np.testing.assert_allclose(spread[valid], (preds.std(0) * 0.2)[valid], atol=2e-5, rtol=1e-3)
    assert np.isnan(spread[~valid]).all()
    mean_dn = np.clip(np.rint(preds.mean(0) * 2000), 1, 10000)
    out = catalog.load("cloudfree_scenes")["tml_scene"]()
    assert np.abs(out[valid].astype(float) - mean_dn[valid]).max() <= 1


def test_ensemble_member_with_another_contract_is_refused(members, tmp_path, monkeypatch):
    from tml_cloudremoval.datasets.model_dataset import load_model_version
    from tml_cloudremoval.models.contract import ContractError

    root = tmp_path / "models" / "dsen2cr.keras"
    versions = list(members)
    power = ModelContract(sar=SarNormalisation(method="linear_power"), cloud_threshold=0.2)
    _save_versions(root, members, {versions[1]: power})
    loaded = load_model_version(root, versions[0])
    folder = tmp_path / "raw" / "tml_scene"
    folder.mkdir(parents=True)
    s2, s1 = make_pair(folder, "s2_cloudy.tif", "s1.tif", seed=0)
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("loaded"))
    params = base_params(s2_path=str(s2), s1_path=str(s1), ensemble="all")
    with pytest.raises(ContractError, match=rf"{versions[1]}: sar .*'linear_power'"):
        run(loaded, params, tmp_path)
    assert not (tmp_path / "data/07_model_output/cloudfree").exists()
