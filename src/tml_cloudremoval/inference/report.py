"""The inference report: per-scene run facts stored in each product, and the run summary.

The facts of one scene's run (size, tiles, seconds, Mpx/s, SAR coverage), its provenance
(source files, tile grid, overlap, receptive field, options) and the uncertainty rasters it
wrote (``uncertainty_path``, ``epistemic_path``, ``uncertainty_units``, the ``ensemble``'s
versions; null when none) travel with the products (every file of the run): the writer
stores them as one JSON GeoTIFF metadata tag, ``TML_INFERENCE``. The report is read back from
the products (:func:`read_run_facts`), so it describes exactly the files in the catalog, and a
product keeps its provenance wherever it is copied.
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

from tml_cloudremoval.raster import RasterError

RUN_FACTS_TAG = "TML_INFERENCE"
"""GeoTIFF metadata tag (default domain) holding the run facts of a product as JSON."""


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
