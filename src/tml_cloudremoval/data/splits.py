"""Scene splits: whole scenes (ROI + season + scene id) go to train, val or test, never patches.

Neighbouring SEN12MS-CR patches overlap in content, so a split by patch would leak test content
into training. Three ways to split (``data.split`` and ``data.file_list``):

- fractions of the scenes, drawn with a seed (:func:`split_by_scene`);
- ``"official"``: the published SEN12MS-CR scene split of SEN12MS-CR-TS / UnCRtainTS (10 test,
  10 val, 155 train scenes; the table ``conf/base/sen12mscr_official_split.csv``, catalog entry
  ``sen12mscr_official_split``), matched by exact (ROI + season, scene number)
  (:func:`split_official`). Scenes it does not list go to train (logged). A split may then be
  empty on a subset of SEN12MS-CR (logged; its store is written empty);
- a DSen2-CR file list's own split, used as is (it wins over both).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import sort_key

__all__ = [
    "OFFICIAL",
    "OFFICIAL_COLUMNS",
    "SPLITS",
    "assign_splits",
    "check_fractions",
    "official_assignment",
    "scene_key",
    "split_by_scene",
    "split_method",
    "split_official",
    "split_tables",
]

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")

OFFICIAL = "official"
"""The ``data.split`` value that selects the published SEN12MS-CR scene split."""

OFFICIAL_COLUMNS: tuple[str, ...] = ("roi_season", "scene", "split")
"""Columns of the official split table: ``ROIs1158_spring``, ``106``, ``test``."""

OFFICIAL_SOURCE = "sen12mscr_official_split (conf/base/sen12mscr_official_split.csv)"
"""Where the official split table comes from, for messages (its catalog entry and file)."""

_LISTED = 10  # scene ids named in a log line, at most


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """``{"train": .., "val": .., "test": ..}``, each > 0, summing to 1, as floats.

    Raises :class:`DataError` saying what is wrong.
    """
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


def _unique(column: pd.Series) -> list[str]:
    """The distinct values of a column, in order of appearance (vectorised: iterating a
    string column value by value costs microseconds per row)."""
    return pd.unique(column).tolist()


def _per_scene(scene_ids: pd.Series, of_scene: Callable[[str], str]) -> np.ndarray:
    """``of_scene(scene_id)`` for every row, computed once per distinct scene (factorised)."""
    codes, scenes = pd.factorize(scene_ids)
    return np.asarray([of_scene(s) for s in scenes.tolist()], dtype=object)[codes]


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
    values = check_fractions(fractions)
    if table.empty:
        raise DataError("no triplets to split: the triplet table is empty")
    scenes = sorted(_unique(table["scene_id"]))
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
    out["split"] = _per_scene(out["scene_id"], assignment.__getitem__)
    return out.reset_index(drop=True)


def _warn_shared_scenes(parts: Mapping[str, pd.DataFrame]) -> None:
    scenes = {s: set(_unique(part["scene_id"])) for s, part in parts.items()}
    shared = (
        (scenes["train"] & scenes["val"])
        | (scenes["train"] & scenes["test"])
        | (scenes["val"] & scenes["test"])
    )
    if shared:
        log.warning(
            "%d scene(s) appear in more than one split (neighbouring patches overlap, so the "
            "evaluation is optimistic): %s",
            len(shared),
            ", ".join(sorted(shared)[:10]),
        )


def split_tables(table: pd.DataFrame, allow_empty: bool = False) -> dict[str, pd.DataFrame]:
    """``{"train": .., "val": .., "test": ..}`` from a table whose ``split`` column is filled.

    Raises :class:`DataError` naming any unknown split value and, unless ``allow_empty`` (the
    official split on a subset of SEN12MS-CR), every empty split.
    """
    unknown = sorted(set(_unique(table["split"])) - set(SPLITS))
    if unknown:
        raise DataError(f"unknown split value(s) {unknown} in the triplet table; use {SPLITS}")
    parts = {s: table[table["split"] == s].reset_index(drop=True) for s in SPLITS}
    empty = [s for s, part in parts.items() if part.empty]
    if empty and not allow_empty:
        counts = ", ".join(f"{s}: {len(p)}" for s, p in parts.items())
        raise DataError(f"empty split(s) {empty} ({counts} triplets): every split needs triplets")
    _warn_shared_scenes(parts)
    return parts


def scene_key(scene_id: str) -> tuple[str, int]:
    """``"ROIs1970_fall_139"`` -> ``("ROIs1970_fall", 139)``: the key of the official split
    (the scene number as an integer, -1 where the id ends in no number)."""
    roi_season, scene = sort_key(scene_id, "")[:2]
    return roi_season, scene


def official_assignment(official: pd.DataFrame) -> dict[tuple[str, int], str]:
    """The official split table (:data:`OFFICIAL_COLUMNS`, one row per scene) ->
    ``{(roi_season, scene number): split}``.

    Raises :class:`DataError` naming the table and each fault: a missing column, a scene that is
    not a whole number, a split other than train/val/test, a scene listed twice.
    """
    missing = [c for c in OFFICIAL_COLUMNS if c not in official.columns]
    if missing:
        raise DataError(
            f"{OFFICIAL_SOURCE}: missing column(s) {missing}; expected {list(OFFICIAL_COLUMNS)}"
        )
    faults: list[str] = []
    assignment: dict[tuple[str, int], str] = {}
    for i, (roi_season, scene, split) in enumerate(
        official[list(OFFICIAL_COLUMNS)].astype(str).itertuples(index=False), start=2
    ):
        if not scene.strip().isdigit():
            faults.append(f"line {i}: scene {scene!r} is not a whole number")
        elif split not in SPLITS:
            faults.append(f"line {i}: split {split!r} is not one of {list(SPLITS)}")
        elif (key := (roi_season.strip(), int(scene))) in assignment:
            faults.append(f"line {i}: {key[0]} scene {key[1]} is listed twice")
        else:
            assignment[key] = split
    if faults:
        raise DataError(f"{OFFICIAL_SOURCE}: " + "; ".join(faults))
    return assignment


def _listing(scene_ids: list[str]) -> str:
    more = f" and {len(scene_ids) - _LISTED} more" if len(scene_ids) > _LISTED else ""
    return ", ".join(scene_ids[:_LISTED]) + more


def split_official(table: pd.DataFrame, official: pd.DataFrame) -> pd.DataFrame:
    """Assign scenes by the official split -> a copy of ``table`` with ``split`` filled in.

    A scene (``scene_id``) takes the split of its exact (ROI + season, scene number) row of
    ``official`` (see :func:`official_assignment`): ``ROIs1970_fall_1`` is never confused with
    ``ROIs1970_fall_139``. Scenes the table does not list go to train, logged (count and the
    first ids). Raises :class:`DataError` for an empty triplet table or a bad official table.
    """
    assignment = official_assignment(official)
    if table.empty:
        raise DataError("no triplets to split: the triplet table is empty")
    out = table.copy()
    out["split"] = _per_scene(table["scene_id"], lambda s: assignment.get(scene_key(s), "train"))
    unlisted = sorted(
        (s for s in _unique(table["scene_id"]) if scene_key(s) not in assignment), key=scene_key
    )
    if unlisted:
        log.warning(
            "%d scene(s) not in the official SEN12MS-CR split go to train: %s",
            len(unlisted),
            _listing(unlisted),
        )
    return out.reset_index(drop=True)


def _warn_empty_official(parts: Mapping[str, pd.DataFrame], official: pd.DataFrame) -> None:
    assignment = official_assignment(official)
    for split, part in parts.items():
        if part.empty:
            expected = [f"{rs}_{n}" for (rs, n), s in sorted(assignment.items()) if s == split]
            log.warning(
                "the official split found no %s scene under the data root (it lists %d: %s): "
                "the %s store will be empty",
                split,
                len(expected),
                _listing(expected),
                split,
            )


def split_method(split: object, file_list: str | None) -> str:
    """How a run's splits are made: ``"file_list"`` (a DSen2-CR list's own split wins),
    ``"official"`` or ``"fractions"`` (``split``: ``data.split``, the fractions in any form or
    ``"official"``; ``file_list``: ``data.file_list``)."""
    if file_list:
        return "file_list"
    return OFFICIAL if split == OFFICIAL else "fractions"


def _has_own_split(table: pd.DataFrame) -> bool:
    return bool(len(table)) and bool((table["split"].astype(str) != "").all())


def assign_splits(
    table: pd.DataFrame,
    split: Mapping[str, float] | str,
    seed: int,
    official: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The per-split tables: the table's own split where every row has one (a file list's),
    else ``split``: fractions of the scenes (a seeded split by scene) or ``"official"`` (the
    ``official`` table, see :func:`split_official`). Raises :class:`DataError` on an empty split,
    except with the official split, where an empty split is a logged warning."""
    if _has_own_split(table):
        if split == OFFICIAL:
            log.warning("data.split official is not used: the file list carries its own split")
        log.info("using the split given by the file list")
        parts = split_tables(table)
    elif split == OFFICIAL:
        if official is None:
            raise ValueError("the official split needs its table (sen12mscr_official_split)")
        parts = split_tables(split_official(table, official), allow_empty=True)
        _warn_empty_official(parts, official)
    else:
        parts = split_tables(split_by_scene(table, split, seed))  # type: ignore[arg-type]
    log.info(
        "split: %s",
        ", ".join(
            f"{s} {len(p)} triplets / {p['scene_id'].nunique()} scenes" for s, p in parts.items()
        ),
    )
    return parts
