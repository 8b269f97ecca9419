"""SEN12MS-CR triplets: discovery, DSen2-CR file lists, scene splits, checks and reading.

A triplet is one 256 x 256 patch at 10 m seen three times: Sentinel-1 (2 bands VV, VH, float32
dB), cloud-free Sentinel-2 (13 bands, uint16 DN) and cloudy Sentinel-2 (13 bands, uint16 DN).

Two on-disk layouts are understood (``detect_layout`` tells them apart):

- official (the TUM download)::

      <root>/ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p30.tif
      <root>/ROIs1158_spring_s2/s2_1/ROIs1158_spring_s2_1_p30.tif
      <root>/ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p30.tif

- flattened (the original DSen2-CR code)::

      <root>/s1/ROIs1158_spring_1_p30.tif
      <root>/s2_cloudFree/ROIs1158_spring_1_p30.tif
      <root>/s2_cloudy/ROIs1158_spring_1_p30.tif

The triplet table (a DataFrame) has the columns :data:`TRIPLET_COLUMNS`: ``scene_id`` (ROI,
season and scene, e.g. ``"ROIs1158_spring_1"``: the unit of the split), ``patch`` (``"p30"``),
the three absolute paths, and ``split`` (``"train"``, ``"val"``, ``"test"`` or ``""``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import os
import re
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tml_cloudremoval.bands import S1_BAND_NAMES, S2_BAND_NAMES, SAR_FACTOR, select_tml_bands
from tml_cloudremoval.data.cloud_mask import cloud_shadow_mask
from tml_cloudremoval.raster import RasterError, RasterHeader, read_header, read_raster
from tml_cloudremoval.sar import SAR_METHODS, fill_nan_with_channel_mean, sar_to_40m

__all__ = [
    "EXPECTED_BANDS",
    "EXPECTED_DTYPES",
    "FILE_LIST_SPLITS",
    "LAYOUTS",
    "MODALITIES",
    "SPLITS",
    "TRIPLET_COLUMNS",
    "DataError",
    "TripletProblem",
    "TripletSamples",
    "build_triplet_table",
    "detect_layout",
    "discover_triplets",
    "flattened_paths",
    "official_paths",
    "parse_patch_name",
    "prepare_patch",
    "read_file_list",
    "read_triplet",
    "split_by_scene",
    "split_tables",
    "table_fingerprint",
    "triplets_from_file_list",
    "validate_triplets",
]

log = logging.getLogger(__name__)

TRIPLET_COLUMNS: tuple[str, ...] = (
    "scene_id",
    "patch",
    "s1_path",
    "s2_path",
    "s2_cloudy_path",
    "split",
)
"""Columns of the triplet table, in order."""

MODALITIES: tuple[str, ...] = ("s1", "s2", "s2_cloudy")
"""The three members of a triplet; ``f"{m}_path"`` is the table column."""

SPLITS: tuple[str, ...] = ("train", "val", "test")

FILE_LIST_SPLITS: dict[str, str] = {"1": "train", "2": "val", "3": "test"}
"""Split codes of DSen2-CR file lists."""

LAYOUTS: tuple[str, ...] = ("auto", "official", "flattened")

FLATTENED_FOLDERS: dict[str, tuple[str, ...]] = {
    "s1": ("s1",),
    "s2": ("s2_cloudFree", "s2_cloudfree"),
    "s2_cloudy": ("s2_cloudy",),
}
"""Folder names of the flattened DSen2-CR layout (the first is used for files not found)."""

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

_OFFICIAL_NAME = {
    "s1": re.compile(r"^(?P<rs>.+)_s1_(?P<scene>\d+)_p(?P<patch>\d+)\.tiff?$", re.IGNORECASE),
    "s2": re.compile(r"^(?P<rs>.+)_s2_(?P<scene>\d+)_p(?P<patch>\d+)\.tiff?$", re.IGNORECASE),
    "s2_cloudy": re.compile(
        r"^(?P<rs>.+)_s2_cloudy_(?P<scene>\d+)_p(?P<patch>\d+)\.tiff?$", re.IGNORECASE
    ),
}
_ANY_NAME = re.compile(
    r"^(?P<rs>.+?)_(?:s1_|s2_cloudy_|s2_)?(?P<scene>\d+)_p(?P<patch>\d+)\.tiff?$", re.IGNORECASE
)
_LABELS = {"s1": "S1", "s2": "S2 (cloud-free)", "s2_cloudy": "S2 cloudy"}
_FILE_LIST_SEPARATOR = re.compile(r"\s*[\t,]\s*")


class DataError(ValueError):
    """The dataset as a whole is unusable: empty root, unreadable file list, empty split..."""


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


# --------------------------------------------------------------------------------------------
# names and layouts


def parse_patch_name(filename: str) -> tuple[str, str]:
    """File name -> ``(scene_id, patch)``, official or flattened naming.

    ``"ROIs1158_spring_s1_1_p30.tif"`` and ``"ROIs1158_spring_1_p30.tif"`` both give
    ``("ROIs1158_spring_1", "p30")``. Raises ``ValueError`` for other names.
    """
    match = _ANY_NAME.match(Path(filename).name)
    if not match:
        raise ValueError(
            f"{filename!r} does not follow the SEN12MS-CR naming "
            "<ROIsXXXX_season>[_s1|_s2|_s2_cloudy]_<scene>_p<patch>.tif"
        )
    return f"{match['rs']}_{match['scene']}", f"p{match['patch']}"


def _split_scene_id(scene_id: str) -> tuple[str, str]:
    roi_season, _, scene = scene_id.rpartition("_")
    return roi_season, scene


def _sort_key(scene_id: str, patch: str) -> tuple[str, int, int, str, str]:
    roi_season, scene = _split_scene_id(scene_id)
    digits = patch.lstrip("pP")
    return (
        roi_season,
        int(scene) if scene.isdigit() else -1,
        int(digits) if digits.isdigit() else -1,
        scene_id,
        patch,
    )


def official_paths(
    root: str | Path, roi_season: str, scene: int | str, patch: int | str
) -> dict[str, Path]:
    """Where a triplet lives in the official layout: ``{"s1": .., "s2": .., "s2_cloudy": ..}``.

    ``roi_season`` e.g. ``"ROIs1158_spring"``, ``scene`` e.g. ``1``, ``patch`` e.g. ``30``
    (or ``"p30"``).
    """
    root = Path(root)
    patch = str(patch).lstrip("pP")
    return {
        m: root / f"{roi_season}_{m}" / f"{m}_{scene}" / f"{roi_season}_{m}_{scene}_p{patch}.tif"
        for m in MODALITIES
    }


def flattened_paths(
    root: str | Path,
    roi_season: str,
    scene: int | str,
    patch: int | str,
    folders: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Where a triplet lives in the flattened DSen2-CR layout (same file name in 3 folders)."""
    root = Path(root)
    patch = str(patch).lstrip("pP")
    folders = {m: FLATTENED_FOLDERS[m][0] for m in MODALITIES} | dict(folders or {})
    name = f"{roi_season}_{scene}_p{patch}.tif"
    return {m: root / folders[m] / name for m in MODALITIES}


