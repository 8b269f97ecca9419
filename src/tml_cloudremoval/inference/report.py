"""The inference report: per-scene run facts stored in each product, and the run summary.

The facts of one scene's run (size, tiles, seconds, Mpx/s, SAR coverage), its provenance
(source files, tile grid, overlap, receptive field, options) and the uncertainty rasters it
wrote (``uncertainty_path``, ``epistemic_path``, ``uncertainty_units``, the ``ensemble``'s
versions; null when none) travel with the products (every file of the run): the writer
stores them as one JSON GeoTIFF metadata tag, ``TML_INFERENCE``. The report is read back from
the products (:func:`read_run_facts`), so it describes exactly the files in the catalog, and a
product keeps its provenance wherever it is copied.

The run summary (:func:`run_summary`, catalog entry ``inference_runs``: one file per run and
shard) says what became of each scene of the run's shard: done by this run (its facts carry the
run id), skipped (a complete output of an earlier run was there, ``inference.resume``) or failed
(the input checks, or the pass: its failure record, :func:`failure_record_path`), with the fault
and the seconds.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from tml_cloudremoval.atomic import write_json_atomic
from tml_cloudremoval.raster import RasterError

RUN_FACTS_TAG = "TML_INFERENCE"
"""GeoTIFF metadata tag (default domain) holding the run facts of a product as JSON."""

FAILURE_SUFFIX = ".failed.json"
"""Appended to a cloud-free product's file name: the failure record of its scene."""


def failure_record_path(target: str | os.PathLike) -> Path:
    """The failure record of the scene whose cloud-free product is ``target`` (a pass that
    failed with ``inference.on_bad_scene: skip``): ``x_cloudfree.tif`` ->
    ``x_cloudfree.tif.failed.json`` beside it."""
    target = Path(target)
    return target.with_name(target.name + FAILURE_SUFFIX)


def record_failure(
    target: str | os.PathLike,
    scene_id: str,
    run_id: str | None,
    s2_path: str | os.PathLike,
    fault: BaseException | str,
    seconds: float = 0.0,
) -> str:
    """Write the failure record of ``target`` (:func:`failure_record_path`; JSON: scene_id,
    run_id, s2_path, fault, seconds) atomically; returns the fault's text, which names
    ``s2_path`` (prefixed unless the error names it already)."""
    text = fault if isinstance(fault, str) else f"{type(fault).__name__}: {fault}"
    text = text if str(s2_path) in text else f"{s2_path}: {text}"
    record = {"scene_id": scene_id, "run_id": run_id, "s2_path": str(s2_path),
              "fault": text, "seconds": round(seconds, 3)}  # fmt: skip
    write_json_atomic(failure_record_path(target), record)
    return text


def run_facts_tags(facts: Mapping[str, Any]) -> dict[str, str]:
    """The GeoTIFF tags that carry ``facts`` (JSON-serialisable values)."""
    return {RUN_FACTS_TAG: json.dumps(dict(facts), allow_nan=False)}


def read_run_facts(path: str | os.PathLike) -> dict[str, Any]:
    """The run facts stored in a product; ``RasterError`` naming the file when it has none."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                text = ds.tags().get(RUN_FACTS_TAG)
    except (RasterioError, OSError) as exc:
        raise RasterError(path, f"not a readable GeoTIFF ({exc})") from exc
    if text is None:
        raise RasterError(path, f"carries no {RUN_FACTS_TAG} tag: not written by this pipeline")
    return json.loads(text)


def summarise(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{scene_id: run facts} -> {"total": {scenes, megapixels, seconds, mpx_per_s,
    uncertainty_rasters, epistemic_rasters}, "scenes": [{"scene_id": id, **facts}]}; Mpx/s of
    the total is all scene pixels over all seconds; the raster counts are the scenes whose
    facts name an uncertainty / epistemic raster (``uncertainty_path``, ``epistemic_path``)."""
    scenes = [{"scene_id": scene_id, **facts} for scene_id, facts in runs.items()]
    pixels = sum(s["height"] * s["width"] for s in scenes)
    seconds = sum(s["seconds"] for s in scenes)
    total = {
        "scenes": len(scenes),
        "megapixels": round(pixels / 1e6, 6),
        "seconds": round(seconds, 3),
        "mpx_per_s": round(pixels / 1e6 / max(seconds, 1e-9), 6),
        "uncertainty_rasters": sum(bool(s.get("uncertainty_path")) for s in scenes),
        "epistemic_rasters": sum(bool(s.get("epistemic_path")) for s in scenes),
    }
    return {"total": total, "scenes": scenes}


def report_of(products: Mapping[str, str | os.PathLike]) -> dict[str, Any]:
    """The inference report of {scene_id: product path}: :func:`summarise` of the run facts
    read from each product, each with its ``output_path``."""
    return summarise(
        {sid: {**read_run_facts(path), "output_path": str(path)} for sid, path in products.items()}
    )


def scene_outcome(
    run_id: str, facts: Mapping[str, Any] | None, failure: Mapping[str, Any] | None
) -> str:
    """ "done", "failed" or "skipped": what became of a scene the run handed to the datasets,
    from its product's run facts and its failure record (None: none)."""
    if failure is not None and failure.get("run_id") == run_id:
        return "failed"
    if facts is not None and facts.get("run_id") == run_id:
        return "done"
    if facts is None:  # pragma: no cover - every handed-over scene ends in one of the others
        return "failed"
    return "skipped"


def run_summary(
    plan: Mapping[str, Any],
    products: Mapping[str, str | os.PathLike],
    failures: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The run summary of a plan (``inference_plan``: ``run_id``, ``shard``, ``scenes`` to clean,
    ``failed`` at the checks), given {scene_id: cloud-free product path} and {scene_id: failure
    record} of the folder: {run_id, shard, listing (the digest of the scene ids listed),
    counts {done, skipped, failed}, seconds (of the done
    and failed passes), done [{scene_id, output_path, seconds, mpx_per_s}], skipped [{scene_id,
    output_path, run_id (of the run that made it)}], failed [{scene_id, s2_path, stage (check |
    prediction), fault, seconds}]}."""
    run_id = plan["run_id"]
    done, skipped, failed = [], [], list(plan.get("failed", []))
    for scene in plan["scenes"]:
        sid = scene["scene_id"]
        path = products.get(sid)
        facts = None if path is None else read_run_facts(path)
        failure = failures.get(sid)
        outcome = scene_outcome(run_id, facts, failure)
        if outcome == "failed":
            fault = "no product was written" if failure is None else failure["fault"]
            seconds = 0.0 if failure is None else failure["seconds"]
            failed.append({"scene_id": sid, "s2_path": scene["s2_path"], "stage": "prediction",
                           "fault": fault, "seconds": seconds})  # fmt: skip
        elif outcome == "done":
            done.append({"scene_id": sid, "output_path": str(path), "seconds": facts["seconds"],
                         "mpx_per_s": facts["mpx_per_s"]})  # fmt: skip
        else:
            skipped.append({"scene_id": sid, "output_path": str(path),
                            "run_id": facts.get("run_id")})  # fmt: skip
    seconds = sum(s["seconds"] for s in done) + sum(s["seconds"] for s in failed)
    return {
        "run_id": run_id,
        "shard": plan.get("shard"),
        "listing": plan.get("listing"),
        "counts": {"done": len(done), "skipped": len(skipped), "failed": len(failed)},
        "seconds": round(seconds, 3),
        "done": done,
        "skipped": skipped,
        "failed": failed,
    }
