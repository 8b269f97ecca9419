"""Distribution strategy of a training run (TensorFlow's ``tf.distribute``).

``training.distribution``
    ``none``: the default strategy (one device). ``mirrored``: one process, all local GPUs (or,
    without GPUs, all logical CPUs). ``multi_worker``: the same command on every machine with
    TF_CONFIG set; the run folder must be on storage all workers share; only the chief (worker 0
    or the ``chief`` task) writes it. ``batch_size`` is the global batch and must be a multiple
    of the replica count; an epoch's last partial batch is rounded down to a multiple of it (at
    most replicas - 1 samples sit out an epoch) so no replica gets an empty slice.

``training.mixed_precision``: ``training.backend.compute_dtype`` (the same rule on every
backend).
"""

from __future__ import annotations

import json
import logging
import os
import typing

import tensorflow as tf

from tml_cloudremoval.training.config import Distribution

log = logging.getLogger(__name__)


def make_strategy(distribution: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy of ``distribution`` (``none``, ``mirrored``,
    ``multi_worker``; see the module docstring). Call it before any other TF work: collective
    ops must be configured first."""
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
    raise ValueError(
        f"distribution must be one of {typing.get_args(Distribution)}, got {distribution!r}"
    )


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


def chief_by_tf_config(distribution: str) -> bool:
    """Whether this process will be the chief (:func:`is_chief`), read from TF_CONFIG before any
    TF work: True unless ``multi_worker`` and TF_CONFIG names another task as the chief."""
    if distribution != "multi_worker" or not os.environ.get("TF_CONFIG"):
        return True
    try:
        config = json.loads(os.environ["TF_CONFIG"])
        task, cluster = config.get("task") or {}, config.get("cluster") or {}
    except (ValueError, AttributeError):
        return True  # TF itself will reject it
    if task.get("type", "worker") == "chief":
        return True
    return (
        task.get("type", "worker") == "worker"
        and int(task.get("index", 0)) == 0
        and ("chief" not in cluster)
    )
