"""The TML layout: a folder of Sentinel-2 bands at their native 10 m and 20 m resolution.

The convention (either form; names case-insensitive, ``.tif`` or ``.tiff``)::

    <scene>/B02.tif B03.tif B04.tif B08.tif                 one band per file, 10 m
            B05.tif B06.tif B07.tif B8A.tif B11.tif B12.tif  one band per file, 20 m
    <scene>/s2_10m.tif   4 bands B2 B3 B4 B8 (in this order), 10 m
            s2_20m.tif   6 bands B5 B6 B7 B8A B11 B12 (in this order), 20 m
    <scene>/s1.tif       VV, VH in dB at 40 m (pass it as inference.s1_path)

Every 20 m file covers the 10 m grid exactly (same CRS and origin, half the rows and columns);
uint16 DN = reflectance x 10000 (or with the offset its tags state: ``RADIO_ADD_OFFSET`` and
``QUANTIFICATION_VALUE``, see :func:`tiff_metadata`), 0 = nodata. The 20 m bands come onto the
10 m grid with the same resampling as a ``.SAFE`` (:mod:`band_vrt`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from tml_cloudremoval.bands import TML_BAND_NAMES, TML_BANDS
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.products.band_vrt import BandFile
from tml_cloudremoval.inference.products.safe import ProductBands
from tml_cloudremoval.inference.radiometry import TRAINING_QUANTIFICATION, MetadataRadiometry

RESOLUTION_FILES: dict[str, tuple[str, ...]] = {
    "s2_10m": tuple(b.name for b in TML_BANDS if b.resolution_m == 10),
    "s2_20m": tuple(b.name for b in TML_BANDS if b.resolution_m == 20),
}
"""One file per resolution: its stem and the bands it holds, in order."""


def band_file_stem(name: str) -> str:
    """``"B2"`` -> ``"B02"``, ``"B8A"`` -> ``"B8A"``, ``"B11"`` -> ``"B11"``."""
    digits = name[1:]
    return "B" + (digits.zfill(2) if digits.isdigit() else digits)


def _tiffs(folder: Path) -> dict[str, Path]:
    return {
        p.stem.lower(): p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in (".tif", ".tiff")
    }


def is_tml_layout(path: Path) -> bool:
    """True for a folder holding any file of the TML layout."""
    if not path.is_dir():
        return False
    stems = set(_tiffs(path))
    wanted = {band_file_stem(b).lower() for b in TML_BAND_NAMES} | set(RESOLUTION_FILES)
    return bool(stems & wanted)


def _layout_bands(folder: Path) -> list[BandFile]:
    files = _tiffs(folder)
    bands: dict[str, BandFile] = {}
    for stem, names in RESOLUTION_FILES.items():
        if stem in files:
            for i, name in enumerate(names):
                bands[name] = BandFile(name, str(files[stem].resolve()), i + 1, str(files[stem]))
    for name in TML_BAND_NAMES:
        path = files.get(band_file_stem(name).lower())
        if path is not None:
            if name in bands:
                raise SceneError(f"{path}: band {name} is also in {bands[name].label}")
            bands[name] = BandFile(name, str(path.resolve()), 1, str(path))
    missing = [n for n in TML_BAND_NAMES if n not in bands]
    if missing:
        raise SceneError(
            f"{folder}: TML layout lacks band(s) {' '.join(missing)} (expected "
            f"{', '.join(band_file_stem(n) + '.tif' for n in missing)}, or s2_10m.tif + "
            "s2_20m.tif)"
        )
    return [bands[n] for n in TML_BAND_NAMES]


def tiff_metadata(dataset: Any, indexes: list[int], label: str) -> MetadataRadiometry | None:
    """The radiometry a GeoTIFF states, for its bands ``indexes`` (1-based), or None.

    Read from the tags ``RADIO_ADD_OFFSET`` (band or dataset) and ``QUANTIFICATION_VALUE``, else
    from GDAL band scale/offset (reflectance = DN x scale + offset: quantification 1 / scale,
    offset offset / scale). Scale 1 and offset 0 (GDAL's "unset") state nothing.
    """
    tags = dataset.tags()
    band_tags = [dataset.tags(i) for i in indexes]
    if any("RADIO_ADD_OFFSET" in t for t in [tags, *band_tags]):
        try:
            offsets = tuple(
                float(t.get("RADIO_ADD_OFFSET", tags.get("RADIO_ADD_OFFSET", 0))) for t in band_tags
            )
            quant = float(tags.get("QUANTIFICATION_VALUE", TRAINING_QUANTIFICATION))
        except ValueError as exc:
            raise SceneError(f"{label}: unreadable RADIO_ADD_OFFSET tag ({exc})") from exc
        return MetadataRadiometry(offsets, quant, f"{label} (RADIO_ADD_OFFSET tag)")
    scales = [dataset.scales[i - 1] for i in indexes]
    offs = [dataset.offsets[i - 1] for i in indexes]
    if all(s == 1.0 for s in scales) and not any(offs):
        return None
    if len(set(scales)) != 1 or not scales[0]:
        raise SceneError(f"{label}: band scales {scales} differ: cannot read reflectance")
    return MetadataRadiometry(
        tuple(o / scales[0] for o in offs), 1.0 / scales[0], f"{label} (band scale/offset)"
    )


def _file_metadata(bands: list[BandFile]) -> MetadataRadiometry | None:
    """The metadata of the layout's files: one statement for all, or none."""
    found = []
    for band in bands:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            try:
                with rasterio.open(band.gdal_path) as ds:
                    found.append(tiff_metadata(ds, [band.index], band.label))
            except (RasterioError, OSError) as exc:
                raise SceneError(f"{band.label}: band {band.name}: unreadable ({exc})") from exc
    if all(m is None for m in found):
        return None
    if any(m is None for m in found) or len({m.quantification for m in found}) != 1:
        raise SceneError(
            f"{bands[0].label}: the layout's files state different radiometry: "
            + "; ".join(f"{b.name}: {m and m.source}" for b, m in zip(bands, found, strict=True))
        )
    offsets = tuple(m.offsets[0] for m in found)
    return MetadataRadiometry(offsets, found[0].quantification, found[0].source)


def read_tml_layout(folder: Path) -> ProductBands:
    """The TML bands of a TML-layout folder, on its 10 m grid (see the module docstring)."""
    bands = _layout_bands(folder)
    return ProductBands(tuple(bands), _file_metadata(bands), "tml_layout")
