"""What a training run does differently on each Keras backend (TensorFlow, JAX, PyTorch).

Keras fixes its backend at import from ``KERAS_BACKEND`` (default ``tensorflow``). The model,
losses, metrics and trainer are ``keras.ops`` and run on every backend; what differs is here:

- ``training.distribution``: ``tf.distribute`` strategies exist only on TensorFlow. Elsewhere
  only ``none`` is accepted (:func:`check_backend` raises a ``ConfigError`` before any work) and
  the run uses :class:`SingleDevice`, a stand-in with ``scope()`` and one replica.
- ``training.input``: ``tf_data`` (``data.input_pipeline``, needs TensorFlow installed) or
  ``pydataset`` (``data.patch_sequence``, numpy + Keras only, same samples for the same seed);
  ``auto`` = ``tf_data`` on TensorFlow, else ``pydataset``. ``training.input_workers``: the
  PyDataset's worker threads (null = one per usable core, at most ``MAX_AUTO_WORKERS``).
- ``training.xla``: on TensorFlow ``jit_compile`` (XLA) or graph mode; on JAX the steps are
  always ``jax.jit``-compiled (XLA is JAX's own compiler: un-jitted JAX runs op by op, a
  debugging mode), so the key has no effect there; on PyTorch it is ``torch.compile``.
- ``training.mixed_precision``: :func:`compute_dtype`, one rule on every backend
  (``config.PRECISION_POLICIES``, only when the backend sees a GPU).

TensorFlow is imported only on the TensorFlow backend (``training.strategy``, :func:`gpu_visible`).
"""

from __future__ import annotations

import importlib.util
import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import keras

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.training.config import PRECISION_POLICIES, ModelConfig, TrainingConfig

log = logging.getLogger(__name__)

MAX_AUTO_WORKERS = 8
"""Cap of ``training.input_workers: null`` (one worker per usable core up to this)."""


def backend() -> str:
    """The Keras backend of this process: ``tensorflow``, ``jax``, ``torch`` (or ``numpy``)."""
    return keras.backend.backend()


def on_tensorflow() -> bool:
    return backend() == "tensorflow"


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # an import hook refusing it, a broken install
        return False


def input_path(choice: str) -> str:
    """``tf_data`` or ``pydataset`` for ``training.input`` ``choice`` on this backend."""
    if choice == "auto":
        return "tf_data" if on_tensorflow() else "pydataset"
    return choice


def check_backend(distribution: str, input_choice: str) -> None:
    """``ConfigError`` naming the key when ``training.distribution`` or ``training.input``
    cannot run on this backend; called before any work."""
    name = backend()
    if distribution != "none" and name != "tensorflow":
        raise ConfigError(
            f"training.distribution: {distribution!r} uses a tf.distribute strategy, which exists "
            f"only on the TensorFlow backend, but Keras runs on {name!r} (KERAS_BACKEND): set "
            "training.distribution: none, or run with KERAS_BACKEND=tensorflow"
        )
    if input_path(input_choice) == "tf_data" and not tensorflow_installed():
        raise ConfigError(
            "training.input: 'tf_data' needs TensorFlow, which is not installed here: set "
            "training.input: pydataset (or auto)"
        )


def input_workers(configured: int | None) -> int:
    """PyDataset workers: ``training.input_workers``, or one per usable core up to
    ``MAX_AUTO_WORKERS`` when null."""
    if configured:
        return int(configured)
    from tml_cloudremoval.data.triplets import usable_cores  # the project's one core count

    return min(usable_cores(), MAX_AUTO_WORKERS)


class SingleDevice:
    """The strategy stand-in off TensorFlow: one replica, a scope that does nothing."""

    num_replicas_in_sync = 1

    def scope(self) -> AbstractContextManager[None]:
        return nullcontext()


def make_strategy(distribution: str) -> Any:
    """``training.strategy.make_strategy`` on TensorFlow, else :class:`SingleDevice` (the
    distribution is ``none`` there, :func:`check_backend`)."""
    if not on_tensorflow():
        return SingleDevice()
    from tml_cloudremoval.training import strategy

    return strategy.make_strategy(distribution)


