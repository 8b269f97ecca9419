"""Thin nodes of the data_processing pipeline; the work is in ``tml_cloudremoval.data``.

Every node takes the ``data`` parameters (conf/base/parameters_data_processing.yml), validated
into a :class:`~tml_cloudremoval.data.config.DataConfig` before any work (the first node,
``build_triplet_table``, rejects a bad key before any file is scanned), and persisted catalog
entries, so each can be run alone with ``kedro run --nodes NAME``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import pandas as pd

from tml_cloudremoval.data import checks, discovery, splits
from tml_cloudremoval.data.config import data_config
from tml_cloudremoval.data.splits import OFFICIAL, SPLITS
from tml_cloudremoval.data.triplets import TripletSamples, split_samples

log = logging.getLogger(__name__)

_Tables = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def _tables(train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return dict(zip(SPLITS, (train, val, test), strict=True))


def build_triplet_table(data: dict[str, Any]) -> pd.DataFrame:
    """``data.file_list`` (a DSen2-CR list, paths relative to ``data.root``) if set, else a scan
    of ``data.root`` in ``data.layout`` -> the triplet table (split filled only from a list)."""
    config = data_config(data)
    table = discovery.build_triplet_table(config.root, config.file_list, config.layout)
    source = config.file_list or config.root
    log.info("%d triplets in %d scenes from %s", len(table), table["scene_id"].nunique(), source)
    return table


def split_triplets(
    triplets: pd.DataFrame, sen12mscr_official_split: pd.DataFrame, data: dict[str, Any]
) -> _Tables:
    """Train/val/test lists: the file list's split where it gives one for every row, else
    ``data.split``: a seeded split by scene with its fractions, or ``official``: the published
    SEN12MS-CR scene split (``sen12mscr_official_split``; a split it leaves empty is a warning).
    Raises on an empty split otherwise."""
    config = data_config(data)
    split = OFFICIAL if config.split == OFFICIAL else asdict(config.split)
    parts = splits.assign_splits(triplets, split, config.seed, official=sen12mscr_official_split)
    return parts["train"], parts["val"], parts["test"]


def validate_triplets(
    train_triplets: pd.DataFrame,
    val_triplets: pd.DataFrame,
    test_triplets: pd.DataFrame,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Check every file of every split, its header and then its pixels band by band (all NaN,
    constant, inf, outside the physical range), in ``data.workers`` processes -> the validation
    report (JSON): each problem (split, scene_id, patch, path, fault) and fingerprints of the
    lists it checked."""
    config = data_config(data)
    tables = _tables(train_triplets, val_triplets, test_triplets)
    n = sum(len(t) for t in tables.values())
    return checks.validation_report(tables, progress=n > 1000, workers=config.workers)


def select_valid_triplets(
    train_triplets: pd.DataFrame,
    val_triplets: pd.DataFrame,
    test_triplets: pd.DataFrame,
    triplet_validation: dict[str, Any],
    data: dict[str, Any],
) -> _Tables:
    """Act on the validation report with ``data.on_bad_file`` (``error``: one error listing
    every bad file; ``skip``: leave bad triplets out) -> the lists training uses."""
    config = data_config(data)
    tables = _tables(train_triplets, val_triplets, test_triplets)
    out = checks.select_valid_triplets(tables, triplet_validation, config.on_bad_file)
    return out["train"], out["val"], out["test"]


def build_patch_stores(
    train_triplets_valid: pd.DataFrame,
    val_triplets_valid: pd.DataFrame,
    test_triplets_valid: pd.DataFrame,
    data: dict[str, Any],
) -> tuple[TripletSamples, TripletSamples, TripletSamples]:
    """Checked lists -> lazy sample sequences the catalog writes as patch stores (masks with
    ``data.cloud_threshold``, SAR at 40 m with ``data.sar_method``, ``data.workers`` processes),
    one per split (an empty split, which only the official split allows, gives a store of 0
    patches). The three stores are put in place together, after the last is complete: a fault
    in any split (unusable pixels, a full disk) leaves all three as they were. Saving them
    (``PatchStoreDataset``) checks the free disk for all three first, lets the workers write
    straight into the stores, and continues a build killed before (same lists and settings)."""
    config = data_config(data)
    tables = _tables(train_triplets_valid, val_triplets_valid, test_triplets_valid)
    samples = split_samples(
        tables,
        meta={"split_method": splits.split_method(config.split, config.file_list)},
        cloud_threshold=config.cloud_threshold,
        sar_method=config.sar_method,
        workers=config.workers,
    )
    return samples["train"], samples["val"], samples["test"]
