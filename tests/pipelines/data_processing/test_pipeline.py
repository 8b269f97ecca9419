"""data_processing pipeline on tiny GeoTIFF trees: DataCatalog (the project's catalog entries,
paths moved into tmp_path) + SequentialRunner."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.data.discovery import TRIPLET_COLUMNS
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.layout import flattened_paths, official_paths
from tml_cloudremoval.data.splits import SPLITS
from tml_cloudremoval.data.triplets import prepare_patch, read_triplet
from tml_cloudremoval.pipelines.data_processing import create_pipeline
from tml_cloudremoval.raster import write_geotiff_atomic

PROJECT = Path(__file__).resolve().parents[3]
CATALOG_YML = PROJECT / "conf" / "base" / "catalog_data_processing.yml"
PARAMS_YML = PROJECT / "conf" / "base" / "parameters_data_processing.yml"
NODES = [
    "build_triplet_table",
    "split_triplets",
    "validate_triplets",
    "select_valid_triplets",
    "build_patch_stores",
]
# 5 scenes, 7 triplets (16 x 16 px)
TRIPLETS = [
    ("ROIs1158_spring", 1, 30),
    ("ROIs1158_spring", 1, 4),
    ("ROIs1158_spring", 2, 7),
    ("ROIs1868_summer", 3, 5),
    ("ROIs1868_summer", 10, 2),
    ("ROIs1868_summer", 10, 11),
    ("ROIs0000_nogeo", 0, 1),
]


# official split: test, val, train, not listed (-> train)
OFFICIAL_TRIPLETS = [
    ("ROIs1970_fall", 139, 1),
    ("ROIs1970_fall", 139, 2),
    ("ROIs1158_spring", 17, 3),
    ("ROIs1158_spring", 1, 4),
    ("ROIs0000_nogeo", 0, 5),
]


def make_tree(root: Path, layout: str = "official", triplets=TRIPLETS) -> Path:
    paths_of = official_paths if layout == "official" else flattened_paths
    for i, (rs, scene, patch) in enumerate(triplets):
        rng = np.random.default_rng(i)
        paths = paths_of(root, rs, scene, patch)
        s2 = rng.integers(100, 3000, (16, 16, 13), dtype=np.uint16)
        cloudy = s2.copy()
        cloudy[:8, :8] = 6000
        write_geotiff_atomic(paths["s1"], rng.uniform(-25, -5, (16, 16, 2)).astype(np.float32))
        write_geotiff_atomic(paths["s2"], s2)
        write_geotiff_atomic(paths["s2_cloudy"], cloudy)
    return root


def project_params(**overrides) -> dict:
    """The ``data`` parameters as Kedro resolves them (globals interpolated)."""
    loader = OmegaConfigLoader(str(PARAMS_YML.parents[1]), base_env="base", default_run_env="base")
    return {**loader["parameters"]["data"], **overrides}


def make_catalog(out: Path, data: dict) -> DataCatalog:
    """The project's data_processing catalog entries with every product's filepath moved under
    ``out``; the inputs (layer raw: the official split table) stay where the project has them."""
    config = yaml.safe_load(CATALOG_YML.read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    for entry in config.values():
        raw = entry["metadata"]["kedro-viz"]["layer"] == "raw"
        entry["filepath"] = str((PROJECT if raw else out) / entry["filepath"])
    catalog = DataCatalog.from_config(config)
    catalog["params:data"] = MemoryDataset(data)
    return catalog


def run(catalog: DataCatalog, nodes: list[str] | None = None) -> None:
    pipeline = create_pipeline()
    if nodes:
        pipeline = pipeline.only_nodes(*nodes)
    SequentialRunner().run(pipeline, catalog)


@pytest.fixture
def raw(tmp_path) -> Path:
    return make_tree(tmp_path / "raw")


def test_nodes_named_and_every_edge_persisted():
    pipeline = create_pipeline()
    assert [n.name for n in pipeline.nodes] == NODES
    config = yaml.safe_load(CATALOG_YML.read_text())
    for node in pipeline.nodes:
        for name in [*node.inputs, *node.outputs]:
            assert name == "params:data" or name in config, f"{node.name}: {name} not in catalog"
    for name, entry in config.items():
        if not name.startswith("_"):
            assert entry["metadata"]["kedro-viz"]["layer"]
    data = project_params()
    assert data["root"] == "data/01_raw/sen12mscr_sample" and data["file_list"] is None
    assert data["split"] == {"train": 0.7, "val": 0.15, "test": 0.15}
    assert (data["seed"], data["on_bad_file"], data["layout"]) == (42, "error", "auto")
    assert (data["cloud_threshold"], data["sar_method"]) == (0.2, "mean")


def test_full_run(tmp_path, raw):
    catalog = make_catalog(tmp_path / "out", project_params(root=str(raw)))
    run(catalog)
    triplets = catalog.load("triplets")
    assert list(triplets.columns) == list(TRIPLET_COLUMNS) and len(triplets) == 7
    assert (tmp_path / "out/data/02_intermediate/triplets.csv").is_file()
    scenes = {}
    for split in SPLITS:
        listed = catalog.load(f"{split}_triplets")
        valid = catalog.load(f"{split}_triplets_valid")
        assert valid.equals(listed) and (listed["split"] == split).all()
        scenes[split] = set(listed["scene_id"])
        store = catalog.load(f"{split}_patches")
        assert len(store) == len(listed) > 0
        assert store.index.equals(listed)
        assert store.meta["cloud_threshold"] == 0.2 and store.meta["sar_method"] == "mean"
        row = listed.iloc[0]
        expected = prepare_patch(read_triplet(row), 0.2, "mean")
        for name, value in expected.items():
            np.testing.assert_array_equal(getattr(store, name)[0], value)
    assert not (scenes["train"] & scenes["val"] or scenes["train"] & scenes["test"])
    assert not scenes["val"] & scenes["test"]
    assert sum(len(v) for v in scenes.values()) == 5
    report = catalog.load("triplet_validation")
    assert report["problems"] == [] and sum(report["n_triplets"].values()) == 7
    # every node alone, from persisted inputs (kedro run --nodes NAME)
    before = catalog.load("train_triplets")
    for name in NODES:
        run(catalog, [name])
    assert catalog.load("train_triplets").equals(before)


def _break_files(raw: Path) -> dict[str, tuple[Path, str]]:
    """One fault per kind, in different triplets -> {kind: (path, fault text)}."""
    faults = {}
    missing = official_paths(raw, "ROIs1158_spring", 1, 30)["s2"]
    missing.unlink()
    faults["missing"] = (missing, "file does not exist")
    bands = official_paths(raw, "ROIs1158_spring", 1, 4)["s1"]
    write_geotiff_atomic(bands, np.zeros((16, 16, 3), np.float32))
    faults["bands"] = (bands, "S1 file has 3 bands, expected 2")
    size = official_paths(raw, "ROIs1158_spring", 2, 7)["s1"]
    s1_8x8 = np.random.default_rng(0).uniform(-25, -5, (8, 8, 2)).astype(np.float32)
    write_geotiff_atomic(size, s1_8x8)  # good pixels: only the size is wrong
    faults["size"] = (size, "size 8x8 (width x height) differs from its S2 partner")
    truncated = official_paths(raw, "ROIs1868_summer", 10, 2)["s2_cloudy"]
    write_geotiff_atomic(truncated, np.ones((16, 16, 13), np.uint16), tiled=False, compress=None)
    truncated.write_bytes(truncated.read_bytes()[:-300])
    faults["truncated"] = (truncated, "truncated: pixel data should end at byte")
    corrupt = official_paths(raw, "ROIs1868_summer", 10, 11)["s2"]
    corrupt.write_bytes(b"\x00garbage" * 50)
    faults["corrupt"] = (corrupt, "not a readable GeoTIFF")
    return faults


def test_bad_files_error_lists_all_and_writes_no_store(tmp_path, raw):
    out = tmp_path / "out"
    catalog = make_catalog(out, project_params(root=str(raw)))
    run(catalog)  # a good run first: its stores must survive the failed one
    train_store = out / "data/05_model_input/train"
    before = {p.name: p.read_bytes() for p in train_store.iterdir()}
    faults = _break_files(raw)
    with pytest.raises(DataError) as err:
        run(catalog)
    message = str(err.value)
    assert message.startswith("5 triplet(s) have bad files (5 problem(s))")
    assert "data.on_bad_file=skip" in message
    for path, fault in faults.values():
        assert f"{path}: {fault}" in message
    assert {p.name: p.read_bytes() for p in train_store.iterdir()} == before
    report = json.loads((out / "data/08_reporting/triplet_validation.json").read_text())
    assert {p["path"] for p in report["problems"]} == {str(p) for p, _ in faults.values()}


def _truncate(path: Path) -> None:
    write_geotiff_atomic(path, np.ones((16, 16, 13), np.uint16), tiled=False, compress=None)
    path.write_bytes(path.read_bytes()[:-300])


def test_bad_files_skipped(tmp_path, raw, caplog):
    _truncate(official_paths(raw, "ROIs1868_summer", 10, 2)["s2_cloudy"])
    catalog = make_catalog(tmp_path / "out", project_params(root=str(raw), on_bad_file="skip"))
    with caplog.at_level(logging.WARNING):
        run(catalog)
    assert "skipping 1 bad triplet(s)" in caplog.text and "ROIs1868_summer_10_p2" in caplog.text
    assert sum(len(catalog.load(f"{split}_triplets")) for split in SPLITS) == 7
    assert sum(len(catalog.load(f"{split}_patches")) for split in SPLITS) == 6
    report = catalog.load("triplet_validation")
    assert sum(report["n_bad_triplets"].values()) == 1


def test_skip_that_empties_a_split_is_an_error(tmp_path, raw):
    catalog = make_catalog(tmp_path / "out", project_params(root=str(raw), on_bad_file="skip"))
    run(catalog, ["build_triplet_table", "split_triplets"])
    smallest = min(SPLITS, key=lambda split: len(catalog.load(f"{split}_triplets")))
    for path in catalog.load(f"{smallest}_triplets")["s2_path"]:
        Path(path).unlink()
    with pytest.raises(DataError, match=rf"split\(s\) \['{smallest}'\] are empty after skipping"):
        run(catalog)
    assert not (tmp_path / "out/data/05_model_input").exists()


def test_empty_root_and_empty_split(tmp_path):
    (tmp_path / "empty").mkdir()
    catalog = make_catalog(tmp_path / "out", project_params(root=str(tmp_path / "empty")))
    with pytest.raises(DataError, match="no SEN12MS-CR data found") as err:
        run(catalog)
    assert str(tmp_path / "empty") in str(err.value)
    # a file list without validation rows: empty split, named
    root = make_tree(tmp_path / "flat", "flattened")
    file_list = tmp_path / "list.txt"
    file_list.write_text("1\ts1\ts2_cloudFree\ts2_cloudy\tROIs1158_spring_1_p30.tif\n")
    catalog = make_catalog(
        tmp_path / "out2", project_params(root=str(root), file_list=str(file_list))
    )
    with pytest.raises(DataError, match=r"empty split\(s\) \['val', 'test'\]"):
        run(catalog)
    assert not (tmp_path / "out2/data/05_model_input").exists()


def _names(table: pd.DataFrame) -> list[str]:
    """``scene_id_patch`` of every row, sorted."""
    return sorted(table["scene_id"] + "_" + table["patch"])


def test_official_split_run(tmp_path, caplog):
    raw = make_tree(tmp_path / "raw", triplets=OFFICIAL_TRIPLETS)
    catalog = make_catalog(tmp_path / "out", project_params(root=str(raw), split="official"))
    with caplog.at_level(logging.WARNING):
        run(catalog)
    assert "1 scene(s) not in the official SEN12MS-CR split go to train: ROIs0000_nogeo_0" in (
        caplog.text
    )
    expected = {
        "train": ["ROIs1158_spring_1_p4", "ROIs0000_nogeo_0_p5"],
        "val": ["ROIs1158_spring_17_p3"],
        "test": ["ROIs1970_fall_139_p1", "ROIs1970_fall_139_p2"],
    }
    for split, names in expected.items():
        assert _names(catalog.load(f"{split}_triplets")) == sorted(names)
        store = catalog.load(f"{split}_patches")
        assert _names(store.index) == sorted(names) and len(store) == len(names)
        assert store.meta["split_method"] == "official" and store.meta["split"] == split
    assert catalog.load("sen12mscr_official_split").shape == (175, 3)


def test_official_split_leaves_empty_stores_that_load(tmp_path, raw, caplog):
    """The tree has no official val or test scene: both stores are written empty, with the
    train store's patch size; training refuses an empty train store, saying why."""
    from tml_cloudremoval.training.loop import TrainingDataError, check_stores

    catalog = make_catalog(tmp_path / "out", project_params(root=str(raw), split="official"))
    with caplog.at_level(logging.WARNING):
        run(catalog)
    for split in ("val", "test"):
        assert f"the official split found no {split} scene under the data root" in caplog.text
        assert catalog.load(f"{split}_triplets").empty
        store = catalog.load(f"{split}_patches")
        assert len(store) == 0 and store.s2.shape == (0, 16, 16, 10)
        assert store.s1.shape == (0, 4, 4, 2) and store.mask.shape == (0, 16, 16)
        assert list(store.index.columns) == list(TRIPLET_COLUMNS) and store.index.empty
        assert (store.meta["split"], store.meta["split_method"]) == (split, "official")
    train = catalog.load("train_patches")
    assert len(train) == 7
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        crop, val = check_stores(train, catalog.load("val_patches"), None)
    assert (crop, val) == (16, None)
    assert (
        "is empty: the official SEN12MS-CR split (data.split: official) found no val scene "
        "under data.root: training without validation" in caplog.text
    )
    empty = catalog.load("test_patches")
    with pytest.raises(TrainingDataError) as err:
        check_stores(empty, None, None)
    assert str(err.value) == (
        f"{empty.path}: the training store holds no patches: the official SEN12MS-CR split "
        "(data.split: official) found no test scene under data.root"
    )
    # evaluation refuses the empty official test store with the project's own error, saying why
    from tml_cloudremoval.errors import ProjectError
    from tml_cloudremoval.evaluation.evaluate import check_store

    with pytest.raises(ProjectError) as err:
        check_store(empty)
    assert str(err.value) == (
        f"{empty.path}: the store holds no patch (data.split is official and no official test "
        "scene is under data.root); nothing to evaluate"
    )


