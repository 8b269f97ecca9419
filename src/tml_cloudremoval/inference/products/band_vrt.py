"""One virtual 10 m stack of the 10 TML bands from band files at 10 m and 20 m (GDAL VRT).

The VRT is an XML text GDAL opens like a file: every window read stacks the bands and resamples
the 20 m ones onto the 10 m grid on the fly, so a full 10980 px scene is never in memory.

Resampling of the 20 m bands: ``lanczos``, measured on the 22 real SEN12MS-CR samples
(their 20 m bands B5 B6 B7 B8A B11 B12 on the 10 m grid: 2 x 2 means back to 20 m, upsampled
to 10 m, compared with the original, 8 px border left out). RMSE in DN, mean over patches:
nearest (= average for upsampling) 78.1, bilinear 63.0, cubic 51.9, cubic spline 76.1,
lanczos 49.5; lanczos is lowest in every band (B5 35.3 / B8A 61.7 / B12 47.8 against nearest
53.5 / 95.5 / 79.0). SEN12MS-CR's 20 m bands are not 2 x 2 repeats (1.1 % of 2 x 2 blocks
identical): they were resampled with a smooth interpolating kernel when the 10 m grid was
made, and an interpolating kernel of wide support (lanczos, cubic close behind) reproduces that
texture; nearest gives the blocky 20 m steps the model never saw, bilinear and the smoothing
cubic spline blur more than the training data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from tml_cloudremoval.bands import OPTICAL_RESOLUTION_M, TML_BAND_NAMES
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.radiometry import TRAINING_QUANTIFICATION

RESAMPLING_20M = "lanczos"
"""GDAL resampling of 20 m bands onto the 10 m grid (measured, see the module docstring)."""


@dataclass(frozen=True)
class BandFile:
    """One band in a file: its name (``"B5"``), the GDAL path (a file or ``/vsizip/...``), the
    1-based band index in that file, and ``label`` (how errors name the file)."""

    name: str
    gdal_path: str
    index: int
    label: str


@dataclass(frozen=True)
class BandGrid:
    """Header facts of one band file: size, CRS, transform, data type."""

    band: BandFile
    height: int
    width: int
    crs: CRS | None
    transform: Affine
    dtype: str


@dataclass(frozen=True)
class StackedBands:
    """The 10 TML bands on one 10 m grid: the VRT text (float32 DN = reflectance x 10000, NaN
    nodata) and the grid it defines."""

    vrt: str
    height: int
    width: int
    crs: CRS | None
    transform: Affine


def read_band_grid(band: BandFile) -> BandGrid:
    """Header of one band file; ``SceneError`` naming the file and band when unreadable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(band.gdal_path) as ds:
                if band.index > ds.count:
                    raise SceneError(
                        f"{band.label}: band {band.name}: the file has {ds.count} band(s), "
                        f"band {band.index} expected"
                    )
                crs = ds.crs if ds.crs else None
                dtype = ds.dtypes[band.index - 1]
                return BandGrid(band, ds.height, ds.width, crs, ds.transform, dtype)
        except (RasterioError, OSError) as exc:
            raise SceneError(f"{band.label}: band {band.name}: unreadable ({exc})") from exc


