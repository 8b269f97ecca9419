"""Thin nodes: validated ``params:inference`` in, ``tml_cloudremoval.inference`` called, catalog
data out. Products are lazy: the catalog datasets compute and write them when they save.

Many scenes on many machines (issue 14, item 5): the plan holds the scenes of this run's
``inference.shard`` that passed the checks (``scenes``) and those that did not (``failed``,
``on_bad_scene: skip``), and the run's id; the lazy products skip scenes whose complete output
is there (``inference.resume``) and record a failed pass; the last node writes the run summary.
The plan and the report are saved per shard ({shard label: ...}, ``shards.shard_label``), so the
tasks of an array sharing one project folder never read each other's plan.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.datasets.model_dataset import load_model_version
from tml_cloudremoval.inference import ensemble, inputs, masks, quicklook, report, resume
from tml_cloudremoval.inference.config import InferenceConfig, inference_config
from tml_cloudremoval.inference.predictors import ALEATORIC, EPISTEMIC, PREDICTION
from tml_cloudremoval.inference.scene_run import (
    FailedProduct,
    SceneProduct,
    SceneRun,
    scene_products,
)
from tml_cloudremoval.inference.shards import shard_label
from tml_cloudremoval.models.contract import TrainedModel, settle_inference

logger = logging.getLogger(__name__)


def plan_inference(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate the parameters (before any file is read), list the scenes of the run's shard
    and check them (headers only). ``on_bad_scene: error``: ``ConfigError`` naming the key, or
    one ``SceneError`` listing every faulty file; ``skip``: the faulty scenes go to the plan's
    ``failed``. Returns {shard label: plan} (persisted as JSON, one file per shard;
    ``inputs.scene_plan`` plus ``run_id``, ``shard``, ``listing`` (digest of the scene ids
    listed) and ``failed``)."""
    config = inference_config(params)
    scenes, unpaired, listing = inputs.shard_scenes(config)
    checked, bad = inputs.checked_scenes(scenes, config)
    checked, unmasked = inputs.without_mask(checked, config)  # outputs (issue 11, item 3)
    plan = inputs.scene_plan([s for s, _ in checked], [p for _, p in checked])
    failed = [b.as_json() for b in unpaired + bad + unmasked]
    plan.update(run_id=resume.new_run_id(), shard=config.shard, listing=listing, failed=failed)
    if not checked and not failed:
        logger.warning("Shard %s holds none of the scenes: nothing to do", config.shard)
    logger.info(
        "Inference plan %s: %d scene(s) checked, %d failed the checks",
        plan["run_id"],
        len(checked),
        len(failed),
    )
    return {shard_label(config.shard): plan}


def shard_plan(plans: dict[str, Any], shard: str | None) -> dict[str, Any]:
    """The plan of shard ``shard`` (the validated ``inference.shard``) among the saved plans
    {shard label: plan or its loader} (a ``PartitionedDataset`` loads lazily); ``ConfigError``
    where ``plan_inference`` has not planned that shard."""
    label = shard_label(shard)
    if label not in plans:
        planned = ", ".join(sorted(plans)) or "none"
        raise ConfigError(
            f"inference.shard {shard!r}: no inference plan {label} (planned: {planned});"
            " run the plan_inference node of this shard first"
        )
    plan = plans[label]
    return plan() if callable(plan) else plan


def _settled(model: TrainedModel, params: dict[str, Any]) -> tuple[InferenceConfig, Any]:
    """The config settled against the (first member's) contract, and the ensemble plan."""
    config = inference_config(params)
    members = ensemble.plan_ensemble(model, config.ensemble)  # contracts checked, none loaded
    first = model if members is None else members.reference
    return settle_inference(config, first.contract, first.contract_source), members


def predict_cloudfree_scenes(
    model: TrainedModel, plans: dict[str, Any], cloud_masks: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, SceneProduct], dict[str, SceneProduct]]:
    """Lazy products of every scene of the shard's plan: (cloud-free, aleatoric uncertainty,
    epistemic spread), {scene_id: product} each (the last two empty unless the model is
    aleatoric / an ensemble); one pass per scene writes them as the datasets save them
    (``scene_run``).
    Inputs are checked again first (``skip``: a scene now faulty, or whose mask failed, gets
    a failure record instead), the parameters settled against the (first member's) contract.
    ``fill: clouds`` takes each scene's mask from ``cloud_masks`` (this run's)."""
    config, members = _settled(model, params)
    plan = shard_plan(plans, config.shard)
    run_id = plan.get("run_id")
    checked, bad = inputs.checked_scenes(inputs.scenes_from_plan(plan), config)
    mask_failures = _failures(cloud_masks) if config.fill == "clouds" else {}
    lost = [s for s, _ in checked if s.scene_id in mask_failures and s.scene_id not in cloud_masks]
    checked = [(s, p) for s, p in checked if s not in lost]
    with_mask = [s for s, p in checked if _mask_source(p, config)]
    mask_files = inputs.products_of(with_mask, cloud_masks)
    models = [model.model] if members is None else members.load(model, load_model_version)
    versions = None if members is None else list(members.versions)
    model_id = resume.model_id_of(model.folder, versions)
    runs = {
        s.scene_id: SceneRun(models, p, config, mask_files.get(s.scene_id), versions,
                             scene_id=s.scene_id, run_id=run_id, model_id=model_id)
        for s, p in checked
    }  # fmt: skip
    products: list[dict[str, Any]] = [
        scene_products(runs, part) for part in (PREDICTION, ALEATORIC, EPISTEMIC)
    ]
    for scene in bad:
        products[0][scene.scene_id] = FailedProduct(
            scene.scene_id, [scene.s2_path], scene.fault, run_id
        )
    for scene in lost:
        fault = mask_failures[scene.scene_id].get("fault", "no cloud/shadow mask was made")
        products[0][scene.scene_id] = FailedProduct(scene.scene_id, [scene.s2_path], fault, run_id)
    return products[0], products[1], products[2]


