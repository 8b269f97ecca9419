"""The per-scene cloud/shadow mask raster: from the detector, or from a mask the user supplies.

Values: uint8, 1 = cloud or shadow, 0 = clear, :data:`MASK_NODATA` (255) where unknown (input
nodata, or outside a user mask); on the scene's 10 m grid (CRS, transform, size).

Where it comes from (:func:`mask_source`, header facts only, so the plan can refuse a run that
needs a mask before any prediction):

- ``"detector"``: the optical input holds all 13 L1C bands (B1 and B10 included) that the
  Meraner / Schmitt detector needs (``data.cloud_mask.cloud_shadow_mask``, on the whole scene:
  its thresholds are image-adaptive, as in training);
- ``"mask_path"``: else ``inference.mask_path``, any grid overlapping the scene, reprojected
  nearest (nonzero = cloud/shadow; its nodata and the area it does not cover become 255);
- ``None``: else no mask (logged).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import Resampling, reproject

from tml_cloudremoval.bands import S2_BAND_NAMES, band_indices
from tml_cloudremoval.data.cloud_mask import DEFAULT_CLOUD_THRESHOLD, cloud_shadow_mask
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.reader import OpticalInfo, band_names_from_descriptions, nodata_mask
from tml_cloudremoval.raster import RasterError

logger = logging.getLogger(__name__)

MASK_NODATA = 255
"""Mask value where the mask is unknown."""

MASK_DESCRIPTION = "cloud_shadow (1 = cloud or shadow, 0 = clear)"


def detector_band_indexes(info: OpticalInfo) -> list[int] | None:
    """0-based positions of the 13 L1C bands (B1 ... B12) in the optical file, or None when it
    lacks any of them (a 10-band TML stack)."""
    header = info.header
    names = band_names_from_descriptions(header.descriptions)
    if names is None:
        return list(range(13)) if header.count == len(S2_BAND_NAMES) else None
    try:
        return band_indices(S2_BAND_NAMES, names)
    except ValueError:
        return None


def mask_source(info: OpticalInfo, mask_path: str | os.PathLike | None) -> str | None:
    """ "detector", "mask_path" or None: where this scene's mask comes from (module docstring)."""
    if detector_band_indexes(info) is not None:
        return "detector"
    return "mask_path" if mask_path is not None else None


def check_fill(pairs: list[Any], fill: str, mask_path: str | None) -> None:
    """Before any prediction: ``fill: clouds`` needs a mask for every scene; ``SceneError``
    naming the keys and every scene without one."""
    if fill != "clouds":
        return
    missing = [str(p.optical.path) for p in pairs if mask_source(p.optical, mask_path) is None]
    if missing:
        raise SceneError(
            "inference.fill: clouds needs a cloud/shadow mask, but neither the detector (13-band "
            f"input) nor inference.mask_path gives one for: {', '.join(missing)}"
        )


def detector_mask(
    info: OpticalInfo, cloud_threshold: float = DEFAULT_CLOUD_THRESHOLD
) -> np.ndarray:
    """The detector's mask of a 13-band scene: (H, W) uint8, 255 on input nodata."""
    indexes = detector_band_indexes(info)
    if indexes is None:
        raise SceneError(f"{info.path}: the cloud detector needs the 13 L1C bands B1 ... B12")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(info.path) as ds:
                dn = np.moveaxis(ds.read(indexes=[i + 1 for i in indexes]), 0, -1)
        except (RasterioError, OSError) as exc:
            raise RasterError(info.path, f"pixel data unreadable ({exc})") from exc
    bad = nodata_mask(dn, info.nodata)
    mask = cloud_shadow_mask(
        np.where(bad[..., None], 0, dn) if bad is not None else dn, cloud_threshold
    )
    if bad is not None:
        mask[bad] = MASK_NODATA
    return mask