@pytest.mark.parametrize("split", [None, "official"])
def test_file_list_split_is_used(tmp_path, split, caplog):
    root = make_tree(tmp_path / "flat", "flattened")
    rows = [
        ("1", "ROIs1158_spring_1_p30.tif"),
        ("1", "ROIs1158_spring_1_p4.tif"),
        ("2", "ROIs1868_summer_10_p2.tif"),
        ("3", "ROIs0000_nogeo_0_p1.tif"),
    ]
    file_list = tmp_path / "list.csv"
    file_list.write_text("\n".join(f"{c}, s1, s2_cloudFree, s2_cloudy, {f}" for c, f in rows))
    over = {} if split is None else {"split": split}
    catalog = make_catalog(
        tmp_path / "out", project_params(root=str(root), file_list=str(file_list), **over)
    )
    with caplog.at_level(logging.INFO):
        run(catalog)
    assert ("data.split official is not used" in caplog.text) == (split == "official")
    assert catalog.load("train_patches").meta["split_method"] == "file_list"
    assert len(catalog.load("train_patches")) == 2
    assert list(catalog.load("val_triplets")["patch"]) == ["p2"]
    assert list(catalog.load("test_patches").index["scene_id"]) == ["ROIs0000_nogeo_0"]


def test_stale_report_is_refused(tmp_path, raw):
    catalog = make_catalog(tmp_path / "out", project_params(root=str(raw)))
    run(catalog, ["build_triplet_table", "split_triplets", "validate_triplets"])
    train = catalog.load("train_triplets")
    catalog.save("train_triplets", train.iloc[:1])
    with pytest.raises(DataError, match=r"does not describe the current \['train'\] list"):
        run(catalog, ["select_valid_triplets"])


