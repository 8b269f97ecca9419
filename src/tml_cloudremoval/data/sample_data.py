"""Synthetic sample data: a SEN12MS-CR dataset in the official layout and a sample TML scene.

The project ships without real imagery; this module makes a small, seeded, *learnable* stand-in
so that every pipeline runs end to end on a fresh checkout.

Ground truth is a land-cover map (water, vegetation, bare soil, urban) drawn from smooth random
fields, with a 13-band top-of-atmosphere spectrum per class (built by band name, see
``tml_cloudremoval.bands``), within-class texture and seasonal vegetation vigour. Sentinel-1
backscatter is tied to the same land cover and texture (water dark, urban bright, VH below VV) and
carries gamma speckle, so SAR tells a model what lies under a cloud. The cloudy acquisition is the
same ground with a small radiometric change, soft-edged thick clouds, thin cirrus (bright in
B1, B2, B10 and the visible bands) and cloud shadows displaced from the clouds (darkest in NIR and
SWIR), as the Meraner/Schmitt detector in ``tml_cloudremoval.data.cloud_mask`` expects them.

Units: optical reflectance in [0, ~1] internally, written as uint16 DN = reflectance x 10000;
SAR in dB (float32). Arrays are channels_last (H, W, C). No kedro import here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine
from scipy import fft, ndimage

from tml_cloudremoval.bands import (
    OPTICAL_RESOLUTION_M,
    S1_BAND_NAMES,
    S2_BAND_NAMES,
    S2_BANDS,
    SAR_FACTOR,
    TML_BAND_NAMES,
    band_indices,
)
from tml_cloudremoval.normalise import REFLECTANCE_SCALE
from tml_cloudremoval.raster import write_geotiff_atomic

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
"""Bumped whenever the generated content changes: an older manifest then no longer matches."""

MANIFEST_NAME = "manifest.json"
"""Written last into the dataset root; lists the settings and every file the generator wrote."""

SEASONS: tuple[str, ...] = (
    "ROIs1158_spring",
    "ROIs1868_summer",
    "ROIs1970_fall",
    "ROIs2017_winter",
)
"""The four SEN12MS-CR season folders (ROI set + season)."""

TML_SCENE_FILES: dict[str, str] = {
    "s2_cloudy": "s2_cloudy.tif",
    "s1": "s1.tif",
    "s2_clear": "s2_clear.tif",
}
"""File names of the sample TML scene inside its root folder."""

LAND_COVER_CLASSES: tuple[str, ...] = ("water", "vegetation", "bare_soil", "urban")
"""Land-cover class codes 0..3 of ``Ground.classes``."""

WATER, VEGETATION, BARE_SOIL, URBAN = range(len(LAND_COVER_CLASSES))

_KIND_SEN12MSCR = "sen12mscr"
_KIND_TML_SCENE = "tml_scene"

# --- spectra: top-of-atmosphere reflectance per band name (L1C-like, path radiance included) ---
_CLASS_SPECTRA_BY_NAME: dict[str, dict[str, float]] = {
    "water": {
        "B1": 0.128, "B2": 0.100, "B3": 0.080, "B4": 0.056, "B5": 0.046, "B6": 0.036,
        "B7": 0.033, "B8": 0.028, "B8A": 0.025, "B9": 0.010, "B10": 0.0015, "B11": 0.012,
        "B12": 0.008,
    },
    "vegetation": {
        "B1": 0.132, "B2": 0.104, "B3": 0.094, "B4": 0.068, "B5": 0.115, "B6": 0.235,
        "B7": 0.290, "B8": 0.310, "B8A": 0.325, "B9": 0.130, "B10": 0.0025, "B11": 0.170,
        "B12": 0.088,
    },
    "bare_soil": {
        "B1": 0.142, "B2": 0.128, "B3": 0.140, "B4": 0.165, "B5": 0.190, "B6": 0.210,
        "B7": 0.225, "B8": 0.240, "B8A": 0.255, "B9": 0.100, "B10": 0.0030, "B11": 0.300,
        "B12": 0.235,
    },
    "urban": {
        "B1": 0.145, "B2": 0.135, "B3": 0.136, "B4": 0.140, "B5": 0.152, "B6": 0.165,
        "B7": 0.175, "B8": 0.185, "B8A": 0.190, "B9": 0.075, "B10": 0.0030, "B11": 0.215,
        "B12": 0.185,
    },
}  # fmt: skip

_DRY_VEGETATION_BY_NAME: dict[str, float] = {
    "B1": 0.135, "B2": 0.112, "B3": 0.110, "B4": 0.118, "B5": 0.150, "B6": 0.180, "B7": 0.198,
    "B8": 0.210, "B8A": 0.220, "B9": 0.090, "B10": 0.0025, "B11": 0.255, "B12": 0.185,
}  # fmt: skip
"""Senescent vegetation: what the vegetation class fades towards outside the growing season."""

_THICK_CLOUD_BY_NAME: dict[str, float] = {
    "B1": 0.52, "B2": 0.50, "B3": 0.49, "B4": 0.49, "B5": 0.50, "B6": 0.51, "B7": 0.51,
    "B8": 0.50, "B8A": 0.50, "B9": 0.22, "B10": 0.035, "B11": 0.38, "B12": 0.27,
}  # fmt: skip
"""Optically thick low cloud: bright and flat over VNIR, a little darker in SWIR."""

_CIRRUS_BY_NAME: dict[str, float] = {
    "B1": 0.32, "B2": 0.30, "B3": 0.29, "B4": 0.28, "B5": 0.28, "B6": 0.28, "B7": 0.28,
    "B8": 0.27, "B8A": 0.27, "B9": 0.10, "B10": 0.14, "B11": 0.22, "B12": 0.18,
}  # fmt: skip
"""Thin high ice cloud (cirrus): the one that lights up B10."""

_SHADOW_DARKENING_BY_NAME: dict[str, float] = {
    "B1": 0.25, "B2": 0.35, "B3": 0.45, "B4": 0.50, "B5": 0.55, "B6": 0.62, "B7": 0.64,
    "B8": 0.66, "B8A": 0.66, "B9": 0.60, "B10": 0.0, "B11": 0.70, "B12": 0.70,
}  # fmt: skip
"""Fraction of the ground signal a full shadow removes (diffuse sky light keeps the blue)."""

_TEXTURE_WEIGHT_BY_NAME: dict[str, float] = {"B1": 0.3, "B9": 0.6, "B10": 0.2}
"""How strongly ground texture shows per band (atmosphere-dominated bands show less); default 1."""

_TEXTURE_AMPLITUDE = np.array([0.04, 0.08, 0.10, 0.12], dtype=np.float32)
"""Relative brightness variation within each land-cover class (water, vegetation, soil, urban)."""

# --- Sentinel-1 backscatter per class in dB, by polarisation name ---
_CLASS_SAR_DB_BY_NAME: dict[str, dict[str, float]] = {
    "water": {"VV": -20.0, "VH": -27.0},
    "vegetation": {"VV": -10.0, "VH": -16.0},
    "bare_soil": {"VV": -12.5, "VH": -20.0},
    "urban": {"VV": -6.0, "VH": -12.5},
}
_SAR_TEXTURE_DB = np.array([2.0, 1.0, 1.3, 1.5], dtype=np.float32)
"""dB of backscatter per unit of the shared texture field (water: wind roughening)."""

_SEASON_VIGOUR: dict[str, float] = {"spring": 0.8, "summer": 1.0, "fall": 0.6, "winter": 0.35}
"""Share of green (vs senescent) vegetation per season."""


def _spectrum(table: Mapping[str, float], default: float | None = None) -> np.ndarray:
    """A {band name: value} table -> float32 (13,) in S2 file order (``S2_BAND_NAMES``)."""
    if default is None:
        missing = [name for name in S2_BAND_NAMES if name not in table]
        if missing:
            raise ValueError(f"spectrum table lacks bands {missing}")
        return np.array([table[name] for name in S2_BAND_NAMES], dtype=np.float32)
    return np.array([table.get(name, default) for name in S2_BAND_NAMES], dtype=np.float32)


_CLASS_SPECTRA = np.stack([_spectrum(_CLASS_SPECTRA_BY_NAME[c]) for c in LAND_COVER_CLASSES])
_DRY_VEGETATION = _spectrum(_DRY_VEGETATION_BY_NAME)
_THICK_CLOUD = _spectrum(_THICK_CLOUD_BY_NAME)
_CIRRUS = _spectrum(_CIRRUS_BY_NAME)
_SHADOW_DARKENING = _spectrum(_SHADOW_DARKENING_BY_NAME)
_TEXTURE_WEIGHT = _spectrum(_TEXTURE_WEIGHT_BY_NAME, default=1.0)
_CLASS_SAR_DB = np.array(
    [[_CLASS_SAR_DB_BY_NAME[c][p] for p in S1_BAND_NAMES] for c in LAND_COVER_CLASSES],
    dtype=np.float32,
)
_BLUR_SIGMA_PX = np.array(
    [0.42 * band.resolution_m / OPTICAL_RESOLUTION_M for band in S2_BANDS], dtype=np.float32
)
"""Gaussian sigma (10 m px) per band: 20 m and 60 m bands are resampled to 10 m, so blurrier."""


# ----------------------------------------------------------------------------------------------
# random fields and ground
# ----------------------------------------------------------------------------------------------
def season_of(season_folder: str) -> str:
    """Season of a SEN12MS-CR season folder name, e.g. "ROIs1970_fall" -> "fall"."""
    season = season_folder.rsplit("_", 1)[-1].lower()
    if season not in _SEASON_VIGOUR:
        raise ValueError(
            f"season folder {season_folder!r} does not end in one of {sorted(_SEASON_VIGOUR)}"
        )
    return season


def fractal_field(
    rng: np.random.Generator, shape: tuple[int, int], scale_px: float, roughness: float = 1.0
) -> np.ndarray:
    """Smooth random field, float32 (H, W), mean 0 and standard deviation 1.

    White noise filtered in the Fourier domain by (1 + (2 pi f scale_px)^2)^-roughness: features
    of about ``scale_px`` pixels, finer detail fading faster for larger ``roughness``
    (1 = terrain-like, 0.75 = cloud-like ragged edges). The field is periodic over ``shape``.
    """
    h, w = int(shape[0]), int(shape[1])
    fh, fw = fft.next_fast_len(h, real=True), fft.next_fast_len(w, real=True)
    spectrum = fft.rfft2(unit_noise(rng, (fh, fw)), workers=1)
    fy = fft.fftfreq(fh).astype(np.float32)[:, None]
    fx = fft.rfftfreq(fw).astype(np.float32)[None, :]
    k2 = (fy * fy + fx * fx) * np.float32((2.0 * math.pi * scale_px) ** 2)
    spectrum *= (1.0 + k2) ** np.float32(-roughness)
    spectrum[0, 0] = 0.0
    field = fft.irfft2(spectrum, s=(fh, fw), workers=1)[:h, :w].astype(np.float32)
    field -= field.mean(dtype=np.float64)  # the crop to (h, w) moves mean and spread a little
    std = float(field.std(dtype=np.float64))
    field /= np.float32(std if std > 0 else 1.0)
    return field


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 on x clipped to [0, 1]: a soft edge."""
    x = np.clip(x, 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


@dataclass(frozen=True)
class Ground:
    """The cloud-free surface of a scene.

    Attributes:
        classes: uint8 (H, W), land-cover code (index into ``LAND_COVER_CLASSES``).
        reflectance: float32 (H, W, C), top-of-atmosphere reflectance of ``band_names``.
        texture: float32 (H, W), within-class brightness/roughness field (std 1), shared by SAR.
        vigour: float32 (H, W), vegetation vigour field (std 1), shared by SAR.
        season: "spring" | "summer" | "fall" | "winter".
    """

    classes: np.ndarray
    reflectance: np.ndarray
    texture: np.ndarray
    vigour: np.ndarray
    season: str
    band_names: tuple[str, ...] = S2_BAND_NAMES


def synthesize_ground(
    rng: np.random.Generator,
    shape: tuple[int, int],
    season: str,
    scale_px: float = 40.0,
    band_names: Sequence[str] = S2_BAND_NAMES,
) -> Ground:
    """Land cover + reflectance (H, W, len(band_names)) for a (H, W) grid of 10 m pixels.

    Classes come from the arg-max of one smooth field per class plus a random per-scene bias (so
    class shares vary between scenes); ``scale_px`` is the typical size of a land-cover region.
    """
    if season not in _SEASON_VIGOUR:
        raise ValueError(f"season {season!r} is not one of {sorted(_SEASON_VIGOUR)}")
    region_scale = (1.6, 1.0, 1.0, 0.5)  # lakes larger, urban blocks smaller
    bias = (
        rng.normal(-0.9, 0.5),
        rng.normal(0.4, 0.4),
        rng.normal(0.0, 0.4),
        rng.normal(-0.7, 0.5),
    )
    score = np.stack(
        [
            fractal_field(rng, shape, scale_px * s, roughness=1.0) + np.float32(b)
            for s, b in zip(region_scale, bias, strict=True)
        ]
    )
    classes = np.argmax(score, axis=0).astype(np.uint8)
    del score
    texture = fractal_field(rng, shape, scale_px / 4.0, roughness=0.9)
    vigour = fractal_field(rng, shape, scale_px / 2.0, roughness=1.0)
    fine = unit_noise(rng, shape)  # 10 m detail the SAR does not carry

    relief = _TEXTURE_AMPLITUDE[classes] * texture  # relative brightness, per class amplitude
    green = np.clip(_SEASON_VIGOUR[season] + 0.2 * vigour, 0.0, 1.0)
    is_vegetation = classes == VEGETATION
    relief += np.float32(0.025) * fine
    positions = _band_positions(band_names)
    reflectance = np.empty((*shape, len(positions)), dtype=np.float32)
    for i, k in enumerate(positions):
        band = _CLASS_SPECTRA[:, k][classes]
        band[is_vegetation] = (
            green[is_vegetation] * _CLASS_SPECTRA[VEGETATION, k]
            + (1.0 - green[is_vegetation]) * _DRY_VEGETATION[k]
        )
        band *= np.float32(1.0) + _TEXTURE_WEIGHT[k] * relief
        reflectance[..., i] = ndimage.gaussian_filter(band, float(_BLUR_SIGMA_PX[k]))
    return Ground(classes, reflectance, texture, vigour, season, tuple(band_names))


def unit_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform noise with mean 0 and variance 1, float32 ``shape`` (several times cheaper to draw
    than Gaussian noise, and indistinguishable as sensor noise)."""
    noise = rng.random(shape, dtype=np.float32)
    noise -= np.float32(0.5)
    noise *= np.float32(math.sqrt(12.0))
    return noise


def _band_positions(band_names: Sequence[str]) -> list[int]:
    return band_indices(band_names, S2_BAND_NAMES)


def observe_optical(
    rng: np.random.Generator,
    reflectance: np.ndarray,
    gain_sigma: float = 0.0,
    noise: float = 0.002,
) -> np.ndarray:
    """One acquisition of the ground: per-band gain ~ N(1, gain_sigma) and additive noise.

    reflectance: float32 (H, W, C), any bands; returns a new float32 (H, W, C) array.
    """
    gains = rng.normal(1.0, gain_sigma, reflectance.shape[-1]).astype(np.float32)
    out = reflectance * gains
    out += np.float32(noise) * unit_noise(rng, out.shape)
    return out


def reflectance_to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance -> uint16 DN (x 10000), rounded, clipped to [1, 65535] (0 is kept for nodata)."""
    dn = np.asarray(reflectance, dtype=np.float32) * np.float32(REFLECTANCE_SCALE)
    np.clip(dn, np.float32(1.0), np.float32(np.iinfo(np.uint16).max), out=dn)
    dn += np.float32(0.5)  # round half up on the way to integers
    return dn.astype(np.uint16)


# ----------------------------------------------------------------------------------------------
# SAR
# ----------------------------------------------------------------------------------------------
def sar_backscatter_linear(rng: np.random.Generator, ground: Ground) -> np.ndarray:
    """Speckle-free backscatter (sigma0, linear power), float32 (H, W, 2) in (VV, VH) order.

    Class level (water dark, vegetation mid, urban bright, VH below VV) plus the texture and
    vigour fields of ``ground`` (so SAR carries the within-class variation a model must restore),
    a seasonal shift for vegetation and a few strong point scatterers in urban areas.
    """
    classes = ground.classes
    db = _CLASS_SAR_DB[classes]  # (H, W, 2)
    db += (_SAR_TEXTURE_DB[classes] * ground.texture)[..., None] * np.float32([1.0, 0.8])
    is_vegetation = classes == VEGETATION
    season_shift = 2.0 * (_SEASON_VIGOUR[ground.season] - 0.7)
    for channel, per_vigour in enumerate((0.6, 1.5)):  # VV, VH: VH reacts more to volume
        db[..., channel] += np.where(
            is_vegetation, np.float32(per_vigour) * ground.vigour + np.float32(season_shift), 0.0
        ).astype(np.float32)
    scatterers = (classes == URBAN) & (rng.random(classes.shape, dtype=np.float32) < 0.03)
    db[scatterers] += rng.uniform(5.0, 12.0, (int(scatterers.sum()), 1)).astype(np.float32)
    return np.power(np.float32(10.0), db / np.float32(10.0)).astype(np.float32)


def speckle_db(rng: np.random.Generator, linear: np.ndarray, looks: float) -> np.ndarray:
    """Multiplicative gamma speckle (mean 1, ``looks`` equivalent looks) then dB, float32."""
    speckled = linear * rng.gamma(looks, 1.0 / looks, linear.shape).astype(np.float32)
    return (10.0 * np.log10(np.maximum(speckled, np.float32(1e-6)))).astype(np.float32)


def add_nan_pixels(rng: np.random.Generator, sar_db: np.ndarray, fraction: float) -> np.ndarray:
    """Set about ``fraction`` of the pixels (at least one) of (H, W, C) to NaN in all channels."""
    h, w = sar_db.shape[:2]
    n = max(1, round(fraction * h * w))
    flat = rng.choice(h * w, size=min(n, h * w), replace=False)
    sar_db[np.unravel_index(flat, (h, w))] = np.nan
    return sar_db


# ----------------------------------------------------------------------------------------------
# clouds
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CloudLayers:
    """Cloud layers of one acquisition, each float32 (H, W) in [0, 1].

    opacity: thick cloud (1 = opaque); cirrus: thin cloud opacity; shadow: shadow strength
    (fraction of the darkening ``_SHADOW_DARKENING`` applied).
    """

    opacity: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray

    def cloud(self, threshold: float = 0.5) -> np.ndarray:
        """bool (H, W): thick cloud at least ``threshold`` opaque."""
        return self.opacity >= threshold

    def shadow_only(self, threshold: float = 0.3) -> np.ndarray:
        """bool (H, W): visible shadow (strength >= threshold, hardly any cloud on top)."""
        return (self.shadow >= threshold) & (self.opacity < 0.2)


def synthesize_clouds(
    rng: np.random.Generator,
    shape: tuple[int, int],
    cover: float,
    *,
    scale_px: float = 48.0,
    thin_probability: float = 0.5,
    shadow_offset_px: tuple[int, int] = (20, 20),
    edge_softness: float = 0.8,
) -> CloudLayers:
    """Thick clouds covering ``cover`` of the grid (opacity >= 0.5), optional cirrus, shadows.

    The thick-cloud field is drawn on a grid padded by the shadow offset, so that a shadow at
    pixel p is the (attenuated) opacity at p - shadow_offset_px: shadows of clouds just outside
    the patch fall inside it, as in real images. ``edge_softness`` is the width of the soft edge
    in standard deviations of the field.
    """
    h, w = shape
    dy, dx = (int(v) for v in shadow_offset_px)
    pad = max(abs(dy), abs(dx))
    field = fractal_field(rng, (h + 2 * pad, w + 2 * pad), scale_px, roughness=0.8)
    inner = field[pad : pad + h, pad : pad + w]
    if cover <= 0.0:
        opacity_padded = np.zeros_like(field)
    else:
        threshold = float(np.quantile(inner, 1.0 - min(cover, 1.0)))
        opacity_padded = _smoothstep((field - threshold) / edge_softness + 0.5)
    opacity = opacity_padded[pad : pad + h, pad : pad + w].copy()
    shadow = opacity_padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w] * np.float32(
        rng.uniform(0.75, 0.95)
    )
    if rng.random() < thin_probability:
        thin = fractal_field(rng, shape, 2.0 * scale_px, roughness=0.7)
        share = rng.uniform(0.2, 0.8)
        level = float(np.quantile(thin, 1.0 - share))
        cirrus = np.float32(rng.uniform(0.15, 0.45)) * _smoothstep(thin - level + 0.5)
    else:
        cirrus = np.zeros(shape, dtype=np.float32)
    return CloudLayers(opacity, cirrus.astype(np.float32), shadow.astype(np.float32))


