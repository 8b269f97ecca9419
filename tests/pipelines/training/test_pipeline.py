"""training pipeline: project catalog entries (paths moved to tmp_path) + SequentialRunner."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from support.synthetic_stores import synthetic_patch_store

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.models.contract import split_fingerprint
from tml_cloudremoval.pipelines.training import create_pipeline
from tml_cloudremoval.training.run_folder import RunFolder

PROJECT = Path(__file__).resolve().parents[3]
CATALOG_YML = PROJECT / "conf" / "base" / "catalog_training.yml"
DEMO_CATALOG_YML = PROJECT / "conf" / "demo" / "catalog_training.yml"
PARAMS_YML = PROJECT / "conf" / "base" / "parameters_training.yml"


def _catalog(tmp_path: Path, train_store, val_store, **training) -> DataCatalog:
    config = yaml.safe_load(CATALOG_YML.read_text())
    for entry in config.values():
        entry["filepath"] = str(tmp_path / Path(entry["filepath"]).name)
    catalog = DataCatalog.from_config(config)
    catalog["train_patches"] = MemoryDataset(train_store, copy_mode="assign")
    catalog["val_patches"] = MemoryDataset(val_store, copy_mode="assign")
    catalog["params:model"] = {"features": 8, "blocks": 1}
    base = yaml.safe_load(PARAMS_YML.read_text())["training"]
    catalog["params:training"] = {**base, **training}
    return catalog


def test_pipeline_is_one_named_node_that_reads_the_run_folder():
    (node,) = create_pipeline().nodes
    assert node.name == "train_model"
    assert "training_run" in node.inputs and "training_run" not in node.outputs
    assert node.outputs == ["dsen2cr_model", "training_summary"]


def test_pipeline_trains_and_the_catalog_round_trips_model_summary_and_run(tmp_path):
    train_store = synthetic_patch_store(tmp_path / "train", n=5, size=32, seed=1)
    val_store = synthetic_patch_store(tmp_path / "val", n=2, size=32, seed=2)
    catalog = _catalog(
        tmp_path, train_store, val_store, epochs=1, batch_size=4, crop_size=16, verbose=0
    )
    assert not catalog.exists("training_run")

    SequentialRunner().run(create_pipeline(), catalog)

    trained = catalog.load("dsen2cr_model")  # ModelDataset: safe_mode=True, no custom objects
    model = trained.model
    assert isinstance(model, keras.Model)
    (version,) = (tmp_path / "dsen2cr.keras").iterdir()  # one version folder
    assert trained.folder == version
    assert {p.name for p in version.iterdir()} == {
        "dsen2cr.keras",
        "contract.json",
        "MODEL_CARD.md",
    }
    contract = trained.contract
    assert contract.model == {
        "features": 8,
        "blocks": 1,
        "residual_scale": 0.1,
        "include_sar": True,
        "sar_upsampling": "nearest",
        "tail_init": "zeros",
        "uncertainty": "none",
    }
    assert contract.training["epochs"] == 1 and contract.training["crop_size"] == 16
    assert contract.training_split == split_fingerprint(train_store)
    assert contract.training_split["n_patches"] == 5
    x = {
        "optical": np.ones((1, 32, 32, 10), np.float32),
        "sar": np.ones((1, 8, 8, 2), np.float32),
    }
    assert model.predict(x, verbose=0).shape == (1, 32, 32, 10)
    summary = catalog.load("training_summary")
    assert summary["n_train"] == 5 and summary["n_val"] == 2
    assert summary["parameters"] == model.count_params()
    assert len(summary["history"]) == 1

    run = catalog.load("training_run")
    assert isinstance(run, RunFolder) and run.path == tmp_path / "training_run"
    assert catalog.exists("training_run")
    assert run.finished()["history"] == summary["history"]
    assert run.log()["loss"].tolist() == [summary["history"][0]["loss"]]
    assert [epoch for epoch, _ in run.checkpoint_folders()] == [1]
    np.testing.assert_allclose(
        run.load_final_model().predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


class Untouchable:
    """A store stand-in that fails the test if training reads it."""

    def __len__(self):
        raise AssertionError("the store was touched before the parameters were checked")


def test_bad_parameters_are_rejected_before_the_stores_are_touched(tmp_path):
    catalog = _catalog(tmp_path, Untouchable(), Untouchable(), epoch=3, learning_rate=-1)
    with pytest.raises(ConfigError, match=r"training\.epoch:.*training\.learning_rate"):
        SequentialRunner().run(create_pipeline(), catalog)
    assert not (tmp_path / "training_run").exists()


def test_the_demo_trains_in_its_own_run_folder():
    base = yaml.safe_load(CATALOG_YML.read_text())["training_run"]
    demo = yaml.safe_load(DEMO_CATALOG_YML.read_text())["training_run"]
    assert demo == {**base, "filepath": "data/06_models/training_run_demo"}
