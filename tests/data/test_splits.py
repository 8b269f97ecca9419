"""splits.py: whole scenes per split, seeded, every split non-empty; a file list's split."""

from __future__ import annotations

import pandas as pd
import pytest

from tml_cloudremoval.data.discovery import TRIPLET_COLUMNS
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import MODALITIES
from tml_cloudremoval.data.splits import SPLITS, assign_splits, split_by_scene, split_tables


def _many_scenes(n_scenes: int, patches: int = 3) -> pd.DataFrame:
    rows = [
        {
            "scene_id": f"ROIs1158_spring_{i}",
            "patch": f"p{j}",
            **{f"{m}_path": f"/x/{m}_{i}_{j}.tif" for m in MODALITIES},
            "split": "",
        }
        for i in range(n_scenes)
        for j in range(patches)
    ]
    return pd.DataFrame(rows, columns=list(TRIPLET_COLUMNS))


def test_split_by_scene_no_scene_in_two_splits(fractions):
    table = split_by_scene(_many_scenes(40), fractions, seed=42)
    scenes = {name: set(part["scene_id"]) for name, part in table.groupby("split")}
    assert set(scenes) == {"train", "val", "test"}
    assert not scenes["train"] & scenes["val"]
    assert not scenes["train"] & scenes["test"]
    assert not scenes["val"] & scenes["test"]
    assert table.groupby("scene_id")["split"].nunique().max() == 1
    assert {k: len(v) for k, v in scenes.items()} == {"train": 28, "val": 6, "test": 6}


def test_split_by_scene_deterministic_and_order_independent(fractions):
    table = _many_scenes(20)
    a = split_by_scene(table, fractions, seed=7)
    b = split_by_scene(table.sample(frac=1.0, random_state=1), fractions, seed=7)
    key = ["scene_id", "patch"]
    assert (
        a.sort_values(key).reset_index(drop=True).equals(b.sort_values(key).reset_index(drop=True))
    )
    c = split_by_scene(table, fractions, seed=8)
    assert not a["split"].equals(c["split"])  # another seed, another split


@pytest.mark.parametrize(("n", "expected"), [(3, (1, 1, 1)), (4, (2, 1, 1)), (10, (7, 2, 1))])
def test_split_every_split_non_empty(n, expected, fractions):
    table = split_by_scene(_many_scenes(n, patches=1), fractions, seed=0)
    counts = table["split"].value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == expected


def test_split_needs_three_scenes(fractions):
    with pytest.raises(DataError, match=r"2 scene\(s\) .* at least 3 scenes, 1 more") as err:
        split_by_scene(_many_scenes(2), fractions, seed=0)
    assert "ROIs1158_spring_0" in str(err.value)
    with pytest.raises(DataError, match="triplet table is empty"):
        split_by_scene(_many_scenes(0), fractions, seed=0)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"train": 0.8, "val": 0.2}, "exactly the keys"),
        ({"train": 1.0, "val": 0.0, "test": 0.0}, "must be > 0"),
        ({"train": 0.7, "val": 0.2, "test": 0.2}, "must sum to 1"),
    ],
)
def test_split_fractions_checked(fractions, message):
    with pytest.raises(DataError, match=message):
        split_by_scene(_many_scenes(5), fractions, seed=0)


def test_split_tables_reports_empty_split():
    table = _many_scenes(3)
    table["split"] = ["train"] * 6 + ["test"] * 3
    with pytest.raises(DataError, match=r"empty split\(s\) \['val'\] \(train: 6, val: 0, test: 3"):
        split_tables(table)
    table["split"] = ["train"] * 3 + ["val"] * 3 + ["test"] * 3
    parts = split_tables(table)
    assert [len(parts[k]) for k in SPLITS] == [3, 3, 3]
    table.loc[0, "split"] = "holdout"
    with pytest.raises(DataError, match="unknown split value"):
        split_tables(table)


def test_assign_splits_keeps_a_complete_file_list_split(fractions):
    table = _many_scenes(3)
    table["split"] = ["test"] * 3 + ["val"] * 3 + ["train"] * 3
    parts = assign_splits(table, fractions, seed=0)
    assert list(parts) == list(SPLITS)
    assert set(parts["train"]["scene_id"]) == {"ROIs1158_spring_2"}  # as listed, not re-drawn
    table.loc[0, "split"] = ""  # one row without a split: all rows are split by scene
    drawn = assign_splits(table, fractions, seed=0)
    expected = split_tables(split_by_scene(table, fractions, seed=0))
    for split in SPLITS:
        assert drawn[split].equals(expected[split])
