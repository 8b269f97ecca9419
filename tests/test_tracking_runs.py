"""Tracked training and evaluation runs: real ``kedro run``s of the project's pipelines (tiny
model, tiny stores, every entry moved into tmp_path) through Kedro sessions with the project's
hooks and kedro-mlflow; the temporary store (tests/conftest.py) is read back with the client."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mlflow
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow import MlflowClient
from support.conf_env import base_entry
from support.synthetic_stores import synthetic_patch_store

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.models.contract import split_fingerprint

PROJECT = Path(__file__).resolve().parents[1]
ENV = "tracked"


def _written_entries() -> dict[str, str]:
    """Every file entry of the training and evaluation catalogs -> its path under the test's
    folder (the catalog's path without ``data/``), so nothing is written into the project."""
    entries: dict[str, str] = {}
    for name in ("catalog_training.yml", "catalog_evaluation.yml"):
        catalog = yaml.safe_load((PROJECT / "conf" / "base" / name).read_text())
        for entry, config in catalog.items():
            if "filepath" in config:
                entries[entry] = config["filepath"].removeprefix("data/")
    return entries


MOVED = _written_entries()
PARAMS = {
    "model": {"features": 4, "blocks": 1},
    "training": {
        "epochs": 2,
        "batch_size": 4,
        "crop_size": 16,
        "verbose": 0,
        "tensorboard": False,
        "if_finished": "overwrite",
    },
    "evaluation": {"n_examples": 1},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict:
    """A conf/ copy whose env ``tracked`` moves the training and evaluation entries (stores
    included) into a temporary folder and sets tiny settings; the paths it uses."""
    root = tmp_path_factory.mktemp("tracked")
    conf = root / "conf"
    shutil.copytree(PROJECT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / ENV).mkdir()
    stores = {}
    for split, (n, seed) in {"train": (5, 1), "val": (2, 2), "test": (3, 3)}.items():
        stores[split] = synthetic_patch_store(root / split, n=n, size=32, seed=seed)
    catalog = {
        f"{s}_patches": {**base_entry(f"{s}_patches"), "filepath": str(root / s)} for s in stores
    }
    for name, path in MOVED.items():
        catalog[name] = {**base_entry(name), "filepath": str(root / path)}
    (conf / ENV / "catalog.yml").write_text(yaml.safe_dump(catalog))
    (conf / ENV / "parameters.yml").write_text(yaml.safe_dump(PARAMS))
    return {"conf": conf, "root": root, "stores": stores}


def _run(project: dict, pipeline: str, params: dict | None = None) -> mlflow.entities.Run:
    """One session running ``pipeline``; the one mlflow run it added."""
    client = MlflowClient()
    before = {r.info.run_id for r in _runs(client)}
    bootstrap_project(PROJECT)
    with KedroSession.create(
        project_path=PROJECT, conf_source=str(project["conf"]), env=ENV, runtime_params=params
    ) as session:
        session.run(pipeline_name=pipeline)
    (added,) = [r for r in _runs(client) if r.info.run_id not in before]
    return added


def _runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("tml_cloudremoval")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def _history(client: MlflowClient, run_id: str, name: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))


def _numbers(tree: dict, prefix: str = "") -> dict[str, float]:
    """Independent flattening of metrics.json: every int/float leaf (not bool, not null)."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_numbers(v, f"{prefix}{k}."))
        elif type(v) in (int, float):
            out[f"{prefix}{k}"] = float(v)
    return out


@pytest.fixture(scope="module")
def tracked(project) -> dict:
    """A training run, then an evaluation run, then a training run reusing the finished one."""
    return {
        "training": _run(project, "training"),
        "evaluation": _run(project, "evaluation"),
        "reused": _run(project, "training", {"training": {"if_finished": "reuse"}}),
    }


@pytest.mark.slow
def test_a_training_run_records_params_epochs_model_and_run_folder(project, tracked):
    client = MlflowClient()
    run = tracked["training"]
    assert run.info.run_name == "training" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.features"] == "4" and params["model.blocks"] == "1"
    assert params["training.epochs"] == "2" and params["training.learning_rate"] == "7e-05"
    fingerprint = split_fingerprint(project["stores"]["train"])
    assert params["contract.data.train_split.sha256"] == fingerprint["sha256"]
    assert params["contract.data.train_split.n_patches"] == "5"

    summary = json.loads((project["root"] / MOVED["training_summary"]).read_text())
    for name in ("loss", "val_loss", "covered_mae", "val_covered_mae"):
        expected = [
            (row["epoch"], pytest.approx(row[name], rel=1e-6)) for row in summary["history"]
        ]
        assert _history(client, run.info.run_id, name) == expected, name

    version = project["root"] / MOVED["dsen2cr_model"] / run.data.tags["model_version"]
    assert {f.name for f in version.iterdir()} == {
        "dsen2cr.keras",
        "contract.json",
        "MODEL_CARD.md",
    }
    artifacts = _artifacts(client, run.info.run_id)
    assert {f"model/{version.name}/{f.name}" for f in version.iterdir()} <= artifacts
    assert {
        "training/training_log.csv",
        "training/FINISHED.json",
        "training/training_summary.json",
    } <= artifacts
    assert not any("checkpoints" in a or a.endswith("final_model.keras") for a in artifacts)
    # the store of the tests (tests/conftest.py), not mlruns/ of the project
    artifacts_root = Path(os.environ["TML_MLFLOW_ARTIFACTS"]).as_uri()
    assert run.info.artifact_uri.startswith(artifacts_root)


@pytest.mark.slow
def test_an_evaluation_run_records_every_number_of_metrics_json_and_the_figures(project, tracked):
    client = MlflowClient()
    run = tracked["evaluation"]
    assert run.info.run_name == "evaluation" and run.info.status == "FINISHED"
    assert run.data.params["evaluation.n_examples"] == "1"
    metrics = json.loads((project["root"] / MOVED["evaluation_metrics"]).read_text())
    assert run.data.metrics == pytest.approx(_numbers(metrics), rel=1e-6)
    assert run.data.metrics["model.covered.mae"] == pytest.approx(
        metrics["model"]["covered"]["mae"]
    )
    assert "baseline_cloudy_input.per_band_rmse.B8" in run.data.metrics
    assert run.data.tags["model_version"] == tracked["training"].data.tags["model_version"]
    version = run.data.tags["model_version"]
    assert {
        "figures/evaluation_examples.png",
        "figures/evaluation_band_errors.png",
        "figures/training_curves.png",
        "evaluation/metrics.json",
        "evaluation/per_patch_metrics.csv",
        "evaluation/evaluation_report.md",
        "evaluation/uncertainty.json",
        "figures/uncertainty.png",
        f"model/{version}/MODEL_CARD.md",
    } == _artifacts(client, run.info.run_id)
    card = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path=f"model/{version}/MODEL_CARD.md"
    )
    assert "Not evaluated yet" not in Path(card).read_text()


@pytest.mark.slow
def test_a_reused_training_records_the_epochs_of_its_summary_once(tracked):
    client = MlflowClient()
    first, reused = tracked["training"].info.run_id, tracked["reused"].info.run_id
    for name in ("loss", "val_loss"):
        assert _history(client, reused, name) == _history(client, first, name)
    assert len(_history(client, first, "loss")) == 2  # live, not again from the summary
    assert mlflow.active_run() is None


def test_a_refused_run_records_no_mlflow_run(project):
    client = MlflowClient()
    before = {r.info.run_id for r in _runs(client)}
    with pytest.raises(ConfigError, match="training.epochz"):
        _run(project, "training", {"training": {"epochz": 1}})
    assert {r.info.run_id for r in _runs(client)} == before
