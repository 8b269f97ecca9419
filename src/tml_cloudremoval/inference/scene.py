"""Cleaning one scene: reader -> planner -> engine -> writer.

:func:`predict_scene` checks the inputs (headers only) and the output path, plans the tiles for
the model's receptive field, warps the SAR onto the 40 m grid, and streams the tiles through the
engine into a :class:`~tml_cloudremoval.inference.writer.SceneWriter` (converted and compressed in
a background thread), so a scene of any size is cleaned in bounded memory. The run facts become
a metadata tag of the product (``tml_cloudremoval.inference.report``).

:class:`CloudFreeScene` is the lazy product the pipeline hands the catalog: nothing is predicted
until the ``cloudfree_scenes`` dataset saves it to the path the catalog owns.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from tml_cloudremoval.atomic import output_lock, remove_stale_temporaries
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.engine import (
    EmitRows,
    TileInput,
    TileRunStats,
    keras_predictor,
    run_tiled,
    sar_of_tile,
)
from tml_cloudremoval.inference.fill import CloudFillSink
from tml_cloudremoval.inference.inputs import SceneSource, check_scenes, refuse_targets
from tml_cloudremoval.inference.masks import scene_mask
from tml_cloudremoval.inference.native_layout import scene_output
from tml_cloudremoval.inference.planner import Tile, TilePlan, plan_tiles, seam_free_overlap
from tml_cloudremoval.inference.reader import OpticalReader, ScenePair, load_sar_40m, open_optical
from tml_cloudremoval.inference.report import run_facts_tags
from tml_cloudremoval.inference.writer import OUTPUT_DTYPES, output_nodata
from tml_cloudremoval.models.receptive_field import receptive_field
from tml_cloudremoval.raster import read_raster

logger = logging.getLogger(__name__)


class _SceneTiles:
    """Tile reader of one scene: windowed optical reads plus the SAR already on the 40 m grid."""

    def __init__(self, optical: OpticalReader, sar_40m: np.ndarray | None) -> None:
        self.optical, self.sar_40m = optical, sar_40m

    def __call__(self, tile: Tile) -> TileInput:
        optical, valid = self.optical.read_tile(tile.y0, tile.x0, tile.height, tile.width)
        return TileInput(optical, sar_of_tile(self.sar_40m, tile), valid)


def _run_facts(
    pair: ScenePair,
    plan: TilePlan,
    rf: int,
    config: InferenceConfig,
    stats: TileRunStats,
    coverage: float,
    seconds: float,
) -> dict[str, Any]:
    """What one scene's run did and where it came from (JSON values)."""
    info = pair.optical
    return {
        "s2_path": str(info.path),
        "s1_path": None if pair.sar is None else str(pair.sar.path),
        "height": info.height,
        "width": info.width,
        "bands_from": info.band_source,
        "tile_size": plan.tile_size,
        "overlap": plan.overlap,
        "receptive_field": rf,
        "batch_size": config.batch_size,
        "output_dtype": config.output_dtype,
        "sar_method": config.sar_method,
        "output_format": config.output_format,
        "output_layout": config.output_layout,
        "fill": config.fill,
        "feather_px": config.feather_px,
        "tiles": stats.tiles,
        "tile_grid": [plan.n_rows, plan.n_cols],
        "largest_tile": [max(plan.heights), max(plan.widths)],
        "tiles_predicted": stats.predicted,
        "tiles_skipped_nodata": stats.skipped,
        "sar_coverage": round(float(coverage), 6),
        "seconds": round(seconds, 3),
        "model_seconds": round(stats.predict_seconds, 3),
        "mpx_per_s": round(info.height * info.width / 1e6 / max(seconds, 1e-9), 6),
        "tiling_efficiency": round(plan.efficiency, 4),
    }


def _filled(
    sink: EmitRows, optical: OpticalReader, mask: np.ndarray | None, config: InferenceConfig
) -> EmitRows:
    """The row sink for ``config.fill``: ``sink`` itself (all) or clouds filled into it."""
    if config.fill == "all":
        return sink
    if mask is None:
        raise SceneError(
            f"{optical.info.path}: inference.fill: clouds needs a cloud/shadow mask: give "
            "inference.mask_path or a 13-band input for the detector"
        )
    width = optical.info.width
    return CloudFillSink(
        sink, lambda y0, n: optical.read_tile(y0, 0, n, width)[0], mask, config.feather_px
    )


