"""`kedro run --env gpu`: the env loads, every section validates, the training run is accepted.

Nothing is trained: the session's context gives the resolved parameters and catalog, and the
checks of the run's first hook (``hooks.run_faults``, ``config.validate_sections``) pass."""

from __future__ import annotations

from pathlib import Path

from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tml_cloudremoval.config import from_params, validate_sections
from tml_cloudremoval.hooks import run_faults
from tml_cloudremoval.training.config import ModelConfig, TrainingConfig

PROJECT = Path(__file__).resolve().parents[3]


def _context(env: str):
    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env=env) as session:
        return session.load_context()


def test_the_gpu_env_resolves_to_valid_settings_of_every_section():
    params = _context("gpu").params
    validate_sections(params)  # raises ConfigError naming any bad key
    training = from_params(TrainingConfig, params["training"], "training")
    assert from_params(ModelConfig, params["model"], "model") == ModelConfig()  # base model
    assert (training.batch_size, training.warmup_steps) == (64, 500)
    assert (training.mixed_precision, training.xla) == ("bfloat16", True)
    assert (training.input, training.input_workers) == ("auto", 12)
    # soft merge: the base keys the env does not give keep their base values
    assert (training.epochs, training.crop_size, training.seed) == (8, 128, 42)


def test_kedro_run_env_gpu_pipeline_training_is_accepted_before_any_node():
    context = _context("gpu")
    run = {"project_path": str(PROJECT), "env": "gpu"}
    faults = run_faults(run, pipelines["training"], context.catalog, context.params)
    # only a missing saved model may be reported: this checkout may not have trained one
    assert [f for f in faults if "no version saved" not in f] == []
    # GPU runs keep their own run folder (conf/gpu/catalog_training.yml)
    run_folder = Path(context.catalog.get("training_run")._filepath)
    assert run_folder.parts[-2:] == ("06_models", "training_run_gpu")