def render_cloudy(
    rng: np.random.Generator,
    reflectance: np.ndarray,
    layers: CloudLayers,
    *,
    band_names: Sequence[str] = S2_BAND_NAMES,
    gain_sigma: float = 0.015,
    noise: float = 0.002,
) -> np.ndarray:
    """The cloudy acquisition of ``reflectance`` (float32 (H, W, C), bands ``band_names``).

    Ground with a small per-band gain change, darkened by the shadows, then overlaid by thick
    cloud (textured cloud tops) and cirrus by alpha compositing, plus sensor noise. Returns
    float32 (H, W, C) reflectance.
    """
    shape = reflectance.shape[:2]
    if reflectance.shape[-1] != len(band_names):
        raise ValueError(f"reflectance has {reflectance.shape[-1]} bands, names {band_names}")
    positions = _band_positions(band_names)
    gains = rng.normal(1.0, gain_sigma, len(positions)).astype(np.float32)
    tops = np.float32(0.88) + np.float32(0.06) * fractal_field(rng, shape, 6.0, roughness=0.8)
    thick = layers.opacity
    thick_tops = thick * np.clip(tops, np.float32(0.7), np.float32(1.05))
    clear_of_thick = np.float32(1.0) - thick
    clear_of_cirrus = np.float32(1.0) - layers.cirrus
    out = np.empty(reflectance.shape, dtype=np.float32)
    for i, k in enumerate(positions):
        band = reflectance[..., i] * (gains[i] * (1.0 - _SHADOW_DARKENING[k] * layers.shadow))
        band *= clear_of_thick
        band += _THICK_CLOUD[k] * thick_tops
        band *= clear_of_cirrus
        band += _CIRRUS[k] * layers.cirrus
        band += np.float32(noise) * unit_noise(rng, shape)
        out[..., i] = band
    return out


