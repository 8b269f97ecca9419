"""The project hook validates every parameter section before the first node of any run."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tml_cloudremoval.config import ConfigError

PROJECT = Path(__file__).resolve().parents[1]


def test_a_bad_key_of_another_pipeline_stops_the_run_before_any_node():
    """A typo in ``training.*`` stops even a sample_data run, before its first node.

    The sample_data nodes validate only ``sample_data.*``: without the hook this run would
    succeed (and no ConfigError would be raised)."""
    bootstrap_project(PROJECT)
    params = {"training": {"epochz": 3}, "inference": {"compress": "bogus"}}
    with KedroSession.create(project_path=PROJECT, runtime_params=params) as session:
        with pytest.raises(ConfigError) as err:
            session.run(pipeline_name="sample_data")
    message = str(err.value)
    assert "training.epochz: unknown parameter (did you mean training.epochs?)" in message
    assert "inference.compress: expected one of" in message
