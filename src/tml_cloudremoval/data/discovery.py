"""SEN12MS-CR discovery: a folder (either layout) or a DSen2-CR file list -> the triplet table.

The triplet table (a DataFrame) has the columns :data:`TRIPLET_COLUMNS`: ``scene_id`` (ROI,
season and scene, e.g. ``"ROIs1158_spring_1"``: the unit of the split), ``patch`` (``"p30"``),
the three absolute paths, and ``split`` (``"train"``, ``"val"``, ``"test"`` or ``""``). The file
naming is defined once, in :mod:`tml_cloudremoval.data.layout`.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import (
    FLATTENED_FOLDERS,
    MODALITIES,
    flattened_folders_present,
    flattened_paths,
    layouts_present,
    match_any_name,
    match_official_name,
    official_glob,
    official_paths,
    parse_patch_name,
    sort_key,
)

__all__ = [
    "FILE_LIST_SPLITS",
    "LAYOUTS",
    "TRIPLET_COLUMNS",
    "build_triplet_table",
    "discover_triplets",
    "read_file_list",
    "table_fingerprint",
    "triplets_from_file_list",
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

FILE_LIST_SPLITS: dict[str, str] = {"1": "train", "2": "val", "3": "test"}
"""Split codes of DSen2-CR file lists."""

LAYOUTS: tuple[str, ...] = ("auto", "official", "flattened")

PROGRESS_FOLDERS = 100
"""Scene folders above which discovery shows a progress bar (SEN12MS-CR: 525)."""

_FILE_LIST_SEPARATOR = re.compile(r"\s*[\t,]\s*")

_Key = tuple[str, str, str]  # (roi_season, scene, patch number)


def _row(scene_id: str, patch: str, paths: Mapping[str, Path], split: str = "") -> dict[str, str]:
    return {
        "scene_id": scene_id,
        "patch": patch,
        **{f"{m}_path": os.path.abspath(paths[m]) for m in MODALITIES},
        "split": split,
    }


def _table(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Rows -> the triplet table, sorted (:func:`~tml_cloudremoval.data.layout.sort_key`)."""
    order = sorted(
        range(len(rows)),
        key=lambda i: (*sort_key(rows[i]["scene_id"], rows[i]["patch"]), rows[i]["s1_path"]),
    )
    columns = {c: [rows[i][c] for i in order] for c in TRIPLET_COLUMNS}
    return pd.DataFrame(columns, columns=list(TRIPLET_COLUMNS)).astype(str)


def _listing(paths: list[object], limit: int = 5) -> str:
    return ", ".join(str(p) for p in paths[:limit]) + (" ..." if len(paths) > limit else "")


def _warn_missing(missing: list[str], where: Path) -> None:
    if missing:
        log.warning(
            "%d triplet file(s) listed under %s do not exist (validate_triplets reports each): %s",
            len(missing),
            where,
            _listing(missing),
        )


def _report_incomplete(table: pd.DataFrame, where: Path) -> None:
    columns = [table[f"{m}_path"].tolist() for m in MODALITIES]
    _warn_missing([p for paths in columns for p in paths if not os.path.isfile(p)], where)


def _globbed(root: Path, pattern: str) -> list[str]:
    """Files matching ``pattern`` under root, as strings (``glob.glob``: no Path per file)."""
    return glob.glob(os.path.join(glob.escape(str(root)), pattern))


def _official_folders(root: Path) -> list[tuple[str, str, str]]:
    """``(modality, folder, file pattern)`` of every scene folder of the official layout."""
    folders = []
    for modality in MODALITIES:
        folder_pattern, _, file_pattern = official_glob(modality).rpartition("/")
        for folder in sorted(_globbed(root, folder_pattern)):
            if os.path.isdir(folder):
                folders.append((modality, folder, file_pattern))
    return folders


def _scan_official(
    root: Path, progress: bool | None = None
) -> tuple[dict[_Key, dict[str, str]], list[str]]:
    """Files of the official layout under root -> ({key: {modality: path}}, odd names).

    One ``listdir`` per scene folder (names matched as ``glob`` would: hidden names skipped);
    a progress bar over the folders when ``progress`` (None: above :data:`PROGRESS_FOLDERS`)."""
    found: dict[_Key, dict[str, str]] = {}
    odd: list[str] = []
    folders = _official_folders(root)
    show = len(folders) > PROGRESS_FOLDERS if progress is None else progress
    bar = tqdm(folders, desc=f"discover {root.name}", unit="folder", disable=not show)
    for modality, folder, pattern in bar:
        prefix = folder + os.sep
        for name in fnmatch.filter(os.listdir(folder), pattern):
            if name.startswith("."):
                continue
            key = match_official_name(modality, name)
            if key is None:
                odd.append(prefix + name)
            else:
                found.setdefault(key, {})[modality] = prefix + name
    return found, odd


def _scan_flattened(
    root: Path,
) -> tuple[dict[_Key, dict[str, str]], list[str], dict[str, str]]:
    """Files of the flattened layout -> (found, odd names, folder name per modality)."""
    folders = flattened_folders_present(root)
    found: dict[_Key, dict[str, str]] = {}
    odd: list[str] = []
    for modality, folder in folders.items():
        for path in _globbed(folder, "*.tif"):
            key = match_any_name(os.path.basename(path))
            if key is None:
                odd.append(path)
            else:
                found.setdefault(key, {})[modality] = path
    names = {m: folders[m].name if m in folders else FLATTENED_FOLDERS[m][0] for m in MODALITIES}
    return found, odd, names