def _shadow_offset(
    rng: np.random.Generator, azimuth_rad: float, lo: float, hi: float
) -> tuple[int, int]:
    """(rows, cols) px a shadow lies from its cloud: distance U(lo, hi) along the sun azimuth."""
    distance = rng.uniform(lo, hi)
    return (round(distance * math.sin(azimuth_rad)), round(distance * math.cos(azimuth_rad)))


# ----------------------------------------------------------------------------------------------
# files, manifests
# ----------------------------------------------------------------------------------------------
SAMPLE_COMPRESSION: dict[str, Any] = {"compress": "zstd", "creation_options": {"zstd_level": 1}}
"""ZSTD level 1 with a predictor: about half the size of an uncompressed file at nearly the
write speed of none (GDAL >= 2.3 reads it); level 9, the default, is 10 x slower to write."""


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The generator's manifest in ``root``, or None where there is none (or it is unreadable)."""
    path = Path(root) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _complete(root: Path, kind: str, settings: Mapping[str, Any] | None = None) -> bool:
    manifest = read_manifest(root)
    if manifest is None or manifest.get("status") != "complete" or manifest.get("kind") != kind:
        return False
    if manifest.get("generator_version") != GENERATOR_VERSION:
        return False
    if settings is not None and manifest.get("settings") != settings:
        return False
    return all((root / f).is_file() for f in manifest.get("files", []))