def test_bad_parameter(tmp_path, raw):
    catalog = make_catalog(tmp_path / "out", project_params(root=str(raw), on_bad_file="warn"))
    with pytest.raises(
        ConfigError, match=r"data\.on_bad_file: expected one of \['error', 'skip'\]"
    ):
        run(catalog)
    assert not (tmp_path / "out" / "data").exists()  # stopped before any product


def test_typo_rejected_before_any_file_is_scanned(tmp_path):
    params = project_params(root=str(tmp_path / "absent"), cloud_treshold=0.9)
    catalog = make_catalog(tmp_path / "out", params)
    with pytest.raises(ConfigError, match=r"did you mean data\.cloud_threshold\?") as err:
        run(catalog)  # not "data root does not exist": the parameters are checked first
    assert "data.cloud_treshold: unknown parameter" in str(err.value)


@pytest.mark.realdata
def test_real_samples_listed_split_and_validated(tmp_path, real_samples_root):
    catalog = make_catalog(tmp_path / "out", project_params(root=str(real_samples_root)))
    run(catalog, ["build_triplet_table", "split_triplets", "validate_triplets"])
    assert len(catalog.load("triplets")) == 22
    assert sum(len(catalog.load(f"{s_}_triplets")) for s_ in SPLITS) == 22
    assert catalog.load("triplet_validation")["problems"] == []


