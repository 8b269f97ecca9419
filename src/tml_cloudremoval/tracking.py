"""What a tracked run records beyond the node parameters, and into which mlflow run.

kedro-mlflow (``conf/base/mlflow.yml``) opens one mlflow run per ``kedro run`` and logs the
parameters of its nodes (``model.features``, ``training.learning_rate``, ...). The project hook
:class:`tml_cloudremoval.hooks.TrackRuns` hands this module each catalog entry a node saved,
and :class:`Tracker` records it (entries not in this table are not logged):

=======================  ==========================================================================
catalog entry            recorded as
=======================  ==========================================================================
``evaluation_metrics``   metrics: every number of ``metrics.json``, one key per leaf
                         (``model.covered.mae``, ``baseline_cloudy_input.all.sam_deg``,
                         ``model.per_band_rmse.B8``, ``n_patches``; null regions are left out);
                         artifact ``evaluation/metrics.json``
``evaluation_per_patch`` artifact ``evaluation/per_patch_metrics.csv``
figures                  artifacts ``figures/*.png`` (:data:`ARTIFACT_FOLDERS`)
``training_summary``     artifact ``training/training_summary.json``; the epochs of its
                         ``history`` the run has not logged yet (a resumed or reused training),
                         as metrics with step = epoch (1-based, as in ``training_log.csv``)
``dsen2cr_model``        the version folder as artifacts ``model/<version>/`` (``dsen2cr.keras``,
                         ``contract.json``, ``MODEL_CARD.md``); tag ``model_version``; params
                         ``contract.data.*`` from the contract (how the training store was made)
``model_card``           artifact ``model/<version>/MODEL_CARD.md`` (rewritten with the figures)
``training_run``         (a node input) ``training/training_log.csv`` and ``FINISHED.json`` after
                         the node, not the checkpoints
=======================  ==========================================================================

Per-epoch metrics are logged live by ``training.tracking.MlflowEpochMetrics``, into the run
that is active while the training node runs.

Ablation variants: an entry named ``ablation.<variant>.<entry>`` is recorded as above into the
child run named ``<variant>`` (a nested run of the run, tag ``mlflow.parentRunId``), with the
variant's ``model.*`` and ``training.*`` settings from its training summary as params. While a
node of namespace ``ablation.<variant>`` runs, its child run is the active one, so the
per-epoch metrics of its training land there too. Runs compare side by side in the mlflow UI.

mlflow is imported only when a run is active (``sys.modules``): a session without kedro-mlflow
(or with its tracking disabled) records nothing and imports nothing.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ABLATION_NAMESPACE = "ablation"
"""The namespace of the ablation pipeline: its entries are ``ablation.<variant>.<entry>``."""

ARTIFACT_FOLDERS: dict[str, str] = {
    "evaluation_metrics": "evaluation",
    "evaluation_per_patch": "evaluation",
    "evaluation_report": "evaluation",
    "evaluation_uncertainty": "evaluation",
    "evaluation_uncertainty_figure": "figures",
    "ablation_comparison": "ablation",
    "ablation_figure": "ablation",
    "evaluation_examples": "figures",
    "evaluation_band_errors": "figures",
    "training_curves": "figures",
    "training_summary": "training",
}
"""Catalog entries whose saved file is logged as an artifact, and the artifact folder."""

METRICS_ENTRY = "evaluation_metrics"
HISTORY_ENTRY = "training_summary"
MODEL_ENTRY = "dsen2cr_model"
CARD_ENTRY = "model_card"
RUN_FOLDER_INPUT = "training_run"

VARIANT_TAG = "ablation_variant"
_INVALID_KEY = re.compile(r"[^\w\-. /:]")


def active_mlflow() -> Any | None:
    """The ``mlflow`` module when it is imported and a run is active, else None."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None or mlflow.active_run() is None:
        return None
    return mlflow


def split_variant(name: str) -> tuple[str | None, str]:
    """(variant, entry): ``("no_sar", "training_summary")`` for
    ``ablation.no_sar.training_summary``; ``(None, name)`` outside the ablation namespace."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[0] == ABLATION_NAMESPACE:
        return parts[1], ".".join(parts[2:])
    return None, name


def node_variant(namespace: str | None) -> str | None:
    """The variant of a node of namespace ``ablation.<variant>[...]``, else None."""
    parts = (namespace or "").split(".")
    return parts[1] if len(parts) >= 2 and parts[0] == ABLATION_NAMESPACE else None


def key(name: str) -> str:
    """``name`` as a valid mlflow metric or param key (other characters become ``_``)."""
    return _INVALID_KEY.sub("_", name)[:250]


def number_leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite number of a nested dict, keyed by its dotted path (bools, strings, lists,
    nulls and non-finite values left out): ``{"model": {"all": {"mae": 0.1}}}`` ->
    ``{"model.all.mae": 0.1}``."""
    leaves: dict[str, float] = {}
    for name, value in tree.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            leaves.update(number_leaves(value, f"{path}."))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                leaves[key(path)] = float(value)
    return leaves


