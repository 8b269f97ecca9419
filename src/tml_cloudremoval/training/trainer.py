"""The training wrapper that lets the loss see the cloudy input and the mask.

``CloudRemovalTrainer`` is a small registered ``keras.Model`` that wraps the functional network
and overrides ``compute_loss(x, y, y_pred, ...)``. The data pipeline yields
``x = {"optical", "sar"}`` and ``y = {"target", "mask"}`` (``data.input_pipeline``), so CARL
gets the cloudy input from ``x["optical"]`` and the mask from ``y["mask"]`` with no extra output
channels and nothing fixed to a batch size (the original appended the cloudy input and a
batch-sized zero tensor to the output). Only the inner functional network is the product: it is
what ``training.loop.train`` returns and what the catalog saves (``export_network``); the
wrapper exists only while training.

An aleatoric network (dict outputs ``{"prediction", "log_scale"}``, ``models.uncertainty``) is
trained with the Laplace beta-NLL form of the same loss (``losses.carl_nll_per_sample`` or
``l1_nll_per_sample``, beta ``losses.NLL_BETA``); its metrics are those of ``"prediction"``
plus ``std``, the mean predicted standard deviation in reflectance.

Loss and metrics are ``keras.ops``, so the trainer runs on TensorFlow, JAX and PyTorch; the
replica count and the multi-worker workaround below apply only under TensorFlow (the only
backend with ``tf.distribute`` strategies; ``training.loop`` refuses them elsewhere).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import keras
import numpy as np
from keras import ops

from tml_cloudremoval.bands import S1_BAND_NAMES, SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.models.dsen2cr import build_dsen2cr
from tml_cloudremoval.models.losses import (
    LOSSES,
    carl_nll_per_sample,
    carl_per_sample,
    l1_nll_per_sample,
    l1_per_sample,
)
from tml_cloudremoval.models.uncertainty import (
    LOG_SCALE_OUTPUT,
    PREDICTION_OUTPUT,
    STD_FACTOR,
    uncertainty_of,
)
from tml_cloudremoval.normalise import OPTICAL_SCALE, REFLECTANCE_SCALE
from tml_cloudremoval.training.config import ModelConfig

TO_REFLECTANCE = OPTICAL_SCALE / REFLECTANCE_SCALE
"""Model units -> reflectance (x 0.2): metrics are logged in reflectance."""


def _on_tensorflow() -> bool:
    """Whether Keras runs on TensorFlow (only there are tf.distribute strategies in play)."""
    return keras.backend.backend() == "tensorflow"


def _tf_strategy() -> Any:
    """The current ``tf.distribute`` strategy (TensorFlow backend only; imported here so that
    the other backends never import TensorFlow)."""
    import tensorflow as tf

    return tf.distribute.get_strategy()


def _multi_worker(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


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
        self.aleatoric = uncertainty_of(network) == "aleatoric"
        if self.aleatoric:
            self.std_tracker = keras.metrics.Mean(name="std")

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target, mask = y["target"], y["mask"]
        if self.aleatoric:
            prediction, log_scale = y_pred[PREDICTION_OUTPUT], y_pred[LOG_SCALE_OUTPUT]
            if self.loss_name == "carl":
                per_sample = carl_nll_per_sample(
                    target, x["optical"], mask, prediction, log_scale, self.carl_lambda
                )
            else:
                per_sample = l1_nll_per_sample(target, prediction, log_scale)
        elif self.loss_name == "carl":
            per_sample = carl_per_sample(target, x["optical"], mask, y_pred, self.carl_lambda)
        else:
            per_sample = l1_per_sample(target, y_pred)
        batch = ops.cast(ops.shape(per_sample)[0], "float32")
        # divide_no_nan: a replica can receive an empty slice of a last partial batch.
        loss = ops.divide_no_nan(ops.sum(per_sample), batch)
        replicas = _tf_strategy().num_replicas_in_sync if _on_tensorflow() else 1
        return loss / replicas if replicas > 1 else loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self.aleatoric:
            # Laplace standard deviation sqrt(2) b, in reflectance.
            std = ops.exp(ops.cast(y_pred[LOG_SCALE_OUTPUT], "float32")) * STD_FACTOR
            self.std_tracker.update_state(std)
            y_pred = y_pred[PREDICTION_OUTPUT]
        error = ops.mean(
            ops.abs(ops.cast(y_pred, "float32") - y["target"]), axis=-1
        )  # (B, H, W), model units
        error = error * TO_REFLECTANCE
        self.mae_tracker.update_state(error)
        self.covered_mae_tracker.update_state(error, sample_weight=y["mask"][..., 0])
        logs = self.get_metrics_result()
        if _on_tensorflow() and _multi_worker(_tf_strategy()):
            # Keras 3 (3.15) reduces step logs across workers with
            # ``strategy.reduce("MEAN", v, axis=0)``, which fails on scalars ("Invalid reduction
            # dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388). The
            # metric values are already synchronised, so give each a length-1 axis to average.
            logs = {name: ops.reshape(value, [1]) for name, value in logs.items()}
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


def dummy_inputs(include_sar: bool) -> dict[str, np.ndarray]:
    """A zero batch of one 8 x 8 px sample (SAR 2 x 2 at 40 m) that builds a network."""
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
