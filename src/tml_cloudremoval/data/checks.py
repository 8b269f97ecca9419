"""Checks of the triplet lists: every file from its TIFF header, and acting on the report.

:func:`validate_triplets` lists every :class:`TripletProblem` (no pixels are read);
:func:`validation_report` turns them into the JSON report the pipeline keeps, with fingerprints
of the lists it checked; :func:`select_valid_triplets` refuses a report about other lists, then
stops on bad files or leaves them out (``on_bad_file``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
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
from tml_cloudremoval.raster import RasterError, RasterHeader, read_header, read_raster

__all__ = [
    "EXPECTED_BANDS",
    "EXPECTED_DTYPES",
    "ON_BAD_FILE",
    "TripletProblem",
    "select_valid_triplets",
    "validate_triplets",
    "validation_report",
]

log = logging.getLogger(__name__)

ON_BAD_FILE: tuple[str, ...] = ("error", "skip")
"""What :func:`select_valid_triplets` does with bad triplets."""


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


def _pixel_faults(modality: str, path: str) -> list[str]:
    """Content faults of one file whose header is good (reads its pixels once)."""
    try:
        image = read_raster(path, nodata_to_nan=modality == "s1")
    except RasterError as exc:
        return [exc.fault]
    return content_faults(modality, image)


def _triplet_faults(
    row: Any, content: bool = True
) -> tuple[list[tuple[str, str]], RasterHeader | None]:
    """``([(path, fault), ...], header of the cloud-free S2 or None)`` of one table row; with
    ``content``, the pixels of every file with a good header are checked too."""
    faults: list[tuple[str, str]] = []
    headers: dict[str, RasterHeader] = {}
    for modality in MODALITIES:
        path = getattr(row, f"{modality}_path")
        try:
            headers[modality] = read_header(path)
        except RasterError as exc:
            faults.append((str(path), exc.fault))
            continue
        file_faults = _file_faults(modality, headers[modality])
        if content and not file_faults:
            file_faults = _pixel_faults(modality, path)
        faults += [(str(path), fault) for fault in file_faults]
    reference = headers.get("s2")
    if reference is not None:
        for modality in ("s1", "s2_cloudy"):
            other = headers.get(modality)
            fault = None if other is None else _partner_fault(other, reference)
            if fault:
                faults.append((str(other.path), fault))  # type: ignore[union-attr]
    return faults, reference


def _size_outliers(
    rows: pd.DataFrame, sizes: Mapping[int, tuple[int, int]], bad_rows: set[int]
) -> list[TripletProblem]:
    """Good triplets whose size differs from the most common size of the good ones."""
    good = Counter(size for i, size in sizes.items() if i not in bad_rows)
    if not good:
        return []
    common = good.most_common(1)[0][0]
    problems = []
    for i, size in sizes.items():
        if size != common and i not in bad_rows:
            row = rows.iloc[i]
            fault = (
                f"{_size_text(*size)} differs from the {common[0]}x{common[1]} of the other "
                "triplets (a patch store holds one size)"
            )
            problems.append(
                TripletProblem(row["split"], row["scene_id"], row["patch"], row["s2_path"], fault)
            )
    return problems


def validate_triplets(
    table: pd.DataFrame, same_size: bool = True, progress: bool = False, content: bool = True
) -> list[TripletProblem]:
    """Check every file of every triplet: its TIFF header, then (``content``) its pixels.

    Per file: exists, readable, not truncated, :data:`EXPECTED_BANDS` bands of one of
    :data:`EXPECTED_DTYPES`, width and height multiples of 4 (the 40 m SAR grid); with
    ``content``, the pixels of a file with a good header are read once and every band checked
    (:func:`~tml_cloudremoval.data.content.content_faults`: all NaN, constant, ``inf``, outside
    the physical range), each fault naming the band. Per triplet:
    S1 and cloudy S2 have the size of the cloud-free S2, and the same CRS and geotransform where
    both are georeferenced. With ``same_size``, triplets whose size differs from the most common
    one are reported too (a store holds one size). Returns every problem found (empty: all good).
    """
    problems: list[TripletProblem] = []
    bad_rows: set[int] = set()
    sizes: dict[int, tuple[int, int]] = {}
    rows = table.reset_index(drop=True)
    iterator: Iterable[Any] = rows.itertuples(index=True)
    if progress:
        iterator = tqdm(iterator, total=len(rows), desc="validate triplets", unit="triplet")
    for row in iterator:
        faults, reference = _triplet_faults(row, content)
        problems += [TripletProblem(row.split, row.scene_id, row.patch, p, f) for p, f in faults]
        if faults:
            bad_rows.add(row.Index)
        if reference is not None:
            sizes[row.Index] = (reference.width, reference.height)
    if same_size:
        problems += _size_outliers(rows, sizes, bad_rows)
    return problems


def validation_report(tables: Mapping[str, pd.DataFrame], progress: bool = False) -> dict:
    """Check the per-split tables -> the JSON-able validation report.

    ``{"n_triplets": {split: n}, "n_bad_triplets": {split: n}, "n_problems": n,
    "fingerprints": {split: table_fingerprint}, "problems": [TripletProblem.to_dict(), ...]}``.
    """
    everything = pd.concat(tables.values(), ignore_index=True)
    problems = validate_triplets(everything, progress=progress)
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
