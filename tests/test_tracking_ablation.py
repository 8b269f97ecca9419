"""Ablation variants as child runs: a real Kedro session (project hooks, kedro-mlflow, the
SequentialRunner) runs namespaced stand-in nodes (``support.fake_ablation``), and the mlflow
store is read back through the client API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pytest
import yaml
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow import MlflowClient
from support.fake_ablation import PIPELINE, VariantFailed

PROJECT = Path(__file__).resolve().parents[1]
ENV = "fake_ablation"
NO_SAR_HISTORY = [
    {"epoch": 1, "loss": 0.9, "val_loss": 1.0, "seconds": 2.0},
    {"epoch": 2, "loss": 0.5, "val_loss": 0.7, "seconds": 2.0},
    {"epoch": 3, "loss": 0.3, "val_loss": 0.6, "seconds": 2.5},
]
SETTINGS = {
    "sar": {
        "live": True,
        "model": {"features": 4, "blocks": 1, "include_sar": True},
        "training": {"epochs": 2, "seed": 1, "loss": "carl"},
        "covered_mae": 0.05,
    },
    "no_sar": {
        "live": False,
        "model": {"features": 4, "blocks": 1, "include_sar": False},
        "training": {"epochs": 3, "seed": 2, "loss": "carl"},
        "history": NO_SAR_HISTORY,
        "covered_mae": 0.07,
    },
}


def _conf(tmp_path: Path) -> Path:
    """The project's conf/ (its mlflow.yml included) with an env placing the variants' entries
    in ``tmp_path`` and giving their settings."""
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / ENV).mkdir()
    out = tmp_path / "out"
    catalog = {
        "ablation.{variant}.dsen2cr_model": {
            "type": "tml_cloudremoval.datasets.model_dataset.ModelDataset",
            "filepath": f"{out}/{{variant}}/dsen2cr.keras",
            "versioned": True,
        },
        "ablation.{variant}.training_summary": {
            "type": "json.JSONDataset",
            "filepath": f"{out}/{{variant}}/training_summary.json",
        },
        "ablation.{variant}.evaluation_metrics": {
            "type": "json.JSONDataset",
            "filepath": f"{out}/{{variant}}/metrics.json",
        },
    }
    (conf / ENV / "catalog.yml").write_text(yaml.safe_dump(catalog))
    params = {"fake_ablation": {v: {"settings": s} for v, s in SETTINGS.items()}}
    (conf / ENV / "parameters.yml").write_text(yaml.safe_dump(params))
    return conf


@pytest.fixture
def run_fake(tmp_path):
    """``run_fake(runtime_params)``: one ``kedro run`` of the stand-in pipeline; returns the
    ids of the runs it added to the store and the error it raised (or None). The project's
    pipeline registry is restored afterwards."""
    conf = _conf(tmp_path)
    client = MlflowClient()

    def run(params: dict | None = None) -> tuple[list[str], Exception | None]:
        before = {r.info.run_id for r in _all_runs(client)}
        bootstrap_project(PROJECT)
        pipelines.configure("support.fake_ablation")
        error = None
        try:
            with KedroSession.create(
                project_path=PROJECT, conf_source=str(conf), env=ENV, runtime_params=params
            ) as session:
                session.run(pipeline_name=PIPELINE)
        except Exception as exc:  # returned to the test
            error = exc
        finally:
            bootstrap_project(PROJECT)
        added = [r.info.run_id for r in _all_runs(client) if r.info.run_id not in before]
        return added, error

    return run


def _all_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("tml_cloudremoval")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def _family(client: MlflowClient, run_ids: list[str]) -> tuple[object, dict[str, object]]:
    """(parent run, {variant name: child run}) among ``run_ids``."""
    runs = [client.get_run(i) for i in run_ids]
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name: r for r in runs if r is not parent}
    return parent, children


def _history(client: MlflowClient, run_id: str, name: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.mark.slow
def test_each_variant_is_a_child_run_with_its_params_epochs_and_evaluation(run_fake):
    client = MlflowClient()
    run_ids, error = run_fake()
    assert error is None
    parent, children = _family(client, run_ids)

    assert parent.info.run_name == PIPELINE and parent.info.status == "FINISHED"
    assert set(children) == {"sar", "no_sar"}
    for variant, child in children.items():
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["ablation_variant"] == variant
        assert child.info.status == "FINISHED"
        params = child.data.params
        assert params["model.include_sar"] == str(SETTINGS[variant]["model"]["include_sar"])
        assert params["training.epochs"] == str(SETTINGS[variant]["training"]["epochs"])
        assert params["n_train"] == "5"  # from the summary's settings
        assert params["contract.data.sar_method"] == "mean"  # from the model's contract
        metrics = child.data.metrics
        assert metrics["model.covered.mae"] == SETTINGS[variant]["covered_mae"]
        assert metrics["baseline_cloudy_input.covered.mae"] == 0.2
        assert metrics["model.all.n_pixels"] == 1024
        assert "baseline_cloudy_input.clear.mae" not in metrics  # null: no figure
        version = child.data.tags["model_version"]
        assert {
            f"model/{version}/dsen2cr.keras",
            f"model/{version}/contract.json",
            f"model/{version}/MODEL_CARD.md",
        } <= _artifacts(client, child.info.run_id)

    # no_sar trained nothing: its epochs come from the summary's history, one point each
    no_sar = children["no_sar"].info.run_id
    for name in ("loss", "val_loss", "seconds"):
        assert _history(client, no_sar, name) == [(r["epoch"], r[name]) for r in NO_SAR_HISTORY]
    # sar trained live: the callback logged into the child run while its node ran, and the
    # summary's history (the same Keras values) added no second point per epoch
    sar = children["sar"].info.run_id
    summary = json.loads(Path(_summary_path(sar)).read_text())
    for name in ("loss", "val_loss"):
        expected = [(r["epoch"], pytest.approx(r[name], rel=1e-6)) for r in summary["history"]]
        assert _history(client, sar, name) == expected
    # the parent holds the variants' node parameters, none of their metrics
    assert parent.data.metrics == {}
    assert parent.data.params["fake_ablation.no_sar.settings.model.include_sar"] == "False"
    assert mlflow.active_run() is None  # nothing left open in this process


def _summary_path(run_id: str) -> str:
    """The summary file the run logged, downloaded."""
    return mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="training/training_summary.json"
    )


@pytest.mark.slow
def test_a_failing_variant_is_a_failed_child_and_nothing_stays_open(run_fake):
    client = MlflowClient()
    run_ids, error = run_fake({"fake_ablation": {"no_sar": {"settings": {"fail": True}}}})
    assert isinstance(error, VariantFailed)
    parent, children = _family(client, run_ids)
    assert parent.info.status == "FAILED"
    assert children["no_sar"].info.status == "FAILED"
    assert all(c.info.status == "FINISHED" for v, c in children.items() if v != "no_sar")
    assert "model.covered.mae" not in children["no_sar"].data.metrics
    assert mlflow.active_run() is None
