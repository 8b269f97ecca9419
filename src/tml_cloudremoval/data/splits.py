"""Scene splits: whole scenes (ROI + season + scene id) go to train, val or test, never patches.

Neighbouring SEN12MS-CR patches overlap in content, so a split by patch would leak test content
into training. A DSen2-CR file list may bring its own split, which is used as is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tml_cloudremoval.data.errors import DataError

__all__ = ["SPLITS", "assign_splits", "check_fractions", "split_by_scene", "split_tables"]

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")


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


def _warn_shared_scenes(parts: Mapping[str, pd.DataFrame]) -> None:
    scenes = {s: set(part["scene_id"]) for s, part in parts.items()}
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
    _warn_shared_scenes(parts)
    return parts


def assign_splits(
    table: pd.DataFrame, fractions: Mapping[str, float], seed: int
) -> dict[str, pd.DataFrame]:
    """The per-split tables: the table's own split where every row has one (a file list's),
    else a seeded split by scene with ``fractions``. Raises :class:`DataError` on an empty
    split."""
    if len(table) and (table["split"].astype(str) != "").all():
        log.info("using the split given by the file list")
    else:
        table = split_by_scene(table, fractions, seed)
    parts = split_tables(table)
    log.info(
        "split: %s",
        ", ".join(
            f"{s} {len(p)} triplets / {p['scene_id'].nunique()} scenes" for s, p in parts.items()
        ),
    )
    return parts
