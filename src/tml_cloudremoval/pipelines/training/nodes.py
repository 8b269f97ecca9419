"""Thin nodes of the training pipeline; the work is in ``tml_cloudremoval.training``."""

from __future__ import annotations

from typing import Any

from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.models.contract import TrainedModel, build_contract
from tml_cloudremoval.training.config import load_configs
from tml_cloudremoval.training.loop import train
from tml_cloudremoval.training.run_folder import RunFolder


def train_model(
    train_patches: PatchStore,
    val_patches: PatchStore,
    training_run: RunFolder,
    model: dict[str, Any],
    training: dict[str, Any],
) -> tuple[TrainedModel, dict[str, Any]]:
    """Train (or resume, or reuse: see ``training.if_finished``) and return the product model
    with its contract, and a summary.

    Args:
        train_patches: training store (random aligned crops, flips/rot90, reshuffled per epoch).
        val_patches: validation store (full patches, no augmentation), evaluated each epoch.
        training_run: the run folder (catalog entry ``training_run``), read to resume and
            written while training: checkpoints, log, final model.
        model: ``params:model`` (features, blocks, residual_scale, include_sar).
        training: ``params:training`` (see conf/base/parameters_training.yml).

    Returns:
        The float32 functional network (10 bands in and out, SAR at 40 m) with its contract
        (the preprocessing of ``train_patches``, these settings, a fingerprint of the split),
        saved together by ``dsen2cr_model``, and a JSON-able summary.
    """
    model_cfg, training_cfg = load_configs(model, training)  # ConfigError before any work
    result = train(train_patches, val_patches, model_cfg, training_cfg, training_run)
    contract = build_contract(model_cfg, training_cfg, train_patches)
    return TrainedModel(result.model, contract), result.summary
