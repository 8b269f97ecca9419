"""Scene discovery, scene ids, checks before prediction, refusal of targets that are inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.inputs import (
    SceneSource,
    check_scenes,
    find_scene_pairs,
    products_of,
    refuse_targets,
    scene_id,
    scene_plan,
    scenes_from_plan,
    scenes_of,
    target_faults,
)


def test_find_scene_pairs(tmp_path):
    for name in ("a_s2_cloudy.tif", "a_s1.tif", "b_s2_cloudy.tiff", "b_s1.tif", "x_s2_clear.tif"):
        (tmp_path / name).touch()
    pairs = find_scene_pairs(tmp_path, "s2_cloudy", "s1")
    assert [(p.scene_id, p.s2_path.name, p.s1_path.name) for p in pairs] == [
        ("a", "a_s2_cloudy.tif", "a_s1.tif"),
        ("b", "b_s2_cloudy.tiff", "b_s1.tif"),
    ]
    (tmp_path / "c_s2_cloudy.tif").touch()
    with pytest.raises(ValueError, match="c_s2_cloudy.tif: no SAR partner c_s1.tif"):
        find_scene_pairs(tmp_path, "s2_cloudy", "s1")
    with pytest.raises(ValueError, match="no optical scene"):
        find_scene_pairs(tmp_path, "s2_none", "s1")


def test_every_fault_is_reported_at_once(scene, tmp_path):
    with pytest.raises(ValueError) as info:
        check_scenes(
            [
                SceneSource("a", tmp_path / "missing.tif", scene["s1"]),
                SceneSource("b", scene["s2"], tmp_path / "five.tif"),
                SceneSource("b", scene["s2"], scene["s1"]),
            ]
        )
    text = str(info.value)
    assert "3 fault(s)" in text and "nothing was predicted" in text
    assert "missing.tif: file does not exist" in text
    assert "five.tif: file does not exist" in text
    assert "scene id 'b' is also the id of" in text


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("x/T32TMT_2024_s2_cloudy.tif", "T32TMT_2024"),
        ("x/T32TMT-2024-s2_cloudy.tif", "T32TMT-2024"),
        ("data/01_raw/tml_scene/s2_cloudy.tif", "tml_scene"),
        ("x/l1c_stack.tif", "l1c_stack"),
    ],
)
def test_scene_id(path, expected):
    assert scene_id(path, "s2_cloudy") == expected


def test_scenes_of_one_scene_or_a_folder(tmp_path):
    one = scenes_of(InferenceConfig())
    assert one == [
        SceneSource(
            "tml_scene",
            Path("data/01_raw/tml_scene/s2_cloudy.tif"),
            Path("data/01_raw/tml_scene/s1.tif"),
        )
    ]
    (tmp_path / "a_s2_cloudy.tif").touch()
    folder = scenes_of(InferenceConfig(scenes_dir=str(tmp_path), sar_suffix=None))
    assert folder == [SceneSource("a", tmp_path / "a_s2_cloudy.tif", None)]


def test_plan_round_trip(scene):
    scenes = [SceneSource("s", scene["s2"], scene["s1"])]
    plan = scene_plan(scenes, check_scenes(scenes))
    assert scenes_from_plan(plan) == scenes
    entry = plan["scenes"][0]
    assert (entry["height"], entry["width"], entry["nodata"]) == (92, 108, 0.0)
    assert entry["crs"] == "EPSG:32632" and entry["bands_from"] == "count"


def test_targets_that_are_inputs_are_refused_through_links(scene, tmp_path):
    """Symlink, `..` and hard link to an input: each refused, naming target and input."""
    s2 = scene["s2"]
    (tmp_path / "sub").mkdir()
    os.symlink(s2, tmp_path / "link.tif")
    os.link(s2, tmp_path / "hard.tif")
    targets = {
        "via_dots": tmp_path / "sub" / ".." / s2.name,
        "via_symlink": tmp_path / "link.tif",
        "via_hardlink": tmp_path / "hard.tif",
        "fine": tmp_path / "new.tif",
        "twice": tmp_path / "sub" / ".." / "new.tif",
        "folder": tmp_path / "sub",
    }
    faults = target_faults(targets, [s2, scene["s1"]])
    assert len(faults) == 8  # the three links are also the same file as each other
    for name in ("via_dots", "via_symlink", "via_hardlink"):
        assert any(f"product {name!r} would overwrite the input file {s2}" in f for f in faults)
    assert any("product 'twice' and product 'fine' have the same path" in f for f in faults)
    assert any("'folder' path exists and is not a file" in f for f in faults)
    assert target_faults({"fine": tmp_path / "new.tif"}, [s2]) == []
    with pytest.raises(ValueError, match="8 fault"):
        refuse_targets(targets, [s2])


def test_products_of_names_missing_scenes(tmp_path):
    class Loader:
        path = tmp_path / "a.tif"

    scenes = [SceneSource("a", tmp_path, None), SceneSource("b", tmp_path, None)]
    with pytest.raises(ValueError, match=r"no product for scene\(s\) \['b'\]"):
        products_of(scenes, {"a": Loader()})
    assert products_of(scenes[:1], {"a": Loader()}) == {"a": tmp_path / "a.tif"}
