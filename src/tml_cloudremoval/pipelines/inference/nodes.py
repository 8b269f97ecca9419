"""Thin nodes: validated ``params:inference`` in, ``tml_cloudremoval.inference`` called, catalog
data out. Products are lazy: the catalog datasets compute and write them when they save."""

from __future__ import annotations

import logging
from typing import Any

from tml_cloudremoval.inference import inputs, quicklook, report
from tml_cloudremoval.inference.config import inference_config
from tml_cloudremoval.inference.scene import CloudFreeScene

logger = logging.getLogger(__name__)


def plan_inference(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the parameters (before any file is read), find and check every scene of the run
    (headers only). Raises ``ConfigError`` naming the key, or one ``ValueError`` listing every
    faulty file. Returns the plan (persisted as JSON)."""
    config = inference_config(params)
    scenes = inputs.scenes_of(config)
    plan = inputs.scene_plan(scenes, inputs.check_scenes(scenes, config))
    logger.info("Inference plan: %d scene(s) checked", len(scenes))
    return plan


def predict_cloudfree_scenes(
    model: Any, plan: dict[str, Any], params: dict[str, Any]
) -> dict[str, CloudFreeScene]:
    """Lazy cloud-free scenes {scene_id: CloudFreeScene} (inputs checked again first); the
    ``cloudfree_scenes`` dataset predicts each one as it saves it."""
    config = inference_config(params)
    scenes = inputs.scenes_from_plan(plan)
    pairs = inputs.check_scenes(scenes, config)
    return {
        s.scene_id: CloudFreeScene(model, p, config) for s, p in zip(scenes, pairs, strict=True)
    }


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
