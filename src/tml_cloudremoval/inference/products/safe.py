"""A Sentinel-2 ``.SAFE`` product (unpacked folder or ``.zip``) -> the 10 TML bands at 10 m.

Found from the product itself: the product metadata ``MTD_MSIL1C.xml`` (``MTD_MSIL2A.xml``) at
the top says the level, the processing baseline, ``QUANTIFICATION_VALUE`` and, from baseline
04.00, ``RADIO_ADD_OFFSET`` per band (``band_id`` 0..12 in ESA band order); the bands are the
JP2 files under ``GRANULE/<id>/IMG_DATA/`` (L1C: ``*_B02.jp2``; L2A: ``R10m/*_B02_10m.jp2``,
``R20m/*_B05_20m.jp2``, each band taken at its native resolution). The 20 m bands come onto the
10 m grid through :mod:`band_vrt` (lanczos, measured on SEN12MS-CR). A zip is read in place
(GDAL ``/vsizip/``), never unpacked.

An L2A product (bottom-of-atmosphere, ``BOA_ADD_OFFSET``) is refused unless ``allow_l2a``: the
model was trained on L1C top-of-atmosphere reflectance (SEN12MS-CR).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tml_cloudremoval.bands import S2_BAND_NAMES, S2_BANDS, TML_BAND_NAMES, TML_BANDS
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.products.band_vrt import BandFile, StackedBands, stack_bands
from tml_cloudremoval.inference.radiometry import MetadataRadiometry

METADATA_NAMES = ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml")
_JP2 = re.compile(r"/IMG_DATA/(?:R(\d\d)m/)?[^/]*_(B\d\d|B8A)(?:_(\d\d)m)?\.jp2$", re.IGNORECASE)


@dataclass(frozen=True)
class ProductBands:
    """An optical product's 10 TML band files (model order), what its metadata states (None:
    nothing), and what it is (``"safe L1C"``, ``"tml_layout"``); :meth:`stack` puts them on
    the 10 m grid with a radiometry applied."""

    bands: tuple[BandFile, ...]
    metadata: MetadataRadiometry | None
    kind: str

    def stack(self, offsets: Sequence[float], quantification: float) -> StackedBands:
        """The checked 10 m VRT stack (``band_vrt.stack_bands``)."""
        return stack_bands(self.bands, offsets, quantification)


def is_safe(path: Path) -> bool:
    """True for a ``.SAFE`` folder, a folder holding a product metadata file, or a ``.zip``."""
    if path.is_file():
        return path.suffix.lower() == ".zip"
    return path.is_dir() and (
        path.suffix.upper() == ".SAFE" or any((path / n).is_file() for n in METADATA_NAMES)
    )


def _members(path: Path) -> tuple[list[str], str]:
    """(member paths relative to the product, GDAL prefix) of a folder or a zip."""
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        return names, f"{path.resolve()}/"
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist(), f"/vsizip/{path.resolve()}/"
    except (zipfile.BadZipFile, OSError) as exc:
        raise SceneError(f"{path}: not a readable .zip of a Sentinel-2 product ({exc})") from exc


def _read_member(path: Path, member: str) -> bytes:
    if path.is_dir():
        return (path / member).read_bytes()
    with zipfile.ZipFile(path) as archive:
        return archive.read(member)


def _metadata_member(path: Path, names: list[str]) -> str:
    found = sorted(
        (n for n in names if n.rsplit("/", 1)[-1] in METADATA_NAMES), key=lambda n: n.count("/")
    )
    if not found:
        raise SceneError(
            f"{path}: not a Sentinel-2 L1C product: no {' or '.join(METADATA_NAMES)} in it"
        )
    return found[0]


def _texts(root: ET.Element, tag: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == tag]


def _one_text(root: ET.Element, tag: str, label: str) -> str:
    found = _texts(root, tag)
    if not found or not (found[0].text or "").strip():
        raise SceneError(f"{label}: no {tag} in the product metadata")
    return found[0].text.strip()


def _radiometry(root: ET.Element, level: str, label: str) -> MetadataRadiometry:
    """Offsets of the TML bands and the quantification value stated in the metadata."""
    prefix = "BOA_" if level == "L2A" else ""
    offset_tag = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    try:
        quant = float(_one_text(root, f"{prefix}QUANTIFICATION_VALUE", label))
        by_id = {int(e.get("band_id", "-1")): float(e.text) for e in _texts(root, offset_tag)}
    except (TypeError, ValueError) as exc:
        raise SceneError(f"{label}: unreadable radiometric metadata ({exc})") from exc
    offsets = tuple(by_id.get(S2_BAND_NAMES.index(b), 0.0) for b in TML_BAND_NAMES)
    baseline = (_texts(root, "PROCESSING_BASELINE") or [None])[0]
    base = "" if baseline is None else f"baseline {(baseline.text or '').strip()}, "
    what = f"{offset_tag}" if by_id else f"no {offset_tag}"
    return MetadataRadiometry(offsets, quant, f"{label} ({base}{what})")


def _level(root: ET.Element, member: str, label: str) -> str:
    types = _texts(root, "PRODUCT_TYPE")
    text = (types[0].text or "") if types else member
    if "1C" in text.upper():
        return "L1C"
    if "2A" in text.upper():
        return "L2A"
    raise SceneError(f"{label}: product type {text.strip()!r} is not Sentinel-2 L1C or L2A")


def _band_files(names: list[str], prefix: str, label: str) -> list[BandFile]:
    """The JP2 of each TML band at its native resolution; one error naming every missing band."""
    native = {b.name: b.resolution_m for b in S2_BANDS}
    chosen: dict[str, tuple[int, str]] = {}
    for member in sorted(names):
        match = _JP2.search("/" + member)
        if not match:
            continue
        name = "B" + match.group(2).upper()[1:].lstrip("0")
        res = int(match.group(1) or match.group(3) or native.get(name, 0))
        rank = 0 if res == native.get(name) else res
        if name in TML_BAND_NAMES and (name not in chosen or rank < chosen[name][0]):
            chosen[name] = (rank, member)
    missing = [b.name for b in TML_BANDS if b.name not in chosen]
    if missing:
        raise SceneError(f"{label}: band(s) {' '.join(missing)} missing: no JP2 under IMG_DATA")
    return [
        BandFile(n, prefix + chosen[n][1], 1, f"{label}/{chosen[n][1]}") for n in TML_BAND_NAMES
    ]


def read_safe(path: Path, allow_l2a: bool = False) -> ProductBands:
    """The TML bands of a ``.SAFE`` folder or zip, with the radiometry its metadata states.

    Raises ``SceneError`` naming the product (and band) for: no product metadata, another
    product type, an L2A product without ``allow_l2a``, a missing band, inconsistent grids.
    """
    names, prefix = _members(path)
    member = _metadata_member(path, names)
    label = f"{path}/{member}" if path.is_dir() else f"{path}!{member}"
    try:
        root = ET.fromstring(_read_member(path, member))
    except (ET.ParseError, OSError, KeyError) as exc:
        raise SceneError(f"{label}: unreadable product metadata ({exc})") from exc
    level = _level(root, member, label)
    if level == "L2A" and not allow_l2a:
        raise SceneError(
            f"{path}: an L2A (bottom-of-atmosphere) product; the model was trained on L1C "
            "top-of-atmosphere reflectance (SEN12MS-CR), so its output would be off. Use the "
            "L1C product of the scene, or set inference.allow_l2a: true to run it anyway"
        )
    metadata = _radiometry(root, level, label)
    bands = tuple(_band_files(names, prefix, str(path)))
    return ProductBands(bands, metadata, f"safe {level}")
