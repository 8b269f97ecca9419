"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The default run goes from the raw triplets to a cleaned scene; sample_data is run on demand
# (``make run`` does it when data/01_raw holds no sample dataset yet).
DEFAULT_PIPELINES = ("data_processing", "training", "evaluation", "inference")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: each package under ``pipelines/`` plus ``__default__``."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), Pipeline([])
    )
    return pipelines