def _flattened_folders(root: Path) -> dict[str, Path]:
    """The flattened-layout folders present under root, per modality."""
    found = {}
    for modality, names in FLATTENED_FOLDERS.items():
        for name in names:
            if (root / name).is_dir():
                found[modality] = root / name
                break
    return found


def detect_layout(root: str | Path) -> str:
    """``"flattened"`` if root holds ``s1/`` (and the S2 folders), ``"official"`` if it holds
    ``*_s1`` / ``*_s2`` / ``*_s2_cloudy`` folders. Raises :class:`DataError` otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist or is not a folder")
    if _flattened_folders(root):
        return "flattened"
    if any(p.is_dir() for suffix in MODALITIES for p in root.glob(f"*_{suffix}")):
        return "official"
    raise DataError(
        f"{root}: no SEN12MS-CR data found: expected folders <ROI>_<season>_s1/_s2/_s2_cloudy "
        "(official layout) or s1/, s2_cloudFree/, s2_cloudy/ (flattened DSen2-CR layout)"
    )


# --------------------------------------------------------------------------------------------
# the triplet table


def _table(rows: list[dict[str, str]]) -> pd.DataFrame:
    rows = sorted(rows, key=lambda r: (*_sort_key(r["scene_id"], r["patch"]), r["s1_path"]))
    return pd.DataFrame(rows, columns=list(TRIPLET_COLUMNS)).astype(str)


def _report_incomplete(table: pd.DataFrame, where: Path) -> None:
    missing = [path for m in MODALITIES for path in table[f"{m}_path"] if not Path(path).is_file()]
    if missing:
        log.warning(
            "%d triplet file(s) listed under %s do not exist (validate_triplets reports each): %s",
            len(missing),
            where,
            ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
        )


def discover_triplets(root: str | Path, layout: str = "auto") -> pd.DataFrame:
    """Scan ``root`` for triplets (official or flattened layout) -> triplet table, split ``""``.

    A patch found in any of the three modalities gives a row; where a partner file is missing,
    its expected path is listed anyway (and :func:`validate_triplets` reports it), so an
    incomplete triplet is never dropped silently. Rows are sorted by ROI/season, scene number,
    patch number. Raises :class:`DataError` naming the root when it is missing or holds no
    triplet.
    """
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; use one of {LAYOUTS}")
    root = Path(root).resolve()
    if layout == "auto":
        layout = detect_layout(root)
    elif not root.is_dir():
        raise DataError(f"{root}: data root does not exist or is not a folder")
    keys: dict[tuple[str, str, str], dict[str, Path]] = {}
    odd: list[Path] = []
    if layout == "official":
        for modality in MODALITIES:
            pattern = f"*_{modality}/{modality}_*/*.tif"
            for path in root.glob(pattern):
                match = _OFFICIAL_NAME[modality].match(path.name)
                if not match:
                    odd.append(path)
                    continue
                key = (match["rs"], match["scene"], match["patch"])
                keys.setdefault(key, {})[modality] = path
        rows = []
        for (rs, scene, patch), found in keys.items():
            expected = official_paths(root, rs, scene, patch)
            paths = {m: found.get(m, expected[m]) for m in MODALITIES}
            rows.append(_row(f"{rs}_{scene}", f"p{patch}", paths))
    else:
        folders = _flattened_folders(root)
        for modality, folder in folders.items():
            for path in folder.glob("*.tif"):
                match = _ANY_NAME.match(path.name)
                if not match:
                    odd.append(path)
                    continue
                key = (match["rs"], match["scene"], match["patch"])
                keys.setdefault(key, {})[modality] = path
        names = {
            m: folders[m].name if m in folders else FLATTENED_FOLDERS[m][0] for m in MODALITIES
        }
        rows = []
        for (rs, scene, patch), found in keys.items():
            expected = flattened_paths(root, rs, scene, patch, names)
            paths = {m: found.get(m, expected[m]) for m in MODALITIES}
            rows.append(_row(f"{rs}_{scene}", f"p{patch}", paths))
    if odd:
        log.warning(
            "%d .tif file(s) under %s do not follow the SEN12MS-CR naming and are ignored: %s",
            len(odd),
            root,
            ", ".join(str(p) for p in sorted(odd)[:5]) + (" ..." if len(odd) > 5 else ""),
        )
    if not rows:
        raise DataError(f"{root}: no SEN12MS-CR triplets found ({layout} layout)")
    table = _table(rows)
    _report_incomplete(table, root)
    return table


def _row(scene_id: str, patch: str, paths: Mapping[str, Path], split: str = "") -> dict[str, str]:
    return {
        "scene_id": scene_id,
        "patch": patch,
        **{f"{m}_path": str(Path(paths[m]).absolute()) for m in MODALITIES},
        "split": split,
    }


def read_file_list(path: str | Path) -> list[tuple[str, str, str, str, str]]:
    """Parse a DSen2-CR file list -> rows ``(split, s1_folder, s2_folder, s2_cloudy_folder,
    filename)`` with split mapped to ``"train"``/``"val"``/``"test"``.

    Fields may be separated by a tab, a comma or ``", "``; blank lines, ``#`` comments,
    surrounding whitespace and one header line are tolerated. Raises :class:`DataError` naming
    the file and every bad line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file list does not exist")
    rows: list[tuple[str, str, str, str, str]] = []
    bad: list[str] = []
    first = True
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [f.strip() for f in _FILE_LIST_SEPARATOR.split(text)]
        fields = [f for f in fields if f] if len(fields) > 5 else fields
        if first and not fields[0].isdigit():
            first = False  # a header line such as "split,s1,s2,s2_cloudy,file"
            continue
        first = False
        if len(fields) != 5 or fields[0] not in FILE_LIST_SPLITS or not all(fields):
            bad.append(f"line {number}: {text!r}")
            continue
        rows.append((FILE_LIST_SPLITS[fields[0]], *fields[1:]))  # type: ignore[arg-type]
    if bad:
        raise DataError(
            f"{path}: {len(bad)} line(s) are not 'split, s1_folder, s2_folder, s2_cloudy_folder, "
            "filename' with split 1 (train), 2 (val) or 3 (test):\n  " + "\n  ".join(bad)
        )
    if not rows:
        raise DataError(f"{path}: file list holds no triplet rows")
    return rows