def _store_bytes(out: Path) -> dict[str, dict[str, bytes]]:
    stores = out / "data/05_model_input"
    return {s: {p.name: p.read_bytes() for p in (stores / s).iterdir()} for s in SPLITS}


def _write_all_nan_vv(path: Path) -> None:
    s1 = np.random.default_rng(5).uniform(-25, -5, (16, 16, 2)).astype(np.float32)
    s1[..., 0] = np.nan
    write_geotiff_atomic(path, s1)


def test_content_fault_found_before_any_store_is_replaced(tmp_path, raw, caplog):
    """Issue 12 defect 4: an all-NaN S1 band is named (file, band) by validation; skip drops it."""
    out = tmp_path / "out"
    catalog = make_catalog(out, project_params(root=str(raw)))
    run(catalog)
    before = _store_bytes(out)
    s1 = Path(catalog.load("train_triplets")["s1_path"].iloc[0])
    _write_all_nan_vv(s1)
    with pytest.raises(DataError) as err:
        run(catalog)
    assert f"{s1}: band VV: all NaN (no data)" in str(err.value)
    assert _store_bytes(out) == before
    catalog = make_catalog(out, project_params(root=str(raw), on_bad_file="skip"))
    with caplog.at_level(logging.WARNING):
        run(catalog)
    assert "skipping 1 bad triplet(s) of the train split" in caplog.text
    assert str(s1) not in set(catalog.load("train_patches").index["s1_path"])
    assert len(catalog.load("train_patches")) == len(catalog.load("train_triplets")) - 1