def sample_dataset_exists(root: str | os.PathLike[str]) -> bool:
    """True where ``root`` holds a complete synthetic SEN12MS-CR dataset (any settings)."""
    return _complete(Path(root), _KIND_SEN12MSCR)


def sample_scene_exists(root: str | os.PathLike[str]) -> bool:
    """True where ``root`` holds a complete sample TML scene (any settings)."""
    return _complete(Path(root), _KIND_TML_SCENE)


def _jsonable(settings: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(settings)))


def _prepare_root(root: Path, kind: str, settings: dict[str, Any], files: list[str]) -> None:
    """Make ``root`` ready for a (re)write: refuse foreign content, drop stale generated files,
    and leave a manifest with status "writing" (so an interrupted run is recognised as ours)."""
    manifest = read_manifest(root)
    if manifest is None:
        foreign: list[str] = []
        if root.is_dir():
            foreign = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
        if foreign:
            raise FileExistsError(
                f"{root} already holds {foreign[:5]} but no {MANIFEST_NAME} of the sample "
                "generator: refusing to write synthetic data into it; choose another root or "
                "empty it"
            )
    elif manifest.get("kind") != kind:
        raise FileExistsError(
            f"{root / MANIFEST_NAME} describes a {manifest.get('kind')!r} sample, not {kind!r}"
        )
    else:
        keep = set(files)
        root_resolved = root.resolve()
        for rel in manifest.get("files", []):
            path = (root / rel).resolve()
            if rel in keep or root_resolved not in path.parents:
                continue
            path.unlink(missing_ok=True)
            for parent in path.parents:  # prune emptied folders below root
                if parent == root_resolved or root_resolved not in parent.parents:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break
    root.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(
        root / MANIFEST_NAME,
        {"kind": kind, "generator_version": GENERATOR_VERSION, "status": "writing",
         "settings": settings, "files": files},
    )  # fmt: skip


