"""Thin nodes of the ablation pipeline; the work is in ``training.variants`` and
``evaluation.ablation``. Each node's variant names are bound when the pipeline is built
(closures: one function per variant or per list of variants, named for kedro-viz)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from tml_cloudremoval.config import from_params
from tml_cloudremoval.data.patch_store import PatchStore
from tml_cloudremoval.evaluation import ablation, examples
from tml_cloudremoval.models.contract import TrainedModel
from tml_cloudremoval.training.variants import AblationConfig, variant_configs

logger = logging.getLogger(__name__)


def variant_parameters_node(name: str) -> Callable[..., tuple[dict, dict]]:
    """The node function that gives variant ``name`` its ``model`` and ``training`` settings."""

    def variant_parameters(
        overrides: dict[str, Any] | None, model: dict[str, Any], training: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``params:model`` / ``params:training`` with the variant's overrides merged on top,
        validated (``ConfigError`` naming ``ablation.variants.<name>...``), complete."""
        model_cfg, training_cfg = variant_configs(name, overrides, model, training)
        logger.info("Ablation variant %s: overrides %s", name, overrides or "none")
        return asdict(model_cfg), asdict(training_cfg)

    return variant_parameters


def compare_variants_node(names: Sequence[str]) -> Callable[..., pd.DataFrame]:
    """The node function that tabulates variants ``names``: inputs ``params:ablation`` then,
    per variant in that order, its evaluation metrics and its training summary."""
    names = list(names)

    def compare_variants(params: dict[str, Any], *results: dict[str, Any]) -> pd.DataFrame:
        """One row per variant: overrides, parameters, training time, pooled metrics."""
        cfg = from_params(AblationConfig, params, "ablation")
        pairs = {n: (results[2 * i], results[2 * i + 1]) for i, n in enumerate(names)}
        table = ablation.comparison_table({n: cfg.variants.get(n) or {} for n in names}, pairs)
        shown = ["variant", "model_covered_mae", "model_covered_sam_deg", "model_covered_ssim"]
        logger.info("Ablation, covered pixels:\n%s", table[shown].to_string(index=False))
        return table

    return compare_variants


def plot_variants_node(names: Sequence[str]) -> Callable[..., Figure]:
    """The node function that draws variants ``names``: inputs the comparison table,
    ``test_patches``, ``params:ablation``, then each variant's model in that order."""
    names = list(names)

    def plot_variants(
        table: pd.DataFrame,
        test_patches: PatchStore,
        params: dict[str, Any],
        *models: TrainedModel,
    ) -> Figure:
        """Bars of covered MAE/SAM/SSIM and a few test patches predicted by every variant."""
        cfg = from_params(AblationConfig, params, "ablation")
        indices = examples.select_examples(test_patches, cfg.n_examples, cfg.example_indices)
        networks = {n: trained.model for n, trained in zip(names, models, strict=True)}
        shown = ablation.ablation_examples(networks, test_patches, indices)
        return ablation.plot_ablation(table, shown)

    return plot_variants
