"""The model contract: built from configs + the train store, JSON round trip, checks."""

from __future__ import annotations

import hashlib
import json
import logging
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tml_cloudremoval.bands import S1_BAND_NAMES, TML_BAND_NAMES
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store
from tml_cloudremoval.errors import ProjectError
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.models.contract import (
    SCHEMA_VERSION,
    ContractError,
    ModelContract,
    SarNormalisation,
    TrainedModel,
    build_contract,
    check_store,
    contract_from_dict,
    contract_to_dict,
    read_contract,
    settle,
    settle_inference,
    split_fingerprint,
    unknown_contract,
)
from tml_cloudremoval.training.config import ModelConfig, TrainingConfig

SOURCE = "data/06_models/dsen2cr.keras/V/contract.json"


def store(path, sar_method="linear_power", cloud_threshold=0.3, scenes=("a", "b")) -> PatchStore:
    samples = [
        {
            "s2_cloudy": np.full((8, 8, 10), i, np.uint16),
            "s2": np.full((8, 8, 10), i, np.uint16),
            "s1": np.zeros((2, 2, 2), np.float32),
            "mask": np.zeros((8, 8), np.uint8),
        }
        for i in range(len(scenes))
    ]
    index = pd.DataFrame({"scene_id": list(scenes), "patch": "p1"})
    meta = {"sar_method": sar_method, "cloud_threshold": cloud_threshold}
    write_patch_store(path, samples, len(scenes), 8, 8, index, meta)
    return PatchStore.open(path)


@pytest.fixture
def train_store(tmp_path) -> PatchStore:
    return store(tmp_path / "train")


def test_contract_says_how_the_model_was_trained(train_store):
    contract = build_contract(ModelConfig(features=8), TrainingConfig(epochs=3), train_store)
    assert contract.known and contract.schema_version == SCHEMA_VERSION
    assert contract.bands == TML_BAND_NAMES == contract.optical.bands
    assert contract.optical.clip_dn == (0.0, 10000.0) and contract.optical.scale == 2000.0
    assert contract.sar.bands == S1_BAND_NAMES
    assert contract.sar.clip_db == ((-25.0, 0.0), (-32.5, 0.0))
    assert (contract.sar.max_val_sar, contract.sar.method, contract.sar.factor) == (
        2.0,
        "linear_power",
        4,
    )
    assert contract.cloud_threshold == 0.3
    radiometry = contract.radiometry
    assert (radiometry.level, radiometry.dn_offset, radiometry.quantification) == ("L1C", 0, 10000)
    assert radiometry.product_family == "SEN12MS-CR"
    assert contract.model["features"] == 8 and contract.training["epochs"] == 3
    assert contract.project_version == metadata.version("tml_cloudremoval")


def test_split_fingerprint_is_the_hash_of_index_and_meta(tmp_path, train_store):
    expected = hashlib.sha256(
        (train_store.path / "index.csv").read_bytes()
        + json.dumps(
            json.loads((train_store.path / "meta.json").read_text()), sort_keys=True
        ).encode()
    ).hexdigest()
    assert split_fingerprint(train_store) == {"n_patches": 2, "sha256": expected}
    other = store(tmp_path / "other", scenes=("a", "c"))
    assert split_fingerprint(other)["sha256"] != expected


def test_json_round_trip(tmp_path, train_store):
    contract = build_contract(ModelConfig(), TrainingConfig(), train_store)
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(contract_to_dict(contract)))
    assert read_contract(path) == contract
    assert contract_from_dict(contract_to_dict(unknown_contract())) == unknown_contract()
    assert json.loads(path.read_text())["radiometry"]["dn_offset"] == 0


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        ({"schema_version": SCHEMA_VERSION + 1}, "schema_version 2 is not one this project reads"),
        ({"colour": "red"}, "unknown contract key(s) colour"),
        ({"sar": 3}, "sar must be an object"),
    ],
)
def test_a_bad_contract_is_refused_naming_the_file(change, fault):
    data = {**contract_to_dict(ModelContract()), **change}
    with pytest.raises(ContractError) as err:
        contract_from_dict(data, SOURCE)
    assert str(err.value).startswith(SOURCE) and fault in str(err.value)