def _finish_root(
    root: Path, kind: str, settings: dict[str, Any], files: list[str], **extra: Any
) -> dict[str, Any]:
    manifest = {
        "kind": kind, "generator_version": GENERATOR_VERSION, "status": "complete",
        "settings": settings, "files": files, **extra,
    }  # fmt: skip
    _write_json_atomic(root / MANIFEST_NAME, manifest)
    return manifest


def _summary(root: Path, manifest: Mapping[str, Any], skipped: bool, seconds: float) -> dict:
    return {
        "kind": manifest["kind"],
        "root": str(root),
        "skipped": skipped,
        "seconds": round(seconds, 3),
        "n_files": len(manifest["files"]),
        **manifest.get("summary", {}),
        "settings": manifest["settings"],
    }


def _utm_origin(rng: np.random.Generator) -> tuple[CRS, float, float]:
    """A UTM zone (northern hemisphere, EPSG:326zz) and a 10 m aligned upper-left corner."""
    zone = int(rng.integers(1, 61))
    x0 = 10.0 * int(rng.integers(20_000, 75_000))  # 200-750 km easting
    y0 = 10.0 * int(rng.integers(100_000, 700_000))  # 1000-7000 km northing
    return CRS.from_epsg(32600 + zone), x0, y0


# ----------------------------------------------------------------------------------------------
# (A) synthetic SEN12MS-CR in the official layout
# ----------------------------------------------------------------------------------------------
def sen12mscr_relpaths(season: str, scene: int, patch: int) -> tuple[str, str, str]:
    """Official-layout relative paths (S1, S2, S2 cloudy) of one triplet."""
    return (
        f"{season}_s1/s1_{scene}/{season}_s1_{scene}_p{patch}.tif",
        f"{season}_s2/s2_{scene}/{season}_s2_{scene}_p{patch}.tif",
        f"{season}_s2_cloudy/s2_cloudy_{scene}/{season}_s2_cloudy_{scene}_p{patch}.tif",
    )


