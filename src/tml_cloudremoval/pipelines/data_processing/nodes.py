"""Thin nodes of the data_processing pipeline; the work is in ``tml_cloudremoval.data.sen12mscr``.

Every node takes the ``data`` parameters (conf/base/parameters_data_processing.yml) and
persisted catalog entries, so each can be run alone with ``kedro run --nodes NAME``.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from tml_cloudremoval.data import sen12mscr
from tml_cloudremoval.data.sen12mscr import SPLITS, DataError, TripletSamples

log = logging.getLogger(__name__)

ON_BAD_FILE = ("error", "skip")


def _tables(train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return dict(zip(SPLITS, (train, val, test), strict=True))


def build_triplet_table(data: dict[str, Any]) -> pd.DataFrame:
    """``data.file_list`` (a DSen2-CR list, paths relative to ``data.root``) if set, else a scan
    of ``data.root`` in ``data.layout`` -> the triplet table (split filled only from a list)."""
    table = sen12mscr.build_triplet_table(
        data["root"], data.get("file_list"), data.get("layout", "auto")
    )
    source = data.get("file_list") or data["root"]
    log.info("%d triplets in %d scenes from %s", len(table), table["scene_id"].nunique(), source)
    return table


def split_triplets(
    triplets: pd.DataFrame, data: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train/val/test lists: the file list's split where it gives one for every row, else a
    seeded split by scene with ``data.split`` fractions. Raises on an empty split."""
    if len(triplets) and (triplets["split"].astype(str) != "").all():
        log.info("using the split given by the file list")
        table = triplets
    else:
        table = sen12mscr.split_by_scene(triplets, data["split"], int(data["seed"]))
    parts = sen12mscr.split_tables(table)
    log.info(
        "split: %s",
        ", ".join(
            f"{s} {len(p)} triplets / {p['scene_id'].nunique()} scenes" for s, p in parts.items()
        ),
    )
    return parts["train"], parts["val"], parts["test"]


def validate_triplets(
    train_triplets: pd.DataFrame, val_triplets: pd.DataFrame, test_triplets: pd.DataFrame
) -> dict[str, Any]:
    """Check every file of every split from its header -> the validation report (JSON).

    The report lists each problem (split, scene_id, patch, path, fault) and a fingerprint of the
    lists it checked; ``select_valid_triplets`` acts on it.
    """
    tables = _tables(train_triplets, val_triplets, test_triplets)
    everything = pd.concat(tables.values(), ignore_index=True)
    problems = sen12mscr.validate_triplets(everything, progress=len(everything) > 1000)
    bad = {(p.split, p.scene_id, p.patch) for p in problems}
    report = {
        "n_triplets": {s: len(t) for s, t in tables.items()},
        "n_bad_triplets": {s: sum(1 for b in bad if b[0] == s) for s in SPLITS},
        "n_problems": len(problems),
        "fingerprints": {s: sen12mscr.table_fingerprint(t) for s, t in tables.items()},
        "problems": [p.to_dict() for p in problems],
    }
    if problems:
        log.warning("%d problem(s) in %d triplet(s)", len(problems), len(bad))
    else:
        log.info("all %d triplets passed the header checks", len(everything))
    return report


def select_valid_triplets(
    train_triplets: pd.DataFrame,
    val_triplets: pd.DataFrame,
    test_triplets: pd.DataFrame,
    triplet_validation: dict[str, Any],
    data: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Act on the validation report: with ``data.on_bad_file: error`` raise one error listing
    every bad file and its fault; with ``skip`` drop the bad triplets (logging how many and
    which). Returns the lists training uses. Raises when a split ends up empty."""
    on_bad_file = data.get("on_bad_file", "error")
    if on_bad_file not in ON_BAD_FILE:
        raise DataError(f"data.on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}")
    tables = _tables(train_triplets, val_triplets, test_triplets)
    stale = [
        s
        for s, t in tables.items()
        if triplet_validation.get("fingerprints", {}).get(s) != sen12mscr.table_fingerprint(t)
    ]
    if stale:
        raise DataError(
            f"the validation report does not describe the current {stale} list(s): "
            "run the validate_triplets node again"
        )
    problems = triplet_validation.get("problems", [])
    if problems and on_bad_file == "error":
        lines = "\n  ".join(f"{p['path']}: {p['fault']}" for p in problems)
        n_bad = sum(triplet_validation["n_bad_triplets"].values())
        raise DataError(
            f"{n_bad} triplet(s) have bad files ({len(problems)} problem(s)); fix or remove them, "
            f"or set data.on_bad_file=skip to leave them out:\n  {lines}"
        )
    bad_paths = {p["path"] for p in problems}
    out = {}
    for split, table in tables.items():
        keep = ~(
            table["s1_path"].isin(bad_paths)
            | table["s2_path"].isin(bad_paths)
            | table["s2_cloudy_path"].isin(bad_paths)
        )
        dropped = table[~keep]
        if len(dropped):
            log.warning(
                "skipping %d bad triplet(s) of the %s split: %s",
                len(dropped),
                split,
                ", ".join(dropped["scene_id"] + "_" + dropped["patch"]),
            )
        out[split] = table[keep].reset_index(drop=True)
    empty = [s for s, t in out.items() if t.empty]
    if empty:
        raise DataError(
            f"split(s) {empty} are empty after skipping bad triplets: "
            + ", ".join(f"{s}: {len(tables[s])} listed, {len(out[s])} good" for s in SPLITS)
        )
    return out["train"], out["val"], out["test"]


def build_patch_stores(
    train_triplets_valid: pd.DataFrame,
    val_triplets_valid: pd.DataFrame,
    test_triplets_valid: pd.DataFrame,
    data: dict[str, Any],
) -> tuple[TripletSamples, TripletSamples, TripletSamples]:
    """Checked lists -> lazy sample sequences the catalog writes as patch stores (masks with
    ``data.cloud_threshold``, SAR at 40 m with ``data.sar_method``, ``data.workers`` processes),
    one per split."""
    tables = _tables(train_triplets_valid, val_triplets_valid, test_triplets_valid)
    samples = tuple(
        TripletSamples(
            table,
            cloud_threshold=float(data["cloud_threshold"]),
            sar_method=str(data["sar_method"]),
            description=f"{split} patches",
            workers=data.get("workers"),
        )
        for split, table in tables.items()
    )
    return samples  # type: ignore[return-value]