def test_fault_in_the_test_split_during_the_build_replaces_no_store(tmp_path, raw):
    """Issue 12 defect 4: the three stores are replaced together or not at all."""
    out = tmp_path / "out"
    catalog = make_catalog(out, project_params(root=str(raw)))
    run(catalog)
    before = _store_bytes(out)
    for path in catalog.load("train_triplets")["s2_path"]:  # other pixels: other train store
        rows = np.arange(16, dtype=np.uint16)[:, None, None]
        write_geotiff_atomic(Path(path), np.full((16, 16, 13), 900, np.uint16) + rows)
    s1 = Path(catalog.load("test_triplets_valid")["s1_path"].iloc[-1])
    _write_all_nan_vv(s1)  # the test split breaks after validation, during the build
    with pytest.raises(DatasetError) as err:  # Kedro wraps errors of a save ...
        run(catalog, ["build_patch_stores"])
    cause = err.value
    while isinstance(cause, DatasetError):  # ... around the project's error
        cause = cause.__cause__
    assert isinstance(cause, DataError) and f"{s1}: band VV: all NaN" in str(cause)
    assert _store_bytes(out) == before  # train and val were built, but not put in place
    leftovers = [p.name for p in (out / "data/05_model_input").iterdir()]
    assert sorted(leftovers) == sorted([*SPLITS, *(f".{s}.lock" for s in SPLITS)])