def _grid_fault(grid: BandGrid, ref: BandGrid) -> str | None:
    """Why ``grid`` does not lie on the 10 m grid of ``ref`` at 1x or 2x its pixel size."""
    if grid.crs != ref.crs:
        return f"CRS {grid.crs} differs from {ref.band.name}'s {ref.crs}"
    factor = round(grid.transform.a / ref.transform.a, 6)
    if factor not in (1.0, 2.0):
        return f"pixel size {grid.transform.a:g} is not 1 or 2 x {ref.transform.a:g}"
    f = int(factor)
    shape = (grid.height, grid.width)
    covers = shape == (-(-ref.height // f), -(-ref.width // f))  # a last row may reach past
    same_origin = (
        abs(grid.transform.c - ref.transform.c) < 1e-6 * abs(ref.transform.a) + 1e-9
        and abs(grid.transform.f - ref.transform.f) < 1e-6 * abs(ref.transform.a) + 1e-9
    )
    if not same_origin or not covers or grid.transform.b or grid.transform.d:
        return (
            f"grid {grid.height} x {grid.width} px at origin ({grid.transform.c:g}, "
            f"{grid.transform.f:g}) does not cover {ref.band.name}'s {ref.height} x {ref.width} "
            f"px at ({ref.transform.c:g}, {ref.transform.f:g})"
        )
    return None


def check_band_grids(grids: Sequence[BandGrid]) -> None:
    """Every band on the grid of the first (10 m) band, at 10 m or 20 m; one ``SceneError``
    naming each file and band that is not."""
    ref = grids[0]
    if ref.crs is not None and abs(ref.transform.a - OPTICAL_RESOLUTION_M) > 1e-6:
        raise SceneError(
            f"{ref.band.label}: band {ref.band.name}: pixel size {ref.transform.a:g} m, "
            f"expected {OPTICAL_RESOLUTION_M} m"
        )
    faults = [
        f"{g.band.label}: band {g.band.name}: {fault}"
        for g in grids[1:]
        if (fault := _grid_fault(g, ref)) is not None
    ] + [
        f"{g.band.label}: band {g.band.name}: data type {g.dtype}, expected uint16 DN"
        for g in grids
        if g.dtype != "uint16"
    ]
    if faults:
        raise SceneError("bands on inconsistent grids or types:\n  " + "\n  ".join(faults))


def _source_vrt(grid: BandGrid, offset: float, ratio: float) -> str:
    """The band file as a one-band float32 VRT at its own resolution, radiometry applied
    (``DN x ratio + offset x ratio``) and DN 0 made NaN (nodata), so that GDAL leaves nodata
    out of the resampling kernel (a JP2 declares no nodata of its own) and a product with the
    offset resamples exactly the values one without it does."""
    band = grid.band
    return (
        f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">'
        '<VRTRasterBand dataType="Float32" band="1"><NoDataValue>nan</NoDataValue>'
        f'<ComplexSource><SourceFilename relativeToVRT="0">{escape(band.gdal_path)}'
        f"</SourceFilename><SourceBand>{band.index}</SourceBand><NODATA>0</NODATA>"
        f"<ScaleOffset>{offset * ratio!r}</ScaleOffset><ScaleRatio>{ratio!r}</ScaleRatio>"
        "</ComplexSource></VRTRasterBand></VRTDataset>"
    )


def _source_xml(element: str, source: str, grid: BandGrid, ref: BandGrid, extra: str) -> str:
    factor = round(grid.transform.a / ref.transform.a)
    return (
        f"    <{element}>\n"
        f"      <SourceFilename>{escape(source)}</SourceFilename>\n"
        "      <SourceBand>1</SourceBand>\n"
        f'      <SrcRect xOff="0" yOff="0" xSize="{grid.width}" ySize="{grid.height}"/>\n'
        f'      <DstRect xOff="0" yOff="0" xSize="{grid.width * factor}" '
        f'ySize="{grid.height * factor}"/>\n'
        f"{extra}"
        f"    </{element.split(maxsplit=1)[0]}>\n"
    )


def _band_xml(position: int, grid: BandGrid, ref: BandGrid, offset: float, ratio: float) -> str:
    """One band of the stack. A 20 m band is drawn twice: the 20 m value itself first (GDAL's
    "average" upsampling by 2, which equals nearest and is 100 x faster than its "nearest" on a
    VRT source), then the resampled band over it wherever that has a value: GDAL gives nodata
    wherever a kernel tap is nodata (lanczos: about 4 px along a swath edge)."""
    source = _source_vrt(grid, offset, ratio)
    if round(grid.transform.a / ref.transform.a) == 1:
        sources = _source_xml("ComplexSource", source, grid, ref, "")
    else:
        sources = _source_xml('ComplexSource resampling="average"', source, grid, ref, "")
        sources += _source_xml(
            f'ComplexSource resampling="{RESAMPLING_20M}"',
            source,
            grid,
            ref,
            "      <NODATA>nan</NODATA>\n",
        )
    return (
        f'  <VRTRasterBand dataType="Float32" band="{position}">\n'
        f"    <Description>{escape(grid.band.name)}</Description>\n"
        "    <NoDataValue>nan</NoDataValue>\n"
        f"{sources}"
        "  </VRTRasterBand>\n"
    )


def stack_bands(
    bands: Sequence[BandFile], offsets: Sequence[float], quantification: float
) -> StackedBands:
    """The VRT of ``bands`` (the 10 TML bands in model order, the first at 10 m) after checking
    every grid: float32 DN = reflectance x 10000, i.e. ``(DN + offset) x 10000 /
    quantification`` per band (``offsets`` as the metadata states them); NaN where DN is 0."""
    names = tuple(b.name for b in bands)
    if names != TML_BAND_NAMES:
        raise ValueError(f"bands must be {TML_BAND_NAMES} in order, got {names}")
    grids = [read_band_grid(b) for b in bands]
    check_band_grids(grids)
    ref = grids[0]
    ratio = TRAINING_QUANTIFICATION / quantification
    t = ref.transform
    srs = "" if ref.crs is None else f"  <SRS>{escape(ref.crs.to_wkt())}</SRS>\n"
    xml = (
        f'<VRTDataset rasterXSize="{ref.width}" rasterYSize="{ref.height}">\n'
        + srs
        + f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>\n"
        + "".join(
            _band_xml(i + 1, g, ref, float(o), ratio)
            for i, (g, o) in enumerate(zip(grids, offsets, strict=True))
        )
        + "</VRTDataset>\n"
    )
    return StackedBands(xml, ref.height, ref.width, ref.crs, ref.transform)