def test_an_unreadable_contract_names_the_file(tmp_path):
    path = tmp_path / "contract.json"
    path.write_text("{not json")
    with pytest.raises(ContractError, match=f"{path}: cannot read the model contract"):
        read_contract(path)


def test_settle_takes_the_contract_value_and_refuses_a_contradiction(caplog):
    args = (SOURCE, "inference.override_contract")
    assert settle("inference.sar_method", None, "linear_power", *args, False) == "linear_power"
    assert settle("inference.sar_method", "mean", "mean", *args, False) == "mean"
    with pytest.raises(ContractError) as err:
        settle("inference.sar_method", "mean", "linear_power", *args, False)
    assert str(err.value) == (
        f"inference.sar_method 'mean' contradicts the model's contract 'linear_power' ({SOURCE}); "
        "remove it or set inference.override_contract: true"
    )
    assert isinstance(err.value, ProjectError)
    with caplog.at_level(logging.WARNING):
        assert settle("inference.sar_method", "mean", "linear_power", *args, True) == "mean"
    assert "contradicts the model's contract 'linear_power'" in caplog.text
    assert "used anyway because inference.override_contract is true" in caplog.text


def test_inference_takes_its_sar_method_from_the_contract(caplog):
    contract = ModelContract(sar=SarNormalisation(method="linear_power"))
    assert settle_inference(InferenceConfig(), contract, SOURCE).sar_method == "linear_power"
    with pytest.raises(ContractError, match="'mean' contradicts the model's contract"):
        settle_inference(InferenceConfig(sar_method="mean"), contract, SOURCE)
    forced = InferenceConfig(sar_method="mean", override_contract=True)
    with caplog.at_level(logging.WARNING):
        assert settle_inference(forced, contract, SOURCE).sar_method == "mean"
    assert "inference.sar_method 'mean' contradicts" in caplog.text


def test_a_model_without_contract_uses_the_parameters_and_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        assert settle_inference(InferenceConfig(), unknown_contract(), SOURCE).sar_method == "mean"
        given = InferenceConfig(sar_method="linear_power")
        assert settle_inference(given, unknown_contract(), SOURCE).sar_method == "linear_power"
    assert "has no contract and inference.sar_method is null: using 'mean'" in caplog.text
    assert "'linear_power' used as given" in caplog.text


def test_the_test_store_must_match_the_contract(tmp_path, train_store, caplog):
    contract = build_contract(ModelConfig(), TrainingConfig(), train_store)
    check_store(train_store.meta, train_store.path, contract, SOURCE, override=False)
    other = store(tmp_path / "test", sar_method="mean")
    with pytest.raises(ContractError) as err:
        check_store(other.meta, other.path, contract, SOURCE, override=False)
    assert f"{other.path} sar_method 'mean' contradicts the model's contract 'linear_power'" in (
        str(err.value)
    )
    assert "evaluation.override_contract: true" in str(err.value)
    with caplog.at_level(logging.WARNING):
        check_store(other.meta, other.path, contract, SOURCE, override=True)
    assert "used anyway because evaluation.override_contract is true" in caplog.text


def test_a_store_that_does_not_say_its_preprocessing_is_logged_not_passed_silently(
    tmp_path, train_store, caplog
):
    contract = build_contract(ModelConfig(), TrainingConfig(), train_store)
    with caplog.at_level(logging.WARNING):
        check_store({"bands": list(TML_BAND_NAMES)}, "old_store", contract, SOURCE, False)
    assert "old_store: its meta.json does not say its sar_method; not checked" in caplog.text


def test_the_inference_node_refuses_a_contradiction_before_reading_any_scene():
    from tml_cloudremoval.pipelines.inference.nodes import predict_cloudfree_scenes

    contract = ModelContract(sar=SarNormalisation(method="linear_power"))
    trained = TrainedModel(None, contract, Path("data/06_models/dsen2cr.keras/V"))
    with pytest.raises(ContractError) as err:  # the plan is never looked at: {} would fail later
        predict_cloudfree_scenes(trained, {}, {}, {"sar_method": "mean"})
    assert str(err.value).startswith(
        "inference.sar_method 'mean' contradicts the model's contract 'linear_power' "
        "(data/06_models/dsen2cr.keras/V/contract.json)"
    )