# --- outputs (issue 11, item 3) ---------------------------------------------------------------


def _mask_source(pair: Any, config: Any) -> str | None:
    return masks.mask_source(pair.optical, config.mask_path)


def make_cloud_masks(plans: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Lazy cloud/shadow masks {scene_id: mask} of the shard's scenes that have a mask source
    (detector on 13 bands, else ``inference.mask_path``); the others are logged and skipped.
    A mask file made with the same inputs and options is not made again (``resume``)."""
    config = inference_config(params)
    plan = shard_plan(plans, config.shard)
    products = {}
    for scene, pair in inputs.checked_scenes(inputs.scenes_from_plan(plan), config)[0]:
        if _mask_source(pair, config) is None:
            logger.info("%s: no cloud/shadow mask (no 13 bands, no mask_path)", scene.scene_id)
            continue
        sources = (pair.optical.path,) + (() if config.mask_path is None else (config.mask_path,))
        settings = resume.mask_settings(config, sources)
        mask = masks.CloudMask(
            pair.optical,
            config.mask_path,
            tags=report.run_facts_tags({"run_id": plan.get("run_id"), "settings": settings}),
            output_format=config.output_format,
            compress=config.compress,
        )
        products[scene.scene_id] = resume.ResumableProduct(
            mask, settings, config.skip_existing, config.bad_scene_policy,
            scene_id=scene.scene_id, run_id=plan.get("run_id"),
        )  # fmt: skip
    return products


def _done(plan: dict[str, Any], cloudfree_scenes: dict[str, Any]) -> dict[str, Path]:
    """{scene_id: cloud-free product} of the plan's scenes this run cleaned."""
    summary = report.run_summary(plan, _paths(cloudfree_scenes), _failures(cloudfree_scenes))
    return {s["scene_id"]: Path(s["output_path"]) for s in summary["done"]}


def _paths(products: dict[str, Any]) -> dict[str, Path]:
    return {sid: Path(loader.path) for sid, loader in products.items()}


def _failures(products: Any) -> dict[str, Any]:
    return getattr(products, "failures", {})


def make_scene_quicklooks(
    cloudfree_scenes: dict[str, Any],
    uncertainty_scenes: dict[str, Any],
    epistemic_scenes: dict[str, Any],
    plans: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, quicklook.Quicklook]:
    """Lazy quicklooks of the cloud-free scenes this run cleaned (skipped scenes keep theirs):
    before/after, and the uncertainty rasters the run wrote for each (its run facts say
    which)."""
    config = inference_config(params)
    plan = shard_plan(plans, config.shard)
    afters = _done(plan, cloudfree_scenes)
    scenes = [s for s in inputs.scenes_from_plan(plan) if s.scene_id in afters]
    befores = {s.scene_id: s.s2_path for s in scenes}
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


def report_inference(
    cloudfree_scenes: dict[str, Any], plans: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The inference report {shard label: report} (the run facts stored in the cloud-free
    scenes of the shard's plan that are there: done or skipped), and the run summary
    {"<shard label>_<run id>": summary} (``report.run_summary``: done, skipped and failed
    scenes, faults, seconds)."""
    plan = shard_plan(plans, inference_config(params).shard)
    summary = report.run_summary(plan, _paths(cloudfree_scenes), _failures(cloudfree_scenes))
    present = {s["scene_id"]: s["output_path"] for s in summary["done"] + summary["skipped"]}
    scenes = [s for s in inputs.scenes_from_plan(plan) if s.scene_id in present]
    inference_report = report.report_of({s.scene_id: present[s.scene_id] for s in scenes})
    total, counts = inference_report["total"], summary["counts"]
    logger.info(
        "Inference done: %d scene(s), %.2f Mpx in %.1f s: %.4f Mpx/s",
        total["scenes"],
        total["megapixels"],
        total["seconds"],
        total["mpx_per_s"],
    )
    level = logging.WARNING if counts["failed"] else logging.INFO
    logger.log(
        level,
        "Inference run %s (shard %s): %d done, %d skipped, %d failed%s",
        summary["run_id"],
        summary["shard"],
        counts["done"],
        counts["skipped"],
        counts["failed"],
        "".join(f"\n  {f['scene_id']}: {f['fault']}" for f in summary["failed"]),
    )
    label = shard_label(summary["shard"])
    return {label: inference_report}, {f"{label}_{summary['run_id']}": summary}
