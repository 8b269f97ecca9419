"""Training loop for DSen2-CR: loss wiring, strategy, callbacks, resumable checkpoints.

How the loss sees the cloudy input and the mask
    ``CloudRemovalTrainer`` is a small registered ``keras.Model`` that wraps the functional
    network and overrides ``compute_loss(x, y, y_pred, ...)``. The data pipeline yields
    ``x = {"optical", "sar"}`` and ``y = {"target", "mask"}``, so CARL gets the cloudy input from
    ``x["optical"]`` and the mask from ``y["mask"]`` with no extra output channels and nothing
    fixed to a batch size (the original appended the cloudy input and a batch-sized zero tensor
    to the output). Only the inner functional network is the product: it is what
    ``train`` returns and what the catalog saves; the wrapper exists only while training.

Run folder (``training.run_dir``)
    ``checkpoints/epoch_NNNN/``  after each epoch: ``trainer.weights.h5`` (network, optimizer
                                 and metric state, for resuming), ``model.keras`` (the product
                                 network of that epoch, loadable in safe mode), ``state.json``
    ``training_log.csv``         one row per completed epoch (losses and MAE in reflectance)
    ``tensorboard/``             TensorBoard event files
    ``final_model.keras``        the product network of the finished run
    ``FINISHED.json``            marker + summary, written last

Resume
    Each checkpoint is written into a hidden temporary folder that is renamed into place when
    complete (a rename is atomic), so a run killed at any moment, ``kill -9`` included, leaves
    only whole checkpoints. Starting the same command again loads the newest one (weights and
    optimizer state), logs ``resuming from epoch N`` and continues with epoch N + 1. Each epoch's
    data order, crops and flips depend only on (seed, epoch) (``input_pipeline.epoch_plan``), so
    the resumed run trains on the same batches as an uninterrupted one. A run folder whose
    ``FINISHED.json`` exists is not trained again silently: ``training.if_finished`` says what
    to do (``error``, ``reuse`` the finished model, or ``overwrite`` the run folder). Resuming
    with different settings (model size, batch, crop, learning rate, loss, seed, data size) is
    refused: use a new run folder. (``keras.callbacks.BackupAndRestore`` is not used: it
    overwrites ``latest.weights.h5`` in place and writes the epoch JSON afterwards, so a kill
    between or during the two leaves a torn file or weights that disagree with the epoch.)

Distribution (``training.distribution``)
    ``mirrored``: one process, all local GPUs (or all logical CPUs). ``multi_worker``: the same
    command on every machine with TF_CONFIG set; ``run_dir`` must be on storage all workers
    share; only the chief (worker 0) writes it. ``batch_size`` is the global batch and must be
    a multiple of the replica count; an epoch's last partial batch is rounded down to a
    multiple of it (at most replicas - 1 samples sit out an epoch) so no replica gets an empty
    slice. Mixed precision (``mixed_float16``) is used only when a GPU is visible.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tml_cloudremoval.bands import S1_BAND_NAMES, SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.data.input_pipeline import epoch_size, eval_dataset, train_dataset
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.models.losses import LOSSES, carl_per_sample, l1_per_sample
from tml_cloudremoval.normalise import OPTICAL_SCALE, REFLECTANCE_SCALE, normalise_optical

log = logging.getLogger(__name__)

TO_REFLECTANCE = OPTICAL_SCALE / REFLECTANCE_SCALE
"""Model units -> reflectance (x 0.2): metrics are logged in reflectance."""

DISTRIBUTIONS = ("none", "mirrored", "multi_worker")
IF_FINISHED = ("error", "reuse", "overwrite")
FINISHED_MARKER = "FINISHED.json"
FINAL_MODEL = "final_model.keras"
LOG_CSV = "training_log.csv"


# ---------------------------------------------------------------------------------------------
# The loss wrapper
# ---------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tml_cloudremoval")
class CloudRemovalTrainer(keras.Model):
    """Training wrapper: ``network`` plus CARL (or L1) with the cloudy input and mask as data.

    ``fit`` data is ``(x, y)`` with ``x = {"optical": I, "sar": S}`` and
    ``y = {"target": T, "mask": M}`` (see ``tml_cloudremoval.data.input_pipeline``). The loss of a
    step is the batch mean of ``losses.carl_per_sample`` (or ``l1_per_sample``), divided by the
    number of replicas as Keras does for its own losses under ``tf.distribute`` (replica
    gradients are summed). Metrics, in reflectance: ``mae`` over all pixels and bands,
    ``covered_mae`` over cloud/shadow pixels only.
    """

    def __init__(
        self, network: keras.Model, loss_name: str = "carl", carl_lambda: float = 1.0, **kwargs
    ):
        super().__init__(**kwargs)
        if loss_name not in LOSSES:
            raise ValueError(f"loss {loss_name!r} is not one of {LOSSES}")
        self.network = network
        self.loss_name = loss_name
        self.carl_lambda = float(carl_lambda)
        self.mae_tracker = keras.metrics.Mean(name="mae")
        self.covered_mae_tracker = keras.metrics.Mean(name="covered_mae")

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.loss_name == "carl":
            per_sample = carl_per_sample(
                y["target"], x["optical"], y["mask"], y_pred, self.carl_lambda
            )
        else:
            per_sample = l1_per_sample(y["target"], y_pred)
        batch = tf.cast(tf.shape(per_sample)[0], tf.float32)
        # divide_no_nan: a replica can receive an empty slice of a last partial batch.
        loss = tf.math.divide_no_nan(tf.reduce_sum(per_sample), batch)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / replicas if replicas > 1 else loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        error = tf.reduce_mean(
            tf.abs(tf.cast(y_pred, tf.float32) - y["target"]), axis=-1
        )  # (B, H, W), model units
        error = error * TO_REFLECTANCE
        self.mae_tracker.update_state(error)
        self.covered_mae_tracker.update_state(error, sample_weight=y["mask"][..., 0])
        logs = self.get_metrics_result()
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 (3.15) reduces step logs across workers with
            # ``strategy.reduce("MEAN", v, axis=0)``, which fails on scalars ("Invalid reduction
            # dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388). The
            # metric values are already synchronised, so give each a length-1 axis to average.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3 (checked on 3.15), under a tf.distribute strategy, pulls the first batch of
        # fit/evaluate and averages it across replicas to build the model symbolically. With
        # MultiWorkerMirroredStrategy that reduce rejects dict-structured batches like ours
        # ("Attempt to convert a value ({'optical': PerReplica...") and with uneven replica
        # slices it fails on shapes. ``train`` builds the network and the optimizer before fit,
        # so there is nothing left to build: skip it then (only this private hook is touched).
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "loss_name": self.loss_name,
            "carl_lambda": self.carl_lambda,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """``model:`` parameters, the arguments of ``build_dsen2cr``."""

    features: int = 64
    blocks: int = 16
    residual_scale: float = 0.1
    include_sar: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> ModelConfig:
        return _from_params(cls, params, "model")


@dataclass(frozen=True)
class TrainingConfig:
    """``training:`` parameters (documented in conf/base/parameters_training.yml)."""

    epochs: int = 8
    batch_size: int = 16
    crop_size: int | None = 128
    learning_rate: float = 7e-5
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    loss: str = "carl"
    carl_lambda: float = 1.0
    seed: int = 42
    steps_per_epoch: int | None = None
    val_batch_size: int | None = None
    xla: bool = False
    mixed_precision: bool = False
    distribution: str = "none"
    run_dir: str = "data/06_models/training_run"
    if_finished: str = "error"
    keep_checkpoints: int | None = None
    tensorboard: bool = True
    verbose: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> TrainingConfig:
        cfg = _from_params(cls, params, "training")
        problems = []
        if cfg.epochs < 1:
            problems.append(f"epochs must be >= 1, got {cfg.epochs}")
        if cfg.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {cfg.batch_size}")
        if cfg.crop_size is not None and (cfg.crop_size < SAR_FACTOR or cfg.crop_size % SAR_FACTOR):
            problems.append(f"crop_size must be a positive multiple of {SAR_FACTOR} or null")
        if cfg.loss not in LOSSES:
            problems.append(f"loss must be one of {LOSSES}, got {cfg.loss!r}")
        if cfg.distribution not in DISTRIBUTIONS:
            problems.append(
                f"distribution must be one of {DISTRIBUTIONS}, got {cfg.distribution!r}"
            )
        if cfg.if_finished not in IF_FINISHED:
            problems.append(f"if_finished must be one of {IF_FINISHED}, got {cfg.if_finished!r}")
        if cfg.steps_per_epoch is not None and cfg.steps_per_epoch < 1:
            problems.append(f"steps_per_epoch must be >= 1 or null, got {cfg.steps_per_epoch}")
        if cfg.keep_checkpoints is not None and cfg.keep_checkpoints < 1:
            problems.append(f"keep_checkpoints must be >= 1 or null, got {cfg.keep_checkpoints}")
        if problems:
            raise ValueError("invalid training parameters: " + "; ".join(problems))
        return cfg


def _from_params(cls, params: Mapping[str, Any] | None, section: str):
    params = dict(params or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown {section} parameters {unknown}; known: {sorted(known)}")
    return cls(**params)


# ---------------------------------------------------------------------------------------------
# Strategy and precision
# ---------------------------------------------------------------------------------------------


def make_strategy(distribution: str) -> tf.distribute.Strategy:
    """``none``: the default strategy; ``mirrored``: all GPUs of this machine (or, without GPUs,
    all logical CPU devices); ``multi_worker``: MultiWorkerMirroredStrategy configured from the
    TF_CONFIG environment variable (one process per worker, same command on each)."""
    if distribution == "none":
        return tf.distribute.get_strategy()
    if distribution == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            strategy = tf.distribute.MirroredStrategy()
        else:
            cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
            strategy = tf.distribute.MirroredStrategy(
                devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
            )
        log.info("MirroredStrategy over %d replicas", strategy.num_replicas_in_sync)
        return strategy
    if distribution == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        log.info(
            "MultiWorkerMirroredStrategy: task %s, %d replicas in sync (TF_CONFIG %s)",
            _task(strategy),
            strategy.num_replicas_in_sync,
            "set" if os.environ.get("TF_CONFIG") else "unset: single worker",
        )
        return strategy
    raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")


def _task(strategy: tf.distribute.Strategy) -> tuple[str | None, int | None]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the process that writes the run folder (worker 0 or the chief)."""
    task_type, task_id = _task(strategy)
    if task_type is None or task_type == "chief":
        return True
    resolver = strategy.cluster_resolver
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def tensorboard_available() -> bool:
    """Whether tf.summary can write (the separate ``tensorboard`` package is installed)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def compute_dtype(mixed_precision: bool) -> str | None:
    """Layer dtype policy: "mixed_float16" when asked for and a GPU is visible, else float32."""
    if not mixed_precision:
        return None
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    log.info("mixed_precision requested but no GPU is visible: training in float32")
    return None


# ---------------------------------------------------------------------------------------------
# Run folder: checkpoints, log, marker
# ---------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """``model.save`` to a temporary file in the same folder, then rename onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class RunFolder:
    """The files of one training run (see the module docstring)."""

    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def marker(self) -> Path:
        return self.path / FINISHED_MARKER

    @property
    def final_model(self) -> Path:
        return self.path / FINAL_MODEL

    def finished(self) -> dict[str, Any] | None:
        if not self.marker.is_file():
            return None
        return json.loads(self.marker.read_text())

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """(epochs completed, folder) of the newest whole checkpoint, or None."""
        if not self.checkpoints.is_dir():
            return None
        done = [
            (int(p.name.split("_")[1]), p)
            for p in self.checkpoints.glob("epoch_*")
            if p.is_dir() and p.name.split("_")[1].isdigit() and (p / "state.json").is_file()
        ]
        return max(done) if done else None

    def clean_partial(self) -> None:
        """Remove temporary folders/files left by a run killed while writing."""
        if self.checkpoints.is_dir():
            for p in self.checkpoints.glob(".tmp_*"):
                shutil.rmtree(p, ignore_errors=True)
        if self.path.is_dir():
            for p in self.path.glob(".*.tmp*"):
                p.unlink(missing_ok=True)

    def write_log(self, history: list[dict[str, Any]]) -> None:
        keys: list[str] = []
        for row in history:
            keys.extend(k for k in row if k not in keys)
        lines = [",".join(keys)]
        for row in history:
            lines.append(",".join(_csv_value(row.get(k, "")) for k in keys))
        _write_atomic(self.path / LOG_CSV, "\n".join(lines) + "\n")