def _rows_of_scan(
    root: Path, layout: str, progress: bool | None = None
) -> tuple[list[dict[str, str]], list[str], list[str]]:
    """Scan root in ``layout`` -> (table rows, odd files, missing partners); a missing partner
    is listed at its expected path. Paths are strings under the (absolute) root."""
    if layout == "official":
        found, odd = _scan_official(root, progress)

        def expected(rs: str, scene: str, patch: str, modality: str) -> str:
            return str(official_paths(root, rs, scene, patch)[modality])
    else:
        found, odd, names = _scan_flattened(root)

        def expected(rs: str, scene: str, patch: str, modality: str) -> str:
            return str(flattened_paths(root, rs, scene, patch, names)[modality])

    rows, missing = [], []
    for (rs, scene, patch), paths in found.items():
        row = {"scene_id": f"{rs}_{scene}", "patch": f"p{patch}", "split": ""}
        for m in MODALITIES:
            if m not in paths:
                missing.append(expected(rs, scene, patch, m))
            row[f"{m}_path"] = paths[m] if m in paths else missing[-1]
        rows.append(row)
    return rows, odd, missing


_Scan = tuple[list[dict[str, str]], list[str], list[str]]


def _choose_layout(root: Path, layout: str, progress: bool | None = None) -> tuple[str, _Scan]:
    """The layout to read under root, and its scan (each layout present is scanned once).
    ``"auto"`` with both layouts present is refused, naming both and their triplet counts
    (reading both would list a flattened copy of the official files twice, possibly in two
    splits; reading one silently would drop the other's files); an explicit layout reads only
    that one and logs what the other holds."""
    present = layouts_present(root)
    scans = {name: _rows_of_scan(root, name, progress) for name in present}
    counts = {name: len(scan[0]) for name, scan in scans.items()}
    if layout == "auto":
        if len(present) == 2:
            raise DataError(
                f"{root}: holds both SEN12MS-CR layouts: the official one "
                f"(<ROI>_<season>_s1/_s2/_s2_cloudy, {counts['official']} triplets) and the "
                f"flattened one (s1/, s2_cloudFree/, s2_cloudy/, {counts['flattened']} triplets); "
                "set data.layout=official or data.layout=flattened to read one of them"
            )
        if not present:
            raise DataError(
                f"{root}: no SEN12MS-CR data found: expected folders "
                "<ROI>_<season>_s1/_s2/_s2_cloudy (official layout) or s1/, s2_cloudFree/, "
                "s2_cloudy/ (flattened DSen2-CR layout)"
            )
        return present[0], scans[present[0]]
    for other in present:
        if other != layout:
            log.warning(
                "%s: data.layout=%s: the %s layout there (%d triplets) is ignored",
                root,
                layout,
                other,
                counts[other],
            )
    return layout, scans.get(layout) or _rows_of_scan(root, layout, progress)


def discover_triplets(
    root: str | Path, layout: str = "auto", progress: bool | None = None
) -> pd.DataFrame:
    """Scan ``root`` for triplets (official or flattened layout) -> triplet table, split ``""``.

    A patch found in any of the three modalities gives a row; where a partner file is missing,
    its expected path is listed anyway (and ``validate_triplets`` reports it), so an incomplete
    triplet is never dropped silently. Rows are sorted by ROI/season, scene number, patch
    number. Raises :class:`DataError` naming the root when it is missing or holds no triplet,
    and, with ``layout="auto"``, when it holds both layouts (see :func:`_choose_layout`).
    One listing of each folder, no ``Path`` object or ``stat`` per file: linear in the files
    (a few s of a core for the 366,654 files of SEN12MS-CR, see ``benchmarks/bench_scale.py``).
    ``progress``: a progress bar over the scene folders (None: where there are more than
    :data:`PROGRESS_FOLDERS`).
    """
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; use one of {LAYOUTS}")
    root = Path(root).resolve()
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist or is not a folder")
    layout, (rows, odd, missing) = _choose_layout(root, layout, progress)
    if odd:
        log.warning(
            "%d .tif file(s) under %s do not follow the SEN12MS-CR naming and are ignored: %s",
            len(odd),
            root,
            _listing(sorted(odd)),
        )
    if not rows:
        raise DataError(f"{root}: no SEN12MS-CR triplets found ({layout} layout)")
    table = _table(rows)
    _warn_missing(missing, root)
    return table


def _file_list_fields(text: str) -> list[str]:
    fields = [f.strip() for f in _FILE_LIST_SEPARATOR.split(text)]
    return [f for f in fields if f] if len(fields) > 5 else fields


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
    lines = [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), start=1)]
    lines = [(n, text) for n, text in lines if text and not text.startswith("#")]
    if lines and not _file_list_fields(lines[0][1])[0].isdigit():
        lines = lines[1:]  # a header line such as "split,s1,s2,s2_cloudy,file"
    for number, text in lines:
        fields = _file_list_fields(text)
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
    the table (``validate_triplets`` reports them).
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
        folders = dict(zip(MODALITIES, (s1_folder, s2_folder, cloudy_folder), strict=True))
        rows.append(
            _row(scene_id, patch, {m: root / f / filename for m, f in folders.items()}, split)
        )
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
