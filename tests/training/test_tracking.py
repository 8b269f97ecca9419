"""training/tracking.py: per-epoch metrics into the active mlflow run; the run folder's files."""

from __future__ import annotations

import sys

import keras
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from tml_cloudremoval.training.config import TrainingConfig
from tml_cloudremoval.training.loop import make_callbacks
from tml_cloudremoval.training.run_folder import RunFolder
from tml_cloudremoval.training.tracking import MlflowEpochMetrics, run_folder_files


def _fit(callback: keras.callbacks.Callback, epochs: int = 3) -> dict[str, list[float]]:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(12, 2)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    fit = model.fit(x, y, epochs=epochs, validation_split=0.25, verbose=0, callbacks=[callback])
    return fit.history


@pytest.fixture
def active_run(mlflow_run):
    """The active run (tests/conftest.py), as the run of a ``kedro run`` would be."""
    return mlflow_run


def test_each_epoch_is_logged_with_step_equal_to_its_number(active_run):
    history = _fit(MlflowEpochMetrics(), epochs=3)
    client = MlflowClient()
    for name in ("loss", "mae", "val_loss", "val_mae"):
        points = sorted((m.step, m.value) for m in client.get_metric_history(active_run, name))
        assert points == [(i + 1, pytest.approx(v, rel=1e-6)) for i, v in enumerate(history[name])]
    seconds = client.get_metric_history(active_run, "seconds")
    assert sorted(m.step for m in seconds) == [1, 2, 3] and all(m.value >= 0 for m in seconds)


def test_a_disabled_callback_logs_nothing(active_run):
    _fit(MlflowEpochMetrics(enabled=False), epochs=1)
    assert MlflowClient().get_run(active_run).data.metrics == {}


def test_without_an_active_run_nothing_is_logged_or_started():
    before = _run_ids()
    _fit(MlflowEpochMetrics(), epochs=1)
    assert mlflow.active_run() is None
    assert _run_ids() == before


def _run_ids() -> set[str]:
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id for r in client.search_runs(experiments, max_results=50000)}


def test_without_mlflow_imported_the_callback_does_not_import_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "mlflow")
    MlflowEpochMetrics().on_epoch_end(0, {"loss": 1.0})
    assert "mlflow" not in sys.modules


def test_a_store_failure_is_one_warning_and_training_goes_on(active_run, monkeypatch, caplog):
    def store_down(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mlflow, "log_metrics", store_down)
    history = _fit(MlflowEpochMetrics(), epochs=2)
    assert len(history["loss"]) == 2
    assert caplog.text.count("mlflow: epoch metrics not logged: disk full") == 1


def test_run_folder_files_are_the_log_and_the_marker_only(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run_folder_files(run) == []
    (run.path / "checkpoints" / "epoch_0001").mkdir(parents=True)
    (run.path / "final_model.keras").write_bytes(b"x")
    (run.path / "training_log.csv").write_text("epoch,loss\n1,0.5\n")
    assert run_folder_files(run) == [run.path / "training_log.csv"]
    run.marker.write_text("{}")
    assert run_folder_files(run) == [run.path / "training_log.csv", run.marker]


@pytest.mark.parametrize("chief", [True, False])
def test_every_training_gets_the_callback_enabled_on_the_chief_only(tmp_path, chief):
    cfg = TrainingConfig(tensorboard=False)
    callbacks = make_callbacks(RunFolder(tmp_path), {}, [], lambda: None, cfg, chief)
    (tracker,) = [c for c in callbacks if isinstance(c, MlflowEpochMetrics)]
    assert tracker.enabled is chief
