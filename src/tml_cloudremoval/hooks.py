"""Project hooks: a run is checked as a whole before its first node does any work.

Each pipeline's first node validates its own section, but a ``kedro run`` of several pipelines
would otherwise meet a misspelt ``training.*`` key only after data processing ran. The hook
checks every section of the run's parameters (:data:`tml_cloudremoval.config.SECTIONS`), then
the paths of the run (:mod:`tml_cloudremoval.destinations`): no output may be, contain or lie
inside an input or another output, every destination must be writable, and every versioned
input must have the version asked for, whatever pipeline or nodes were asked for.

:class:`RecordRunConfig` keeps the configuration of the run being started, so that pipelines
built from parameters (``ablation``: one namespace per variant of ``params:ablation``) are
registered with the run's env and ``--params``: :func:`registration_parameters`.

:class:`TrackRuns` adds to the mlflow run kedro-mlflow opens for a ``kedro run`` what the node
parameters do not say (metrics, figures, the model, ablation variants as child runs): the
table is in :mod:`tml_cloudremoval.tracking`; without an active mlflow run it does nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset

from tml_cloudremoval import destinations, tracking
from tml_cloudremoval.config import validate_sections

logger = logging.getLogger(__name__)


def dataset_path(dataset: Any) -> str | None:
    """The local file or folder of a catalog dataset (a versioned one: its folder), or None.

    None for datasets without a path (memory, parameters) and for remote ones (``s3://``...).
    """
    if dataset is None:
        return None
    described = dataset._describe()
    path = described.get("filepath") or described.get("path")
    protocol = described.get("protocol")
    if path is None or protocol not in (None, "file") or "://" in str(path):
        return None
    return str(path)


def catalog_places(names: set[str], catalog: Any, root: Path) -> list[destinations.Place]:
    """:class:`~tml_cloudremoval.destinations.Place` of each catalog entry in ``names``."""
    places = []
    for name in sorted(names):
        if name == "parameters" or name.startswith("params:"):
            continue
        path = dataset_path(catalog.get(name))
        if path is not None:
            places.append(destinations.place(f"catalog entry {name}", path, root))
    return places


def versioned_folders(catalog: Any, root: Path) -> dict[str, Path]:
    """Every versioned catalog entry and the folder that holds its versions."""
    folders = {}
    for name in catalog.keys():
        dataset = catalog.get(name)
        if isinstance(dataset, AbstractVersionedDataset) and dataset._version is not None:
            path = dataset_path(dataset)
            if path is not None:
                folders[name] = destinations.place(name, path, root).path
    return folders


def run_faults(
    run_params: dict[str, Any], pipeline: Any, catalog: Any, params: dict[str, Any]
) -> list[str]:
    """Every path fault of a run (``params``: all its parameters): outputs overlapping inputs
    or each other, unwritable destinations, missing versions of versioned inputs."""
    root = Path(run_params.get("project_path") or Path.cwd())
    inputs = pipeline.inputs()
    sections = [s for s in destinations.INPUT_PATH_PARAMETERS if f"params:{s}" in inputs]
    if "parameters" in inputs:
        sections = list(destinations.INPUT_PATH_PARAMETERS)
    writes = catalog_places(pipeline.all_outputs(), catalog, root)
    reads = catalog_places(inputs, catalog, root)
    reads += destinations.parameter_reads(params, sections, root)
    faults = destinations.overlap_faults(writes, reads)
    faults += [fault for fault in map(destinations.destination_fault, writes) if fault]
    versioned = versioned_folders(catalog, root)
    faults += destinations.version_faults(
        run_params.get("load_versions") or {}, versioned, inputs & versioned.keys()
    )
    return faults


_RUN_CONFIG: dict[str, Any] = {}
"""The config loader of the latest Kedro context created in this process (its env and
runtime parameters), kept by :class:`RecordRunConfig`."""


class RecordRunConfig:
    """Keep the run's config loader for :func:`registration_parameters`.

    ``after_context_created`` is the earliest hook of a run; ``KedroSession.run`` creates the
    context before it first reads the pipelines, so the registry sees ``--env`` and ``--params``.
    ``tryfirst``: before any plugin's hook of the same name, which might read the pipelines.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        _RUN_CONFIG["loader"] = context.config_loader


def registration_parameters(project_path: Path | None = None) -> dict[str, Any]:
    """The parameters of the run being started (its env, ``--params``), as pipelines are
    registered.

    Without a context in this process (``kedro registry``, ``kedro viz`` without
    ``--include-hooks``, a plain import), the project's configuration as Kedro's default
    session would load it: ``conf/base`` + the env in ``KEDRO_ENV`` (else ``local``), from
    ``project_path`` (default: the working folder, as Kedro's commands run).
    """
    loader = _RUN_CONFIG.get("loader")
    try:
        if loader is None:
            from kedro.framework.project import settings

            conf = Path(project_path or Path.cwd()) / settings.CONF_SOURCE
            env = os.environ.get("KEDRO_ENV")
            loader = settings.CONFIG_LOADER_CLASS(
                conf_source=str(conf), env=env, **settings.CONFIG_LOADER_ARGS
            )
        return dict(loader["parameters"])
    except Exception as exc:  # registering must not fail: a run reports bad config itself
        logger.warning("No parameters to register pipelines from (%s): %s", type(exc).__name__, exc)
        return {}


def saved_path(dataset: Any) -> Path | None:
    """The local file or folder a dataset has just saved (a versioned one: the file inside
    this run's version folder), or None (memory, remote)."""
    path = dataset_path(dataset)
    if path is None:
        return None
    if isinstance(dataset, AbstractVersionedDataset) and dataset._version is not None:
        return Path(dataset._get_versioned_path(dataset.resolve_save_version()))
    return Path(path)


class ValidateParameters:
    """Reject bad parameters, then harmful or unwritable paths, before the first node runs.

    ``tryfirst``: before kedro-mlflow opens a run, so a refused run records none."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        params = catalog.load("parameters")
        validate_sections(params)
        destinations.check_run(run_faults(run_params, pipeline, catalog, params))


class TrackRuns:
    """Record metrics, figures, the model and the ablation variants into the active mlflow run
    (:mod:`tml_cloudremoval.tracking`). Its ``before_*`` hooks run after kedro-mlflow's
    (``trylast``: the run is open), its ``after_pipeline_run`` after kedro-mlflow ended it."""

    def __init__(self) -> None:
        self._tracker: tracking.Tracker | None = None
        self._catalog: Any = None

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._catalog = catalog
        self._tracker = tracking.Tracker.of_active_run()

    @hook_impl(trylast=True)
    def before_node_run(self, node: Any) -> None:
        if self._tracker is not None:
            self._tracker.enter(tracking.node_variant(node.namespace))

    @hook_impl(tryfirst=True)
    def after_node_run(self, node: Any, inputs: dict[str, Any]) -> None:
        if self._tracker is not None:
            self._tracker.node_done(node.namespace, inputs)
            self._tracker.leave(tracking.node_variant(node.namespace))

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        if self._tracker is not None:
            self._tracker.leave(tracking.node_variant(node.namespace), failed=True)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if self._tracker is not None:
            path = saved_path(self._catalog.get(dataset_name))
            self._tracker.saved(dataset_name, data, path)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if self._tracker is not None:
            self._tracker.loaded(dataset_name, data)

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        self._close(failed=False)

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        self._close(failed=True)

    def _close(self, failed: bool) -> None:
        if self._tracker is not None:
            self._tracker.close(failed=failed)
        self._tracker, self._catalog = None, None
