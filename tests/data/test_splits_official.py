"""splits.py, data.split official: the published SEN12MS-CR scene split, matched exactly.

The expected splits are computed here from the CSV with the csv module (independent of
``official_assignment``); the published loader's substring match is re-implemented to show the
trap these tables set is real.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tml_cloudremoval.data.discovery import TRIPLET_COLUMNS, discover_triplets
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import official_relpaths
from tml_cloudremoval.data.splits import (
    OFFICIAL,
    OFFICIAL_COLUMNS,
    SPLITS,
    assign_splits,
    official_assignment,
    scene_key,
    split_method,
    split_official,
)

SPLIT_FILE = Path("conf/base/sen12mscr_official_split.csv")
CATALOG_YML = Path("conf/base/catalog_data_processing.yml")


@pytest.fixture(scope="module")
def listed(project_root) -> dict[tuple[str, int], str]:
    """The project's CSV read with the csv module: {(roi_season, scene): split}."""
    with open(project_root / SPLIT_FILE, newline="") as f:
        return {(r["roi_season"], int(r["scene"])): r["split"] for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def official(project_root) -> pd.DataFrame:
    """The official table as the catalog entry ``sen12mscr_official_split`` loads it."""
    entry = yaml.safe_load((project_root / CATALOG_YML).read_text())["sen12mscr_official_split"]
    assert entry["type"] == "pandas.CSVDataset" and entry["filepath"] == str(SPLIT_FILE)
    assert entry["metadata"]["kedro-viz"]["layer"] == "raw"
    return pd.read_csv(project_root / SPLIT_FILE, **entry["load_args"])


def _table(scenes: list[tuple[str, int]], patches: int = 2) -> pd.DataFrame:
    """A triplet table of ``scenes`` (roi_season, scene), official-layout paths under /x."""
    rows = []
    for rs, scene in scenes:
        for p in range(patches):
            rel = official_relpaths(rs, scene, p + 1)
            rows.append(
                {
                    "scene_id": f"{rs}_{scene}",
                    "patch": f"p{p + 1}",
                    **{f"{m}_path": f"/x/{path}" for m, path in rel.items()},
                    "split": "",
                }
            )
    return pd.DataFrame(rows, columns=list(TRIPLET_COLUMNS))


def test_project_copy_equals_the_shared_file(project_root):
    shared = project_root.parent / "shared" / "data" / SPLIT_FILE.name
    if not shared.is_file():
        pytest.skip(f"the shared official split {shared} is absent: nothing to compare with")
    assert (project_root / SPLIT_FILE).read_bytes() == shared.read_bytes()


def test_the_official_table_has_10_test_10_val_155_train_scenes(official, listed):
    assert tuple(official.columns) == OFFICIAL_COLUMNS
    assignment = official_assignment(official)
    assert assignment == listed and len(assignment) == 175
    counts = pd.Series(list(assignment.values())).value_counts().to_dict()
    assert counts == {"train": 155, "val": 10, "test": 10}


def test_scene_key_is_roi_season_and_scene_number():
    assert scene_key("ROIs1970_fall_139") == ("ROIs1970_fall", 139)
    assert scene_key("ROIs1158_spring_01") == ("ROIs1158_spring", 1)
    assert scene_key("ROIs0000_nogeo_0") == ("ROIs0000_nogeo", 0)


def _substring_loader_split(table: pd.DataFrame, listed: dict) -> list[str]:
    """The published loader: a patch is train when any train entry's folder is a substring of
    its path (``ROIs1970_fall_s1/s1_1`` is in ``.../s1_139/...``)."""
    train = [f"{rs}_s1/s1_{n}" for (rs, n), s in listed.items() if s == "train"]
    return ["train" if any(t in p for t in train) else "other" for p in table["s1_path"]]


def test_exact_match_keeps_every_official_test_and_val_scene_out_of_train(official, listed):
    held_out = [key for key, split in listed.items() if split != "train"]
    prefixes = [  # listed train scenes whose folder name is a prefix of a held-out one's
        key
        for key, split in listed.items()
        if split == "train"
        and any(rs == key[0] and str(n).startswith(str(key[1])) for rs, n in held_out)
    ]
    assert ("ROIs1970_fall", 1) in prefixes and ("ROIs1158_spring", 1) in prefixes
    table = _table([*held_out, *prefixes])
    naive = dict(zip(table["scene_id"], _substring_loader_split(table, listed), strict=True))
    trapped = {sid for sid, split in naive.items() if split == "train"} - {
        f"{rs}_{n}" for rs, n in prefixes
    }
    assert len(trapped) == 9  # the trap is real: 6 test and 3 val scenes (domain.md)
    assert {"ROIs1970_fall_139", "ROIs1158_spring_106", "ROIs1158_spring_140"} <= trapped
    out = split_official(table, official)
    by_hand = [listed[(rs, int(n))] for rs, _, n in out["scene_id"].str.rpartition("_").values]
    assert list(out["split"]) == by_hand
    parts = assign_splits(table, OFFICIAL, seed=0, official=official)
    assert not set(parts["train"]["scene_id"]) & {f"{rs}_{n}" for rs, n in held_out}
    tests = {f"{rs}_{n}" for (rs, n) in held_out if listed[(rs, n)] == "test"}
    assert set(parts["test"]["scene_id"]) == tests and len(tests) == 10
    assert len(parts["val"]) == 2 * 10 and len(parts["train"]) == 2 * len(prefixes)


def test_scenes_not_listed_go_to_train_with_a_logged_count(official, caplog):
    unlisted = [("ROIs0000_nogeo", 0), *(("ROIs9999_winter", n) for n in range(12))]
    table = _table([("ROIs1970_fall", 139), ("ROIs1158_spring", 17), *unlisted], patches=1)
    with caplog.at_level(logging.WARNING):
        parts = assign_splits(table, OFFICIAL, seed=0, official=official)
    assert list(parts["test"]["scene_id"]) == ["ROIs1970_fall_139"]
    assert list(parts["val"]["scene_id"]) == ["ROIs1158_spring_17"]
    assert len(parts["train"]) == 13
    assert (
        "13 scene(s) not in the official SEN12MS-CR split go to train: ROIs0000_nogeo_0, "
        "ROIs9999_winter_0, ROIs9999_winter_1, ROIs9999_winter_2" in caplog.text
    )
    assert "ROIs9999_winter_8 and 3 more" in caplog.text  # at most 10 named


def test_an_empty_split_is_a_warning_with_official_only(official, caplog, fractions):
    table = _table([("ROIs1970_fall", 139), ("ROIs2017_winter", 112), ("ROIs0000_nogeo", 0)])
    with caplog.at_level(logging.WARNING):
        parts = assign_splits(table, OFFICIAL, seed=0, official=official)
    assert [len(parts[s]) for s in SPLITS] == [4, 0, 2]
    assert list(parts["val"].columns) == list(TRIPLET_COLUMNS)
    assert "the official split found no val scene under the data root (it lists 10: " in (
        caplog.text
    )
    assert "the val store will be empty" in caplog.text and "no test scene" not in caplog.text
    table = _table([("ROIs2017_winter", 112), ("ROIs0000_nogeo", 0)])
    with caplog.at_level(logging.WARNING):
        parts = assign_splits(table, OFFICIAL, seed=0, official=official)
    assert [len(parts[s]) for s in SPLITS] == [4, 0, 0]
    with pytest.raises(DataError, match="triplet table is empty"):
        assign_splits(table.iloc[:0], OFFICIAL, seed=0, official=official)


def test_a_file_list_split_wins_over_official(official, caplog, fractions):
    table = _table([("ROIs1970_fall", 139), ("ROIs2017_winter", 112), ("ROIs1158_spring", 17)])
    table["split"] = ["train", "train", "val", "val", "test", "test"]  # not the official one
    with caplog.at_level(logging.INFO):
        parts = assign_splits(table, OFFICIAL, seed=0, official=official)
    assert list(parts["train"]["scene_id"].unique()) == ["ROIs1970_fall_139"]
    assert "data.split official is not used: the file list carries its own split" in caplog.text
    assert split_method(OFFICIAL, "list.csv") == "file_list"
    assert split_method(OFFICIAL, None) == OFFICIAL
    assert split_method(fractions, None) == "fractions"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="split"), r"missing column\(s\) \['split'\]"),
        (lambda t: t.assign(split=t["split"].replace("val", "valid")), "line 7: split 'valid'"),
        (lambda t: t.assign(scene=t["scene"].replace("139", "13b")), "line 143: scene '13b'"),
        (lambda t: pd.concat([t, t.iloc[[0]]]), "line 177: ROIs1158_spring scene 1 is listed"),
    ],
)
def test_a_bad_official_table_is_named(official, change, message):
    with pytest.raises(DataError, match=message) as err:
        split_official(_table([("ROIs1970_fall", 139)]), change(official))
    assert str(err.value).startswith(
        "sen12mscr_official_split (conf/base/sen12mscr_official_split.csv): "
    )


@pytest.mark.realdata
def test_real_samples_land_in_their_official_splits(real_samples_root, official):
    parts = assign_splits(discover_triplets(real_samples_root), OFFICIAL, 0, official)
    named = {s: sorted(p["scene_id"] + "_" + p["patch"]) for s, p in parts.items()}
    assert named["test"] == ["ROIs1970_fall_139_p839"]
    assert named["val"] == []
    assert "ROIs2017_winter_112_p797" in named["train"] and len(named["train"]) == 21
    assert set(parts["train"]["scene_id"]) == {"ROIs2017_winter_112", "ROIs0000_nogeo_0"}
