"""Content checks of SEN12MS-CR files: the pixels, band by band, before any store is built.

A header can be perfect while the pixels are unusable: an S1 band that is all NaN (nothing to
fill the gaps with), a band that holds one value everywhere (a fill value, not an image),
``inf``, or values no sensor delivers (S1 backscatter far outside the dB range of real
surfaces, S2 DN that are no top-of-atmosphere reflectance x 10000). :func:`content_faults`
names each fault by band; :func:`check_triplet_content` raises one :class:`DataError` naming
every faulty file and band of a triplet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tml_cloudremoval.bands import S1_BAND_NAMES, S2_BAND_NAMES
from tml_cloudremoval.data.errors import DataError

__all__ = [
    "EXPECTED_BANDS",
    "EXPECTED_DTYPES",
    "S1_DB_RANGE",
    "S2_DN_MAX",
    "S2_SATURATED",
    "check_triplet_content",
    "content_faults",
    "layout_faults",
    "shape_faults",
]

EXPECTED_BANDS: dict[str, int] = {
    "s1": len(S1_BAND_NAMES),
    "s2": len(S2_BAND_NAMES),
    "s2_cloudy": len(S2_BAND_NAMES),
}

EXPECTED_DTYPES: dict[str, tuple[str, ...]] = {
    "s1": ("float32", "float64"),
    "s2": ("uint16",),
    "s2_cloudy": ("uint16",),
}
"""Accepted file dtypes: S1 backscatter in dB (float), S2 DN = reflectance x 10000 (uint16)."""

LABELS: dict[str, str] = {"s1": "S1", "s2": "S2 (cloud-free)", "s2_cloudy": "S2 cloudy"}

S1_DB_RANGE: tuple[float, float] = (-100.0, 50.0)
"""Plausible S1 backscatter in dB (real surfaces: about -50 to +20 dB)."""

S2_DN_MAX = 30000
"""Largest plausible S2 L1C DN (TOA reflectance 3.0 x 10000); the real samples reach 26087."""

S2_SATURATED = 65535
"""The L1C saturation code: accepted (SEN12MS-CR patches hold saturated pixels; the optical
preprocessing clips to 10000 anyway)."""


def layout_faults(modality: str, count: int, dtype: str) -> list[str]:
    """Band count and dtype of one file against :data:`EXPECTED_BANDS` / :data:`EXPECTED_DTYPES`
    (the header check of validation and the pixel check of the build say the same)."""
    label = LABELS[modality]
    faults = []
    if count != EXPECTED_BANDS[modality]:
        faults.append(f"{label} file has {count} bands, expected {EXPECTED_BANDS[modality]}")
    if dtype not in EXPECTED_DTYPES[modality]:
        expected = " or ".join(EXPECTED_DTYPES[modality])
        faults.append(f"{label} file has dtype {dtype}, expected {expected}")
    return faults


def shape_faults(raw: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
    """Per modality: band count and dtype, and the size against the cloud-free S2's (equal,
    multiples of 4: the 40 m grid)."""
    height, width = np.shape(raw["s2"])[:2]
    faults: dict[str, list[str]] = {}
    for modality, image in raw.items():
        found = layout_faults(modality, image.shape[-1], str(image.dtype))
        h, w = image.shape[:2]
        if (h, w) != (height, width):
            found.append(
                f"size {w}x{h} (width x height) differs from its S2 partner's {width}x{height}"
            )
        elif h % 4 or w % 4:
            found.append(f"size {w}x{h} (width x height) is not a multiple of 4")
        faults[modality] = found
    return faults


def _band_names(modality: str, count: int) -> Sequence[str]:
    names = S1_BAND_NAMES if modality == "s1" else S2_BAND_NAMES
    return names if len(names) == count else [f"band {i + 1}" for i in range(count)]


def _float_band_faults(band: np.ndarray, low: float, high: float, unit: str) -> list[str]:
    finite = np.isfinite(band)
    faults = []
    n_inf = int(np.isinf(band).sum())
    if n_inf:
        faults.append(f"{n_inf} infinite value(s)")
    if not finite.any():
        return [*faults, "all NaN (no data)"]
    values = band[finite]
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        faults.append(f"constant (every pixel is {lo:g})")
    if lo < low or hi > high:
        faults.append(f"values {lo:g}..{hi:g}{unit} outside the plausible {low:g}..{high:g}{unit}")
    return faults


def _dn_band_faults(band: np.ndarray) -> list[str]:
    if np.issubdtype(band.dtype, np.floating):
        n_nan = int(np.isnan(band).sum())
        faults = [f"{n_nan} NaN value(s) (S2 DN are uint16: no NaN)"] if n_nan else []
        return faults + _float_band_faults(band, 0.0, float(S2_DN_MAX), " DN")
    lo, hi = int(band.min()), int(band.max())
    faults = [f"constant (every pixel is {lo})"] if lo == hi else []
    implausible = band[(band > S2_DN_MAX) & (band != S2_SATURATED)]
    if lo < 0 or implausible.size:
        top = int(implausible.max()) if implausible.size else hi
        faults.append(
            f"DN {min(lo, 0)}..{top} outside 0..{S2_DN_MAX} "
            f"({S2_SATURATED} = saturated is accepted)"
        )
    return faults


def _suspicious(modality: str, band: np.ndarray) -> bool:
    """True where a band may have a fault (its plain min and max tell, NaN propagating);
    the band functions then say what exactly is wrong."""
    lo, hi = band.min(), band.max()
    if np.issubdtype(band.dtype, np.floating):
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return True
        low, high = S1_DB_RANGE if modality == "s1" else (0.0, float(S2_DN_MAX))
    else:
        low, high = 0, S2_DN_MAX
    return bool(lo == hi or lo < low or hi > high)


def content_faults(modality: str, image: np.ndarray) -> list[str]:
    """Faults of one file's pixels ``(H, W, C)``, each ``"band <name>: <fault>"``.

    ``modality`` ``"s1"`` (dB, NaN allowed where some pixels are finite) or ``"s2"`` /
    ``"s2_cloudy"`` (DN). Per band: all NaN, ``inf``, constant, outside :data:`S1_DB_RANGE` or
    0..:data:`S2_DN_MAX` (DN 65535, saturation, is accepted). Empty: the pixels are usable.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.size == 0:
        return [f"pixels of shape {image.shape}, expected a non-empty (H, W, C) image"]
    faults = []
    names = _band_names(modality, image.shape[-1])
    # band-major copy: a band of a pixel-interleaved image is a strided view, slow to scan
    bands = np.ascontiguousarray(np.moveaxis(image, -1, 0))
    for name, band in zip(names, bands, strict=True):
        if not _suspicious(modality, band):
            continue
        if modality == "s1":
            found = _float_band_faults(band, *S1_DB_RANGE, " dB")
        else:
            found = _dn_band_faults(band)
        faults += [f"band {name.removeprefix('band ')}: {fault}" for fault in found]
    return faults


def check_triplet_content(row: Mapping[str, Any], raw: Mapping[str, np.ndarray]) -> None:
    """Raise one :class:`DataError` naming every file (paths ``row[<modality>_path]``) of the
    triplet whose arrays ``raw[modality]`` have :func:`shape_faults` or, where the shape is
    right, :func:`content_faults` (each naming the band)."""
    lines = []
    for modality, faults in shape_faults(raw).items():
        faults = faults or content_faults(modality, raw[modality])
        lines += [f"{row[f'{modality}_path']}: {fault}" for fault in faults]
    if lines:
        raise DataError(
            "unusable pixels (nothing was replaced; fix or remove the files, or run "
            "validate_triplets with data.on_bad_file=skip to leave them out):\n  "
            + "\n  ".join(lines)
        )
