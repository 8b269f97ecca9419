"""The training loop: train (or resume) DSen2-CR on a patch store, validating on full patches.

``train`` runs, in order: checks of the stores and of the backend (``training.backend``:
``training.distribution`` other than ``none`` needs TensorFlow) that fail before any work; the
``if_finished`` rule (a run folder whose ``FINISHED.json`` exists is not trained again
silently: ``error``, ``reuse`` the finished model, or ``overwrite`` the run folder); the resume
decision (``RunFolder.resume_state``: newest whole checkpoint, same settings); strategy, seed
and precision (``training.backend``, on TensorFlow ``training.strategy``); the network, trainer
and optimizer built and compiled under the strategy (``training.trainer``); the input
(``training.input``: tf.data, ``data.input_pipeline``, or a PyDataset, ``data.patch_sequence``,
with the same samples; ``auto`` = tf.data on TensorFlow, else the PyDataset); the
callbacks (NaN stop, per-epoch checkpoint, TensorBoard); ``fit``; the final model and the
summary, written last by the chief. Settings come validated (``training.config``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import keras

from tml_cloudremoval.atomic import output_lock
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.data.sampling import epoch_size
from tml_cloudremoval.errors import ProjectError
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.training.backend import (
    check_backend,
    chief_by_tf_config,
    compute_dtype,
    input_path,
    is_chief,
    jit_compile,
    make_datasets,
    make_strategy,
    tensorboard_available,
)
from tml_cloudremoval.training.config import ModelConfig, TrainingConfig
from tml_cloudremoval.training.run_folder import (
    EpochCheckpoint,
    ResumeState,
    RunFolder,
    RunFolderError,
    run_settings,
    settings_fingerprint,
)
from tml_cloudremoval.training.schedule import warmup_learning_rate
from tml_cloudremoval.training.summary import (
    EpochSizes,
    fmt,
    machine_facts,
    run_figures,
    validation_figures,
)
from tml_cloudremoval.training.tracking import MlflowEpochMetrics
from tml_cloudremoval.training.trainer import CloudRemovalTrainer, dummy_inputs, export_network

log = logging.getLogger(__name__)


class TrainingDataError(ProjectError):
    """The patch stores cannot be trained on as asked (empty, crop larger than the patches)."""


@dataclass
class TrainingResult:
    """What ``train`` returns: the float32 product network and a JSON-able summary."""

    model: keras.Model
    summary: dict[str, Any] = field(default_factory=dict)


def _why_empty(store: PatchStore) -> str:
    """Why a store holds no patch, where its ``meta.json`` says (the official split)."""
    meta = getattr(store, "meta", None) or {}
    if meta.get("split_method") != "official":
        return ""
    return (
        f": the official SEN12MS-CR split (data.split: official) found no {meta.get('split')} "
        "scene under data.root"
    )


def check_stores(
    train_store: PatchStore, val_store: PatchStore | None, crop_size: int | None
) -> tuple[int, PatchStore | None]:
    """(training crop in px, validation store or None when it is empty); raises before any
    work when the training store is empty or the crop does not fit its patches."""
    if len(train_store) < 1:
        raise TrainingDataError(
            f"{train_store.path}: the training store holds no patches{_why_empty(train_store)}"
        )
    crop = crop_size or min(train_store.height, train_store.width)
    if crop > min(train_store.height, train_store.width):
        raise TrainingDataError(
            f"{train_store.path}: crop_size {crop} exceeds the patch size "
            f"{train_store.height}x{train_store.width}"
        )
    if val_store is not None and len(val_store) == 0:
        log.warning(
            "validation store %s is empty%s: training without validation",
            val_store.path,
            _why_empty(val_store),
        )
        val_store = None
    return crop, val_store


def finished_result(
    run: RunFolder, cfg: TrainingConfig, settings: dict[str, Any]
) -> TrainingResult | None:
    """Apply ``training.if_finished`` to a finished run folder: the reused result (only when
    it was trained with these ``settings`` and epochs), an error, or None to train (after
    removing the folder for ``overwrite``, or when not finished)."""
    finished = run.finished()
    if finished is None:
        return None
    if cfg.if_finished == "error":
        raise RunFolderError(
            f"training run in {run.path} has already finished ({run.marker} exists; its model "
            f"is {run.final_model}). Not retraining over it: set training.if_finished=reuse to "
            "return that model, training.if_finished=overwrite to train again from scratch in "
            "that folder, or point the catalog entry training_run at a new folder."
        )
    if cfg.if_finished == "reuse":
        finished = run.check_reuse(settings, cfg.epochs)
        log.info("training run in %s already finished: reusing %s", run.path, run.final_model)
        return TrainingResult(run.load_final_model(), {**finished, "reused": True})
    log.info("training run in %s already finished: overwriting it (if_finished)", run.path)
    run.remove()
    return None


def epoch_sizes(
    n_train: int, val_store: PatchStore | None, cfg: TrainingConfig, replicas: int
) -> tuple[EpochSizes, PatchStore | None]:
    """Sizes of an epoch on ``replicas`` replicas, and the validation store (None when it has
    fewer patches than replicas)."""
    steps, used = epoch_size(n_train, cfg.batch_size, cfg.steps_per_epoch, replicas)
    n_val_all = len(val_store) if val_store is not None else 0
    n_val = 0
    if val_store is not None and n_val_all < replicas:
        log.warning("%d validation patches < %d replicas: no validation", n_val_all, replicas)
        val_store = None
    elif val_store is not None:
        n_val = epoch_size(n_val_all, cfg.val_batch_size or cfg.batch_size, None, replicas)[1]
    if replicas > 1 and (used < min(n_train, steps * cfg.batch_size) or n_val < n_val_all):
        log.info(
            "%d replicas: %d of %d training patches per epoch and %d of %d validation patches "
            "(no replica may receive an empty slice of a last partial batch)",
            *(replicas, used, n_train, n_val, n_val_all),
        )
    return EpochSizes(steps, used, n_val, replicas), val_store


def prepare_tf(cfg: TrainingConfig) -> tuple[Any, bool, str | None]:
    """(strategy, whether this process is the chief, compute dtype), with the seed set.

    The strategy comes first: on TensorFlow it is the first TF work (collective ops must be
    configured before anything else runs); off TensorFlow a one-replica stand-in
    (``backend.SingleDevice``). The seed then fixes weights init and any backend randomness."""
    strategy = make_strategy(cfg.distribution)
    chief = is_chief(strategy)
    keras.utils.set_random_seed(cfg.seed)
    return strategy, chief, compute_dtype(cfg.mixed_precision)


def build_trainer(
    model_cfg: ModelConfig,
    cfg: TrainingConfig,
    strategy: Any,
    dtype: str | None,
    weights: os.PathLike | None,
) -> tuple[CloudRemovalTrainer, keras.Model]:
    """(trainer, its network), built and compiled under ``strategy`` with the optimizer state
    created, then loaded from the trainer ``weights`` of a checkpoint when given."""
    with strategy.scope():
        network = build_dsen2cr(**asdict(model_cfg), dtype=dtype)
        trainer = CloudRemovalTrainer(network, cfg.loss, cfg.carl_lambda, name="trainer")
        optimizer = keras.optimizers.Nadam(
            learning_rate=warmup_learning_rate(cfg.learning_rate, cfg.warmup_steps),
            beta_1=cfg.beta_1,
            beta_2=cfg.beta_2,
            epsilon=cfg.epsilon,
        )
        if dtype == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        trainer.compile(optimizer=optimizer, jit_compile=jit_compile(cfg.xla))
        trainer(dummy_inputs(model_cfg.include_sar))
        trainer.optimizer.build(trainer.trainable_variables)
        if weights is not None:
            trainer.load_weights(weights)
    return trainer, network


def make_callbacks(
    run: RunFolder,
    state: dict[str, Any],
    history: list[dict[str, Any]],
    export: Any,
    cfg: TrainingConfig,
    chief: bool,
) -> list[keras.callbacks.Callback]:
    """The project's callbacks: stop on NaN, checkpoint each epoch, per-epoch metrics to the
    active mlflow run and TensorBoard (chief only)."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(raise_error=True),
        EpochCheckpoint(run, state, history, export, chief=chief, keep=cfg.keep_checkpoints),
        MlflowEpochMetrics(enabled=chief),  # into the active mlflow run, if any
    ]
    if cfg.tensorboard and chief:
        if tensorboard_available():
            callbacks.append(
                keras.callbacks.TensorBoard(log_dir=str(run.tensorboard), profile_batch=0)
            )
        else:
            log.warning(
                "training.tensorboard is on but Keras' TensorBoard callback needs the "
                "tensorboard package (TF 2.21 no longer pulls it in) and TensorFlow, and one is "
                "not installed: no TensorBoard logs; `pip install tensorboard`"
            )
    return callbacks


