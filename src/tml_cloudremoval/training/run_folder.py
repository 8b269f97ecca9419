"""The run folder of one training: checkpoints, log, final model, and the resume state.

Layout (the catalog entry ``training_run``, ``datasets.run_folder_dataset.RunFolderDataset``)::

    checkpoints/epoch_NNNN/  after each epoch: trainer.weights.h5 (network, optimizer and
                             metric state, for resuming), model.keras (the product network of
                             that epoch, loadable in safe mode), state.json
    training_log.csv         one row per completed epoch (losses and MAE in reflectance)
    tensorboard/             TensorBoard event files
    final_model.keras        the product network of the finished run
    FINISHED.json            marker + summary, written last

Resume
    Each checkpoint folder is written with :func:`tml_cloudremoval.atomic.atomic_folder` (a
    hidden temporary sibling renamed into place when complete; a rename is atomic), every other
    file with ``atomic_file``, so a run killed at any moment, ``kill -9`` included, leaves only
    whole checkpoints and at most temporary siblings, which the next start removes
    (:meth:`RunFolder.clean_partial`). A full disk (or a file-size limit) ends a write with an
    ``OutputWriteError`` naming the file; the checkpoints before it stay whole. Starting the
    same command again loads the newest checkpoint (weights and optimizer state) and continues
    with the next epoch; each epoch's
    data depends only on (seed, epoch) (``data.input_pipeline.epoch_plan``), so the resumed run
    trains on the same batches as an uninterrupted one. Resuming with different settings (model
    size, batch, crop, learning rate, loss, seed, steps per epoch, data size) is refused: use a
    new run folder. (``keras.callbacks.BackupAndRestore`` is not used: it overwrites
    ``latest.weights.h5`` in place and writes the epoch JSON afterwards, so a kill between or
    during the two leaves a torn file or weights that disagree with the epoch.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from tml_cloudremoval.atomic import (
    atomic_file,
    atomic_folder,
    remove_stale_temporaries,
    write_json_atomic,
    write_text_atomic,
)
from tml_cloudremoval.errors import ProjectError
from tml_cloudremoval.output_errors import check_room, write_errors
from tml_cloudremoval.training.config import FINGERPRINT_KEYS, ModelConfig, TrainingConfig

FINISHED_MARKER = "FINISHED.json"
FINAL_MODEL = "final_model.keras"
LOG_CSV = "training_log.csv"
TRAINER_WEIGHTS = "trainer.weights.h5"
CHECKPOINT_MODEL = "model.keras"
STATE_JSON = "state.json"


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save`` to a temporary ``*.keras`` sibling, then renamed onto ``path``."""
    path = Path(path)
    with atomic_file(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


class RunFolderError(ProjectError, RuntimeError):
    """The run folder holds a run this one may not continue or reuse (the message says why
    and what to do). A ``RuntimeError`` too, as these refusals were before."""


def run_settings(
    model_cfg: ModelConfig, cfg: TrainingConfig, n_train: int, patch: tuple[int, int]
) -> dict[str, Any]:
    """The settings a resumed run must share with the interrupted one (JSON values)."""
    return {
        "model": asdict(model_cfg),
        "training": {k: getattr(cfg, k) for k in FINGERPRINT_KEYS},
        "n_train": n_train,
        "patch": list(patch),
    }


def fingerprint(
    model_cfg: ModelConfig, cfg: TrainingConfig, n_train: int, patch: tuple[int, int]
) -> str:
    """Hash of :func:`run_settings`."""
    return settings_fingerprint(run_settings(model_cfg, cfg, n_train, patch))


def settings_fingerprint(settings: dict[str, Any]) -> str:
    """Hash of settings made by :func:`run_settings` (16 hex digits)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"features": 8}}`` -> ``{"model.features": 8}``."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def settings_diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for each setting of ``new`` that ``old`` (a run's record) does not
    share; keys ``old`` lacks are left out (runs written before settings were recorded)."""
    if not old:
        return []
    before, after = _flat(old), _flat(new)
    return [
        f"{key}: {before[key]!r} -> {value!r}"
        for key, value in after.items()
        if key in before and before[key] != value
    ]


def recorded_settings(record: dict[str, Any]) -> dict[str, Any] | None:
    """The :func:`run_settings` a checkpoint's ``state.json`` or a ``FINISHED.json`` records;
    for records older than the ``settings`` key, those its ``model``, ``training`` and
    ``n_train`` give; None when it records none."""
    if "settings" in record:
        return record["settings"]
    if "model" not in record and "training" not in record:
        return None
    training = record.get("training") or {}
    settings = {
        "model": record.get("model") or {},
        "training": {k: training[k] for k in FINGERPRINT_KEYS if k in training},
    }
    return settings | ({"n_train": record["n_train"]} if "n_train" in record else {})


def _differences(record: dict[str, Any], settings: dict[str, Any] | None) -> str:
    """The settings that differ between a run's ``record`` and this run, as one phrase."""
    diff = settings_diff(recorded_settings(record), settings or {})
    if diff:
        return "differ: " + "; ".join(diff)
    return "differ (model, batch, crop, learning rate, loss, seed, steps per epoch or data)"


@dataclass
class ResumeState:
    """Where a run starts: epochs already done, their history, the checkpoint to load."""

    initial_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None

    @property
    def weights(self) -> Path | None:
        """Trainer weights (network, optimizer, metrics) to load, or None for a new run."""
        return self.checkpoint / TRAINER_WEIGHTS if self.checkpoint is not None else None


@dataclass
class RunFolder:
    """The files of one training run (see the module docstring); the folder may not exist yet.

    What ``catalog.load("training_run")`` returns: :meth:`log` (DataFrame), :meth:`finished`
    (the summary of a finished run), :meth:`checkpoint_folders`, :attr:`final_model`.
    """

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def marker(self) -> Path:
        return self.path / FINISHED_MARKER

    @property
    def final_model(self) -> Path:
        return self.path / FINAL_MODEL

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def finished(self) -> dict[str, Any] | None:
        """The summary in ``FINISHED.json``, or None while the run is not finished."""
        if not self.marker.is_file():
            return None
        return json.loads(self.marker.read_text())

    def load_final_model(self) -> keras.Model:
        """The product network of the finished run (safe mode: no custom objects needed)."""
        return keras.saving.load_model(self.final_model, safe_mode=True)

    def log(self) -> pd.DataFrame:
        """``training_log.csv``: one row per completed epoch (empty before the first)."""
        path = self.path / LOG_CSV
        return pd.read_csv(path) if path.is_file() else pd.DataFrame()

    def checkpoint_folders(self) -> list[tuple[int, Path]]:
        """(epochs completed, folder) of every whole checkpoint, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        done = []
        for p in self.checkpoints.glob("epoch_*"):
            number = p.name.split("_")[1]
            if p.is_dir() and number.isdigit() and (p / STATE_JSON).is_file():
                done.append((int(number), p))
        return sorted(done)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """(epochs completed, folder) of the newest whole checkpoint, or None."""
        done = self.checkpoint_folders()
        return done[-1] if done else None

    def clean_partial(self) -> None:
        """Remove the temporary siblings (files and folders) left by runs killed while writing
        (``atomic.remove_stale_temporaries``: each logged with its size)."""
        for folder in (self.checkpoints, self.path):
            remove_stale_temporaries(folder)

    def remove(self) -> None:
        """Delete the whole run folder (``if_finished: overwrite``)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def resume_state(
        self,
        fingerprint: str,
        epochs: int,
        settings: dict[str, Any] | None = None,
        clean: bool = True,
    ) -> ResumeState:
        """Clean partial writes (``clean``: the writer of the folder only), then the state to
        continue from (a fresh one without checkpoint). Refuses a checkpoint of other settings
        (naming those that differ from ``settings``, :func:`run_settings` of this run) or
        past ``epochs``."""
        if clean:
            self.clean_partial()
        latest = self.latest_checkpoint()
        if latest is None:
            return ResumeState()
        epoch, folder = latest
        state = json.loads((folder / STATE_JSON).read_text())
        if state.get("fingerprint") != fingerprint:
            raise RunFolderError(
                f"{folder} was written with other settings than this run: they "
                f"{_differences(state, settings)}. Resuming would mix two trainings: point the "
                "catalog entry training_run at a new folder, or delete that folder to start over."
            )
        if epoch > epochs:
            raise RunFolderError(
                f"{self.path} holds a checkpoint after epoch {epoch} but training.epochs is "
                f"{epochs}: raise epochs or point the catalog entry training_run at a new folder"
            )
        return ResumeState(epoch, list(state.get("history", [])), folder)

    def check_reuse(self, settings: dict[str, Any], epochs: int) -> dict[str, Any]:
        """The summary of the finished run, to reuse its model; refuses (naming each setting
        that differs, ``key: old -> new``) a run of other settings (:func:`run_settings`) or
        another number of ``epochs``, as resuming does."""
        finished = self.finished() or {}
        recorded = recorded_settings(finished)
        trained = (finished.get("training") or {}).get("epochs")
        diff = settings_diff(recorded, settings)
        if trained is not None and trained != epochs:
            diff.append(f"training.epochs: {trained!r} -> {epochs!r}")
        if diff:
            raise RunFolderError(
                f"training run in {self.path} has finished with other settings than asked "
                f"for: {'; '.join(diff)}. training.if_finished=reuse returns only the model of "
                "the same settings: point the catalog entry training_run at a new folder, or "
                "set training.if_finished=overwrite to train again in that folder."
            )
        return finished

    def write_checkpoint(
        self, epoch: int, trainer: keras.Model, product: keras.Model, state: dict[str, Any]
    ) -> Path:
        """``checkpoints/epoch_NNNN/`` for ``epoch`` (1-based), written as one atomic folder."""
        final = self.checkpoints / f"epoch_{epoch:04d}"
        optimizer = getattr(trainer, "optimizer", None)
        weights = _nbytes(trainer.weights) + _nbytes(getattr(optimizer, "variables", None) or [])
        network = _nbytes(product.weights)
        check_room(final, max(weights, network) + SAVE_OVERHEAD, weights + network + SAVE_OVERHEAD)
        with write_errors(final), atomic_folder(final, durable=True) as tmp:
            trainer.save_weights(tmp / TRAINER_WEIGHTS)
            product.save(tmp / CHECKPOINT_MODEL)
            (tmp / STATE_JSON).write_text(json.dumps(state, indent=2, default=str))
        return final

    def prune(self, keep: int | None) -> None:
        """Keep only the newest ``keep`` checkpoints (all when None)."""
        if not keep:
            return
        for _, old in self.checkpoint_folders()[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    def write_log(self, history: list[dict[str, Any]]) -> None:
        """Rewrite ``training_log.csv`` from ``history`` (columns in order of appearance)."""
        keys: list[str] = []
        for row in history:
            keys.extend(k for k in row if k not in keys)
        lines = [",".join(keys)]
        for row in history:
            lines.append(",".join(_csv_value(row.get(k, "")) for k in keys))
        with write_errors(self.path / LOG_CSV):
            write_text_atomic(self.path / LOG_CSV, "\n".join(lines) + "\n")

    def finish(self, product: keras.Model, summary: dict[str, Any]) -> None:
        """The final model, then ``FINISHED.json`` (last: its presence means finished)."""
        with write_errors(self.final_model):
            save_model_atomic(product, self.final_model)
        with write_errors(self.marker):
            write_json_atomic(self.marker, summary)


SAVE_OVERHEAD = 256 * 2**10
"""Bytes an HDF5 / .keras file needs beyond its arrays (headers, config), at most."""


def _nbytes(variables: Any) -> int:
    """Bytes of the values of Keras ``variables``."""
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def _csv_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: a history row, an atomic checkpoint folder, the CSV log rewritten.

    ``history`` is extended in place (it is the summary's history); ``export()`` gives the
    float32 product network of the moment. Non-chief workers only take part in the collective
    ops of the weights save, into a scratch folder that is thrown away.
    """

    def __init__(
        self,
        run: RunFolder,
        state: dict[str, Any],
        history: list[dict[str, Any]],
        export: Callable[[], keras.Model],
        chief: bool = True,
        keep: int | None = None,
    ):
        super().__init__()
        self.run = run
        self.state = state
        self.history = history
        self.export = export
        self.chief = chief
        self.keep = keep
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        self.history.append(row)
        if not self.chief:
            with tempfile.TemporaryDirectory(prefix="tml_worker_ckpt_") as scratch:
                self.model.save_weights(Path(scratch) / TRAINER_WEIGHTS)
            return
        state = {**self.state, "epoch": epoch + 1, "history": self.history}
        self.run.write_checkpoint(epoch + 1, self.model, self.export(), state)
        self.run.write_log(self.history)
        self.run.prune(self.keep)