def param_leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Every leaf of a nested dict as a string, keyed by its dotted path (lists whole)."""
    leaves: dict[str, str] = {}
    for name, value in tree.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            leaves.update(param_leaves(value, f"{path}."))
        else:
            leaves[key(path)] = str(value)
    return leaves


def contract_params(contract: Any) -> dict[str, str]:
    """``contract.data.*`` params of a model contract: how its training store was made (not
    ``data.*``: those are the node parameters of this run, which kedro-mlflow logs and which
    may differ, e.g. an evaluation on a store made with another threshold)."""
    split = dict(getattr(contract, "training_split", None) or {})
    sar = getattr(contract, "sar", None)
    facts = {
        "sar_method": getattr(sar, "method", None),
        "cloud_threshold": getattr(contract, "cloud_threshold", None),
        "train_split": {"n_patches": split.get("n_patches"), "sha256": split.get("sha256")},
    }
    return param_leaves(facts, "contract.data.")


def variant_params(summary: Mapping[str, Any]) -> dict[str, str]:
    """``model.*`` and ``training.*`` params of a variant from its training summary (the
    validated settings; ``settings`` when the summary carries no full sections)."""
    settings = dict(summary.get("settings") or {})
    sections = {name: summary.get(name) or settings.get(name) for name in ("model", "training")}
    extra = {k: v for k, v in settings.items() if k not in sections}
    return param_leaves({**extra, **{k: v for k, v in sections.items() if v is not None}})


@contextmanager
def _warn_on_failure(name: str) -> Iterator[None]:
    """A failure inside is logged as a warning naming ``name``, not raised."""
    try:
        yield
    except Exception as err:  # any failure of the store or of a file: see Tracker.saved
        log.warning("mlflow: %s not recorded: %s", name, err)


class Tracker:
    """Records into the active mlflow run (the run of the ``kedro run``) and into one child run
    per ablation variant. Made by :meth:`of_active_run` when the pipeline starts."""

    def __init__(self, mlflow: Any) -> None:
        run = mlflow.active_run()
        self._mlflow = mlflow
        self._client = mlflow.MlflowClient()
        self.parent: str = run.info.run_id
        self.experiment_id: str = run.info.experiment_id
        self.children: dict[str, str] = {}
        self._facts: set[tuple[str, str]] = set()

    @classmethod
    def of_active_run(cls) -> Tracker | None:
        """A tracker of the active run, or None when no run is active (nothing to record)."""
        mlflow = active_mlflow()
        return None if mlflow is None else cls(mlflow)

    def run_id(self, variant: str | None) -> str:
        """The run of ``variant`` (its child run, made on first use), or the parent run."""
        if variant is None:
            return self.parent
        if variant not in self.children:
            from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

            tags = {MLFLOW_PARENT_RUN_ID: self.parent, VARIANT_TAG: variant}
            run = self._client.create_run(self.experiment_id, run_name=variant, tags=tags)
            self.children[variant] = run.info.run_id
            log.info("mlflow: ablation variant %r is child run %s", variant, run.info.run_id)
        return self.children[variant]

    def enter(self, variant: str | None) -> None:
        """Before a node of ``variant``: its child run becomes the active run."""
        if variant is not None:
            self._mlflow.start_run(run_id=self.run_id(variant), nested=True)

    def leave(self, variant: str | None, failed: bool = False) -> None:
        """After a node of ``variant`` (or its error): back to the parent run."""
        active = self._mlflow.active_run()
        if variant is not None and active and active.info.run_id == self.children.get(variant):
            self._mlflow.end_run("FAILED" if failed else "FINISHED")

    def close(self, failed: bool = False) -> None:
        """After the pipeline: child runs still running end (FAILED when the run failed), and
        the stale entries of the ended parent run are taken off mlflow's active-run stack.

        kedro-mlflow 2.0.3 restarts the parent run before each node; mlflow 3 pushes it again
        each time, so after the run's ``end_run`` the parent would still look active and the
        next session in this process would log into it. A parent still RUNNING (a run opened
        before the session, which kedro-mlflow leaves open) is left alone."""
        for run_id in self.children.values():
            if self._client.get_run(run_id).info.status == "RUNNING":
                self._client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        while (active := self._mlflow.active_run()) and active.info.run_id == self.parent:
            status = self._client.get_run(self.parent).info.status
            if status == "RUNNING":
                break
            self._mlflow.end_run(status)

    def saved(self, name: str, data: Any, path: Path | None) -> None:
        """Record the catalog entry ``name`` a node saved (``path``: its file, or the file in
        its version folder; None for in-memory entries) as the module table says; other
        entries are ignored. Here, in :meth:`loaded` and :meth:`node_done` a failure of the
        store is logged as a warning: it never fails a run that did its work."""
        variant, entry = split_variant(name)
        if entry in (*ARTIFACT_FOLDERS, MODEL_ENTRY, CARD_ENTRY):
            with _warn_on_failure(name):
                self._record(self.run_id(variant), variant, entry, data, path)

    def loaded(self, name: str, data: Any) -> None:
        """A loaded model (an evaluation's input): tag ``model_version`` and ``contract.data.*``."""
        variant, entry = split_variant(name)
        folder = getattr(data, "folder", None)
        if entry == MODEL_ENTRY and folder is not None:
            with _warn_on_failure(name):
                self._model_facts(self.run_id(variant), Path(folder), data.contract)

    def node_done(self, node_namespace: str | None, inputs: Mapping[str, Any]) -> None:
        """After a node: the run folders among its inputs (``training_run``) are logged."""
        for name, value in inputs.items():
            variant, entry = split_variant(name)
            if entry == RUN_FOLDER_INPUT and hasattr(value, "path"):
                from tml_cloudremoval.training.tracking import run_folder_files

                with _warn_on_failure(name):
                    run_id = self.run_id(variant or node_variant(node_namespace))
                    for path in run_folder_files(value):
                        self._client.log_artifact(run_id, str(path), "training")

    def _record(
        self, run_id: str, variant: str | None, entry: str, data: Any, path: Path | None
    ) -> None:
        folder = ARTIFACT_FOLDERS.get(entry)
        if folder is not None and path is not None and path.is_file():
            self._client.log_artifact(run_id, str(path), folder)
        if entry == METRICS_ENTRY and isinstance(data, Mapping):
            self.log_metrics(run_id, number_leaves(data))
        elif entry == HISTORY_ENTRY and isinstance(data, Mapping):
            self.log_history(run_id, data.get("history") or [])
            if variant is not None:
                self.log_params(run_id, variant_params(data))
        elif entry == MODEL_ENTRY and path is not None and path.parent.is_dir():
            version = path.parent  # the entry's file inside its version folder
            self._client.log_artifacts(run_id, str(version), f"model/{version.name}")
            self._model_facts(run_id, version, getattr(data, "contract", None))
        elif entry == CARD_ENTRY and getattr(data, "folder", None) is not None:
            from tml_cloudremoval.models.model_card import CARD_FILE

            version = Path(data.folder)
            self._client.log_artifact(run_id, str(version / CARD_FILE), f"model/{version.name}")

    def _model_facts(self, run_id: str, version: Path, contract: Any) -> None:
        if (run_id, str(version)) in self._facts:
            return
        self._facts.add((run_id, str(version)))
        self._client.set_tag(run_id, "model_version", version.name)
        if contract is not None:
            self.log_params(run_id, contract_params(contract))

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """``metrics`` at ``step`` into ``run_id`` (batches of 1000, mlflow's limit)."""
        self._log_metric_rows(run_id, ((name, value, step) for name, value in metrics.items()))

    def log_history(self, run_id: str, history: Iterable[Mapping[str, Any]]) -> None:
        """Each numeric column of each epoch row (``{"epoch": 1, "loss": ...}``) at step =
        epoch, except the (metric, epoch) points the run holds already (logged live)."""
        logged: dict[str, set[int]] = {}
        rows = []
        for row in history:
            step = int(row["epoch"])
            values = number_leaves({k: v for k, v in row.items() if k != "epoch"})
            for name, value in values.items():
                if name not in logged:
                    points = self._client.get_metric_history(run_id, name)
                    logged[name] = {point.step for point in points}
                if step not in logged[name]:
                    rows.append((name, value, step))
        self._log_metric_rows(run_id, rows)

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """``params`` into ``run_id``; a key the run holds already keeps its value (mlflow
        params are immutable), with a warning when the new value differs."""
        existing = self._client.get_run(run_id).data.params
        for name in sorted(set(params) & set(existing)):
            if existing[name] != params[name]:
                log.warning(
                    "mlflow: param %s stays %r (not %r)", name, existing[name], params[name]
                )
        new = [(k, v) for k, v in params.items() if k not in existing]
        from mlflow.entities import Param

        for start in range(0, len(new), 100):
            batch = [Param(k, v) for k, v in new[start : start + 100]]
            self._client.log_batch(run_id, params=batch)

    def _log_metric_rows(self, run_id: str, rows: Iterable[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, step) for name, value, step in rows]
        for start in range(0, len(metrics), 1000):
            self._client.log_batch(run_id, metrics=metrics[start : start + 1000])
