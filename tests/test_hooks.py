"""The project hook checks a whole run before its first node: parameters, then paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from support.conf_env import ENV, SAVED_VERSION, conf_env

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.destinations import DestinationError
from tml_cloudremoval.errors import ProjectError
from tml_cloudremoval.hooks import run_faults

PROJECT = Path(__file__).resolve().parents[1]


def _run(pipeline: str, params: dict | None = None, conf: Path | None = None, **run_args):
    bootstrap_project(PROJECT)
    env = ENV if conf else None
    with KedroSession.create(
        project_path=PROJECT, runtime_params=params, conf_source=conf and str(conf), env=env
    ) as session:
        return session.run(pipeline_name=pipeline, **run_args)


def test_a_bad_key_of_another_pipeline_stops_the_run_before_any_node():
    """A typo in ``training.*`` stops even a sample_data run, before its first node.

    The sample_data nodes validate only ``sample_data.*``: without the hook this run would
    succeed (and no ConfigError would be raised)."""
    params = {"training": {"epochz": 3}, "inference": {"compress": "bogus"}}
    with pytest.raises(ConfigError) as err:
        _run("sample_data", params)
    message = str(err.value)
    assert "training.epochz: unknown parameter (did you mean training.epochs?)" in message
    assert "inference.compress: expected one of" in message


@pytest.mark.parametrize(
    ("pipeline", "params", "expected"),
    [
        (
            "data_processing",
            {"data": {"cloud_treshold": 0.9}},
            "data.cloud_treshold: unknown parameter (did you mean data.cloud_threshold?)",
        ),
        (
            "inference",
            {"inference": {"tilesize": 64}},
            "inference.tilesize: unknown parameter (did you mean inference.tile_size?)",
        ),
        ("training", {"training": {"learning_rate": -1.0}}, "training.learning_rate: must be > 0"),
        ("training", {"training": {"learning_rate": -1}}, "training.learning_rate: must be > 0"),
        (
            "inference",
            {"inference": {"compress": "bogus"}},
            "inference.compress: expected one of ['deflate', 'zstd', 'lzw', 'none'], got 'bogus'",
        ),
    ],
)
def test_the_issue_s_bad_parameters_stop_their_pipeline_before_any_work(pipeline, params, expected):
    with pytest.raises(ConfigError, match="invalid parameters") as err:
        _run(pipeline, params)
    assert expected in str(err.value)


@pytest.fixture
def guard_env(tmp_path):
    """``guard_env(entry=filepath, ...)``: a conf copy moving those catalog entries."""
    return lambda **filepaths: conf_env(tmp_path, **filepaths)


def _inference_refused(conf: Path, params: dict | None = None, **run_args) -> str:
    with pytest.raises(DestinationError, match="nothing was written") as err:
        _run("inference", params, conf, **run_args)
    assert not (conf.parent / "plan.json").exists()
    return str(err.value)


def test_quicklooks_in_the_input_scene_folder_are_refused_before_any_node(guard_env, tmp_path):
    scene = tmp_path / "scene"
    params = {"inference": {"s2_path": str(scene / "s2_cloudy.tif"), "s1_path": None}}
    message = _inference_refused(guard_env(scene_quicklooks=scene), params)
    assert (
        f"input parameter inference.s2_path ({scene / 's2_cloudy.tif'}) lies inside output "
        f"catalog entry scene_quicklooks ({scene})"
    ) in message


def test_quicklooks_onto_the_products_and_products_onto_the_scenes_folder_are_refused(
    guard_env, tmp_path
):
    products = tmp_path / "out"
    conf = guard_env(cloudfree_scenes=products, scene_quicklooks=tmp_path / "x" / ".." / "out")
    message = _inference_refused(conf, {"inference": {"scenes_dir": str(products)}})
    assert (
        f"output catalog entry cloudfree_scenes ({products}) is the same path as output "
        f"catalog entry scene_quicklooks ({tmp_path / 'x' / '..' / 'out'})"
    ) in message
    assert (
        f"output catalog entry cloudfree_scenes ({products}) is the same path as input "
        f"parameter inference.scenes_dir ({products})"
    ) in message


def test_a_quicklook_folder_that_cannot_be_created_stops_the_run_before_any_node(
    guard_env, tmp_path
):
    (tmp_path / "blocker").write_text("not a folder")
    quicklooks = tmp_path / "blocker" / "quicklooks"
    message = _inference_refused(guard_env(scene_quicklooks=quicklooks))
    assert f"output catalog entry scene_quicklooks ({quicklooks}) cannot be created" in message


def test_a_missing_model_version_fails_before_anything_is_written_listing_the_saved_ones(
    guard_env,
):
    message = _inference_refused(guard_env(), load_versions={"dsen2cr_model": "2099-missing"})
    assert "--load-versions dsen2cr_model:2099-missing: no such version" in message
    assert f"(saved versions: {SAVED_VERSION})" in message


def test_an_unknown_pipeline_names_the_pipelines_that_exist():
    with pytest.raises(ProjectError) as err:
        _run("nonexistent")
    assert str(err.value) == (
        "unknown pipeline 'nonexistent'; the pipelines are: ablation, data_processing, "
        "evaluation, inference, sample_data, training, __default__"
    )


@pytest.mark.parametrize("env", [None, "demo"])
def test_no_registered_pipeline_is_refused_on_the_project_s_own_settings(env):
    """The default catalog and parameters overlap nowhere (the guard never refuses a good run).

    Only a missing model may be reported: this checkout may not have trained one."""
    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env=env) as session:
        context = session.load_context()
        for name in pipelines:
            run = {"project_path": str(PROJECT)}
            faults = run_faults(run, pipelines[name], context.catalog, context.params)
            assert [f for f in faults if "no version saved" not in f] == [], name
