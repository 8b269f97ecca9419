"""A full-size SEN12MS-CR tree for scale tests: real layout and headers, tiny content.

:func:`make_scale_tree` writes ``n_triplets`` triplets (122,218 by default, the size of
SEN12MS-CR) in the official layout (:mod:`tml_cloudremoval.data.layout`), over the scenes of
the official split table (``conf/base/sen12mscr_official_split.csv``: 175 scenes in the four
real season folders ``ROIs1158_spring`` .. ``ROIs2017_winter``), about 700 patches per scene
(the total is distributed so the sum is exact). Every file has the header of a real one:
256 x 256 px, S1 2 bands float32 (dB), S2 and S2 cloudy 13 bands uint16 (DN), a UTM CRS per
scene and the transform of its patch on the scene's grid (``stride_px`` apart, 10 m pixels).
The pixels are gentle per-band ramps in the physical range (no band constant, so the content
checks of :mod:`tml_cloudremoval.data.content` pass), ZSTD-compressed (level 9, predictor) in
one 256 x 256 tile: a file is 0.7-1.6 KB, the 366,654 files of the full size about 1.4 GiB on
disk (one 4 KB block each).

Speed: per scene and modality GDAL writes ONE template file in memory; every patch is that
template with its 48-byte ``ModelTiepointTag`` (the upper-left corner of the patch) replaced,
so the headers stay GDAL's own while a file costs a write, not an encode. Each scene's
``<modality>_<scene>`` folder is written whole through
:func:`tml_cloudremoval.atomic.atomic_folder` (a half-written folder never looks complete) and
skipped when it already holds exactly its files, all of one size (for the same arguments the
tree is idempotent; a killed run resumes folder by folder; a truncated or missing file makes
its folder be written again). ``workers`` processes (spawn) write scenes in parallel,
with a progress bar. CLI: ``python -m tml_cloudremoval.data.synthetic.scale_tree ROOT``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from tqdm.auto import tqdm

from tml_cloudremoval.atomic import atomic_folder, remove_stale_temporaries
from tml_cloudremoval.bands import OPTICAL_RESOLUTION_M, S1_BAND_NAMES, S2_BAND_NAMES
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import MODALITIES, official_relpaths
from tml_cloudremoval.data.workers import ordered_in_processes
from tml_cloudremoval.raster import geotiff_profile

__all__ = [
    "OFFICIAL_SPLIT_CSV",
    "SEN12MSCR_TRIPLETS",
    "distribute",
    "make_scale_tree",
    "official_scenes",
    "scene_arrays",
    "scene_origin",
]

SEN12MSCR_TRIPLETS = 122_218
"""Triplets of the whole SEN12MS-CR dataset."""

OFFICIAL_SPLIT_CSV = Path(__file__).resolve().parents[4] / "conf/base/sen12mscr_official_split.csv"
"""The official scene split shipped with the project (columns roi_season, scene, split)."""

PATCH_PX = 256
_Scene = tuple[str, int]  # (roi_season, scene number)


def official_scenes(csv_path: str | os.PathLike = OFFICIAL_SPLIT_CSV) -> list[_Scene]:
    """``[(roi_season, scene), ...]`` of the official split table, in its order."""
    with open(csv_path, newline="") as f:
        return [(row["roi_season"], int(row["scene"])) for row in csv.DictReader(f)]


def distribute(n_triplets: int, n_scenes: int) -> list[int]:
    """Patches per scene: ``n_triplets // n_scenes`` each, one more for the first
    ``n_triplets % n_scenes`` scenes (the sum is exactly ``n_triplets``)."""
    if n_scenes < 1 or n_triplets < n_scenes:
        raise DataError(f"{n_triplets} triplets cannot fill {n_scenes} scenes (>= 1 each)")
    base, extra = divmod(n_triplets, n_scenes)
    return [base + (i < extra) for i in range(n_scenes)]


def scene_origin(roi_season: str, scene: int, seed: int = 0) -> tuple[CRS, float, float]:
    """A UTM CRS (EPSG:326zz) and the 10 m aligned upper-left corner (m) of a scene's grid,
    drawn from ``seed`` and the scene (the same scene always lies at the same place)."""
    key = [seed, *roi_season.encode(), scene]
    rng = np.random.default_rng(key)
    zone = int(rng.integers(1, 61))
    x0 = 10.0 * int(rng.integers(20_000, 75_000))
    y0 = 10.0 * int(rng.integers(300_000, 700_000))
    return CRS.from_epsg(32600 + zone), x0, y0


def scene_arrays(scene: int, size: int = PATCH_PX) -> dict[str, np.ndarray]:
    """The pixels every patch of a scene shares, channels_last ``(size, size, C)``.

    S1: dB, band b a ramp over columns from ``-12 - 6 b`` up by 0.5 dB per 32 px (VV about
    -12..-8.5, VH about -18..-14.5). S2: DN, band b a ramp ``800 + 150 b + 10 (col // 16)``
    (plus ``scene % 50``). S2 cloudy: the S2 ramp, with a bright cloud (+3000 DN) over the upper
    half. Every band varies (a constant band is a content fault) and stays in range.
    """
    cols = np.arange(size)
    s1_ramp = 0.5 * (cols // 32)
    s1 = np.stack([np.broadcast_to(-12.0 - 6.0 * b + s1_ramp, (size, size)) for b in range(2)], -1)
    s2_ramp = 10 * (cols // 16) + scene % 50
    s2 = np.stack(
        [np.broadcast_to(800 + 150 * b + s2_ramp, (size, size)) for b in range(13)], -1
    ).astype(np.uint16)
    cloudy = s2.copy()
    cloudy[: size // 2] += 3000
    return {"s1": s1.astype(np.float32), "s2": s2, "s2_cloudy": cloudy}


_NAMES = {"s1": S1_BAND_NAMES, "s2": S2_BAND_NAMES, "s2_cloudy": S2_BAND_NAMES}
_TIEPOINT = struct.Struct("<6d")  # ModelTiepointTag: (i, j, k, x, y, z), little-endian TIFF


def _template(array: np.ndarray, crs: CRS, x0: float, y0: float, modality: str) -> bytes:
    """The GeoTIFF bytes of one patch with upper-left corner ``(x0, y0)`` (GDAL writes it)."""
    res = float(OPTICAL_RESOLUTION_M)
    height, width, count = array.shape
    profile = geotiff_profile(
        height,
        width,
        count,
        array.dtype,
        crs=crs,
        transform=Affine(res, 0.0, x0, 0.0, -res, y0),
        nodata=None,
        compress="zstd",
        creation_options={"zstd_level": 9},
    )
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.descriptions = tuple(_NAMES[modality])  # before the pixels: one directory
            dst.write(np.moveaxis(array, -1, 0))
        return bytes(memfile.read())


def _tiepoint_offset(data: bytes, x0: float, y0: float) -> int:
    """Byte offset of the tiepoint ``(0, 0, 0, x0, y0, 0)`` in a template (exactly one)."""
    needle = _TIEPOINT.pack(0.0, 0.0, 0.0, x0, y0, 0.0)
    offset = data.find(needle)
    if offset < 0 or data.find(needle, offset + 1) >= 0:
        raise RuntimeError("the template's ModelTiepointTag was not found exactly once")
    return offset


def _grid_corner(
    x0: float, y0: float, patch: int, cols: int, stride_px: int
) -> tuple[float, float]:
    """Upper-left corner (m) of patch ``patch`` (1-based, row-major on a ``cols`` wide grid)."""
    r, c = divmod(patch - 1, cols)
    step = stride_px * float(OPTICAL_RESOLUTION_M)
    return x0 + c * step, y0 - r * step


def _complete(folder: Path, names: set[str]) -> bool:
    """True when ``folder`` holds exactly ``names``, all of one non-zero size (every patch of a
    scene and modality is its template with other corner coordinates: same length)."""
    try:
        with os.scandir(folder) as entries:
            sizes = {e.name: e.stat().st_size for e in entries}
    except FileNotFoundError:
        return False
    return set(sizes) == names and len(set(sizes.values())) == 1 and 0 not in sizes.values()


def _write_folder(
    folder: Path, data: bytes, corners: Sequence[tuple[float, float]], names: Sequence[str], at: int
) -> None:
    """Write the patches of one scene and modality (``data`` with each corner) as one folder."""
    remove_stale_temporaries(folder.parent)
    with atomic_folder(folder) as tmp:
        buffer = bytearray(data)
        for (x, y), name in zip(corners, names, strict=True):
            buffer[at : at + _TIEPOINT.size] = _TIEPOINT.pack(0.0, 0.0, 0.0, x, y, 0.0)
            with open(tmp / name, "wb") as f:
                f.write(buffer)


def _write_scene(
    root: str, roi_season: str, scene: int, n_patches: int, stride_px: int, seed: int
) -> tuple[int, int]:
    """Write the three modality folders of one scene -> (files written, files skipped)."""
    crs, x0, y0 = scene_origin(roi_season, scene, seed)
    cols = math.ceil(math.sqrt(n_patches))
    corners = [_grid_corner(x0, y0, p, cols, stride_px) for p in range(1, n_patches + 1)]
    rels = [official_relpaths(roi_season, scene, p) for p in range(1, n_patches + 1)]
    arrays = None
    written = skipped = 0
    for modality in MODALITIES:
        folder = Path(root) / rels[0][modality].rpartition("/")[0]
        names = [rel[modality].rpartition("/")[2] for rel in rels]
        if _complete(folder, set(names)):
            skipped += n_patches
            continue
        arrays = arrays or scene_arrays(scene)
        data = _template(arrays[modality], crs, x0, y0, modality)
        _write_folder(folder, data, corners, names, _tiepoint_offset(data, x0, y0))
        written += n_patches
    return written, skipped


def _plan(n_triplets: int, scenes: Sequence[_Scene] | None) -> list[tuple[str, int, int]]:
    scenes = list(official_scenes() if scenes is None else scenes)
    counts = distribute(n_triplets, len(scenes))
    return [(rs, int(scene), n) for (rs, scene), n in zip(scenes, counts, strict=True)]


def make_scale_tree(
    root: str | os.PathLike,
    n_triplets: int = SEN12MSCR_TRIPLETS,
    scenes: Sequence[_Scene] | None = None,
    workers: int | None = None,
    stride_px: int = 128,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, float | int]:
    """Write (or complete) a scale tree under ``root`` -> ``{"n_triplets", "n_files",
    "written", "skipped", "seconds", "bytes"}``.

    ``scenes``: ``[(roi_season, scene), ...]`` (default: the 175 scenes of the official split
    table); ``n_triplets`` are distributed over them (:func:`distribute`), patches numbered 1..n
    on a square grid ``stride_px`` apart (128: neighbours overlap by half, as in SEN12MS-CR).
    ``workers``: processes writing scenes (None: one per usable core; 1: this process).
    Folders already complete are skipped (see the module docstring).
    """
    from tml_cloudremoval.data.triplets import usable_cores

    plan = _plan(n_triplets, scenes)
    workers = max(1, min(workers or usable_cores(), len(plan)))
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    bar = tqdm(total=n_triplets, desc="scale tree", unit="triplet", disable=not progress)
    written = skipped = 0
    jobs = [(str(root), rs, scene, n, stride_px, seed) for rs, scene, n in plan]
    if workers == 1:
        results = (_write_scene(*job) for job in jobs)
    else:
        results = ordered_in_processes(_write_scene, jobs, workers, in_flight=2 * workers)
    try:
        for (_, _, _, n, _, _), (w, s) in zip(jobs, results, strict=True):
            written, skipped = written + w, skipped + s
            bar.update(n)
    finally:
        bar.close()
        results.close()
    seconds = time.perf_counter() - start
    n_bytes = sum(
        e.stat().st_blocks * 512 for d in root.glob("*/*") for e in os.scandir(d) if e.is_file()
    )
    return {
        "n_triplets": n_triplets,
        "n_files": 3 * n_triplets,
        "written": written,
        "skipped": skipped,
        "seconds": seconds,
        "bytes": n_bytes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m tml_cloudremoval.data.synthetic.scale_tree ROOT [--triplets N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder to write the tree into")
    parser.add_argument("--triplets", type=int, default=SEN12MSCR_TRIPLETS)
    parser.add_argument("--workers", type=int, default=None, help="default: usable cores")
    parser.add_argument("--stride-px", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-csv", type=Path, default=OFFICIAL_SPLIT_CSV, help="scene list")
    args = parser.parse_args(argv)
    scenes = official_scenes(args.split_csv)
    result = make_scale_tree(
        args.root, args.triplets, scenes, args.workers, args.stride_px, args.seed
    )
    print(
        f"{args.root}: {result['n_files']} files ({result['written']} written, "
        f"{result['skipped']} already there) in {result['seconds']:.1f} s, "
        f"{result['bytes'] / 2**30:.2f} GiB on disk"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
