"""Thin nodes: validated ``params:inference`` in, ``tml_cloudremoval.inference`` called, catalog
data out. Products are lazy: the catalog datasets compute and write them when they save."""

from __future__ import annotations

import logging
from typing import Any

from tml_cloudremoval.inference import inputs, masks, quicklook, report
from tml_cloudremoval.inference.config import inference_config
from tml_cloudremoval.inference.scene import CloudFreeScene
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
) -> dict[str, CloudFreeScene]:
    """Lazy cloud-free scenes {scene_id: CloudFreeScene} (inputs checked again first, the
    parameters settled against the model's contract); the ``cloudfree_scenes`` dataset predicts
    each one as it saves it. ``fill: clouds`` takes each scene's mask from ``cloud_masks``
    (this run's: only scenes that have a mask source)."""
    config = settle_inference(inference_config(params), model.contract, model.contract_source)
    scenes = inputs.scenes_from_plan(plan)
    pairs = inputs.check_scenes(scenes, config)
    with_mask = [s for s, p in zip(scenes, pairs, strict=True) if _mask_source(p, config)]
    mask_files = inputs.products_of(with_mask, cloud_masks)
    return {
        s.scene_id: CloudFreeScene(model.model, p, config, mask_files.get(s.scene_id))
        for s, p in zip(scenes, pairs, strict=True)
    }


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
    cloudfree_scenes: dict[str, Any], plan: dict[str, Any], params: dict[str, Any]
) -> dict[str, quicklook.Quicklook]:
    """Lazy before/after quicklooks of the run's cloud-free scenes."""
    config = inference_config(params)
    scenes = inputs.scenes_from_plan(plan)
    befores = {s.scene_id: s.s2_path for s in scenes}
    afters = inputs.products_of(scenes, cloudfree_scenes)
    return quicklook.quicklooks_of(befores, afters, config.quicklook_max_size)


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
