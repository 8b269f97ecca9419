"""inference.shard: "i/n" splits the scenes into disjoint, balanced parts that together hold every
scene (the sorted distinct ids dealt round robin), validated as inference.shard."""

from __future__ import annotations

import pytest

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.inference.config import InferenceConfig, inference_config
from tml_cloudremoval.inference.inputs import shard_scenes
from tml_cloudremoval.inference.shards import (
    listing_digest,
    parse_shard,
    select_shard,
    shard_label,
    shard_positions,
)

IDS = [f"T{zone:02d}{band}_{year}" for zone in range(29, 36) for band in "TUV" for year in (23, 24)]


def test_parse_shard():
    assert parse_shard(None) is None
    assert parse_shard("0/1") == (0, 1) and parse_shard(" 3 / 8 ") == (3, 8)
    assert shard_label("3/8") == "shard-3-of-8" and shard_label(None) == "all"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("3/2", "shard index 3 is not below the number of shards 2"),
        ("2/2", r"--array=0-1"),
        ("a/b", 'must be "i/n"'),
        ("0/0", "at least 1"),
        ("-1/2", 'must be "i/n"'),
        ("1/2/3", 'must be "i/n"'),
        ("", 'must be "i/n"'),
    ],
)
def test_bad_shards_are_config_errors_naming_the_key(text, says):
    with pytest.raises(ConfigError, match=r"inference\.shard: .*" + says):
        inference_config({"shard": text})


def test_an_int_is_not_a_shard():
    with pytest.raises(ConfigError, match=r"inference\.shard"):
        inference_config({"shard": 3})


def test_the_sorted_ids_are_dealt_round_robin():
    """By hand: sorted ids a b c d e into 2 shards: a c e | b d; the order of the items kept."""
    items = ["d", "b", "e", "a", "c"]
    assert select_shard(items, "0/2", str) == ["e", "a", "c"]
    assert select_shard(items, "1/2", str) == ["d", "b"]
    assert shard_positions(items, 3) == {"a": 0, "b": 1, "c": 2, "d": 0, "e": 1}


def test_items_with_the_same_id_go_together():
    items = [("a", 1), ("b", 1), ("a", 2), ("c", 1)]
    shards = [select_shard(items, f"{i}/2", lambda it: it[0]) for i in range(2)]
    assert shards == [[("a", 1), ("a", 2), ("c", 1)], [("b", 1)]]


def test_listing_digest_ignores_order_and_repeats():
    assert listing_digest(["b", "a", "a"]) == listing_digest(["a", "b"]) != listing_digest(["a"])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_shards_are_disjoint_and_together_every_scene(n):
    parts = [select_shard(IDS, f"{i}/{n}", str) for i in range(n)]
    union = [sid for part in parts for sid in part]
    assert sorted(union) == sorted(IDS)  # every scene once: disjoint and complete
    assert all(part == [s for s in IDS if s in part] for part in parts)  # order kept


@pytest.mark.parametrize(("total", "n"), [(1000, 8), (175, 16), (3, 5), (42, 1)])
def test_parts_are_balanced(total, n):
    """Part sizes differ by at most one scene (empty parts only when n exceeds the scenes)."""
    ids = [f"scene_{k:05d}" for k in range(total)]
    sizes = [len(select_shard(ids, f"{i}/{n}", str)) for i in range(n)]
    assert sum(sizes) == total and max(sizes) - min(sizes) <= 1, sizes


def _folder(tmp_path, ids, without_sar=()):
    for sid in ids:
        (tmp_path / f"{sid}_s2_cloudy.tif").write_bytes(b"")
        if sid not in without_sar:
            (tmp_path / f"{sid}_s1.tif").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_shard_scenes_of_a_folder(tmp_path, n):
    """Listing only (no header read): the scenes and the scenes without SAR are both split."""
    folder = _folder(tmp_path, IDS[:12], without_sar=IDS[:2])
    seen, unpaired = [], []
    for i in range(n):
        config = InferenceConfig(scenes_dir=str(folder), shard=f"{i}/{n}")
        pairs, missing, digest = shard_scenes(config)
        assert digest == listing_digest(IDS[:12])  # every task saw the same listing
        seen += [p.scene_id for p in pairs]
        unpaired += [b.scene_id for b in missing]
        assert all("no SAR partner" in b.fault for b in missing)
    assert sorted(seen) == sorted(IDS[2:12]) and sorted(unpaired) == sorted(IDS[:2])


def test_shard_scenes_error_mode_names_scenes_without_sar(tmp_path):
    folder = _folder(tmp_path, IDS[:3], without_sar=IDS[:1])
    config = InferenceConfig(scenes_dir=str(folder), on_bad_scene="error")
    with pytest.raises(ValueError, match=rf"{IDS[0]}_s2_cloudy.tif: no SAR partner"):
        shard_scenes(config)