def _csv_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: an atomic checkpoint folder, then the CSV log rewritten from history."""

    def __init__(
        self,
        run: RunFolder,
        state: dict[str, Any],
        history: list[dict[str, Any]],
        export: Any,
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
            # Other workers take part in any collective op of the save, into a scratch folder.
            scratch = Path(tempfile.mkdtemp(prefix="tml_worker_ckpt_"))
            try:
                self.model.save_weights(scratch / "trainer.weights.h5")
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return
        ckpts = self.run.checkpoints
        ckpts.mkdir(parents=True, exist_ok=True)
        final = ckpts / f"epoch_{epoch + 1:04d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{final.name}_", dir=ckpts))
        try:
            self.model.save_weights(tmp / "trainer.weights.h5")
            self.export().save(tmp / "model.keras")
            state = {**self.state, "epoch": epoch + 1, "history": self.history}
            (tmp / "state.json").write_text(json.dumps(state, indent=2, default=str))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            _fsync_dir(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(ckpts)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.run.write_log(self.history)
        if self.keep:
            done = sorted(p for p in ckpts.glob("epoch_*") if p.is_dir())
            for old in done[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    """What ``train`` returns: the float32 product network and a JSON-able summary."""

    model: keras.Model
    summary: dict[str, Any] = field(default_factory=dict)


def fingerprint(model_cfg: ModelConfig, cfg: TrainingConfig, n_train: int, patch: tuple) -> str:
    """Hash of the settings a resumed run must share with the interrupted one."""
    relevant = {
        "model": asdict(model_cfg),
        "training": {
            k: getattr(cfg, k)
            for k in (
                "batch_size",
                "crop_size",
                "learning_rate",
                "beta_1",
                "beta_2",
                "epsilon",
                "loss",
                "carl_lambda",
                "seed",
                "steps_per_epoch",
            )
        },
        "n_train": n_train,
        "patch": list(patch),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def _dummy_inputs(include_sar: bool) -> dict[str, np.ndarray]:
    x = {"optical": np.zeros((1, 2 * SAR_FACTOR, 2 * SAR_FACTOR, len(TML_BAND_NAMES)), np.float32)}
    if include_sar:
        x["sar"] = np.zeros((1, 2, 2, len(S1_BAND_NAMES)), np.float32)
    return x


def export_network(network: keras.Model, model_cfg: ModelConfig) -> keras.Model:
    """The product model: ``network`` itself if float32, else a float32 copy of its weights."""
    if all(layer.dtype_policy.name == "float32" for layer in network.layers):
        return network
    copy = build_dsen2cr(**asdict(model_cfg))
    copy.set_weights(network.get_weights())
    return copy


def covered_mae_of_input(store: PatchStore, batch: int = 16) -> float | None:
    """Baseline: MAE (reflectance) of the cloudy input against the target on covered pixels."""
    total, count = 0.0, 0.0
    for start in range(0, len(store), batch):
        cloudy = normalise_optical(store.s2_cloudy[start : start + batch])
        target = normalise_optical(store.s2[start : start + batch])
        mask = store.mask[start : start + batch].astype(np.float64)
        err = np.abs(cloudy - target).mean(axis=-1) * TO_REFLECTANCE
        total += float((err * mask).sum())
        count += float(mask.sum())
    return total / count if count else None


def train(
    train_store: PatchStore,
    val_store: PatchStore | None,
    model_params: Mapping[str, Any] | None = None,
    training_params: Mapping[str, Any] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Train (or resume) DSen2-CR on ``train_store``, validating on full ``val_store`` patches.

    Returns the float32 product network and a summary (settings, data sizes, per-epoch history,
    timings, covered MAE of the model vs. the cloudy input on validation). See the module
    docstring for the run folder, resume and ``if_finished`` rules. ``callbacks`` are added to
    the project's own (NaN stop, checkpoint, TensorBoard).
    """
    model_cfg = ModelConfig.from_params(model_params)
    cfg = TrainingConfig.from_params(training_params)
    started = time.perf_counter()

    # --- checks before any expensive work --------------------------------------------------
    if len(train_store) < 1:
        raise ValueError(f"{train_store.path}: the training store holds no patches")
    crop = cfg.crop_size or min(train_store.height, train_store.width)
    if crop > min(train_store.height, train_store.width):
        raise ValueError(
            f"{train_store.path}: crop_size {crop} exceeds the patch size "
            f"{train_store.height}x{train_store.width}"
        )
    if val_store is not None and len(val_store) == 0:
        log.warning("validation store %s is empty: training without validation", val_store.path)
        val_store = None

    run = RunFolder(Path(cfg.run_dir))
    finished = run.finished()
    if finished is not None:
        if cfg.if_finished == "error":
            raise RuntimeError(
                f"training run in {run.path} has already finished ({run.marker} exists; its "
                f"model is {run.final_model}). Not retraining over it: set "
                "training.if_finished=reuse to return that model, training.if_finished=overwrite "
                "to train again from scratch in that folder, or choose a new training.run_dir."
            )
        if cfg.if_finished == "reuse":
            log.info("training run in %s already finished: reusing %s", run.path, run.final_model)
            model = keras.saving.load_model(run.final_model, safe_mode=True)
            return TrainingResult(model, {**finished, "reused": True})
        log.info("training run in %s already finished: overwriting it (if_finished)", run.path)
        shutil.rmtree(run.path, ignore_errors=True)

    n_train = len(train_store)
    patch = (train_store.height, train_store.width)
    fp = fingerprint(model_cfg, cfg, n_train, patch)
    run.clean_partial()
    latest = run.latest_checkpoint()
    initial_epoch, history = 0, []
    if latest is not None:
        state = json.loads((latest[1] / "state.json").read_text())
        if state.get("fingerprint") != fp:
            raise RuntimeError(
                f"{latest[1]} was written with other settings (model, batch, crop, learning "
                "rate, loss, seed or training data differ) than this run: resuming would mix "
                "two trainings. Use a new training.run_dir, or delete that folder to start over."
            )
        initial_epoch, history = latest[0], list(state.get("history", []))
        if initial_epoch > cfg.epochs:
            raise RuntimeError(
                f"{run.path} holds a checkpoint after epoch {initial_epoch} but training.epochs "
                f"is {cfg.epochs}: raise epochs or use a new training.run_dir"
            )

    # --- TF setup ------------------------------------------------------------------------------
    strategy = make_strategy(cfg.distribution)  # first TF work: collective ops need it early
    chief = is_chief(strategy)
    keras.utils.set_random_seed(cfg.seed)
    dtype = compute_dtype(cfg.mixed_precision)
    replicas = strategy.num_replicas_in_sync
    steps, used = epoch_size(n_train, cfg.batch_size, cfg.steps_per_epoch, replicas)
    val_batch = cfg.val_batch_size or cfg.batch_size
    n_val_all = len(val_store) if val_store is not None else 0
    n_val = 0
    if val_store is not None:
        if len(val_store) < replicas:
            log.warning(
                "%d validation patches < %d replicas: no validation", len(val_store), replicas
            )
            val_store = None
        else:
            n_val = epoch_size(len(val_store), val_batch, None, replicas)[1]
    if replicas > 1 and (used < min(n_train, steps * cfg.batch_size) or n_val < n_val_all):
        log.info(
            "%d replicas: %d of %d training patches per epoch and %d of %d validation patches "
            "(no replica may receive an empty slice of a last partial batch)",
            replicas,
            used,
            n_train,
            n_val,
            n_val_all,
        )

    with strategy.scope():
        network = build_dsen2cr(**asdict(model_cfg), dtype=dtype)
        trainer = CloudRemovalTrainer(network, cfg.loss, cfg.carl_lambda, name="trainer")
        optimizer = keras.optimizers.Nadam(
            learning_rate=cfg.learning_rate,
            beta_1=cfg.beta_1,
            beta_2=cfg.beta_2,
            epsilon=cfg.epsilon,
        )
        if dtype == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        trainer.compile(optimizer=optimizer, jit_compile=bool(cfg.xla))
        trainer(_dummy_inputs(model_cfg.include_sar))
        trainer.optimizer.build(trainer.trainable_variables)
        if latest is not None:
            trainer.load_weights(latest[1] / "trainer.weights.h5")
    if latest is not None:
        log.info(
            "resuming from epoch %d (%s): %d of %d epochs done",
            initial_epoch,
            latest[1],
            initial_epoch,
            cfg.epochs,
        )
    else:
        log.info("starting a new training run in %s", run.path)
    log.info(
        "training %s parameters on %d patches (%d steps/epoch of batch %d, crop %d) for %d epochs; "
        "validation on %d full patches; xla=%s, dtype=%s, replicas=%d",
        f"{network.count_params():,}",
        n_train,
        steps,
        cfg.batch_size,
        crop,
        cfg.epochs,
        n_val,
        cfg.xla,
        dtype or "float32",
        replicas,
    )

    train_ds = train_dataset(
        train_store,
        batch_size=cfg.batch_size,
        crop_size=crop,
        seed=cfg.seed,
        first_epoch=initial_epoch,
        last_epoch=cfg.epochs,
        steps_cap=cfg.steps_per_epoch,
        include_sar=model_cfg.include_sar,
        multiple_of=replicas,
    )
    val_ds = (
        eval_dataset(val_store, val_batch, model_cfg.include_sar, multiple_of=replicas)
        if val_store is not None
        else None
    )

    state = {
        "fingerprint": fp,
        "model": asdict(model_cfg),
        "training": asdict(cfg),
        "n_train": n_train,
        "n_val": n_val,
    }
    all_callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(raise_error=True),
        EpochCheckpoint(
            run,
            state,
            history,
            export=lambda: export_network(network, model_cfg),
            chief=chief,
            keep=cfg.keep_checkpoints,
        ),
    ]
    if cfg.tensorboard and chief:
        if tensorboard_available():
            all_callbacks.append(
                keras.callbacks.TensorBoard(log_dir=str(run.path / "tensorboard"), profile_batch=0)
            )
        else:
            log.warning(
                "training.tensorboard is on but the tensorboard package is not installed "
                "(TF 2.21 no longer pulls it in): no TensorBoard logs; `pip install tensorboard`"
            )

    fit_started = time.perf_counter()
    if initial_epoch < cfg.epochs:
        trainer.fit(
            train_ds,
            epochs=cfg.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            validation_data=val_ds,
            callbacks=[*all_callbacks, *callbacks],
            verbose=cfg.verbose,
            shuffle=False,  # the dataset shuffles, per epoch, from the seed
        )
    fit_seconds = time.perf_counter() - fit_started

    product = export_network(network, model_cfg)
    epochs_here = cfg.epochs - initial_epoch
    summary = {
        "finished": True,
        "run_dir": str(run.path),
        "model": asdict(model_cfg),
        "training": asdict(cfg),
        "parameters": int(product.count_params()),
        "n_train": n_train,
        "n_val": state["n_val"],
        "steps_per_epoch": steps,
        "replicas": replicas,
        "compute_dtype": dtype or "float32",
        "resumed_from_epoch": initial_epoch,
        "epochs_trained_in_this_session": epochs_here,
        "seconds_this_session": round(time.perf_counter() - started, 2),
        "train_samples_per_second": (
            round(epochs_here * used / fit_seconds, 2) if epochs_here and fit_seconds > 0 else None
        ),
        "history": history,
        "val_covered_mae_cloudy_input": (
            covered_mae_of_input(val_store) if val_store is not None else None
        ),
        "val_covered_mae_model": history[-1].get("val_covered_mae") if history else None,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    if chief:
        save_model_atomic(product, run.final_model)
        _write_atomic(run.marker, json.dumps(summary, indent=2, default=_json_default))
    log.info(
        "training finished: %d epochs in %s; val covered MAE %s (cloudy input %s)",
        cfg.epochs,
        run.path,
        _fmt(summary["val_covered_mae_model"]),
        _fmt(summary["val_covered_mae_cloudy_input"]),
    )
    return TrainingResult(product, json.loads(json.dumps(summary, default=_json_default)))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# ---------------------------------------------------------------------------------------------
# A small learnable store for tests, benchmarks and smoke runs
# ---------------------------------------------------------------------------------------------


def synthetic_patch_store(
    path: str | os.PathLike, n: int = 8, size: int = 64, seed: int = 0
) -> PatchStore:
    """Write and open a store of ``n`` random ``size`` x ``size`` patches with a learnable task.

    The target is smooth random reflectance; the cloudy input adds a bright, partly opaque
    cloud (and the mask marks it) over a random disc; SAR (dB) is a noisy function of the
    target's NIR band, so it carries information under the cloud.
    """
    rng = np.random.default_rng(seed)
    bands = len(TML_BAND_NAMES)
    yy, xx = np.mgrid[0:size, 0:size]

    def sample(i: int) -> dict[str, np.ndarray]:
        base = rng.uniform(300, 3000, bands)
        wave = np.sin(xx[..., None] / rng.uniform(4, 12) + rng.uniform(0, 6, bands)) * np.cos(
            yy[..., None] / rng.uniform(4, 12)
        )
        target = np.clip(base + 800 * wave, 0, 10000)
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(size / 6, size / 2)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8)
        cloud = rng.uniform(0.6, 0.9)
        cloudy = np.where(mask[..., None] == 1, (1 - cloud) * target + cloud * 7000, target)
        nir = target[..., TML_BAND_NAMES.index("B8")]
        s = size // SAR_FACTOR
        blocks = nir.reshape(s, SAR_FACTOR, s, SAR_FACTOR).mean(axis=(1, 3))
        sar = np.stack([-20 + blocks / 300, -27 + blocks / 300], axis=-1)
        sar = sar + rng.normal(0, 0.3, sar.shape)
        return {
            "s2_cloudy": np.rint(cloudy).astype(np.uint16),
            "s2": np.rint(target).astype(np.uint16),
            "s1": sar.astype(np.float32),
            "mask": mask,
        }

    index = pd.DataFrame({"scene_id": [f"synthetic_{i}" for i in range(n)], "patch": "p0"})
    write_patch_store(
        path,
        (sample(i) for i in range(n)),
        n,
        size,
        size,
        index,
        {"source": "synthetic_patch_store"},
    )
    return PatchStore.open(path)


__all__ = [
    "CloudRemovalTrainer",
    "EpochCheckpoint",
    "ModelConfig",
    "RunFolder",
    "TrainingConfig",
    "TrainingResult",
    "covered_mae_of_input",
    "export_network",
    "make_strategy",
    "synthetic_patch_store",
    "train",
]
