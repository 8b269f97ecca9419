"""Shared fixtures: telemetry off, a temporary mlflow store, the real SEN12MS-CR samples."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# mlflow's usage telemetry is read when mlflow is first imported: off before any test runs.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.append(str(Path(__file__).resolve().parent))  # tests can import support.<module>

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLES = PROJECT_ROOT.parent / "shared" / "data" / "sen12mscr_samples"
PROJECT_STORES = ("mlflow.db", "mlruns", "mlartifacts")
"""Where conf/base/mlflow.yml records runs by default: the tests must never write there."""


@pytest.fixture(scope="session", autouse=True)
def tracking_store(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Every tracked run of the tests (kedro sessions here and ``kedro run`` subprocesses, which
    inherit the environment) goes to a temporary SQLite store and artifact folder, never to
    mlflow.db or mlruns/ in the project (conf/base/mlflow.yml reads these two variables)."""
    root = tmp_path_factory.mktemp("mlflow")
    store = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "TML_MLFLOW_ARTIFACTS": str(root / "artifacts"),
    }
    saved = {name: os.environ.get(name) for name in store}
    absent = [p for p in PROJECT_STORES if not (PROJECT_ROOT / p).exists()]
    os.environ.update(store)
    yield store
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    made = [p for p in absent if (PROJECT_ROOT / p).exists()]
    assert not made, f"the tests wrote an mlflow store into the project: {made}"


@pytest.fixture
def mlflow_run(tracking_store, request) -> Iterator[str]:
    """An mlflow run, active during the test, in an experiment of its own whose artifacts go
    to the temporary store (an experiment made without a location would use ./mlruns)."""
    import mlflow

    name = request.node.nodeid
    experiment = mlflow.get_experiment_by_name(name)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment(
            name, artifact_location=str(Path(tracking_store["TML_MLFLOW_ARTIFACTS"]) / "unit")
        )
    )
    # The active experiment too: a Kedro session of an earlier test leaves kedro-mlflow's set,
    # and mlflow refuses to reopen (start_run(run_id=...)) a run of another experiment.
    mlflow.set_experiment(experiment_id=experiment_id)
    run = mlflow.start_run(experiment_id=experiment_id)
    yield run.info.run_id
    while mlflow.active_run() is not None:
        mlflow.end_run()


def real_samples_path() -> Path:
    """Where the real SEN12MS-CR samples are expected (env SEN12MSCR_SAMPLES overrides)."""
    return Path(os.environ.get("SEN12MSCR_SAMPLES", DEFAULT_SAMPLES))


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The Kedro project root (the folder holding pyproject.toml)."""
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def real_samples_root() -> Path:
    """The folder of real SEN12MS-CR triplets; skips the test, saying why, where it is absent."""
    path = real_samples_path()
    if not path.is_dir() or not any(path.glob("*_s2_cloudy")):
        pytest.skip(
            f"real SEN12MS-CR samples not found at {path}: set SEN12MSCR_SAMPLES to the folder"
        )
    return path