def triplets_from_file_list(file_list: str | Path, root: str | Path) -> pd.DataFrame:
    """Triplet table from a DSen2-CR file list; paths are ``root/<folder>/<filename>``.

    The ``split`` column comes from the list. Files the list names but the disk lacks stay in
    the table (:func:`validate_triplets` reports them).
    """
    root = Path(root).resolve()
    rows = []
    bad = []
    for split, s1_folder, s2_folder, cloudy_folder, filename in read_file_list(file_list):
        try:
            scene_id, patch = parse_patch_name(filename)
        except ValueError as exc:
            bad.append(str(exc))
            continue
        paths = {
            "s1": root / s1_folder / filename,
            "s2": root / s2_folder / filename,
            "s2_cloudy": root / cloudy_folder / filename,
        }
        rows.append(_row(scene_id, patch, paths, split))
    if bad:
        raise DataError(
            f"{file_list}: {len(bad)} file name(s) not understood:\n  " + "\n  ".join(bad)
        )
    table = _table(rows)
    _report_incomplete(table, Path(file_list))
    return table


def build_triplet_table(
    root: str | Path, file_list: str | Path | None = None, layout: str = "auto"
) -> pd.DataFrame:
    """The triplet table: from ``file_list`` (paths relative to ``root``) if given, else a scan
    of ``root`` in the given layout (``"auto"`` detects it)."""
    if file_list:
        return triplets_from_file_list(file_list, root)
    return discover_triplets(root, layout)


