"""discovery.py: scans of both layouts, DSen2-CR file lists, the triplet table, its fingerprint."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tml_cloudremoval.data.checks import validate_triplets
from tml_cloudremoval.data.discovery import (
    TRIPLET_COLUMNS,
    build_triplet_table,
    discover_triplets,
    read_file_list,
    table_fingerprint,
    triplets_from_file_list,
)
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import MODALITIES, flattened_paths, official_paths
from tml_cloudremoval.data.splits import split_by_scene, split_tables


def _expected_order(triplets):
    return sorted(triplets, key=lambda t: (t[0], t[1], t[2]))


def test_discover_official(official_root, triplets_written):
    table = discover_triplets(official_root)
    assert list(table.columns) == list(TRIPLET_COLUMNS)
    assert len(table) == len(triplets_written)
    # natural order: ROI/season, scene number, patch number (p4 before p30, scene 3 before 10)
    assert list(zip(table["scene_id"], table["patch"], strict=True)) == [
        (f"{rs}_{scene}", f"p{patch}") for rs, scene, patch in _expected_order(triplets_written)
    ]
    assert (table["split"] == "").all()
    for m in MODALITIES:
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in table[f"{m}_path"])
    row = table[table["patch"] == "p30"].iloc[0]
    assert row["s1_path"] == str(official_paths(official_root, "ROIs1158_spring", 1, 30)["s1"])


@pytest.mark.parametrize("cloudfree_folder", ["s2_cloudFree", "s2_cloudfree"])
def test_discover_flattened(tmp_path, cloudfree_folder, write_triplet, triplets_written):
    root = tmp_path / "flat"
    for i, (rs, scene, patch) in enumerate(triplets_written):
        paths = flattened_paths(root, rs, scene, patch, {"s2": cloudfree_folder})
        write_triplet(paths, seed=i)
    table = discover_triplets(root)  # auto-detected
    assert discover_triplets(root, layout="flattened").equals(table)
    assert len(table) == len(triplets_written)
    assert table["s2_path"].str.contains(f"/{cloudfree_folder}/").all()
    assert table.loc[0, "s1_path"].endswith("/s1/ROIs0000_nogeo_0_p1.tif")


def test_discover_empty_root_and_unknown_layout(tmp_path):
    root = tmp_path / "root"
    (root / "ROIs1158_spring_s1" / "s1_1").mkdir(parents=True)
    with pytest.raises(DataError, match="no SEN12MS-CR triplets found") as err:
        discover_triplets(root)
    assert str(root) in str(err.value)
    with pytest.raises(DataError, match="unknown layout 'weird'"):
        discover_triplets(root, layout="weird")


def test_missing_partner_is_listed_and_reported(official_root, caplog, triplets_written):
    gone = official_paths(official_root, "ROIs1158_spring", 2, 7)
    gone["s2"].unlink()
    gone["s2_cloudy"].unlink()
    with caplog.at_level(logging.WARNING):
        table = discover_triplets(official_root)
    assert len(table) == len(triplets_written)  # not dropped
    assert "2 triplet file(s)" in caplog.text
    problems = validate_triplets(table)
    assert {(p.path, p.fault) for p in problems} == {
        (str(gone["s2"]), "file does not exist"),
        (str(gone["s2_cloudy"]), "file does not exist"),
    }


def test_s2_without_s1_is_listed(official_root, triplets_written):
    official_paths(official_root, "ROIs1158_spring", 1, 4)["s1"].unlink()
    table = discover_triplets(official_root)
    assert len(table) == len(triplets_written)
    problems = validate_triplets(table)
    assert [p.fault for p in problems] == ["file does not exist"]
    assert problems[0].path.endswith("ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p4.tif")


FILE_LIST_ROWS = [
    ("1", "ROIs1158_spring_1_p30.tif"),
    ("2", "ROIs1868_summer_10_p2.tif"),
    ("3", "ROIs0000_nogeo_0_p1.tif"),
]


@pytest.mark.parametrize("sep", ["\t", ",", ", "])
def test_read_file_list_separators(tmp_path, sep):
    lines = ["", "  # a comment"]
    lines += [sep.join([code, "s1", "s2_cloudFree", "s2_cloudy", f]) for code, f in FILE_LIST_ROWS]
    lines[3] = "  " + lines[3] + "  "
    path = tmp_path / "list.csv"
    path.write_text("\n".join([*lines, "", ""]))
    rows = read_file_list(path)
    assert rows == [
        ("train", "s1", "s2_cloudFree", "s2_cloudy", "ROIs1158_spring_1_p30.tif"),
        ("val", "s1", "s2_cloudFree", "s2_cloudy", "ROIs1868_summer_10_p2.tif"),
        ("test", "s1", "s2_cloudFree", "s2_cloudy", "ROIs0000_nogeo_0_p1.tif"),
    ]


def test_read_file_list_header_line_is_skipped(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "split,s1,s2,s2_cloudy,file\n1,s1,s2_cloudFree,s2_cloudy,ROIs1_spring_1_p3.tif\n"
    )
    assert len(read_file_list(path)) == 1


def test_read_file_list_bad_lines_all_named(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "1\ts1\ts2_cloudFree\ts2_cloudy\tA_1_p1.tif\n"
        "4\ts1\ts2_cloudFree\ts2_cloudy\tA_1_p2.tif\n"
        "1\ts1\ts2_cloudFree\tA_1_p3.tif\n"
    )
    with pytest.raises(DataError, match="2 line") as err:
        read_file_list(path)
    message = str(err.value)
    assert str(path) in message and "line 2:" in message and "line 3:" in message
    with pytest.raises(DataError, match="file list does not exist"):
        read_file_list(tmp_path / "absent.csv")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(DataError, match="holds no triplet rows"):
        read_file_list(tmp_path / "blank.csv")


def test_triplets_from_file_list(tmp_path, make_tree):
    root = make_tree(tmp_path / "flat", "flattened")
    path = tmp_path / "list.txt"
    path.write_text(
        "\n".join(f"{c}, s1, s2_cloudFree, s2_cloudy, {f}" for c, f in FILE_LIST_ROWS) + "\n"
    )
    table = build_triplet_table(root, file_list=path)
    assert list(table["split"]) == ["test", "train", "val"]  # sorted by ROI/scene/patch
    assert list(table["scene_id"]) == [
        "ROIs0000_nogeo_0",
        "ROIs1158_spring_1",
        "ROIs1868_summer_10",
    ]
    assert table.loc[1, "s2_path"] == str(root.resolve() / "s2_cloudFree/ROIs1158_spring_1_p30.tif")
    assert validate_triplets(table) == []


def test_file_list_with_unparseable_name(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("1\ts1\ts2\ts2_cloudy\tscene.tif\n")
    with pytest.raises(DataError, match="1 file name") as err:
        triplets_from_file_list(path, tmp_path)
    assert "scene.tif" in str(err.value)


@pytest.mark.realdata
def test_real_samples_found_split_and_valid(real_samples_root, fractions):
    table = build_triplet_table(real_samples_root)
    assert len(table) == 22
    assert set(table["scene_id"]) == {
        "ROIs0000_nogeo_0",
        "ROIs1970_fall_139",
        "ROIs2017_winter_112",
    }
    assert ("ROIs1970_fall_139", "p839") in set(zip(table["scene_id"], table["patch"], strict=True))
    split = split_by_scene(table, fractions, seed=42)
    parts = split_tables(split)
    assert sum(len(p) for p in parts.values()) == 22
    assert all(p["scene_id"].nunique() == 1 for p in parts.values())  # 3 scenes, one per split
    assert validate_triplets(split) == []


def test_fingerprint_follows_paths(official_root):
    table = discover_triplets(official_root)
    assert table_fingerprint(table) == table_fingerprint(table.copy())
    assert table_fingerprint(table) != table_fingerprint(table.iloc[1:])
    assert len(table_fingerprint(table)) == 16


def test_root_holding_both_layouts_is_refused_naming_both(tmp_path, make_tree, triplets_written):
    """Issue 12 defect 2: official and flattened folders side by side: never drop files quietly."""
    root = make_tree(tmp_path / "both", "official", triplets_written)  # 7 triplets
    make_tree(root, "flattened", triplets_written[:2])  # 2 triplets
    with pytest.raises(DataError) as err:
        discover_triplets(root)
    message = str(err.value)
    assert str(root) in message
    assert "official" in message and "7 triplets" in message
    assert "flattened" in message and "2 triplets" in message
    assert "data.layout=official" in message and "data.layout=flattened" in message
    with pytest.raises(DataError, match="both"):
        build_triplet_table(root)


@pytest.mark.parametrize(("layout", "n", "ignored"), [("official", 7, 2), ("flattened", 2, 7)])
def test_explicit_layout_reads_only_that_one_and_logs_the_other(
    tmp_path, make_tree, triplets_written, caplog, layout, n, ignored
):
    root = make_tree(tmp_path / "both", "official", triplets_written)
    make_tree(root, "flattened", triplets_written[:2])
    with caplog.at_level(logging.WARNING, logger="tml_cloudremoval.data.discovery"):
        table = discover_triplets(root, layout=layout)
    assert len(table) == n
    marker = "/s1/" if layout == "flattened" else "_s1/s1_"
    assert table["s1_path"].str.contains(marker).all()
    other = "flattened" if layout == "official" else "official"
    assert f"the {other} layout there ({ignored} triplets) is ignored" in caplog.text
