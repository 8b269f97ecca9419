"""Thin nodes of the training pipeline; the work is in ``tml_cloudremoval.training.loop``."""

from __future__ import annotations

from typing import Any

import keras

from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.training.loop import train


def train_model(
    train_patches: PatchStore,
    val_patches: PatchStore,
    model: dict[str, Any],
    training: dict[str, Any],
) -> tuple[keras.Model, dict[str, Any]]:
    """Train (or resume, see ``training.run_dir``) and return the product model and a summary.

    Args:
        train_patches: training store (random aligned crops, flips/rot90, reshuffled per epoch).
        val_patches: validation store (full patches, no augmentation), evaluated each epoch.
        model: ``params:model`` (features, blocks, residual_scale, include_sar).
        training: ``params:training`` (see conf/base/parameters_training.yml).

    Returns:
        The float32 functional network (10 bands in and out, SAR at 40 m) and a JSON-able summary.
    """
    result = train(train_patches, val_patches, model, training)
    return result.model, result.summary
