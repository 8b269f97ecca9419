"""Checks of the triplet lists: every file from its TIFF header, and acting on the report.

:func:`validate_triplets` lists every :class:`TripletProblem` (headers, and with ``content``
the pixels, one open per file; in worker processes for large tables, chunk by chunk);
:func:`validation_report` turns them into the JSON report the pipeline keeps, with fingerprints
of the lists it checked; :func:`select_valid_triplets` refuses a report about other lists, then
stops on bad files or leaves them out (``on_bad_file``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from tqdm.auto import tqdm

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.content import (
    EXPECTED_BANDS,
    EXPECTED_DTYPES,
    content_faults,
    layout_faults,
)
from tml_cloudremoval.data.discovery import table_fingerprint
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import MODALITIES
from tml_cloudremoval.data.splits import SPLITS
from tml_cloudremoval.data.workers import ordered_in_processes
from tml_cloudremoval.raster import RasterError, RasterHeader, read_header_and_pixels

__all__ = [
    "CHUNK_TRIPLETS",
    "EXPECTED_BANDS",
    "EXPECTED_DTYPES",
    "ON_BAD_FILE",
    "TripletProblem",
    "check_workers",
    "select_valid_triplets",
    "validate_triplets",
    "validation_report",
]

log = logging.getLogger(__name__)

ON_BAD_FILE: tuple[str, ...] = ("error", "skip")
"""What :func:`select_valid_triplets` does with bad triplets."""

CHUNK_TRIPLETS = 256
"""Triplets per task of a worker process (its results come back as a short problem list)."""

MIN_PER_WORKER = 1000
"""Triplets per worker process at least: starting one (spawn, imports of pandas and rasterio)
costs about 2 s of a core, the header checks of ~1000 triplets (~2 ms of a core per file), so a
small table is checked in this process."""

GDAL_CHECK_OPTIONS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GTIFF_SRS_SOURCE": "GEOKEYS",
}
"""GDAL settings while checking: no listing of the file's folder at each open (a SEN12MS-CR
folder holds ~700 files; a validation never reads side-car files) and the CRS from the file's
own GeoKeys (no EPSG database look-up at each open: about 1.5 x faster opens). Both files of a
pair are read alike, so the CRS comparison is unchanged."""


@dataclass(frozen=True)
class TripletProblem:
    """One fault of one file of a triplet; ``str()`` gives ``"<path>: <fault>"``."""

    split: str
    scene_id: str
    patch: str
    path: str
    fault: str

    def __str__(self) -> str:
        return f"{self.path}: {self.fault}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _size_text(width: int, height: int) -> str:
    return f"size {width}x{height} (width x height)"


def _file_faults(modality: str, header: RasterHeader) -> list[str]:
    """Faults of one file on its own: band count, dtype, size on the 40 m grid."""
    faults = layout_faults(modality, header.count, header.dtype)
    if header.width % SAR_FACTOR or header.height % SAR_FACTOR:
        faults.append(
            f"{_size_text(header.width, header.height)} is not a multiple of {SAR_FACTOR}"
        )
    return faults


def _georef_differs(a: RasterHeader, b: RasterHeader) -> str | None:
    if not (a.georeferenced and b.georeferenced):
        return None
    if a.crs != b.crs:
        return f"CRS {a.crs} differs from {b.crs}"
    if not a.transform.almost_equals(b.transform, precision=1e-6 * max(abs(b.transform.a), 1e-9)):
        return f"geotransform {tuple(a.transform)[:6]} differs from {tuple(b.transform)[:6]}"
    return None


def _partner_fault(other: RasterHeader, reference: RasterHeader) -> str | None:
    """How S1 or cloudy S2 disagrees with its cloud-free S2 partner (size, then grid)."""
    if (other.width, other.height) != (reference.width, reference.height):
        return (
            f"{_size_text(other.width, other.height)} differs from its S2 partner "
            f"{reference.path} ({reference.width}x{reference.height})"
        )
    differs = _georef_differs(other, reference)
    return f"{differs} of its S2 partner {reference.path}" if differs else None


def _file_check(modality: str, path: str, content: bool) -> tuple[list[str], RasterHeader | None]:
    """Faults of one file (header, then with ``content`` its pixels: one open) and its header."""
    try:
        header, image = read_header_and_pixels(path, pixels=content, nodata_to_nan=modality == "s1")
    except RasterError as exc:
        return [exc.fault], None
    faults = _file_faults(modality, header)
    if faults or image is None:
        return faults, header
    if isinstance(image, RasterError):
        return [image.fault], header
    return content_faults(modality, image), header


def _triplet_faults(
    paths: Mapping[str, str], content: bool = True
) -> tuple[list[tuple[str, str]], RasterHeader | None]:
    """``([(path, fault), ...], header of the cloud-free S2 or None)`` of one triplet
    (``paths[modality]``); with ``content``, the pixels of every file with a good header are
    checked too."""
    faults: list[tuple[str, str]] = []
    headers: dict[str, RasterHeader] = {}
    for modality in MODALITIES:
        path = str(paths[modality])
        file_faults, header = _file_check(modality, path, content)
        if header is not None:
            headers[modality] = header
        faults += [(path, fault) for fault in file_faults]
    reference = headers.get("s2")
    if reference is not None:
        for modality in ("s1", "s2_cloudy"):
            other = headers.get(modality)
            fault = None if other is None else _partner_fault(other, reference)
            if fault:
                faults.append((str(other.path), fault))  # type: ignore[union-attr]
    return faults, reference


def _check_chunk(
    start: int, paths: Sequence[tuple[str, str, str]], content: bool
) -> tuple[list[tuple[int, str, str]], np.ndarray]:
    """Check the triplets ``paths`` (s1, s2, s2_cloudy), rows ``start..`` of the table ->
    (``[(row, path, fault), ...]``, ``(n, 2)`` int32 width, height of each cloud-free S2, -1
    where it has no readable header). Runs in a worker process or in this one."""
    found: list[tuple[int, str, str]] = []
    sizes = np.full((len(paths), 2), -1, dtype=np.int32)
    with rasterio.Env(**GDAL_CHECK_OPTIONS):
        for i, triplet in enumerate(paths):
            faults, reference = _triplet_faults(
                dict(zip(MODALITIES, triplet, strict=True)), content
            )
            found += [(start + i, path, fault) for path, fault in faults]
            if reference is not None:
                sizes[i] = (reference.width, reference.height)
    return found, sizes


def _chunk_paths(rows: pd.DataFrame, start: int) -> list[tuple[str, str, str]]:
    part = rows.iloc[start : start + CHUNK_TRIPLETS]
    return list(zip(*(part[f"{m}_path"].astype(str).tolist() for m in MODALITIES), strict=True))


def _chunk_results(
    rows: pd.DataFrame, content: bool, workers: int
) -> Iterator[tuple[int, list[tuple[int, str, str]], np.ndarray]]:
    """``(start, faults, sizes)`` of each chunk of rows, in table order; with ``workers`` > 1
    in that many spawned processes, at most ``2 x workers`` chunks in flight (bounded memory)."""
    starts = range(0, len(rows), CHUNK_TRIPLETS)
    if workers <= 1:
        for start in starts:
            yield start, *_check_chunk(start, _chunk_paths(rows, start), content)
        return
    calls = ((start, _chunk_paths(rows, start), content) for start in starts)
    results = ordered_in_processes(_check_chunk, calls, workers, in_flight=2 * workers)
    try:
        for start, result in zip(starts, results, strict=True):
            yield start, *result
    finally:
        results.close()  # stops the workers at once when the caller stops early


def check_workers(workers: int | None, n_triplets: int) -> int:
    """Processes that check ``n_triplets``: ``workers`` (None: one per usable core), at most one
    per :data:`MIN_PER_WORKER` triplets; 1 means this process (no worker is started)."""
    from tml_cloudremoval.data.triplets import usable_cores  # here: workers never import it

    wanted = usable_cores() if workers is None else int(workers)
    return max(1, min(wanted, n_triplets // MIN_PER_WORKER))


def _size_outliers(
    rows: pd.DataFrame, sizes: np.ndarray, bad_rows: set[int]
) -> list[TripletProblem]:
    """Good triplets whose size differs from the most common size of the good ones (the first
    met of equally common sizes). ``sizes``: ``(n, 2)`` width, height per row, -1: none."""
    good = sizes[:, 0] >= 0
    good[list(bad_rows)] = False
    if not good.any():
        return []
    values, first, counts = np.unique(sizes[good], axis=0, return_index=True, return_counts=True)
    tied = np.flatnonzero(counts == counts.max())
    common = values[tied[np.argmin(first[tied])]]
    problems = []
    for i in np.flatnonzero(good & (sizes != common).any(axis=1)):
        row = rows.iloc[int(i)]
        fault = (
            f"{_size_text(*map(int, sizes[i]))} differs from the {common[0]}x{common[1]} of the "
            "other triplets (a patch store holds one size)"
        )
        problems.append(
            TripletProblem(row["split"], row["scene_id"], row["patch"], row["s2_path"], fault)
        )
    return problems


def validate_triplets(
    table: pd.DataFrame,
    same_size: bool = True,
    progress: bool = False,
    content: bool = True,
    workers: int | None = 1,
) -> list[TripletProblem]:
    """Check every file of every triplet: its TIFF header, then (``content``) its pixels.

    Per file: exists, readable, not truncated, :data:`EXPECTED_BANDS` bands of one of
    :data:`EXPECTED_DTYPES`, width and height multiples of 4 (the 40 m SAR grid); with
    ``content``, the pixels of a file with a good header are read in the same open and every
    band checked (:func:`~tml_cloudremoval.data.content.content_faults`: all NaN, constant,
    ``inf``, outside the physical range), each fault naming the band. Per triplet:
    S1 and cloudy S2 have the size of the cloud-free S2, and the same CRS and geotransform where
    both are georeferenced. With ``same_size``, triplets whose size differs from the most common
    one are reported too (a store holds one size). Returns every problem found (empty: all
    good), in table order.

    ``workers``: processes checking chunks of :data:`CHUNK_TRIPLETS` rows (None: one per usable
    core; see :func:`check_workers`; the result is the same for any number). Memory beyond the
    table: 8 bytes per triplet (its size) and the problems found.
    """
    rows = table.reset_index(drop=True)
    sizes = np.full((len(rows), 2), -1, dtype=np.int32)
    found: list[tuple[int, str, str]] = []
    n_workers = check_workers(workers, len(rows))
    bar = tqdm(total=len(rows), desc="validate triplets", unit="triplet", disable=not progress)
    with bar:
        for start, faults, chunk_sizes in _chunk_results(rows, content, n_workers):
            found += faults
            sizes[start : start + len(chunk_sizes)] = chunk_sizes
            bar.update(len(chunk_sizes))
    keys = rows[["split", "scene_id", "patch"]].iloc[[i for i, _, _ in found]].astype(str)
    problems = [
        TripletProblem(*key, path, fault)
        for key, (_, path, fault) in zip(keys.itertuples(index=False), found, strict=True)
    ]
    if same_size:
        problems += _size_outliers(rows, sizes, {i for i, _, _ in found})
    return problems


def validation_report(
    tables: Mapping[str, pd.DataFrame], progress: bool = False, workers: int | None = 1
) -> dict:
    """Check the per-split tables (:func:`validate_triplets`, ``workers`` processes) -> the
    JSON-able validation report.

    ``{"n_triplets": {split: n}, "n_bad_triplets": {split: n}, "n_problems": n,
    "fingerprints": {split: table_fingerprint}, "problems": [TripletProblem.to_dict(), ...]}``.
    """
    everything = pd.concat(tables.values(), ignore_index=True)
    problems = validate_triplets(everything, progress=progress, workers=workers)
    bad = {(p.split, p.scene_id, p.patch) for p in problems}
    if problems:
        log.warning("%d problem(s) in %d triplet(s)", len(problems), len(bad))
    else:
        log.info("all %d triplets passed the header and pixel checks", len(everything))
    return {
        "n_triplets": {s: len(t) for s, t in tables.items()},
        "n_bad_triplets": {s: sum(1 for b in bad if b[0] == s) for s in tables},
        "n_problems": len(problems),
        "fingerprints": {s: table_fingerprint(t) for s, t in tables.items()},
        "problems": [p.to_dict() for p in problems],
    }


def _check_report_is_current(tables: Mapping[str, pd.DataFrame], report: Mapping) -> None:
    fingerprints = report.get("fingerprints", {})
    stale = [s for s, t in tables.items() if fingerprints.get(s) != table_fingerprint(t)]
    if stale:
        raise DataError(
            f"the validation report does not describe the current {stale} list(s): "
            "run the validate_triplets node again"
        )


def _without_bad(table: pd.DataFrame, bad_paths: set[str], split: str) -> pd.DataFrame:
    bad = table[[f"{m}_path" for m in MODALITIES]].isin(bad_paths).any(axis=1)
    dropped = table[bad]
    if len(dropped):
        log.warning(
            "skipping %d bad triplet(s) of the %s split: %s",
            len(dropped),
            split,
            ", ".join(dropped["scene_id"] + "_" + dropped["patch"]),
        )
    return table[~bad].reset_index(drop=True)


def select_valid_triplets(
    tables: Mapping[str, pd.DataFrame], report: Mapping[str, Any], on_bad_file: str
) -> dict[str, pd.DataFrame]:
    """Act on the validation report -> the per-split tables training uses.

    Refuses a report about other lists (fingerprints differ). ``on_bad_file="error"``: raise one
    :class:`DataError` listing every bad file and its fault; ``"skip"``: drop the bad triplets
    (logging how many and which). Raises when skipping empties a split (a split listed
    empty, as the official split may leave one, stays empty).
    """
    if on_bad_file not in ON_BAD_FILE:
        raise DataError(f"on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}")
    _check_report_is_current(tables, report)
    problems = report.get("problems", [])
    if problems and on_bad_file == "error":
        lines = "\n  ".join(f"{p['path']}: {p['fault']}" for p in problems)
        n_bad = sum(report["n_bad_triplets"].values())
        raise DataError(
            f"{n_bad} triplet(s) have bad files ({len(problems)} problem(s)); fix or remove them, "
            f"or set data.on_bad_file=skip to leave them out:\n  {lines}"
        )
    bad_paths = {p["path"] for p in problems}
    out = {split: _without_bad(table, bad_paths, split) for split, table in tables.items()}
    empty = [s for s, t in out.items() if t.empty and not tables[s].empty]
    if empty:
        raise DataError(
            f"split(s) {empty} are empty after skipping bad triplets: "
            + ", ".join(f"{s}: {len(tables[s])} listed, {len(out[s])} good" for s in SPLITS)
        )
    return out
