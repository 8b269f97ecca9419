"""Per-epoch metrics into the active mlflow run, and the files of a run folder worth keeping.

:class:`MlflowEpochMetrics` is one of the callbacks of every training (``loop.make_callbacks``):
after each epoch it logs that epoch's Keras logs (``loss``, ``val_loss``, ``mae``,
``covered_mae``, ``val_*``; MAE in reflectance) and its wall time (``seconds``) to the mlflow
run that is active, with step = the epoch number counted from 1 (as ``training_log.csv`` and
the summary's ``history`` count). Without an active run, e.g. a training outside ``kedro run``
or without kedro-mlflow, it does nothing and never imports mlflow. A logging failure is a
warning: it never stops a training.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import keras

from tml_cloudremoval.training.run_folder import FINISHED_MARKER, LOG_CSV, RunFolder

log = logging.getLogger(__name__)

RUN_FOLDER_ARTIFACTS = (LOG_CSV, FINISHED_MARKER)
"""The files of a run folder a tracked run keeps (not the checkpoints, not the final model:
the model version folder holds the same network)."""


def run_folder_files(run: RunFolder) -> list[Path]:
    """The :data:`RUN_FOLDER_ARTIFACTS` of ``run`` that exist."""
    return [run.path / name for name in RUN_FOLDER_ARTIFACTS if (run.path / name).is_file()]


class MlflowEpochMetrics(keras.callbacks.Callback):
    """Logs each epoch's metrics to the active mlflow run (see the module docstring).

    Args:
        enabled: False on the non-chief workers of a multi-worker training (one writer).
    """

    def __init__(self, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled
        self._start = time.perf_counter()
        self._warned = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        mlflow = sys.modules.get("mlflow")
        if not self.enabled or mlflow is None or mlflow.active_run() is None:
            return
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        metrics = {name: value for name, value in metrics.items() if math.isfinite(value)}
        metrics["seconds"] = round(time.perf_counter() - self._start, 3)
        try:
            mlflow.log_metrics(metrics, step=epoch + 1)
        except Exception as err:  # tracking never stops a training
            if not self._warned:
                log.warning("mlflow: epoch metrics not logged: %s", err)
                self._warned = True