def table_fingerprint(table: pd.DataFrame) -> str:
    """A short hash of a table's triplet paths (to tell whether a report is about this table)."""
    digest = hashlib.sha1()
    for row in table[[f"{m}_path" for m in MODALITIES]].itertuples(index=False):
        digest.update("\0".join(row).encode() + b"\n")
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# splits


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    keys = set(fractions)
    if keys != set(SPLITS):
        raise DataError(
            f"split fractions must have exactly the keys {list(SPLITS)}, got {sorted(keys)}"
        )
    values = {k: float(fractions[k]) for k in SPLITS}
    if any(not v > 0 for v in values.values()):
        raise DataError(f"every split fraction must be > 0, got {values}")
    total = sum(values.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise DataError(f"split fractions must sum to 1, got {values} (sum {total:g})")
    return values


def _allocate(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder allocation of n scenes to the splits, at least 1 each (n >= 3)."""
    raw = {k: fractions[k] * n for k in SPLITS}
    counts = {k: math.floor(v) for k, v in raw.items()}
    by_remainder = sorted(SPLITS, key=lambda k: (-(raw[k] - counts[k]), SPLITS.index(k)))
    for k in by_remainder[: n - sum(counts.values())]:
        counts[k] += 1
    for k in SPLITS:
        while counts[k] < 1:
            donor = max(SPLITS, key=lambda s: (counts[s], -SPLITS.index(s)))
            counts[donor] -= 1
            counts[k] += 1
    return counts


def split_by_scene(table: pd.DataFrame, fractions: Mapping[str, float], seed: int) -> pd.DataFrame:
    """Assign whole scenes to train/val/test -> a copy of ``table`` with ``split`` filled in.

    ``fractions``: ``{"train": .., "val": .., "test": ..}`` of the *scenes* (each > 0, sum 1).
    Deterministic for a seed (independent of row order); no scene is in two splits; every split
    gets at least one scene. Raises :class:`DataError` when there are fewer than 3 scenes.
    """
    values = _check_fractions(fractions)
    if table.empty:
        raise DataError("no triplets to split: the triplet table is empty")
    scenes = sorted(set(table["scene_id"]))
    if len(scenes) < len(SPLITS):
        raise DataError(
            f"{len(scenes)} scene(s) ({', '.join(scenes)}) cannot fill the {len(SPLITS)} splits "
            f"{'/'.join(SPLITS)}: a split by scene needs at least {len(SPLITS)} scenes, "
            f"{len(SPLITS) - len(scenes)} more"
        )
    order = np.random.default_rng(seed).permutation(len(scenes))
    counts = _allocate(len(scenes), values)
    assignment: dict[str, str] = {}
    start = 0
    for split in SPLITS:
        for i in order[start : start + counts[split]]:
            assignment[scenes[i]] = split
        start += counts[split]
    out = table.copy()
    out["split"] = out["scene_id"].map(assignment)
    return out.reset_index(drop=True)


def split_tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{"train": .., "val": .., "test": ..}`` from a table whose ``split`` column is filled.

    Raises :class:`DataError` naming every empty split and any unknown split value.
    """
    unknown = sorted(set(table["split"]) - set(SPLITS))
    if unknown:
        raise DataError(f"unknown split value(s) {unknown} in the triplet table; use {SPLITS}")
    parts = {s: table[table["split"] == s].reset_index(drop=True) for s in SPLITS}
    empty = [s for s, part in parts.items() if part.empty]
    if empty:
        counts = ", ".join(f"{s}: {len(p)}" for s, p in parts.items())
        raise DataError(f"empty split(s) {empty} ({counts} triplets): every split needs triplets")
    shared = set(parts["train"]["scene_id"]) & set(parts["val"]["scene_id"])
    shared |= set(parts["train"]["scene_id"]) & set(parts["test"]["scene_id"])
    shared |= set(parts["val"]["scene_id"]) & set(parts["test"]["scene_id"])
    if shared:
        log.warning(
            "%d scene(s) appear in more than one split (neighbouring patches overlap, so the "
            "evaluation is optimistic): %s",
            len(shared),
            ", ".join(sorted(shared)[:10]),
        )
    return parts


# --------------------------------------------------------------------------------------------
# checks from headers


def _georef_differs(a: RasterHeader, b: RasterHeader) -> str | None:
    if not (a.georeferenced and b.georeferenced):
        return None
    if a.crs != b.crs:
        return f"CRS {a.crs} differs from {b.crs}"
    if not a.transform.almost_equals(b.transform, precision=1e-6 * max(abs(b.transform.a), 1e-9)):
        return f"geotransform {tuple(a.transform)[:6]} differs from {tuple(b.transform)[:6]}"
    return None


def validate_triplets(
    table: pd.DataFrame, same_size: bool = True, progress: bool = False
) -> list[TripletProblem]:
    """Check every file of every triplet from its TIFF header (no pixels are read).

    Per file: exists, readable, not truncated, :data:`EXPECTED_BANDS` bands of one of
    :data:`EXPECTED_DTYPES`, width and height multiples of 4 (the 40 m SAR grid). Per triplet:
    S1 and cloudy S2 have the size of the cloud-free S2, and the same CRS and geotransform where
    both are georeferenced. With ``same_size``, triplets whose size differs from the most common
    one are reported too (a store holds one size). Returns every problem found (empty: all good).
    """
    problems: list[TripletProblem] = []
    bad_rows: set[int] = set()
    sizes: dict[int, tuple[int, int]] = {}
    rows = table.reset_index(drop=True)
    iterator: Any = rows.itertuples(index=True)
    if progress:
        iterator = tqdm(iterator, total=len(rows), desc="validate triplets", unit="triplet")
    for row in iterator:

        def add(path: str, fault: str, row: Any = row) -> None:
            problems.append(TripletProblem(row.split, row.scene_id, row.patch, str(path), fault))
            bad_rows.add(row.Index)

        headers: dict[str, RasterHeader] = {}
        for modality in MODALITIES:
            path = getattr(row, f"{modality}_path")
            label = _LABELS[modality]
            try:
                header = read_header(path)
            except RasterError as exc:
                add(path, exc.fault)
                continue
            if header.count != EXPECTED_BANDS[modality]:
                add(
                    path,
                    f"{label} file has {header.count} bands, expected {EXPECTED_BANDS[modality]}",
                )
            if header.dtype not in EXPECTED_DTYPES[modality]:
                expected = " or ".join(EXPECTED_DTYPES[modality])
                add(path, f"{label} file has dtype {header.dtype}, expected {expected}")
            if header.width % SAR_FACTOR or header.height % SAR_FACTOR:
                add(
                    path,
                    f"size {header.width}x{header.height} (width x height) is not a multiple "
                    f"of {SAR_FACTOR}",
                )
            headers[modality] = header
        reference = headers.get("s2")
        if reference is None:
            continue
        for modality in ("s1", "s2_cloudy"):
            other = headers.get(modality)
            if other is None:
                continue
            if (other.width, other.height) != (reference.width, reference.height):
                add(
                    other.path,
                    f"size {other.width}x{other.height} (width x height) differs from its "
                    f"S2 partner {reference.path} ({reference.width}x{reference.height})",
                )
                continue
            differs = _georef_differs(other, reference)
            if differs:
                add(other.path, f"{differs} of its S2 partner {reference.path}")
        sizes[row.Index] = (reference.width, reference.height)
    if same_size and sizes:
        good = Counter(size for i, size in sizes.items() if i not in bad_rows)
        if good:
            common = good.most_common(1)[0][0]
            for i, size in sizes.items():
                if size != common and i not in bad_rows:
                    row = rows.iloc[i]
                    problems.append(
                        TripletProblem(
                            row["split"],
                            row["scene_id"],
                            row["patch"],
                            row["s2_path"],
                            f"size {size[0]}x{size[1]} (width x height) differs from the "
                            f"{common[0]}x{common[1]} of the other triplets "
                            "(a patch store holds one size)",
                        )
                    )
    return problems


# --------------------------------------------------------------------------------------------
# reading and preparing a triplet


def read_triplet(row: Mapping[str, Any] | Any, window: Any = None) -> dict[str, np.ndarray]:
    """Read one triplet (a table row) -> raw arrays, channels_last, optionally a window.

    ``{"s1": float32 (H, W, 2) dB (VV, VH), NaN where missing,
       "s2": uint16 (H, W, 13) DN, "s2_cloudy": uint16 (H, W, 13) DN}``.
    ``window``: a rasterio ``Window`` or ``(row_slice, col_slice)``. Raises
    :class:`~tml_cloudremoval.raster.RasterError` naming the file on read failures.
    """
    s1 = read_raster(row["s1_path"], window=window, nodata_to_nan=True).astype(
        np.float32, copy=False
    )
    s1[~np.isfinite(s1)] = np.nan
    return {
        "s1": s1,
        "s2": read_raster(row["s2_path"], window=window),
        "s2_cloudy": read_raster(row["s2_cloudy_path"], window=window),
    }


def prepare_patch(
    raw: Mapping[str, np.ndarray],
    cloud_threshold: float = 0.2,
    sar_method: str = "mean",
    source: str | None = None,
) -> dict[str, np.ndarray]:
    """Raw triplet (from :func:`read_triplet`, whole patch) -> one patch-store sample.

    ``{"s2_cloudy": uint16 (H, W, 10), "s2": uint16 (H, W, 10)`` (TML bands, DN),
    ``"s1": float32 (H/4, W/4, 2)`` dB at 40 m (NaN filled with the per-channel patch mean, then
    4 x 4 block averaged with ``sar_method``), ``"mask": uint8 (H, W)`` (1 = cloud or shadow,
    detected on the raw 13-band cloudy patch with ``cloud_threshold``)}.
    ``source`` names the triplet in error messages.
    """
    label = f"{source}: " if source else ""
    try:
        s1 = fill_nan_with_channel_mean(raw["s1"])
    except ValueError as exc:
        raise ValueError(f"{label}S1 {exc}") from exc
    return {
        "s2_cloudy": select_tml_bands(raw["s2_cloudy"]).astype(np.uint16, copy=False),
        "s2": select_tml_bands(raw["s2"]).astype(np.uint16, copy=False),
        "s1": sar_to_40m(s1, method=sar_method).astype(np.float32, copy=False),
        "mask": cloud_shadow_mask(raw["s2_cloudy"], cloud_threshold=cloud_threshold).astype(
            np.uint8, copy=False
        ),
    }


def _prepare_row(
    row: Mapping[str, Any], cloud_threshold: float, sar_method: str
) -> dict[str, np.ndarray]:
    """Read and prepare one triplet (a table row as a dict): what a worker process runs."""
    return prepare_patch(
        read_triplet(row), cloud_threshold, sar_method, source=row["s2_cloudy_path"]
    )


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class TripletSamples(Sequence):
    """Lazy sequence of patch-store samples over a triplet table (read + prepare on access).

    ``len()``, ``[i]`` (one sample dict, see :func:`prepare_patch`) and iteration (in table
    order, with a tqdm progress bar). ``index`` is the table (patch-store ``index.csv``),
    ``meta`` the settings (patch-store ``meta.json``), ``height``/``width`` the patch size (from
    the first header). This is what ``PatchStoreDataset.save`` takes.

    ``workers``: processes that read and prepare triplets during iteration (None: one per usable
    core; 1: in this process). Each sample costs about 35 ms of one core (reads, cloud mask, SAR
    averaging), so the 122,218 SEN12MS-CR triplets take about 70 min on one core and scale with
    the cores. Starting a worker costs about as much as 40 triplets, so a worker is started only
    for every ``min_per_worker`` triplets (a 72-triplet sample set runs in this process). At
    most ``4 x workers`` samples are in flight, so memory stays bounded.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        cloud_threshold: float = 0.2,
        sar_method: str = "mean",
        progress: bool = True,
        description: str = "patches",
        workers: int | None = 1,
        min_per_worker: int = 100,
    ) -> None:
        if sar_method not in SAR_METHODS:
            raise ValueError(f"unknown sar_method {sar_method!r}; use one of {SAR_METHODS}")
        if not 0.0 < float(cloud_threshold) <= 1.0:
            raise ValueError(f"cloud_threshold must be in (0, 1], got {cloud_threshold}")
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers must be >= 1 or None (one per core), got {workers}")
        self.index = table.reset_index(drop=True)[list(TRIPLET_COLUMNS)].copy()
        self.cloud_threshold = float(cloud_threshold)
        self.sar_method = sar_method
        self.progress = progress
        self.description = description
        self.workers = usable_cores() if workers is None else int(workers)
        self.min_per_worker = max(1, int(min_per_worker))
        self.meta: dict[str, Any] = {
            "sar_method": sar_method,
            "cloud_threshold": self.cloud_threshold,
        }
        self._size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def _size_from_header(self) -> tuple[int, int]:
        if self._size is None:
            if not len(self):
                raise ValueError("no triplets: the patch size is unknown")
            header = read_header(self.index.loc[0, "s2_path"])
            self._size = (header.height, header.width)
        return self._size

    @property
    def height(self) -> int:
        return self._size_from_header()[0]

    @property
    def width(self) -> int:
        return self._size_from_header()[1]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:  # type: ignore[override]
        if not isinstance(i, int | np.integer):
            raise TypeError(f"TripletSamples index must be an int, got {type(i).__name__}")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range for {n} triplets")
        return _prepare_row(
            self.index.iloc[int(i)].to_dict(), self.cloud_threshold, self.sar_method
        )

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        n = len(self)
        workers = min(self.workers, n // self.min_per_worker)
        with tqdm(total=n, desc=self.description, unit="patch", disable=not self.progress) as bar:
            if workers <= 1:
                for i in range(n):
                    yield self[i]
                    bar.update()
                return
            # spawn, not fork: the parent may hold threads (GDAL, TensorFlow) a fork would copy
            # mid-lock; workers import only this module's dependencies
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            pending: deque[Future] = deque()
            try:
                for i in range(n):
                    row = self.index.iloc[i].to_dict()
                    pending.append(
                        pool.submit(_prepare_row, row, self.cloud_threshold, self.sar_method)
                    )
                    if len(pending) >= 4 * workers:
                        yield pending.popleft().result()
                        bar.update()
                while pending:
                    yield pending.popleft().result()
                    bar.update()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def __repr__(self) -> str:
        return (
            f"TripletSamples(n={len(self)}, cloud_threshold={self.cloud_threshold}, "
            f"sar_method={self.sar_method!r}, workers={self.workers})"
        )
