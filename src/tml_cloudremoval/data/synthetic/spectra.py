"""Spectra and backscatter of the synthetic sample data, by band and polarisation name.

Top-of-atmosphere reflectance (L1C-like, path radiance included) per land-cover class, of
senescent vegetation, thick cloud, cirrus and shadow darkening, as 13-band arrays in S2 file
order (``S2_BAND_NAMES``); Sentinel-1 backscatter per class in dB (VV, VH); seasonal vegetation
vigour. No kedro import here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tml_cloudremoval.bands import OPTICAL_RESOLUTION_M, S1_BAND_NAMES, S2_BAND_NAMES, S2_BANDS

SEASONS: tuple[str, ...] = (
    "ROIs1158_spring",
    "ROIs1868_summer",
    "ROIs1970_fall",
    "ROIs2017_winter",
)
"""The four SEN12MS-CR season folders (ROI set + season)."""

LAND_COVER_CLASSES: tuple[str, ...] = ("water", "vegetation", "bare_soil", "urban")
"""Land-cover class codes 0..3 of ``Ground.classes``."""

WATER, VEGETATION, BARE_SOIL, URBAN = range(len(LAND_COVER_CLASSES))


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

TEXTURE_AMPLITUDE = np.array([0.04, 0.08, 0.10, 0.12], dtype=np.float32)
"""Relative brightness variation within each land-cover class (water, vegetation, soil, urban)."""

# --- Sentinel-1 backscatter per class in dB, by polarisation name ---
_CLASS_SAR_DB_BY_NAME: dict[str, dict[str, float]] = {
    "water": {"VV": -20.0, "VH": -27.0},
    "vegetation": {"VV": -10.0, "VH": -16.0},
    "bare_soil": {"VV": -12.5, "VH": -20.0},
    "urban": {"VV": -6.0, "VH": -12.5},
}
SAR_TEXTURE_DB = np.array([2.0, 1.0, 1.3, 1.5], dtype=np.float32)
"""dB of backscatter per unit of the shared texture field (water: wind roughening)."""

SEASON_VIGOUR: dict[str, float] = {"spring": 0.8, "summer": 1.0, "fall": 0.6, "winter": 0.35}
"""Share of green (vs senescent) vegetation per season."""


def _spectrum(table: Mapping[str, float], default: float | None = None) -> np.ndarray:
    """A {band name: value} table -> float32 (13,) in S2 file order (``S2_BAND_NAMES``)."""
    if default is None:
        missing = [name for name in S2_BAND_NAMES if name not in table]
        if missing:
            raise ValueError(f"spectrum table lacks bands {missing}")
        return np.array([table[name] for name in S2_BAND_NAMES], dtype=np.float32)
    return np.array([table.get(name, default) for name in S2_BAND_NAMES], dtype=np.float32)


CLASS_SPECTRA = np.stack([_spectrum(_CLASS_SPECTRA_BY_NAME[c]) for c in LAND_COVER_CLASSES])
DRY_VEGETATION = _spectrum(_DRY_VEGETATION_BY_NAME)
THICK_CLOUD = _spectrum(_THICK_CLOUD_BY_NAME)
CIRRUS = _spectrum(_CIRRUS_BY_NAME)
SHADOW_DARKENING = _spectrum(_SHADOW_DARKENING_BY_NAME)
TEXTURE_WEIGHT = _spectrum(_TEXTURE_WEIGHT_BY_NAME, default=1.0)
CLASS_SAR_DB = np.array(
    [[_CLASS_SAR_DB_BY_NAME[c][p] for p in S1_BAND_NAMES] for c in LAND_COVER_CLASSES],
    dtype=np.float32,
)
BLUR_SIGMA_PX = np.array(
    [0.42 * band.resolution_m / OPTICAL_RESOLUTION_M for band in S2_BANDS], dtype=np.float32
)
"""Gaussian sigma (10 m px) per band: 20 m and 60 m bands are resampled to 10 m, so blurrier."""


SEASON_NAMES: tuple[str, ...] = tuple(SEASON_VIGOUR)
"""The seasons the generator knows (``spring``, ``summer``, ``fall``, ``winter``)."""


def season_of(season_folder: str) -> str:
    """Season of a SEN12MS-CR season folder name, e.g. "ROIs1970_fall" -> "fall"."""
    season = season_folder.rsplit("_", 1)[-1].lower()
    if season not in SEASON_VIGOUR:
        raise ValueError(
            f"season folder {season_folder!r} does not end in one of {sorted(SEASON_VIGOUR)}"
        )
    return season
