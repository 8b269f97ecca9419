"""Thin nodes: validated ``params:inference`` in, ``tml_cloudremoval.inference`` called, catalog
data out. Products are lazy: the catalog datasets compute and write them when they save."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tml_cloudremoval.datasets.model_dataset import load_model_version
from tml_cloudremoval.inference import ensemble, inputs, masks, quicklook, report
from tml_cloudremoval.inference.config import inference_config
from tml_cloudremoval.inference.predictors import ALEATORIC, EPISTEMIC, PREDICTION
from tml_cloudremoval.inference.scene_run import SceneProduct, SceneRun, scene_products
from tml_cloudremoval.models.contract import TrainedModel, settle_inference

logger = logging.getLogger(__name__)


def plan_inference(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the parameters (before any file is read), find and check every scene of the run
    (headers only). Raises ``ConfigError`` naming the key, or one ``SceneError`` listing every
    faulty file. Returns the plan (persisted as JSON)."""
    config = inference_config(params)
    scenes = inputs.scenes_of(config)
    pairs = inputs.check_scenes(scenes, config)
    masks.check_fill(pairs, config.fill, config.mask_path)  # outputs (issue 11, item 3)
    plan = inputs.scene_plan(scenes, pairs)
    logger.info("Inference plan: %d scene(s) checked", len(scenes))
    return plan


def predict_cloudfree_scenes(
    model: TrainedModel, plan: dict[str, Any], cloud_masks: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, SceneProduct], dict[str, SceneProduct], dict[str, SceneProduct]]:
    """Lazy products of every scene: (cloud-free, aleatoric uncertainty, epistemic spread),
    {scene_id: SceneProduct} each (the last two empty unless the model is aleatoric / an
    ensemble); one pass per scene writes them as the datasets save them (``scene_run``).
    Inputs are checked again first, the parameters settled against the (first member's)
    contract. ``fill: clouds`` takes each scene's mask from ``cloud_masks`` (this run's: only
    scenes that have a mask source)."""
    config = inference_config(params)
    members = ensemble.plan_ensemble(model, config.ensemble)  # contracts checked, none loaded
    first = model if members is None else members.reference
    config = settle_inference(config, first.contract, first.contract_source)
    scenes = inputs.scenes_from_plan(plan)
    pairs = inputs.check_scenes(scenes, config)
    with_mask = [s for s, p in zip(scenes, pairs, strict=True) if _mask_source(p, config)]
    mask_files = inputs.products_of(with_mask, cloud_masks)
    models = [model.model] if members is None else members.load(model, load_model_version)
    versions = None if members is None else list(members.versions)
    runs = {
        s.scene_id: SceneRun(models, p, config, mask_files.get(s.scene_id), versions)
        for s, p in zip(scenes, pairs, strict=True)
    }
    products = [scene_products(runs, part) for part in (PREDICTION, ALEATORIC, EPISTEMIC)]
    return products[0], products[1], products[2]


# --- outputs (issue 11, item 3) ---------------------------------------------------------------


def _mask_source(pair: Any, config: Any) -> str | None:
    return masks.mask_source(pair.optical, config.mask_path)


def make_cloud_masks(plan: dict[str, Any], params: dict[str, Any]) -> dict[str, masks.CloudMask]:
    """Lazy cloud/shadow masks {scene_id: CloudMask} of the scenes that have a mask source
    (detector on 13 bands, else ``inference.mask_path``); the others are logged and skipped."""
    config = inference_config(params)
    scenes = inputs.scenes_from_plan(plan)
    products = {}
    for scene, pair in zip(scenes, inputs.check_scenes(scenes, config), strict=True):
        if _mask_source(pair, config) is None:
            logger.info("%s: no cloud/shadow mask (no 13 bands, no mask_path)", scene.scene_id)
            continue
        products[scene.scene_id] = masks.CloudMask(
            pair.optical,
            config.mask_path,
            output_format=config.output_format,
            compress=config.compress,
        )
    return products


def make_scene_quicklooks(
    cloudfree_scenes: dict[str, Any],
    uncertainty_scenes: dict[str, Any],
    epistemic_scenes: dict[str, Any],
    plan: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, quicklook.Quicklook]:
    """Lazy quicklooks of the run's cloud-free scenes: before/after, and the uncertainty
    rasters the run wrote for each (its run facts say which)."""
    config = inference_config(params)
    scenes = inputs.scenes_from_plan(plan)
    befores = {s.scene_id: s.s2_path for s in scenes}
    afters = inputs.products_of(scenes, cloudfree_scenes)
    facts = {sid: report.read_run_facts(path) for sid, path in afters.items()}
    extras: dict[str, dict[str, Path]] = {sid: {} for sid in afters}
    for part, key, products in (
        (ALEATORIC, "uncertainty_path", uncertainty_scenes),
        (EPISTEMIC, "epistemic_path", epistemic_scenes),
    ):
        written = [s for s in scenes if facts[s.scene_id].get(key)]
        for sid, path in inputs.products_of(written, products).items():
            extras[sid][part] = path
    return quicklook.quicklooks_of(befores, afters, config.quicklook_max_size, extras)


def report_inference(cloudfree_scenes: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """The inference report, read from the run facts stored in the run's cloud-free scenes."""
    summary = report.report_of(inputs.products_of(inputs.scenes_from_plan(plan), cloudfree_scenes))
    total = summary["total"]
    logger.info(
        "Inference done: %d scene(s), %.2f Mpx in %.1f s: %.4f Mpx/s",
        total["scenes"],
        total["megapixels"],
        total["seconds"],
        total["mpx_per_s"],
    )
    return summary