def _log_start(
    run: RunFolder,
    resume: ResumeState,
    network: keras.Model,
    n_train: int,
    sizes: EpochSizes,
    crop: int,
    cfg: TrainingConfig,
    dtype: str | None,
) -> None:
    if resume.checkpoint is not None:
        log.info(
            "resuming from epoch %d (%s): %d of %d epochs done",
            *(resume.initial_epoch, resume.checkpoint, resume.initial_epoch, cfg.epochs),
        )
    else:
        log.info("starting a new training run in %s", run.path)
    log.info(
        "training %s parameters on %d patches (%d steps/epoch of batch %d, crop %d) for %d epochs; "
        "validation on %d full patches; backend %s, input %s, xla=%s, dtype=%s, replicas=%d",
        f"{network.count_params():,}",
        *(n_train, sizes.steps, cfg.batch_size, crop, cfg.epochs, sizes.n_val),
        *(keras.backend.backend(), input_path(cfg.input), cfg.xla, dtype or "float32"),
        sizes.replicas,
    )


def fit(
    trainer: keras.Model,
    train_ds: Any,
    val_ds: Any | None,
    initial_epoch: int,
    steps: int,
    cfg: TrainingConfig,
    callbacks: Sequence[keras.callbacks.Callback],
) -> float:
    """``trainer.fit`` from ``initial_epoch`` up to ``cfg.epochs`` (nothing when already
    there); returns its wall time in seconds."""
    fit_started = time.perf_counter()
    if initial_epoch < cfg.epochs:
        trainer.fit(
            train_ds,
            epochs=cfg.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            validation_data=val_ds,
            callbacks=list(callbacks),
            verbose=cfg.verbose,
            shuffle=False,  # the dataset shuffles, per epoch, from the seed
        )
    return time.perf_counter() - fit_started


