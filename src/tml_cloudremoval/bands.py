"""Band tables: the one place that says which band is where.

Sentinel-2 L1C stacks in SEN12MS-CR hold 13 bands in ESA order; the TML data product keeps 10 of
them (no B1 aerosol, B9 water vapour, B10 cirrus). Sentinel-1 files hold VV then VH in dB.
Arrays are channels_last: (..., H, W, C).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Band:
    """One spectral band: name, description, native ground sampling distance in metres."""

    name: str
    description: str
    resolution_m: int


S2_BANDS: tuple[Band, ...] = (
    Band("B1", "coastal aerosol", 60),
    Band("B2", "blue", 10),
    Band("B3", "green", 10),
    Band("B4", "red", 10),
    Band("B5", "red edge 1", 20),
    Band("B6", "red edge 2", 20),
    Band("B7", "red edge 3", 20),
    Band("B8", "NIR", 10),
    Band("B8A", "narrow NIR", 20),
    Band("B9", "water vapour", 60),
    Band("B10", "SWIR cirrus", 60),
    Band("B11", "SWIR 1", 20),
    Band("B12", "SWIR 2", 20),
)
"""The 13 Sentinel-2 L1C bands in file order (SEN12MS-CR, ESA SAFE)."""

S2_BAND_NAMES: tuple[str, ...] = tuple(b.name for b in S2_BANDS)

TML_BAND_NAMES: tuple[str, ...] = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
"""The 10 optical bands of the TML product, in model order."""

TML_BANDS: tuple[Band, ...] = tuple(
    b for name in TML_BAND_NAMES for b in S2_BANDS if b.name == name
)

S1_BAND_NAMES: tuple[str, ...] = ("VV", "VH")
"""Sentinel-1 polarisations in file order (backscatter in dB)."""

RGB_BAND_NAMES: tuple[str, str, str] = ("B4", "B3", "B2")
"""True-colour composite, red-green-blue."""

SAR_RESOLUTION_M = 40
"""Ground sampling distance of the SAR the TML product carries (and the model sees)."""

OPTICAL_RESOLUTION_M = 10
"""Grid of the optical input and output."""

SAR_FACTOR = SAR_RESOLUTION_M // OPTICAL_RESOLUTION_M
"""10 m pixels per 40 m SAR pixel along each axis (4)."""


def band_indices(wanted: Sequence[str], available: Sequence[str] = S2_BAND_NAMES) -> list[int]:
    """0-based positions of ``wanted`` band names within ``available``.

    Raises ``ValueError`` naming every band that is missing.
    """
    lookup = {name.upper(): i for i, name in enumerate(available)}
    missing = [name for name in wanted if name.upper() not in lookup]
    if missing:
        raise ValueError(f"bands {missing} not among the available bands {list(available)}")
    return [lookup[name.upper()] for name in wanted]


def select_bands(
    image: np.ndarray, wanted: Sequence[str], available: Sequence[str] = S2_BAND_NAMES
) -> np.ndarray:
    """Pick bands by name from a channels_last image (..., H, W, C) -> (..., H, W, len(wanted))."""
    if image.shape[-1] != len(available):
        raise ValueError(
            f"image has {image.shape[-1]} bands in its last axis, expected {len(available)} "
            f"({', '.join(available)})"
        )
    return image[..., band_indices(wanted, available)]


def select_tml_bands(image: np.ndarray, available: Sequence[str] = S2_BAND_NAMES) -> np.ndarray:
    """13-band (or any named) Sentinel-2 stack (..., H, W, C) -> the 10 TML bands (..., H, W, 10).

    A stack that already holds exactly the TML bands (``available == TML_BAND_NAMES``) is returned
    as is.
    """
    if tuple(available) == TML_BAND_NAMES and image.shape[-1] == len(TML_BAND_NAMES):
        return image
    return select_bands(image, TML_BAND_NAMES, available)


def tml_band_indices(available: Sequence[str] = S2_BAND_NAMES) -> list[int]:
    """Positions of the TML bands within ``available`` (for windowed reads of selected bands)."""
    return band_indices(TML_BAND_NAMES, available)
