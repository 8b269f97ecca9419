"""destinations: outputs never overlap inputs or each other; destinations writable; versions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tml_cloudremoval import destinations
from tml_cloudremoval.config import config_class
from tml_cloudremoval.destinations import Place


def _out(path: Path, name: str = "catalog entry out") -> Place:
    return Place(name, path)


def test_an_output_on_an_input_is_refused_through_symlinks_hard_links_and_dotdot(tmp_path):
    scene = tmp_path / "raw" / "s2.tif"
    scene.parent.mkdir()
    scene.write_bytes(b"scene")
    (tmp_path / "link.tif").symlink_to(scene)
    os.link(scene, tmp_path / "hard.tif")
    source = Place("parameter inference.s2_path", scene)
    for alias in (
        scene,
        tmp_path / "link.tif",
        tmp_path / "hard.tif",
        tmp_path / "x/../raw/s2.tif",
    ):
        faults = destinations.overlap_faults([_out(alias)], [source])
        assert faults == [f"output catalog entry out ({alias}) is the same path as input {source}"]


def test_an_output_folder_holding_an_input_and_an_output_inside_an_input_folder_are_refused(
    tmp_path,
):
    scenes = tmp_path / "scenes"
    folder_output = destinations.overlap_faults(
        [_out(tmp_path, "catalog entry cloudfree_scenes")],
        [Place("parameter inference.scenes_dir", scenes)],
    )
    assert folder_output == [
        f"input parameter inference.scenes_dir ({scenes}) lies inside output "
        f"catalog entry cloudfree_scenes ({tmp_path})"
    ]
    into_input = destinations.overlap_faults([_out(scenes / "out")], [Place("input", scenes)])
    assert into_input == [
        f"output catalog entry out ({scenes / 'out'}) would be written inside "
        f"input input ({scenes})"
    ]


def test_two_outputs_may_not_share_or_nest_but_siblings_and_prefixes_are_fine(tmp_path):
    a, b = _out(tmp_path / "cloudfree", "a"), _out(tmp_path / "cloudfree", "b")
    assert destinations.overlap_faults([a, b], []) == [f"output {a} is the same path as output {b}"]
    nested = _out(tmp_path / "cloudfree" / "ql", "c")
    assert len(destinations.overlap_faults([a, nested], [])) == 1
    # "cloudfree_ql" starts with "cloudfree" but is not inside it
    siblings = [a, _out(tmp_path / "cloudfree_ql", "d"), _out(tmp_path / "report.json", "e")]
    assert destinations.overlap_faults(siblings, [Place("in", tmp_path / "raw" / "s2.tif")]) == []


def test_a_destination_behind_a_file_cannot_be_created(tmp_path):
    (tmp_path / "blocker").write_text("x")
    output = _out(tmp_path / "blocker" / "quicklooks")
    assert destinations.destination_fault(output) == (
        f"output {output} cannot be created: {tmp_path / 'blocker'} is a file, not a folder"
    )
    assert destinations.destination_fault(_out(tmp_path / "new" / "deeper" / "x.json")) is None
    assert destinations.destination_fault(_out(tmp_path / "blocker")) is None  # replaced


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_destination_folder_is_refused(tmp_path):
    folder = tmp_path / "quicklooks"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        fault = destinations.destination_fault(_out(folder))
    finally:
        folder.chmod(0o755)
    assert (
        fault
        == f"output catalog entry out ({folder}) cannot be written: folder {folder} is not writable"
    )


def test_load_versions_name_the_saved_versions_and_missing_inputs(tmp_path):
    folder = tmp_path / "dsen2cr.keras"
    for version in ("2026-01-02T00.00.00.000Z", "2026-01-01T00.00.00.000Z"):
        (folder / version).mkdir(parents=True)
        (folder / version / "dsen2cr.keras").write_bytes(b"")
    (folder / "empty_version").mkdir()  # no model inside: not a saved version
    assert destinations.saved_versions(folder) == [
        "2026-01-01T00.00.00.000Z",
        "2026-01-02T00.00.00.000Z",
    ]
    versioned = {"dsen2cr_model": folder, "other_model": tmp_path / "none.keras"}
    faults = destinations.version_faults(
        {"dsen2cr_model": "2099", "triplets": "1"}, versioned, {"dsen2cr_model", "other_model"}
    )
    assert faults == [
        f"--load-versions dsen2cr_model:2099: no such version in {folder} (saved versions: "
        "2026-01-01T00.00.00.000Z, 2026-01-02T00.00.00.000Z)",
        "--load-versions triplets:1: triplets is not a versioned catalog entry "
        "(versioned entries: dsen2cr_model, other_model)",
        f"input catalog entry other_model: no version saved in {tmp_path / 'none.keras'} yet "
        "(run the pipeline that writes it first)",
    ]
    assert (
        destinations.version_faults(
            {"dsen2cr_model": "2026-01-01T00.00.00.000Z"}, versioned, {"dsen2cr_model"}
        )
        == []
    )


def test_parameter_reads_are_config_fields_resolved_from_the_project_root(tmp_path):
    for section, keys in destinations.INPUT_PATH_PARAMETERS.items():
        fields = config_class(section).__dataclass_fields__
        assert set(keys) <= set(fields), section
    params = {"data": {"root": "data/raw", "file_list": None}, "inference": {"s2_path": "/a.tif"}}
    reads = destinations.parameter_reads(params, ["data"], tmp_path)
    assert reads == [Place("parameter data.root", tmp_path / "data/raw")]


def test_check_run_raises_one_project_error_listing_every_fault():
    destinations.check_run([])
    with pytest.raises(destinations.DestinationError, match="nothing was written.*: a; b"):
        destinations.check_run(["a", "b"])
