"""Miniature Sentinel-2 products for tests and the sample scene: a ``.SAFE`` and a TML layout.

:func:`write_safe` writes bands given on the 10 m grid (DN = reflectance x 10000, 0 = nodata)
as a Sentinel-2 product: one lossless JP2 per band at its native resolution (10/20/60 m: block
means of the 10 m values, nodata left out) under ``GRANULE/<id>/IMG_DATA/`` (L2A:
``R10m/``, ``R20m/``, ``R60m/`` with ``_10m`` ... suffixes) and the product metadata
``MTD_MSIL1C.xml`` (``MTD_MSIL2A.xml``) with the level, processing baseline,
``QUANTIFICATION_VALUE`` 10000 and, for baseline >= 04.00, ``RADIO_ADD_OFFSET`` (L2A:
``BOA_ADD_OFFSET``) = -1000 per band: then the JP2 hold DN + 1000 where DN > 0. Optionally
zipped (``<name>.zip`` holding ``<name>.SAFE/...``).

:func:`write_tml_layout` writes the TML layout (``inference.products.tml_layout``): bands at
10 m and 20 m, one file per band or one per resolution.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from tml_cloudremoval.atomic import atomic_file
from tml_cloudremoval.bands import OPTICAL_RESOLUTION_M, S2_BANDS, TML_BAND_NAMES, TML_BANDS
from tml_cloudremoval.inference.products.tml_layout import RESOLUTION_FILES, band_file_stem
from tml_cloudremoval.raster import write_geotiff_atomic

OFFSET_BASELINE = "04.00"
"""First processing baseline whose DN carry the radiometric offset."""

PRODUCT_OFFSET = -1000
"""RADIO_ADD_OFFSET / BOA_ADD_OFFSET of baseline >= 04.00 products (DN units)."""

_SENSING = "20240601T103021"
_TILE = "T32TMT"


def block_mean(band: np.ndarray, factor: int) -> np.ndarray:
    """(H, W) DN at 10 m -> (ceil(H / factor), ceil(W / factor)) uint16: the mean of each
    block's valid (non-zero) pixels, 0 where a block has none (blocks past the edge hold only
    what lies inside, as a real product's last 20 m / 60 m row)."""
    if factor == 1:
        return band.astype(np.uint16)
    h, w = band.shape
    pad = ((0, -h % factor), (0, -w % factor))
    padded = np.pad(band.astype(np.float64), pad)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    count = (blocks > 0).sum(axis=(1, 3))
    total = blocks.sum(axis=(1, 3))
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return np.where(count > 0, np.clip(np.rint(mean), 1, 65535), 0).astype(np.uint16)


def _write_jp2(path: Path, band: np.ndarray, crs: CRS, transform: Affine) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, suffix=".jp2") as tmp:
        with rasterio.open(
            tmp,
            "w",
            driver="JP2OpenJPEG",
            height=band.shape[0],
            width=band.shape[1],
            count=1,
            dtype="uint16",
            crs=crs,
            transform=transform,
            QUALITY=100,
            REVERSIBLE="YES",
        ) as ds:
            ds.write(band, 1)


def _metadata_xml(level: str, baseline: str) -> str:
    """Product metadata with the fields the reader uses (a real MTD holds much more)."""
    boa = "BOA_" if level == "L2A" else ""
    offsets = ""
    if baseline >= OFFSET_BASELINE:
        tag = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
        rows = "".join(
            f'\n        <{tag} band_id="{i}">{PRODUCT_OFFSET}</{tag}>' for i in range(13)
        )
        offsets = (
            f"\n      <{boa}ADD_OFFSET_VALUES_LIST>{rows}\n      </{boa}ADD_OFFSET_VALUES_LIST>"
        )
        if level == "L1C":
            offsets = f"\n      <Radiometric_Offset_List>{rows}\n      </Radiometric_Offset_List>"
    kind = "Level-1C" if level == "L1C" else "Level-2A"
    ns = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_" + kind + ".xsd"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<n1:{kind}_User_Product xmlns:n1="{ns}">\n'
        "  <n1:General_Info>\n    <Product_Info>\n"
        f"      <PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE>\n"
        f"      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>\n"
        "    </Product_Info>\n    <Product_Image_Characteristics>\n"
        f'      <{boa}QUANTIFICATION_VALUE unit="none">10000</{boa}QUANTIFICATION_VALUE>'
        f"{offsets}\n    </Product_Image_Characteristics>\n  </n1:General_Info>\n"
        f"</n1:{kind}_User_Product>\n"
    )


def safe_name(level: str = "L1C", baseline: str = "02.09") -> str:
    """``S2A_MSIL1C_<sensing>_N0209_R108_T32TMT_<sensing>`` (no ``.SAFE``)."""
    return f"S2A_MSI{level}_{_SENSING}_N{baseline.replace('.', '')}_R108_{_TILE}_{_SENSING}"


def _band_member(level: str, name: str, res: int) -> str:
    stem = f"{_TILE}_{_SENSING}_B{name[1:].zfill(2) if name[1:].isdigit() else name[1:]}"
    granule = f"GRANULE/{level}_{_TILE}_A046000_{_SENSING}/IMG_DATA"
    if level == "L2A":
        return f"{granule}/R{res}m/{stem}_{res}m.jp2"
    return f"{granule}/{stem}.jp2"


