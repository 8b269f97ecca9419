"""Cleaning one scene: reader -> planner -> engine -> writer.

:func:`predict_scene` checks the inputs (headers only) and the output paths, plans the tiles for
the model's receptive field, warps the SAR onto the 40 m grid, and streams the tiles through the
engine into :class:`~tml_cloudremoval.inference.writer.SceneWriter` s (converted and compressed
in background threads), so a scene of any size is cleaned in bounded memory. An aleatoric model
or an ensemble (``inference.predictors``) writes its uncertainty rasters in the same pass. The
run facts become a metadata tag of every product (``tml_cloudremoval.inference.report``).

The lazy products the pipeline hands the catalog are in ``inference.scene_run``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
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
    run_tiled,
    sar_of_tile,
)
from tml_cloudremoval.inference.fill import CloudFillSink
from tml_cloudremoval.inference.inputs import SceneSource, check_scenes, refuse_targets
from tml_cloudremoval.inference.masks import scene_mask
from tml_cloudremoval.inference.native_layout import PartOutput, native_20m_path, scene_output
from tml_cloudremoval.inference.planner import Tile, TilePlan, plan_tiles, seam_free_overlap
from tml_cloudremoval.inference.predictors import (
    ALEATORIC,
    BANDS,
    EPISTEMIC,
    PREDICTION,
    UNITS,
    model_predictor,
    output_parts,
    receptive_field_of,
    uncertainty_output,
    uses_sar,
)
from tml_cloudremoval.inference.reader import OpticalReader, ScenePair, load_sar_40m, open_optical
from tml_cloudremoval.inference.report import run_facts_tags
from tml_cloudremoval.inference.writer import OUTPUT_DTYPES, output_nodata

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


def _uncertainty_facts(paths: Mapping[str, Path], versions: Sequence[str] | None) -> dict[str, Any]:
    """Whether and where the run wrote uncertainty rasters, and the ensemble's versions."""
    return {
        "uncertainty_path": str(paths[ALEATORIC]) if ALEATORIC in paths else None,
        "epistemic_path": str(paths[EPISTEMIC]) if EPISTEMIC in paths else None,
        "uncertainty_units": UNITS if len(paths) > 1 else None,
        "ensemble": None if versions is None else list(versions),
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


def gdal_cache_bytes(megabytes: int) -> int:
    """``inference.gdal_cache_mb`` as rasterio's ``Env(GDAL_CACHEMAX=...)`` takes it: an int is
    bytes there (GDAL's "small values are MB" rule applies to the text setting only), so 64
    would give GDAL a 64-byte block cache: every block read again each time, COG copies 3 to
    8 x slower."""
    return int(megabytes) * 2**20


def _check_models(models: Sequence[Any], pair: ScenePair, config: InferenceConfig) -> bool:
    """Before any work: the output type, SAR for a SAR model, a settled SAR method; returns
    whether the models take SAR."""
    info = pair.optical
    if config.output_dtype not in OUTPUT_DTYPES:
        raise SceneError(
            f"output_dtype must be one of {OUTPUT_DTYPES}, got {config.output_dtype!r}"
        )
    sar_model = uses_sar(models[0])
    if sar_model and pair.sar is None:
        raise SceneError(f"{info.path}: the model needs SAR but no SAR file was given")
    if sar_model and config.sar_method is None:
        raise SceneError(
            "inference.sar_method is null: settle it against the model's contract first "
            "(models.contract.settle_inference), or give mean or linear_power"
        )
    return sar_model


def predict_pair(
    models: Sequence[Any],
    pair: ScenePair,
    paths: Mapping[str, Path],
    config: InferenceConfig,
    start: float,
    mask: np.ndarray | None = None,
    versions: Sequence[str] | None = None,
    extra_facts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Plan, read, predict, blend and write one checked scene; returns its run facts.

    ``models``: one model, or the members of an ensemble (``versions``: their names);
    ``paths``: {part: file} for every part of ``predictors.output_parts(models)``; ``mask``:
    the scene's cloud/shadow mask (``inference.masks``), needed by ``fill: clouds``;
    ``extra_facts``: JSON facts stored with the others (the run id and the settings the resume
    compares, ``inference.scene_run``)."""
    info = pair.optical
    sar_model = _check_models(models, pair, config)
    predict, parts = model_predictor(models)
    if set(paths) != set(parts):
        raise ValueError(f"paths for {sorted(paths)}, but the model(s) give {list(parts)}")
    rf = receptive_field_of(models)
    overlap = seam_free_overlap(rf) if config.overlap is None else config.overlap
    plan = plan_tiles(info.height, info.width, config.tile_size, overlap, rf)
    nodata = output_nodata(info.nodata, config.output_dtype, info.header.dtype)
    outputs = [PartOutput(Path(paths[PREDICTION]), config.output_dtype, nodata)]
    outputs += [uncertainty_output(p, Path(paths[p])) for p in parts if p != PREDICTION]
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_bytes(config.gdal_cache_mb)):
        sar, coverage = load_sar_40m(pair, config.sar_method) if sar_model else (None, 1.0)
        with open_optical(info) as optical, scene_output(outputs, info, config) as output:
            stats = run_tiled(
                plan,
                _SceneTiles(optical, sar),
                predict,
                _filled(output.sink, optical, mask, config),
                bands=BANDS * len(parts),
                batch_size=config.batch_size,
                progress=config.progress,
                desc=info.path.name,
            )
            output.wait()
            seconds = time.perf_counter() - start  # checks, SAR warp, tiles, writing
            facts = _run_facts(pair, plan, rf, config, stats, coverage, seconds)
            facts.update(_uncertainty_facts({p: paths[p] for p in parts}, versions))
            facts.update(extra_facts or {})
            output.update_tags(**run_facts_tags(facts))
    logger.info(
        "%s -> %s: %d x %d px, %d tiles (%d without data), %.1f s, %.4f Mpx/s",
        info.path.name,
        ", ".join(str(paths[p]) for p in parts),
        info.height,
        info.width,
        stats.tiles,
        stats.skipped,
        seconds,
        facts["mpx_per_s"],
    )
    return facts


def scene_targets(paths: Mapping[str, str | os.PathLike], layout: str) -> dict[str, Path]:
    """Every file the parts' ``paths`` stand for ({part: file}, the ``_20m`` siblings of the
    native layout included): what may not be an input nor clash with another."""
    targets = {part: Path(path) for part, path in paths.items()}
    if layout == "native":
        targets |= {f"{part} (20 m)": native_20m_path(p) for part, p in list(targets.items())}
    return targets


def sibling_path(output_path: str | os.PathLike, part: str) -> Path:
    """The default file of an uncertainty part beside the cloud-free one:
    ``x.tif`` -> ``x_uncertainty.tif`` (aleatoric) or ``x_epistemic.tif``."""
    path = Path(output_path)
    name = "uncertainty" if part == ALEATORIC else part
    return path.with_name(f"{path.stem}_{name}{path.suffix}")


def predict_scene(
    model: Any,
    s2_path: str | os.PathLike,
    s1_path: str | os.PathLike | None,
    output_path: str | os.PathLike,
    config: InferenceConfig | None = None,
    *,
    uncertainty_path: str | os.PathLike | None = None,
    epistemic_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Remove clouds from one scene: cloudy optical GeoTIFF + SAR GeoTIFF -> cloud-free GeoTIFF.

    Long because it documents every argument of the one public entry point.

    Args:
        model: Keras model with inputs "optical" (and "sar"), see ``models.dsen2cr``; an
            aleatoric model (``models.uncertainty``) also writes ``uncertainty_path``; a list of
            models is an ensemble (their mean, and their spread into ``epistemic_path``).
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
        uncertainty_path, epistemic_path: the uncertainty rasters (float32 standard deviations
            in reflectance, same grid and layout; ``inference.predictors``), written only when
            the model(s) give them; None: :func:`sibling_path` of ``output_path``.

    Returns the run facts (sizes, tiles, seconds, Mpx/s, SAR coverage, the uncertainty paths,
    ...) and ``output_path``. Raises ``SceneError`` naming the file for bad inputs or outputs,
    before any prediction.
    """
    start = time.perf_counter()
    config = config or InferenceConfig()
    models = list(model) if isinstance(model, list | tuple) else [model]
    given = {ALEATORIC: uncertainty_path, EPISTEMIC: epistemic_path}
    paths = {
        p: Path(output_path if p == PREDICTION else given[p] or sibling_path(output_path, p))
        for p in output_parts(models)
    }
    s1 = None if s1_path is None else Path(s1_path)
    pair = check_scenes([SceneSource("scene", Path(s2_path), s1)], config)[0]
    targets = scene_targets(paths, config.output_layout)
    refuse_targets({f"cloud-free scene {k}": v for k, v in targets.items()}, pair.sources)
    with ExitStack() as locks:
        for path in paths.values():  # as the product folder datasets do
            path.parent.mkdir(parents=True, exist_ok=True)
            locks.enter_context(output_lock(path))
            remove_stale_temporaries(path.parent)
        mask = scene_mask(pair.optical, config.mask_path) if config.fill == "clouds" else None
        facts = predict_pair(models, pair, paths, config, start, mask)
    return {**facts, "output_path": str(output_path)}
