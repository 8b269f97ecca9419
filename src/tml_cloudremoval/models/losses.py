"""Losses for cloud removal: CARL (cloud-adaptive regularised loss) and plain L1.

All tensors are channels_last in model units (optical DN / 2000):

- ``target``     T (B, H, W, C) cloud-free image
- ``cloudy``     I (B, H, W, C) cloudy input
- ``mask``       M (B, H, W) or (B, H, W, 1), 1 = cloud or shadow, broadcast over the C bands
- ``prediction`` P (B, H, W, C)

CARL = mean(C |P - I| + M |P - T|) + lambda mean(|P - T|), with C = 1 - M (Meraner et al. 2020,
eq. 4, rewritten for any band count: the seed's version hard-coded 13 bands). Clear pixels are
pulled towards the cloudy input (they are valid observations of the same date), covered pixels
towards the cloud-free target, and the lambda term regularises everything towards the target.

The ``*_per_sample`` forms return one value per batch element (B,); their mean over the batch
equals the scalar form (all samples of a batch have the same H, W and C).
"""

from __future__ import annotations

import tensorflow as tf


def _mask_like(mask: tf.Tensor, prediction: tf.Tensor) -> tf.Tensor:
    """Mask as float with a trailing axis of 1 so it broadcasts over the bands."""
    mask = tf.cast(mask, prediction.dtype)
    if mask.shape.rank == prediction.shape.rank - 1:
        mask = mask[..., tf.newaxis]
    return mask


def carl_per_sample(
    target: tf.Tensor,
    cloudy: tf.Tensor,
    mask: tf.Tensor,
    prediction: tf.Tensor,
    lambda_: float = 1.0,
) -> tf.Tensor:
    """CARL of each sample, shape (B,): mean over H, W, C of the CARL terms."""
    prediction = tf.cast(prediction, tf.float32)
    target = tf.cast(target, tf.float32)
    cloudy = tf.cast(cloudy, tf.float32)
    m = _mask_like(mask, prediction)
    to_target = tf.abs(prediction - target)
    to_cloudy = tf.abs(prediction - cloudy)
    terms = (1.0 - m) * to_cloudy + m * to_target + lambda_ * to_target
    return tf.reduce_mean(terms, axis=tf.range(1, tf.rank(terms)))


def carl_loss(
    target: tf.Tensor,
    cloudy: tf.Tensor,
    mask: tf.Tensor,
    prediction: tf.Tensor,
    lambda_: float = 1.0,
) -> tf.Tensor:
    """Scalar CARL: mean(C |P - I| + M |P - T|) + lambda mean(|P - T|), C = 1 - M."""
    return tf.reduce_mean(carl_per_sample(target, cloudy, mask, prediction, lambda_))


def l1_per_sample(target: tf.Tensor, prediction: tf.Tensor) -> tf.Tensor:
    """Mean absolute error of each sample, shape (B,)."""
    diff = tf.abs(tf.cast(prediction, tf.float32) - tf.cast(target, tf.float32))
    return tf.reduce_mean(diff, axis=tf.range(1, tf.rank(diff)))


def l1_loss(target: tf.Tensor, prediction: tf.Tensor) -> tf.Tensor:
    """Scalar mean absolute error mean(|P - T|)."""
    return tf.reduce_mean(l1_per_sample(target, prediction))


LOSSES = ("carl", "l1")
"""Names accepted by ``training.loss``."""