def _check_fraction(name: str, value: float, hi: float = 1.0) -> None:
    if not 0.0 <= value <= hi:
        raise ValueError(f"sample_data: {name}={value} must lie in [0, {hi}]")


def make_sen12mscr_sample(
    root: str | os.PathLike[str],
    *,
    seed: int,
    seasons: Sequence[str] = SEASONS,
    scenes_per_season: int = 3,
    patch_grid: Sequence[int] = (2, 3),
    patch_size: int = 256,
    patch_stride: int = 128,
    cloud_cover: Sequence[float] = (0.0, 0.9),
    thin_cloud_probability: float = 0.5,
    land_cover_scale_px: float = 40.0,
    cloud_scale_px: float = 48.0,
    shadow_distance_px: Sequence[float] = (12.0, 36.0),
    s1_looks: float = 4.4,
    s1_nan_fraction: float = 1e-4,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a synthetic SEN12MS-CR dataset in the official layout under ``root``.

    Per season folder, ``scenes_per_season`` scenes (ids 1..n), each a UTM-referenced area cut
    into a ``patch_grid`` (rows, cols) of ``patch_size`` px patches ``patch_stride`` px apart
    (128 of 256 = 50 % overlap, as in SEN12MS); patch ids p1..p<rows*cols> row by row.
    Per triplet: S1 (float32 dB, VV/VH, speckle, a few NaN), S2 (uint16 DN, 13 bands, clear) and
    S2 cloudy (same ground, thick + thin clouds covering U(cloud_cover) of the patch, shadows).
    One clear S2 and one S1 acquisition per scene (overlapping patches agree); clouds are drawn
    per patch, so cover varies between patches.

    Skips all work (returns the manifest summary with ``skipped: True``) when ``root`` already
    holds a complete dataset written with the same settings, unless ``overwrite``. Returns a small
    JSON-able summary.
    """
    t0 = time.perf_counter()
    root = Path(root)
    rows, cols = (int(v) for v in patch_grid)
    cover_lo, cover_hi = (float(v) for v in cloud_cover)
    shadow_lo, shadow_hi = (float(v) for v in shadow_distance_px)
    seasons = [str(s) for s in seasons]
    if not seasons:
        raise ValueError("sample_data: seasons is empty")
    for s in seasons:
        season_of(s)
    if scenes_per_season < 1 or rows < 1 or cols < 1:
        raise ValueError("sample_data: scenes_per_season and patch_grid entries must be >= 1")
    if patch_size < 4 * SAR_FACTOR or patch_size % SAR_FACTOR:
        raise ValueError(f"sample_data: patch_size={patch_size} must be a multiple of {SAR_FACTOR}")
    if not 1 <= patch_stride <= patch_size:
        raise ValueError(f"sample_data: patch_stride={patch_stride} must lie in [1, patch_size]")
    _check_fraction("cloud_cover[0]", cover_lo)
    _check_fraction("cloud_cover[1]", cover_hi)
    if cover_lo > cover_hi:
        raise ValueError(f"sample_data: cloud_cover {cloud_cover} is not (low, high)")
    _check_fraction("thin_cloud_probability", thin_cloud_probability)
    _check_fraction("s1_nan_fraction", s1_nan_fraction, 0.5)
    if not 0.0 <= shadow_lo <= shadow_hi or shadow_hi > patch_size:
        raise ValueError(f"sample_data: shadow_distance_px {shadow_distance_px} is not (low, high)")

    settings = _jsonable(
        {
            "seed": int(seed), "seasons": seasons, "scenes_per_season": int(scenes_per_season),
            "patch_grid": [rows, cols], "patch_size": int(patch_size),
            "patch_stride": int(patch_stride), "cloud_cover": [cover_lo, cover_hi],
            "thin_cloud_probability": float(thin_cloud_probability),
            "land_cover_scale_px": float(land_cover_scale_px),
            "cloud_scale_px": float(cloud_scale_px),
            "shadow_distance_px": [shadow_lo, shadow_hi], "s1_looks": float(s1_looks),
            "s1_nan_fraction": float(s1_nan_fraction),
        }
    )  # fmt: skip
    if not overwrite and _complete(root, _KIND_SEN12MSCR, settings):
        logger.info("Synthetic SEN12MS-CR sample in %s is up to date: nothing to do", root)
        return _summary(root, read_manifest(root) or {}, True, time.perf_counter() - t0)

    n_patches = rows * cols
    files = [
        rel
        for season in seasons
        for scene in range(1, scenes_per_season + 1)
        for patch in range(1, n_patches + 1)
        for rel in sen12mscr_relpaths(season, scene, patch)
    ]
    _prepare_root(root, _KIND_SEN12MSCR, settings, files)

    scene_shape = (patch_stride * (rows - 1) + patch_size, patch_stride * (cols - 1) + patch_size)
    res = float(OPTICAL_RESOLUTION_M)
    s2_names = list(S2_BAND_NAMES)
    triplets: list[dict[str, Any]] = []
    for season_index, season_folder in enumerate(seasons):
        season = season_of(season_folder)
        for scene in range(1, scenes_per_season + 1):
            rng = np.random.default_rng([int(seed), season_index, scene])
            crs, x0, y0 = _utm_origin(rng)
            ground = synthesize_ground(rng, scene_shape, season, land_cover_scale_px)
            clear = reflectance_to_dn(observe_optical(rng, ground.reflectance))
            sar = speckle_db(rng, sar_backscatter_linear(rng, ground), s1_looks)
            azimuth = rng.uniform(0.0, 2.0 * math.pi)  # one sun direction per scene
            scene_gain = rng.normal(1.0, 0.01, len(s2_names)).astype(np.float32)
            for r in range(rows):
                for c in range(cols):
                    patch = r * cols + c + 1
                    prng = np.random.default_rng([int(seed), season_index, scene, patch])
                    window = (
                        slice(r * patch_stride, r * patch_stride + patch_size),
                        slice(c * patch_stride, c * patch_stride + patch_size),
                    )
                    transform = Affine(
                        res,
                        0.0,
                        x0 + c * patch_stride * res,
                        0.0,
                        -res,
                        y0 - r * patch_stride * res,
                    )
                    cover = prng.uniform(cover_lo, cover_hi)
                    layers = synthesize_clouds(
                        prng,
                        (patch_size, patch_size),
                        cover,
                        scale_px=cloud_scale_px,
                        thin_probability=thin_cloud_probability,
                        shadow_offset_px=_shadow_offset(prng, azimuth, shadow_lo, shadow_hi),
                    )
                    cloudy = reflectance_to_dn(
                        render_cloudy(prng, ground.reflectance[window] * scene_gain, layers)
                    )
                    s1 = add_nan_pixels(prng, sar[window].copy(), s1_nan_fraction)
                    rel_s1, rel_s2, rel_cloudy = sen12mscr_relpaths(season_folder, scene, patch)
                    common = {"crs": crs, "transform": transform, "tiled": False}
                    common.update(SAMPLE_COMPRESSION)
                    write_geotiff_atomic(root / rel_s1, s1, descriptions=S1_BAND_NAMES, **common)
                    write_geotiff_atomic(
                        root / rel_s2, clear[window], descriptions=s2_names, **common
                    )
                    write_geotiff_atomic(root / rel_cloudy, cloudy, descriptions=s2_names, **common)
                    triplets.append(
                        {
                            "scene_id": f"{season_folder}_{scene}",
                            "patch": f"p{patch}",
                            "cloud_fraction": round(float(layers.cloud().mean()), 4),
                            "shadow_fraction": round(float(layers.shadow_only().mean()), 4),
                            "crs": crs.to_string(),
                        }
                    )
    fractions = np.array([t["cloud_fraction"] for t in triplets])
    summary = {
        "n_triplets": len(triplets),
        "n_scenes": len(seasons) * scenes_per_season,
        "seasons": seasons,
        "patch_size": int(patch_size),
        "cloud_fraction": {
            "min": round(float(fractions.min()), 4),
            "mean": round(float(fractions.mean()), 4),
            "max": round(float(fractions.max()), 4),
        },
    }
    manifest = _finish_root(
        root, _KIND_SEN12MSCR, settings, files, summary=summary, triplets=triplets
    )
    seconds = time.perf_counter() - t0
    logger.info(
        "Wrote %d synthetic SEN12MS-CR triplets to %s in %.1f s", len(triplets), root, seconds
    )
    return _summary(root, manifest, False, seconds)


# ----------------------------------------------------------------------------------------------
# (B) sample TML scene
# ----------------------------------------------------------------------------------------------
def swath_valid_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """bool (H, W): False left of a slanted, slightly ragged swath edge (about 17 % of the area),
    as the edge of a Sentinel-2 orbit crossing a tile looks."""
    h, w = shape
    y = np.arange(h, dtype=np.float32) / max(h - 1, 1)
    ragged = np.cumsum(rng.normal(0.0, 0.4, h)).astype(np.float32)
    ragged -= np.linspace(0.0, float(ragged[-1]), h, dtype=np.float32)  # bridge: no drift
    edge = w * (0.28 - 0.22 * y) + ragged + rng.integers(-1, 2, h)
    return np.arange(w, dtype=np.float32)[None, :] >= edge[:, None]


def make_tml_scene(
    root: str | os.PathLike[str],
    *,
    seed: int,
    height: int = 1500,
    width: int = 1500,
    season: str = "summer",
    cloud_cover: float = 0.35,
    thin_cloud_probability: float = 1.0,
    land_cover_scale_px: float = 60.0,
    cloud_scale_px: float = 120.0,
    shadow_distance_px: Sequence[float] = (25.0, 45.0),
    s1_offset_px: Sequence[int] = (6, 9),
    s1_looks: float = 4.4,
    nodata_edge: bool = True,
    write_clear: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a sample TML scene under ``root``: ``s2_cloudy.tif``, ``s1.tif``, ``s2_clear.tif``.

    s2_cloudy / s2_clear: (height, width) px at 10 m, the 10 TML bands (``TML_BAND_NAMES``) as
    uint16 DN, nodata 0 left of a slanted swath edge (``nodata_edge``), UTM (EPSG:32632),
    tiled 256 x 256, ZSTD-compressed. s1: VV, VH in dB (float32, nodata NaN) on a 40 m grid whose
    origin lies ``s1_offset_px`` (rows, cols) 10 m pixels up/left of the S2 origin (so its cells
    do not line up with 4 x 4 blocks of S2 unless both offsets are multiples of 4) and which covers
    the S2 extent with a margin; cells wholly outside the S2 extent on the top/left are NaN.
    Skips the work when ``root`` holds the same scene already (unless ``overwrite``).
    """
    t0 = time.perf_counter()
    root = Path(root)
    oy, ox = (int(v) for v in s1_offset_px)
    shadow_lo, shadow_hi = (float(v) for v in shadow_distance_px)
    if height < 4 * SAR_FACTOR or width < 4 * SAR_FACTOR:
        raise ValueError(f"sample_data: scene size {height} x {width} is too small (min 16 px)")
    if oy < 0 or ox < 0:
        raise ValueError(f"sample_data: s1_offset_px {s1_offset_px} must be >= 0 (rows, cols)")
    season_of(f"x_{season}")
    _check_fraction("cloud_cover", cloud_cover)
    _check_fraction("thin_cloud_probability", thin_cloud_probability)
    settings = _jsonable(
        {
            "seed": int(seed), "height": int(height), "width": int(width), "season": season,
            "cloud_cover": float(cloud_cover),
            "thin_cloud_probability": float(thin_cloud_probability),
            "land_cover_scale_px": float(land_cover_scale_px),
            "cloud_scale_px": float(cloud_scale_px),
            "shadow_distance_px": [shadow_lo, shadow_hi], "s1_offset_px": [oy, ox],
            "s1_looks": float(s1_looks), "nodata_edge": bool(nodata_edge),
            "write_clear": bool(write_clear),
        }
    )  # fmt: skip
    if not overwrite and _complete(root, _KIND_TML_SCENE, settings):
        logger.info("Sample TML scene in %s is up to date: nothing to do", root)
        return _summary(root, read_manifest(root) or {}, True, time.perf_counter() - t0)

    files = [TML_SCENE_FILES["s2_cloudy"], TML_SCENE_FILES["s1"]]
    if write_clear:
        files.append(TML_SCENE_FILES["s2_clear"])
    _prepare_root(root, _KIND_TML_SCENE, settings, files)

    rng = np.random.default_rng([int(seed), 1_000_003])  # a stream apart from part (A)
    n_s1 = (
        -(-(height + oy + SAR_FACTOR) // SAR_FACTOR),
        -(-(width + ox + SAR_FACTOR) // SAR_FACTOR),
    )
    extended = (n_s1[0] * SAR_FACTOR, n_s1[1] * SAR_FACTOR)  # 10 m grid under the S1 grid
    ground = synthesize_ground(rng, extended, season, land_cover_scale_px, TML_BAND_NAMES)
    inside = (slice(oy, oy + height), slice(ox, ox + width))
    reflectance = ground.reflectance[inside]

    crs = CRS.from_epsg(32632)
    res = float(OPTICAL_RESOLUTION_M)
    x0 = 399_960.0 + res * int(rng.integers(0, 5_000))
    y0 = 5_300_040.0 - res * int(rng.integers(0, 5_000))
    s2_transform = Affine(res, 0.0, x0, 0.0, -res, y0)
    s1_res = res * SAR_FACTOR
    s1_transform = Affine(s1_res, 0.0, x0 - ox * res, 0.0, -s1_res, y0 + oy * res)

    valid = swath_valid_mask(rng, (height, width)) if nodata_edge else None
    tml = TML_BAND_NAMES
    s2_kwargs = {"crs": crs, "transform": s2_transform, "descriptions": tml, "nodata": 0}
    s2_kwargs.update(SAMPLE_COMPRESSION)
    if write_clear:
        clear = reflectance_to_dn(observe_optical(rng, reflectance))
        if valid is not None:
            clear[~valid] = 0
        write_geotiff_atomic(root / TML_SCENE_FILES["s2_clear"], clear, **s2_kwargs)
        del clear
    azimuth = rng.uniform(0.0, 2.0 * math.pi)
    layers = synthesize_clouds(
        rng,
        (height, width),
        cloud_cover,
        scale_px=cloud_scale_px,
        thin_probability=thin_cloud_probability,
        shadow_offset_px=_shadow_offset(rng, azimuth, shadow_lo, shadow_hi),
    )
    cloudy = reflectance_to_dn(render_cloudy(rng, reflectance, layers, band_names=TML_BAND_NAMES))
    if valid is not None:
        cloudy[~valid] = 0
    write_geotiff_atomic(root / TML_SCENE_FILES["s2_cloudy"], cloudy, **s2_kwargs)
    del cloudy, reflectance

    linear = sar_backscatter_linear(rng, ground)  # (4 n_y, 4 n_x, 2) at 10 m
    linear = linear.reshape(n_s1[0], SAR_FACTOR, n_s1[1], SAR_FACTOR, 2).mean(axis=(1, 3))
    s1 = speckle_db(rng, linear, s1_looks * SAR_FACTOR**2 / 2.0)  # multilooked: ENL ~ 35
    s1[: oy // SAR_FACTOR] = np.nan  # S1 rows/cols wholly outside the S2 extent: no data
    s1[:, : ox // SAR_FACTOR] = np.nan
    write_geotiff_atomic(
        root / TML_SCENE_FILES["s1"],
        s1.astype(np.float32),
        crs=crs,
        transform=s1_transform,
        descriptions=S1_BAND_NAMES,
        nodata=float("nan"),
        **SAMPLE_COMPRESSION,
    )
    valid_px = np.ones((height, width), dtype=bool) if valid is None else valid
    summary = {
        "height": int(height),
        "width": int(width),
        "crs": crs.to_string(),
        "s1_shape": [int(n_s1[0]), int(n_s1[1])],
        "nodata_fraction": round(float(1.0 - valid_px.mean()), 4),
        "cloud_fraction": round(float(layers.cloud()[valid_px].mean()), 4),
        "shadow_fraction": round(float(layers.shadow_only()[valid_px].mean()), 4),
    }
    manifest = _finish_root(root, _KIND_TML_SCENE, settings, files, summary=summary)
    seconds = time.perf_counter() - t0
    logger.info(
        "Wrote the sample TML scene (%d x %d px) to %s in %.1f s", height, width, root, seconds
    )
    return _summary(root, manifest, False, seconds)