def train(
    train_store: PatchStore,
    val_store: PatchStore | None,
    model_cfg: ModelConfig,
    cfg: TrainingConfig,
    run: RunFolder,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Train (or resume) DSen2-CR on ``train_store`` in ``run``, validating on full
    ``val_store`` patches (see the module docstring for the steps and the rules).

    The run folder is locked (``atomic.output_lock``, by the chief) for the whole training: a
    second run on the same folder stops at once with a ``LockedError`` naming it and the pid.
    Returns the float32 product network and a summary (settings, data sizes, per-epoch history,
    timings, covered MAE of the model vs. the cloudy input on validation). ``callbacks`` are
    added to the project's own (NaN stop, checkpoint, TensorBoard).
    """
    started = time.perf_counter()
    check_backend(cfg.distribution, cfg.input)
    crop, val_store = check_stores(train_store, val_store, cfg.crop_size)
    patch = (train_store.height, train_store.width)
    settings = run_settings(model_cfg, cfg, len(train_store), patch)
    writer = chief_by_tf_config(cfg.distribution)  # other workers only read the folder
    with output_lock(run.path) if writer else nullcontext():
        reused = finished_result(run, cfg, settings)
        if reused is not None:
            return reused
        fp = settings_fingerprint(settings)
        resume = run.resume_state(fp, cfg.epochs, settings, clean=writer)
        return _train_from(
            (train_store, val_store),
            model_cfg,
            cfg,
            run,
            callbacks,
            crop,
            resume,
            settings,
            started,
        )


def _train_from(
    stores: tuple[PatchStore, PatchStore | None],
    model_cfg: ModelConfig,
    cfg: TrainingConfig,
    run: RunFolder,
    callbacks: Sequence[keras.callbacks.Callback],
    crop: int,
    resume: ResumeState,
    settings: dict[str, Any],
    started: float,
) -> TrainingResult:
    """The Keras part of :func:`train`, from the ``resume`` state on (the run folder locked);
    ``settings``: :func:`run_settings` of this run; ``started``: when :func:`train` began."""
    train_store, val_store = stores
    n_train = len(train_store)
    fp = settings_fingerprint(settings)
    strategy, chief, dtype = prepare_tf(cfg)
    sizes, val_store = epoch_sizes(n_train, val_store, cfg, strategy.num_replicas_in_sync)
    trainer, network = build_trainer(model_cfg, cfg, strategy, dtype, resume.weights)
    _log_start(run, resume, network, n_train, sizes, crop, cfg, dtype)
    train_ds, val_ds = make_datasets(
        train_store, val_store, model_cfg, cfg, crop, resume.initial_epoch, sizes.replicas
    )
    state = {"fingerprint": fp, "settings": settings, "model": asdict(model_cfg)}
    state.update(training=asdict(cfg), n_train=n_train, n_val=sizes.n_val)
    history = resume.history  # extended in place by EpochCheckpoint, epoch by epoch
    export = lambda: export_network(network, model_cfg)  # noqa: E731
    all_callbacks = [*make_callbacks(run, state, history, export, cfg, chief), *callbacks]
    fit_seconds = fit(
        trainer, train_ds, val_ds, resume.initial_epoch, sizes.steps, cfg, all_callbacks
    )
    product = export()
    summary = {
        "finished": True,
        "run_dir": str(run.path),
        "model": asdict(model_cfg),
        "training": asdict(cfg),
        "settings": settings,
        "parameters": int(product.count_params()),
        **run_figures(n_train, sizes, dtype, resume.initial_epoch, cfg.epochs, fit_seconds),
        "seconds_this_session": round(time.perf_counter() - started, 2),
        **validation_figures(val_store, history),
        **machine_facts(),
    }
    if chief:
        run.finish(product, summary)
    log.info(
        "training finished: %d epochs in %s; val covered MAE %s (cloudy input %s)",
        *(cfg.epochs, run.path, fmt(summary["val_covered_mae_model"])),
        fmt(summary["val_covered_mae_cloudy_input"]),
    )
    return TrainingResult(product, summary)