def user_mask(mask_path: str | os.PathLike, info: OpticalInfo) -> np.ndarray:
    """A user's mask file on the scene grid (nearest): (H, W) uint8 0 / 1 / 255.

    ``SceneError`` naming ``inference.mask_path`` and the file when it is unreadable, has no
    georeferencing while the scene has, or does not overlap the scene.
    """
    path = Path(mask_path)
    out = np.full((info.height, info.width), MASK_NODATA, np.uint8)
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None and info.crs is not None:
                raise SceneError(f"inference.mask_path {path}: no CRS (the scene has one)")
            data = ds.read(1)
            known = np.ones(data.shape, bool) if ds.nodata is None else data != ds.nodata
            src = np.where(known, (data != 0).astype(np.uint8), MASK_NODATA).astype(np.uint8)
            reproject(
                src, out, src_transform=ds.transform, src_crs=ds.crs or info.crs,
                dst_transform=info.transform, dst_crs=info.crs, src_nodata=MASK_NODATA,
                dst_nodata=MASK_NODATA, resampling=Resampling.nearest,
            )  # fmt: skip
    except (RasterioError, OSError) as exc:
        raise SceneError(f"inference.mask_path {path}: not a readable raster ({exc})") from exc
    if (out == MASK_NODATA).all():
        raise SceneError(f"inference.mask_path {path}: does not overlap the scene {info.path}")
    return out


def scene_mask(info: OpticalInfo, mask_path: str | os.PathLike | None) -> np.ndarray | None:
    """The scene's mask (module docstring), or None (logged) when none can be had."""
    source = mask_source(info, mask_path)
    if source is None:
        logger.info(
            "%s: no cloud/shadow mask (not 13 bands for the detector, no inference.mask_path)",
            info.path.name,
        )
        return None
    mask = detector_mask(info) if source == "detector" else user_mask(mask_path, info)  # type: ignore[arg-type]
    logger.info(
        "%s: cloud/shadow mask from the %s: %.1f %% covered",
        info.path.name,
        "detector" if source == "detector" else f"mask {mask_path}",
        100.0 * float((mask == 1).mean()),
    )
    return mask


def write_mask(
    path: str | os.PathLike,
    mask: np.ndarray,
    info: OpticalInfo,
    tags: dict[str, str] | None = None,
    **writer: Any,
) -> None:
    """Write a mask (H, W) uint8 on the scene grid atomically (``SceneWriter``: COG by default;
    ``writer``: its options, e.g. ``output_format``, ``compress``; ``tags``: GeoTIFF metadata
    tags, e.g. the settings the resume compares)."""
    from tml_cloudremoval.inference.writer import SceneWriter

    with SceneWriter(
        path, info, dtype="uint8", nodata=MASK_NODATA, descriptions=[MASK_DESCRIPTION],
        dn_scale=False, **writer,
    ) as out:  # fmt: skip
        out.write_rows(0, mask[..., None])
        out.update_tags(**(tags or {}))


class CloudMask:
    """A scene's mask not yet computed: :meth:`write` computes and writes it (lazy product);
    ``tags``: GeoTIFF tags of the file (the resume's settings, ``inference.resume``)."""

    def __init__(
        self,
        info: OpticalInfo,
        mask_path: str | None,
        tags: dict[str, str] | None = None,
        **writer: Any,
    ) -> None:
        self.info, self.mask_path, self.tags, self.writer = info, mask_path, tags, writer

    @property
    def sources(self) -> tuple[Path, ...]:
        return (self.info.path,) + (() if self.mask_path is None else (Path(self.mask_path),))

    def write(self, path: str | os.PathLike) -> None:
        mask = scene_mask(self.info, self.mask_path)
        if mask is None:  # the node makes CloudMask only where mask_source is not None
            raise SceneError(f"{self.info.path}: no cloud/shadow mask can be made")
        write_mask(path, mask, self.info, self.tags, **self.writer)

    def __repr__(self) -> str:
        return f"CloudMask({self.info.path.name})"
