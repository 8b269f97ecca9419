"""tracking.py: flattening, names, variants, and the Tracker against a real (temporary) store."""

from __future__ import annotations

import logging
import math
import sys

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from tml_cloudremoval import tracking
from tml_cloudremoval.models.contract import ModelContract, SarNormalisation


def test_number_leaves_keeps_every_finite_number_under_its_dotted_path():
    tree = {
        "model": {"all": {"mae": 0.5, "n_pixels": 12, "ssim": None}, "ok": True},
        "f32": np.float32(0.25),
        "i64": np.int64(7),
        "nan": math.nan,
        "inf": -math.inf,
        "notes": ["x"],
        "name": "text",
        "bin 0-10%": {"mae": 0.1},
    }
    assert tracking.number_leaves(tree) == {
        "model.all.mae": 0.5,
        "model.all.n_pixels": 12.0,
        "f32": 0.25,
        "i64": 7.0,
        "bin 0-10_.mae": 0.1,
    }


def test_param_leaves_are_strings_and_lists_stay_whole():
    tree = {"model": {"features": 8, "include_sar": False}, "patch": [256, 256], "x": None}
    assert tracking.param_leaves(tree, "s.") == {
        "s.model.features": "8",
        "s.model.include_sar": "False",
        "s.patch": "[256, 256]",
        "s.x": "None",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ablation.no_sar.training_summary", ("no_sar", "training_summary")),
        ("ablation.l1.sub.evaluation_metrics", ("l1", "sub.evaluation_metrics")),
        ("ablation.summary", (None, "ablation.summary")),
        ("ablation_table", (None, "ablation_table")),
        ("training_summary", (None, "training_summary")),
    ],
)
def test_split_variant(name, expected):
    assert tracking.split_variant(name) == expected


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [("ablation.no_sar", "no_sar"), ("ablation.l1.inner", "l1"), ("ablation", None), (None, None)],
)
def test_node_variant(namespace, expected):
    assert tracking.node_variant(namespace) == expected


def test_keys_lose_characters_mlflow_refuses():
    assert tracking.key("model.sam(deg)%,x") == "model.sam_deg___x"
    assert tracking.key("a/b c-d:e_f.g") == "a/b c-d:e_f.g"


def test_variant_params_from_full_sections_or_settings():
    full = {
        "model": {"features": 4},
        "training": {"epochs": 2},
        "settings": {"model": {"features": 4}, "training": {"seed": 1}, "n_train": 5},
    }
    assert tracking.variant_params(full) == {
        "model.features": "4",
        "training.epochs": "2",
        "n_train": "5",
    }
    only_settings = {"settings": {"model": {"blocks": 1}, "training": {"seed": 1}}}
    assert tracking.variant_params(only_settings) == {"model.blocks": "1", "training.seed": "1"}


def test_contract_params_say_how_the_training_store_was_made():
    contract = ModelContract(
        sar=SarNormalisation(method="linear_power"),
        cloud_threshold=0.3,
        training_split={"n_patches": 9, "sha256": "f00d"},
    )
    assert tracking.contract_params(contract) == {
        "contract.data.sar_method": "linear_power",
        "contract.data.cloud_threshold": "0.3",
        "contract.data.train_split.n_patches": "9",
        "contract.data.train_split.sha256": "f00d",
    }


def test_nothing_is_imported_or_active_without_a_run(monkeypatch):
    assert tracking.active_mlflow() is None and tracking.Tracker.of_active_run() is None
    monkeypatch.delitem(sys.modules, "mlflow")
    assert tracking.active_mlflow() is None
    assert "mlflow" not in sys.modules


@pytest.fixture
def parent(mlflow_run):
    """The active run (tests/conftest.py), as the run of a ``kedro run`` would be."""
    return mlflow_run


def test_history_adds_only_the_epochs_a_run_lacks(parent):
    client = MlflowClient()
    mlflow.log_metrics({"loss": 0.9}, step=1)  # epoch 1 logged live
    tracker = tracking.Tracker.of_active_run()
    history = [{"epoch": 1, "loss": 0.8, "acc": 0.1}, {"epoch": 2, "loss": 0.5, "acc": 0.3}]
    tracker.log_history(parent, history)
    tracker.log_history(parent, history)  # again: nothing new
    loss = sorted((m.step, m.value) for m in client.get_metric_history(parent, "loss"))
    acc = sorted((m.step, m.value) for m in client.get_metric_history(parent, "acc"))
    assert loss == [(1, 0.9), (2, 0.5)]
    assert acc == [(1, 0.1), (2, 0.3)]


def test_params_keep_their_first_value_with_a_warning(parent, caplog):
    mlflow.log_param("contract.data.sar_method", "mean")
    tracker = tracking.Tracker.of_active_run()
    with caplog.at_level(logging.WARNING):
        tracker.log_params(parent, {"contract.data.sar_method": "linear_power", "n": "3"})
    params = MlflowClient().get_run(parent).data.params
    assert params == {"contract.data.sar_method": "mean", "n": "3"}
    assert "param contract.data.sar_method stays 'mean' (not 'linear_power')" in caplog.text


def test_a_variant_is_one_child_run_active_only_inside_its_nodes(parent):
    tracker = tracking.Tracker.of_active_run()
    tracker.enter("l1")
    child = mlflow.active_run().info.run_id
    mlflow.log_metric("loss", 1.0, step=1)
    tracker.leave("l1")
    assert mlflow.active_run().info.run_id == parent
    tracker.enter("l1")  # the variant's next node: the same child run again
    assert mlflow.active_run().info.run_id == child == tracker.run_id("l1")
    tracker.leave("l1", failed=True)
    run = MlflowClient().get_run(child)
    assert run.info.run_name == "l1" and run.info.status == "FAILED"
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.metrics == {"loss": 1.0}


def test_close_ends_open_children_and_unstacks_the_ended_parent_only(parent):
    client = MlflowClient()
    tracker = tracking.Tracker.of_active_run()
    child = tracker.run_id("never_entered")  # made by a saved entry, never active
    mlflow.start_run(run_id=parent, nested=True)  # what kedro-mlflow does before each node
    mlflow.end_run()  # kedro-mlflow's end of the run: one entry off the stack
    assert mlflow.active_run().info.run_id == parent  # stale: the run has ended
    tracker.close()
    assert mlflow.active_run() is None
    assert client.get_run(child).info.status == "FINISHED"
    assert client.get_run(parent).info.status == "FINISHED"


def test_close_leaves_a_parent_that_is_still_running(parent):
    tracking.Tracker.of_active_run().close()
    assert mlflow.active_run().info.run_id == parent  # opened before the session: not ours


def test_untracked_entries_are_ignored_and_failures_are_warnings(
    parent, tmp_path, caplog, monkeypatch
):
    tracker = tracking.Tracker.of_active_run()
    tracker.saved("triplets", {"a": 1.0}, None)
    tracker.saved("dsen2cr_model", None, tmp_path / "missing" / "dsen2cr.keras")

    def store_down(*args, **kwargs):
        raise OSError("database is locked")

    monkeypatch.setattr(tracker._client, "log_batch", store_down)
    with caplog.at_level(logging.WARNING):
        tracker.saved("evaluation_metrics", {"model": {"all": {"mae": 0.1}}}, None)
    assert "mlflow: evaluation_metrics not recorded: database is locked" in caplog.text
    run = MlflowClient().get_run(parent)
    assert "model_version" not in run.data.tags
    assert run.data.metrics == {} and run.data.params == {}
    assert MlflowClient().list_artifacts(parent) == []
