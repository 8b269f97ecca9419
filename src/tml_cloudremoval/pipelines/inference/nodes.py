"""Thin nodes: read ``params:inference``, call tml_cloudremoval.inference.scene / tiling / quicklook."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from tml_cloudremoval.inference import quicklook, scene, tiling

logger = logging.getLogger(__name__)


def _scene_list(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The scenes of this run: one (s2_path, s1_path, output_path) or every pair in scenes_dir."""
    if params.get("scenes_dir"):
        out_dir = Path(params["output_dir"])
        ql_dir = Path(params["quicklook_dir"])
        return [
            {
                "name": scene_id or s2.stem,
                "s2_path": str(s2),
                "s1_path": None if s1 is None else str(s1),
                "output_path": str(out_dir / f"{scene_id}{params['output_suffix']}.tif"),
                "quicklook_path": str(ql_dir / f"{scene_id}{params['quicklook_suffix']}.png"),
            }
            for scene_id, s2, s1 in scene.find_scene_pairs(
                params["scenes_dir"], params["optical_suffix"], params.get("sar_suffix")
            )
        ]
    return [
        {
            "name": Path(params["s2_path"]).stem,
            "s2_path": str(params["s2_path"]),
            "s1_path": params.get("s1_path") and str(params["s1_path"]),
            "output_path": str(params["output_path"]),
            "quicklook_path": params.get("quicklook_path") and str(params["quicklook_path"]),
        }
    ]


def _json_number(value: float | None) -> float | str | None:
    """NaN / inf as text: JSON has no literal for them."""
    return value if value is None or math.isfinite(value) else str(value)


def plan_inference(params: dict[str, Any]) -> dict[str, Any]:
    """Find and check every scene of the run (headers only) before any prediction.

    Raises one ``ValueError`` listing every faulty file (unreadable, wrong band count, SAR not
    overlapping, output path equal to an input). Returns the plan persisted as JSON.
    """
    scenes = _scene_list(params)
    checked = scene.check_scenes([(s["s2_path"], s["s1_path"], s["output_path"]) for s in scenes])
    for entry, pair in zip(scenes, checked, strict=True):
        entry.update(
            height=pair.optical.height,
            width=pair.optical.width,
            bands_from=pair.optical.band_source,
            crs=None if pair.optical.crs is None else pair.optical.crs.to_string(),
            nodata=_json_number(pair.optical.nodata),
        )
    logger.info("Inference plan: %d scene(s) checked", len(scenes))
    return {"scenes": scenes}


def predict_scenes(model: Any, plan: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Clean every planned scene (inputs re-checked first), write GeoTIFFs; return the report."""
    scenes = plan["scenes"]
    scene.check_scenes([(s["s2_path"], s["s1_path"], s["output_path"]) for s in scenes])
    reports = []
    for entry in scenes:
        report = tiling.predict_scene(
            model,
            entry["s2_path"],
            entry["s1_path"],
            entry["output_path"],
            tile_size=int(params["tile_size"]),
            overlap=None if params.get("overlap") is None else int(params["overlap"]),
            batch_size=int(params["batch_size"]),
            output_dtype=str(params["output_dtype"]),
            sar_method=str(params["sar_method"]),
            compress=str(params["compress"]),
            gdal_cache_mb=int(params["gdal_cache_mb"]),
            progress=bool(params["progress"]),
        )
        reports.append({"name": entry["name"], **report})
    pixels = sum(r["height"] * r["width"] for r in reports)
    seconds = sum(r["seconds"] for r in reports)
    total = {
        "scenes": len(reports),
        "megapixels": round(pixels / 1e6, 6),
        "seconds": round(seconds, 3),
        "mpx_per_s": round(pixels / 1e6 / max(seconds, 1e-9), 6),
    }
    logger.info(
        "Inference done: %d scene(s), %.2f Mpx in %.1f s: %.4f Mpx/s",
        total["scenes"],
        total["megapixels"],
        total["seconds"],
        total["mpx_per_s"],
    )
    return {"total": total, "scenes": reports}


def make_quicklooks(plan: dict[str, Any], report: dict[str, Any], params: dict[str, Any]) -> dict:
    """Before/after true-colour PNG for each cleaned scene; returns {name: png path}."""
    written = {}
    done = {r["output_path"] for r in report["scenes"]}
    for entry in plan["scenes"]:
        if not entry.get("quicklook_path") or entry["output_path"] not in done:
            continue
        path = quicklook.write_quicklook(
            entry["s2_path"],
            entry["output_path"],
            entry["quicklook_path"],
            max_size=int(params["quicklook_max_size"]),
        )
        written[entry["name"]] = str(path)
        logger.info("Quicklook: %s", path)
    return written