def _predict_pair(
    model: Any,
    pair: ScenePair,
    output_path: Path,
    config: InferenceConfig,
    start: float,
    mask: np.ndarray | None = None,
) -> dict[str, Any]:
    """Plan, read, predict, blend and write one checked scene; returns its run facts.

    ``mask``: the scene's cloud/shadow mask (``inference.masks``), needed by ``fill: clouds``."""
    info = pair.optical
    if config.output_dtype not in OUTPUT_DTYPES:
        raise SceneError(
            f"output_dtype must be one of {OUTPUT_DTYPES}, got {config.output_dtype!r}"
        )
    rf = receptive_field(model)
    overlap = seam_free_overlap(rf) if config.overlap is None else config.overlap
    plan = plan_tiles(info.height, info.width, config.tile_size, overlap, rf)
    uses_sar = "sar" in [t.name for t in model.inputs]
    if uses_sar and pair.sar is None:
        raise SceneError(f"{info.path}: the model needs SAR but no SAR file was given")
    if uses_sar and config.sar_method is None:
        raise SceneError(
            "inference.sar_method is null: settle it against the model's contract first "
            "(models.contract.settle_inference), or give mean or linear_power"
        )
    nodata = output_nodata(info.nodata, config.output_dtype, info.header.dtype)
    with rasterio.Env(GDAL_CACHEMAX=config.gdal_cache_mb):
        sar, coverage = load_sar_40m(pair, config.sar_method) if uses_sar else (None, 1.0)
        with (
            open_optical(info) as optical,
            scene_output(output_path, info, config, nodata) as output,
        ):
            stats = run_tiled(
                plan,
                _SceneTiles(optical, sar),
                keras_predictor(model),
                _filled(output.sink, optical, mask, config),
                batch_size=config.batch_size,
                progress=config.progress,
                desc=info.path.name,
            )
            output.wait()
            seconds = time.perf_counter() - start  # checks, SAR warp, tiles, writing
            facts = _run_facts(pair, plan, rf, config, stats, coverage, seconds)
            output.update_tags(**run_facts_tags(facts))
    logger.info(
        "%s -> %s: %d x %d px, %d tiles (%d without data), %.1f s, %.4f Mpx/s",
        info.path.name,
        output_path,
        info.height,
        info.width,
        stats.tiles,
        stats.skipped,
        seconds,
        facts["mpx_per_s"],
    )
    return facts


def predict_scene(
    model: Any,
    s2_path: str | os.PathLike,
    s1_path: str | os.PathLike | None,
    output_path: str | os.PathLike,
    config: InferenceConfig | None = None,
) -> dict[str, Any]:
    """Remove clouds from one scene: cloudy optical GeoTIFF + SAR GeoTIFF -> cloud-free GeoTIFF.

    Args:
        model: Keras model with inputs "optical" (and "sar"), see ``models.dsen2cr``.
        s2_path: optical GeoTIFF at 10 m, the 10 TML bands or a 13-band L1C stack (bands picked
            by name from the band descriptions when they name bands, else by count), DN.
        s1_path: SAR GeoTIFF, VV and VH in dB, any resolution and CRS overlapping the scene; it
            is averaged onto the 40 m grid aligned with the scene (None for optical-only models).
        output_path: the 10-band GeoTIFF to write (scene CRS, transform, size, nodata; band
            descriptions, scale 1e-4; a COG unless ``output_format: gtiff``; with
            ``output_layout: native`` the 10 m bands, the 20 m ones in its ``_20m`` sibling;
            run facts in the ``TML_INFERENCE`` tag), written
            atomically (locked while written; temporaries of dead runs next to it removed);
            it may not be an input.
        config: tiling and output options (``tile_size``, ``overlap``, ``batch_size``,
            ``output_dtype``, ``sar_method``, ``compress``, ``gdal_cache_mb``, ``progress``,
            ``output_format``, ``output_layout``, ``fill`` + ``mask_path`` + ``feather_px``);
            None: the defaults of :class:`InferenceConfig`.

    Returns the run facts (sizes, tiles, seconds, Mpx/s, SAR coverage, ...) and ``output_path``.
    Raises ``SceneError`` naming the file for bad inputs or outputs, before any prediction.
    """
    start = time.perf_counter()
    config = config or InferenceConfig()
    s1 = None if s1_path is None else Path(s1_path)
    pair = check_scenes([SceneSource("scene", Path(s2_path), s1)], config)[0]
    refuse_targets({"cloud-free scene": output_path}, pair.sources)
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    with output_lock(output_path):  # as the product folder datasets do
        remove_stale_temporaries(Path(output_path).parent)
        mask = scene_mask(pair.optical, config.mask_path) if config.fill == "clouds" else None
        facts = _predict_pair(model, pair, Path(output_path), config, start, mask)
    return {**facts, "output_path": str(output_path)}


class CloudFreeScene:
    """A cloud-free scene not yet computed: :meth:`write` predicts it into a GeoTIFF.

    ``sources`` are its input files (the dataset refuses to write over any of them);
    ``mask_file``: the scene's mask raster (``cloud_masks``), read when ``fill: clouds``.
    """

    def __init__(
        self,
        model: Any,
        pair: ScenePair,
        config: InferenceConfig,
        mask_file: str | os.PathLike | None = None,
    ) -> None:
        self.model, self.pair, self.config = model, pair, config
        self.mask_file = None if mask_file is None else Path(mask_file)

    @property
    def sources(self) -> tuple[Path, ...]:
        return self.pair.sources

    def write(self, path: str | os.PathLike) -> dict[str, Any]:
        """Predict the scene into ``path`` (atomically); returns its run facts."""
        start = time.perf_counter()
        mask = None
        if self.config.fill == "clouds" and self.mask_file is not None:
            mask = read_raster(self.mask_file)[..., 0]
        return _predict_pair(self.model, self.pair, Path(path), self.config, start, mask)

    def __repr__(self) -> str:
        return f"CloudFreeScene({self.pair.optical.path.name})"