def write_safe(
    folder: str | os.PathLike,
    bands: Mapping[str, np.ndarray],
    crs: CRS,
    transform: Affine,
    baseline: str = "02.09",
    level: str = "L1C",
    zipped: bool = False,
) -> Path:
    """Write ``bands`` ({name: (H, W) DN at 10 m}) as a product in
    ``folder``; returns the ``.SAFE`` folder (or the ``.zip``, the folder then removed). See
    the module docstring."""
    name = safe_name(level, baseline)
    root = Path(folder) / f"{name}.SAFE"
    shift = -PRODUCT_OFFSET if baseline >= OFFSET_BASELINE else 0
    for band in S2_BANDS:
        if band.name not in bands or (level == "L2A" and band.name == "B10"):
            continue
        factor = band.resolution_m // OPTICAL_RESOLUTION_M
        data = block_mean(np.asarray(bands[band.name]), factor)
        data = np.where(data > 0, np.minimum(data.astype(np.int64) + shift, 65535), 0)
        grid = transform @ Affine.scale(factor)
        _write_jp2(
            root / _band_member(level, band.name, band.resolution_m),
            data.astype(np.uint16),
            crs,
            grid,
        )
    (root / f"MTD_MSI{level}.xml").write_text(_metadata_xml(level, baseline))
    if not zipped:
        return root
    target = Path(folder) / f"{name}.zip"
    with atomic_file(target, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():  # a fixed time stamp: same bands -> the same zip bytes
                member = zipfile.ZipInfo(f"{name}.SAFE/{path.relative_to(root).as_posix()}")
                member.date_time = (2024, 6, 1, 0, 0, 0)
                archive.writestr(member, path.read_bytes())
    shutil.rmtree(root)
    return target


def write_tml_layout(
    folder: str | os.PathLike,
    bands: Mapping[str, np.ndarray],
    crs: CRS,
    transform: Affine,
    per_band: bool = False,
) -> Path:
    """Write the 10 TML bands ({name: (H, W) DN at 10 m}) in the TML layout into ``folder``:
    ``s2_10m.tif`` + ``s2_20m.tif``, or ``B02.tif`` ... ``B12.tif`` (``per_band``); 20 m bands
    as 2 x 2 block means; uint16, nodata 0."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups = (
        {band_file_stem(b.name): (b.name,) for b in TML_BANDS} if per_band else RESOLUTION_FILES
    )
    for stem, names in groups.items():
        factor = next(b.resolution_m for b in TML_BANDS if b.name == names[0]) // 10
        stack = np.stack([block_mean(np.asarray(bands[n]), factor) for n in names], axis=-1)
        write_geotiff_atomic(
            folder / f"{stem}.tif",
            stack,
            crs=crs,
            transform=transform @ Affine.scale(factor),
            nodata=0,
            descriptions=names,
        )
    return folder


SCENE_PRODUCTS: dict[str, str] = {
    "safe": f"{safe_name('L1C', '02.09')}.SAFE",
    "safe_zip": f"{safe_name('L1C', OFFSET_BASELINE)}.zip",
    "tml_layout": "tml_layout",
}
"""The products the sample TML scene is also written as (relative to its root): an L1C .SAFE of
baseline 02.09 (no offset), a zipped one of 04.00 (offset -1000), a TML-layout folder."""


def scene_product_files() -> list[str]:
    """Every file :func:`write_scene_products` writes, relative to the scene root (POSIX)."""
    safe = SCENE_PRODUCTS["safe"]
    bands = [_band_member("L1C", b.name, b.resolution_m) for b in S2_BANDS]
    layout = [f"{SCENE_PRODUCTS['tml_layout']}/{stem}.tif" for stem in RESOLUTION_FILES]
    return (
        [f"{safe}/{m}" for m in bands]
        + [f"{safe}/MTD_MSIL1C.xml"]
        + [
            SCENE_PRODUCTS["safe_zip"],
            *layout,
        ]
    )


def write_scene_products(
    folder: str | os.PathLike, tml_dn: np.ndarray, crs: CRS, transform: Affine
) -> None:
    """The sample scene ((H, W, 10) DN of the TML bands) as the :data:`SCENE_PRODUCTS`.

    B1, B9 and B10, which the scene lacks, are placeholders a .SAFE must hold but the reader
    never uses: B1 = B2, B9 = 0.35 x B8A, B10 = B2 / 100 (cirrus-free), nodata where B2 is 0.
    """
    bands = {name: tml_dn[..., i] for i, name in enumerate(TML_BAND_NAMES)}
    nodata = bands["B2"] == 0
    bands["B1"] = bands["B2"]
    bands["B9"] = np.where(nodata, 0, np.maximum(bands["B8A"] * 0.35, 1)).astype(np.uint16)
    bands["B10"] = np.where(nodata, 0, np.maximum(bands["B2"] // 100, 1)).astype(np.uint16)
    write_safe(folder, bands, crs, transform, baseline="02.09")
    write_safe(folder, bands, crs, transform, baseline=OFFSET_BASELINE, zipped=True)
    write_tml_layout(Path(folder) / SCENE_PRODUCTS["tml_layout"], bands, crs, transform)


__all__ = [
    "SCENE_PRODUCTS",
    "block_mean",
    "safe_name",
    "scene_product_files",
    "write_safe",
    "write_scene_products",
    "write_tml_layout",
]
