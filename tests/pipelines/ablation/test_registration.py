"""The variant list comes from the YAML when pipelines are registered: the run's env and
--params included (RecordRunConfig), else conf/base + KEDRO_ENV; a bad override stops the run
before its first node."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tml_cloudremoval import hooks
from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.pipelines.ablation import create_pipeline

PROJECT = Path(__file__).resolve().parents[3]
ENV = "ablation_env"


@pytest.fixture(autouse=True)
def no_recorded_config():
    """Each test starts and ends without a recorded run config (it is per process)."""
    hooks._RUN_CONFIG.clear()
    yield
    hooks._RUN_CONFIG.clear()


def _conf(tmp_path: Path, variants: dict) -> Path:
    """A copy of conf/ with an env whose parameters_ablation.yml sets ``variants``."""
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    (conf / ENV).mkdir()
    text = yaml.safe_dump({"ablation": {"variants": variants}})
    (conf / ENV / "parameters_ablation.yml").write_text(text)
    factory = "ablation.{variant}.model_params"
    entry = yaml.safe_load((conf / "base" / "catalog_ablation.yml").read_text())[factory]
    entry["filepath"] = str(tmp_path / "out" / "{variant}" / "model_params.json")
    (conf / ENV / "catalog_ablation.yml").write_text(yaml.safe_dump({factory: entry}))
    return conf


def _variants_of(pipe) -> set[str]:
    return {n.namespace.split(".")[1] for n in pipe.nodes if n.namespace.count(".") == 1}


def test_the_run_s_env_and_params_decide_the_variants(tmp_path):
    conf = _conf(tmp_path, {"no_sar": None, "deep": {"model": {"blocks": 8}}})
    bootstrap_project(PROJECT)
    params = {"ablation": {"variants": {"wide": {"model": {"features": 96}}}}}
    with KedroSession.create(
        project_path=PROJECT, env=ENV, conf_source=str(conf), runtime_params=params
    ) as session:
        session.load_context()  # as session.run does before it reads the pipelines
        pipe = create_pipeline()  # what register_pipelines calls
    assert _variants_of(pipe) == {
        "reference",
        "sar_bilinear",
        "l1",
        "tail_he_uniform",
        "aleatoric",
        "deep",
        "wide",
    }


def test_without_a_run_the_project_conf_and_kedro_env_decide(tmp_path, monkeypatch):
    conf = _conf(tmp_path, {"l1": None})
    monkeypatch.chdir(tmp_path)  # Kedro's commands run in the project folder
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    assert _variants_of(create_pipeline()) == {
        "reference",
        "no_sar",
        "sar_bilinear",
        "l1",
        "tail_he_uniform",
        "aleatoric",
    }
    monkeypatch.setenv("KEDRO_ENV", ENV)
    assert _variants_of(create_pipeline()) == {
        "reference",
        "no_sar",
        "sar_bilinear",
        "tail_he_uniform",
        "aleatoric",
    }
    shutil.rmtree(conf)  # no configuration at all: no variant, and no failure
    assert create_pipeline().nodes == []


def test_a_misspelt_override_stops_kedro_run_before_the_first_node(tmp_path):
    conf = _conf(tmp_path, {"no_sar": {"model": {"include_sarr": False}}})
    bootstrap_project(PROJECT)
    pipelines.set_requested(None)  # pipelines are cached per process: load them afresh
    with (
        KedroSession.create(project_path=PROJECT, env=ENV, conf_source=str(conf)) as session,
        pytest.raises(ConfigError) as err,
    ):
        session.run(pipeline_names=["ablation"])
    assert (
        "ablation.variants.no_sar.model.include_sarr: unknown parameter "
        "(did you mean ablation.variants.no_sar.model.include_sar?)"
    ) in str(err.value)
    assert not (tmp_path / "out").exists()  # the variant's first output: never written
