"""Project pipelines."""

from __future__ import annotations

from importlib import resources

from kedro.framework import project
from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from tml_cloudremoval.errors import ProjectError

# The default run goes from the raw triplets to a cleaned scene; sample_data is run on demand
# (``make run`` does it when data/01_raw holds no sample dataset yet).
DEFAULT_PIPELINES = ("data_processing", "training", "evaluation", "inference")


def pipeline_names() -> list[str]:
    """The project's pipelines: each package under ``pipelines/`` with a ``pipeline.py``."""
    package = resources.files("tml_cloudremoval.pipelines")
    return sorted(entry.name for entry in package.iterdir() if (entry / "pipeline.py").is_file())


def check_requested(requested: list[str] | None) -> None:
    """Refuse pipeline names that do not exist, listing those that do (Kedro would report an
    ImportError for ``tml_cloudremoval.pipelines.<name>``)."""
    known = [*pipeline_names(), "__default__"]
    unknown = [name for name in requested or () if name not in known]
    if unknown:
        raise ProjectError(
            f"unknown pipeline {', '.join(map(repr, unknown))}; the pipelines are: "
            + ", ".join(known)
        )


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: each package under ``pipelines/`` plus ``__default__``.

    Kedro loads only the pipelines a run asks for (``--pipelines``); a name that is not one of
    them is refused first, naming the pipelines that exist.
    """
    check_requested(getattr(project.pipelines, "_requested_pipelines", None))
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in DEFAULT_PIPELINES if name in pipelines), Pipeline([])
    )
    return pipelines