def is_chief(strategy: Any) -> bool:
    """Whether this process writes the run folder (always, off TensorFlow)."""
    if isinstance(strategy, SingleDevice):
        return True
    from tml_cloudremoval.training import strategy as tf_strategy

    return tf_strategy.is_chief(strategy)


def chief_by_tf_config(distribution: str) -> bool:
    """``training.strategy.chief_by_tf_config`` (only ``multi_worker`` reads TF_CONFIG)."""
    if distribution != "multi_worker":
        return True
    from tml_cloudremoval.training import strategy

    return strategy.chief_by_tf_config(distribution)


def gpu_visible() -> bool:
    """Whether the backend sees a GPU (TensorFlow: a physical GPU; JAX: a non-CPU default
    device; PyTorch: CUDA)."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if name == "jax":
        import jax

        return jax.devices()[0].platform != "cpu"
    if name == "torch":
        import torch

        return bool(torch.cuda.is_available())
    return False


def compute_dtype(mixed_precision: bool | str, gpu: bool | None = None) -> str | None:
    """Layer dtype policy of ``training.mixed_precision`` (``config.PRECISION_POLICIES``) when
    a GPU is visible (``gpu``: None = ask the backend, :func:`gpu_visible`), else None
    (float32): on a CPU 16-bit convolutions are slower, not faster. Only ``mixed_float16``
    needs a ``LossScaleOptimizer`` (bfloat16 has float32's exponent range)."""
    if mixed_precision is False:
        return None
    if mixed_precision not in PRECISION_POLICIES:
        raise ValueError(
            f"mixed_precision must be false, true, float16 or bfloat16, got {mixed_precision!r}"
        )
    if gpu if gpu is not None else gpu_visible():
        return PRECISION_POLICIES[mixed_precision]
    log.info(
        "mixed_precision %s requested but no GPU is visible: training in float32", mixed_precision
    )
    return None


def jit_compile(xla: bool) -> bool:
    """``jit_compile`` of ``Model.compile``: ``xla`` on TensorFlow and PyTorch, always on JAX
    (module docstring)."""
    return True if backend() == "jax" else bool(xla)


def tensorboard_available() -> bool:
    """Whether Keras' TensorBoard callback can write: it needs the ``tensorboard`` package and
    TensorFlow's ``tf.summary`` (on every backend)."""
    try:
        return tensorflow_installed() and importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):
        return False


def make_datasets(
    train_store: PatchStore,
    val_store: PatchStore | None,
    model_cfg: ModelConfig,
    cfg: TrainingConfig,
    crop: int,
    first_epoch: int,
    replicas: int,
) -> tuple[Any, Any | None]:
    """The training batches of epochs ``first_epoch, ...`` and the validation batches (None
    without a validation store): tf.data datasets or PyDatasets (``training.input``), the
    same samples either way."""
    train_args = dict(
        batch_size=cfg.batch_size,
        crop_size=crop,
        seed=cfg.seed,
        first_epoch=first_epoch,
        steps_per_epoch=cfg.steps_per_epoch,
        include_sar=model_cfg.include_sar,
        multiple_of=replicas,
    )
    val_batch = cfg.val_batch_size or cfg.batch_size
    if input_path(cfg.input) == "tf_data":
        from tml_cloudremoval.data.input_pipeline import eval_dataset, train_dataset

        train_ds = train_dataset(train_store, last_epoch=cfg.epochs, **train_args)
        if val_store is None:
            return train_ds, None
        return train_ds, eval_dataset(val_store, val_batch, model_cfg.include_sar, replicas)
    from tml_cloudremoval.data.patch_sequence import EvalSequence, TrainSequence

    workers = input_workers(cfg.input_workers)
    train_seq = TrainSequence(train_store, **train_args, workers=workers)
    if val_store is None:
        return train_seq, None
    return train_seq, EvalSequence(
        val_store, val_batch, model_cfg.include_sar, replicas, workers=workers
    )
