"""training pipeline: project catalog entries (paths moved to tmp_path) + SequentialRunner."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from tml_cloudremoval.pipelines.training import create_pipeline
from tml_cloudremoval.training.loop import synthetic_patch_store

PROJECT = Path(__file__).resolve().parents[3]
CATALOG_YML = PROJECT / "conf" / "base" / "catalog_training.yml"
PARAMS_YML = PROJECT / "conf" / "base" / "parameters_training.yml"


def test_parameters_file_holds_the_documented_defaults():
    params = yaml.safe_load(PARAMS_YML.read_text())
    assert params["model"] == {
        "features": 64,
        "blocks": 16,
        "residual_scale": 0.1,
        "include_sar": True,
    }
    training = params["training"]
    assert training["learning_rate"] == 7e-5 and training["batch_size"] == 16
    assert training["epochs"] == 8 and training["crop_size"] == 128 and training["seed"] == 42
    assert training["loss"] == "carl"


def test_pipeline_trains_and_the_catalog_round_trips_the_model(tmp_path):
    config = yaml.safe_load(CATALOG_YML.read_text())
    for entry in config.values():
        entry["filepath"] = str(tmp_path / Path(entry["filepath"]).name)
    catalog = DataCatalog.from_config(config)
    train_store = synthetic_patch_store(tmp_path / "train", n=5, size=32, seed=1)
    val_store = synthetic_patch_store(tmp_path / "val", n=2, size=32, seed=2)
    catalog["train_patches"] = MemoryDataset(train_store, copy_mode="assign")
    catalog["val_patches"] = MemoryDataset(val_store, copy_mode="assign")
    catalog["params:model"] = {"features": 8, "blocks": 1}
    base = yaml.safe_load(PARAMS_YML.read_text())["training"]
    catalog["params:training"] = {
        **base,
        "epochs": 1,
        "batch_size": 4,
        "crop_size": 16,
        "run_dir": str(tmp_path / "run"),
        "verbose": 0,
    }

    pipe = create_pipeline()
    assert [n.name for n in pipe.nodes] == ["train_model"]
    SequentialRunner().run(pipe, catalog)

    model = catalog.load("dsen2cr_model")  # TensorFlowModelDataset: safe_mode=True, no customs
    assert isinstance(model, keras.Model)
    assert len(list((tmp_path / "dsen2cr.keras").iterdir())) == 1  # one version folder
    x = {
        "optical": np.ones((1, 32, 32, 10), np.float32),
        "sar": np.ones((1, 8, 8, 2), np.float32),
    }
    assert model.predict(x, verbose=0).shape == (1, 32, 32, 10)
    summary = catalog.load("training_summary")
    assert summary["n_train"] == 5 and summary["n_val"] == 2
    assert summary["parameters"] == model.count_params()
    assert len(summary["history"]) == 1
