"""ModelDataset: model + contract.json + MODEL_CARD.md in one atomic version folder;
ModelCardDataset: the evaluated version's card."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from kedro.io import DataCatalog, DatasetError
from kedro.io.core import Version

from tml_cloudremoval.atomic import temporary_sibling
from tml_cloudremoval.datasets.model_dataset import ModelCardDataset, ModelDataset
from tml_cloudremoval.hooks import dataset_path
from tml_cloudremoval.models.contract import (
    ModelContract,
    SarNormalisation,
    TrainedModel,
    contract_to_dict,
)
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.models.model_card import ModelCardUpdate

TYPE = "tml_cloudremoval.datasets.model_dataset.ModelDataset"
CONTRACT = ModelContract(sar=SarNormalisation(method="linear_power"), cloud_threshold=0.2)
X = {"optical": np.ones((2, 16, 16, 10), np.float32), "sar": np.ones((2, 4, 4, 2), np.float32)}


@pytest.fixture(scope="module")
def network() -> keras.Model:
    return build_dsen2cr(features=4, blocks=1, tail_init="he_uniform")


def dataset(root, load=None, save=None) -> ModelDataset:
    return ModelDataset(filepath=str(root / "dsen2cr.keras"), version=Version(load, save))


def test_catalog_entry_saves_one_folder_and_loads_model_with_contract(tmp_path, network):
    catalog = DataCatalog.from_config(
        {"m": {"type": TYPE, "filepath": str(tmp_path / "dsen2cr.keras"), "versioned": True}}
    )
    assert not catalog.exists("m")
    catalog.save("m", TrainedModel(network, CONTRACT))
    (folder,) = (tmp_path / "dsen2cr.keras").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == [
        "MODEL_CARD.md",
        "contract.json",
        "dsen2cr.keras",
    ]
    # readable without TensorFlow
    code = f"import json,sys; print(json.load(open({str(folder / 'contract.json')!r}))['sar'])"
    out = subprocess.run(
        [sys.executable, "-c", code + "; assert 'keras' not in sys.modules"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "linear_power" in out
    assert json.loads((folder / "contract.json").read_text()) == contract_to_dict(CONTRACT)
    assert "Bands, in order: B2" in (folder / "MODEL_CARD.md").read_text()

    loaded = catalog.load("m")
    assert loaded.contract == CONTRACT and loaded.folder == folder
    safe = keras.saving.load_model(folder / "dsen2cr.keras", safe_mode=True)  # no custom objects
    np.testing.assert_allclose(safe.predict(X, verbose=0), network.predict(X, verbose=0))
    np.testing.assert_allclose(loaded.model.predict(X, verbose=0), network.predict(X, verbose=0))


def test_each_version_keeps_its_own_contract(tmp_path, network):
    first = ModelContract(sar=SarNormalisation(method="mean"))
    dataset(tmp_path, save="2026-01-01T00.00.00.000Z").save(TrainedModel(network, first))
    dataset(tmp_path, save="2026-01-02T00.00.00.000Z").save(TrainedModel(network, CONTRACT))
    assert dataset(tmp_path).load().contract == CONTRACT  # latest
    old = dataset(tmp_path, load="2026-01-01T00.00.00.000Z").load()
    assert old.contract == first and old.folder.name == "2026-01-01T00.00.00.000Z"


def test_a_version_without_contract_loads_with_a_warning(tmp_path, network, caplog):
    folder = tmp_path / "dsen2cr.keras" / "2025-01-01T00.00.00.000Z"
    folder.mkdir(parents=True)
    network.save(folder / "dsen2cr.keras")  # what TensorFlowModelDataset wrote before contracts
    with caplog.at_level(logging.WARNING):
        loaded = dataset(tmp_path).load()
    assert not loaded.contract.known and loaded.contract.sar.method is None
    assert f"{folder}: no contract.json" in caplog.text


def test_a_failed_save_leaves_no_version(tmp_path):
    class Broken:
        def save(self, path):
            path.write_bytes(b"half")
            raise OSError("disk full")

    with pytest.raises(DatasetError, match="disk full"):
        dataset(tmp_path, save="V1").save(TrainedModel(Broken(), CONTRACT))
    assert not any((tmp_path / "dsen2cr.keras").iterdir())
    with pytest.raises(DatasetError, match="saves a TrainedModel"):
        dataset(tmp_path, save="V2").save(object())


def test_the_next_save_removes_what_a_killed_save_left(tmp_path, network):
    stale = temporary_sibling(tmp_path / "dsen2cr.keras" / "V0")
    stale = stale.with_name(stale.name.replace(f".{os.getpid()}.", ".999999999."))  # dead pid
    stale.mkdir(parents=True)
    (stale / "dsen2cr.keras").write_bytes(b"half")
    dataset(tmp_path, save="V1").save(TrainedModel(network, CONTRACT))
    assert [p.name for p in (tmp_path / "dsen2cr.keras").iterdir()] == ["V1"]


def test_card_dataset_writes_only_into_a_version_folder(tmp_path, network):
    dataset(tmp_path, save="V1").save(TrainedModel(network, CONTRACT))
    cards = ModelCardDataset(filepath=str(tmp_path / "dsen2cr.keras"))
    assert cards.exists() and list(cards.load()) == ["V1"]
    cards.save(ModelCardUpdate(tmp_path / "dsen2cr.keras" / "V1", "# card with figures\n"))
    assert cards.load() == {"V1": "# card with figures\n"}
    with pytest.raises(DatasetError, match="not a saved version folder"):
        cards.save(ModelCardUpdate(tmp_path, "x"))
    assert dataset_path(cards) is None  # the run checks do not take it for an overlapping output
