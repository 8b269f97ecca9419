"""Many scenes on many machines (issue 14, item 5), through the pipeline: shards, resume, the run
summary, a bad scene reported while the others go on (on_bad_scene: skip) or stopping the run
before any prediction (error); oc.env in the parameters."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from support.inference_run import (
    TRANSFORM,
    base_params,
    corrupt_first_block,
    create_pipeline,
    make_pair,
    run,
    shard_output,
    write_tif,
)

from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.models.dsen2cr import build_dsen2cr

CLOUDFREE = "data/07_model_output/cloudfree"
RUNS = "data/08_reporting/inference_runs"


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")


def _counting(model, monkeypatch) -> list[int]:
    calls: list[int] = []
    real = model.predict_on_batch
    monkeypatch.setattr(model, "predict_on_batch", lambda x: calls.append(1) or real(x))
    return calls


def _scenes(tmp_path: Path, ids=("a", "b", "c")) -> Path:
    folder = tmp_path / "scenes"
    folder.mkdir(exist_ok=True)
    for seed, sid in enumerate(ids):
        make_pair(folder, f"{sid}_s2_cloudy.tif", f"{sid}_s1.tif", seed=seed)
    return folder


def _summaries(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / RUNS).glob("*.json"))]


def _ids(entries) -> list[str]:
    return sorted(e["scene_id"] for e in entries)


def test_shards_split_the_folder_and_each_writes_its_summary(model, tmp_path):
    folder = _scenes(tmp_path, ids=("a", "b", "c", "d", "e"))
    done = []
    for i in range(2):
        catalog = run(model, base_params(scenes_dir=str(folder), shard=f"{i}/2"), tmp_path)
        summaries = catalog.load("inference_runs")  # {name: loader}: lazy partitions
        summary = summaries[f"shard-{i}-of-2_{_last_run(catalog, f'shard-{i}-of-2')}"]()
        assert summary["shard"] == f"{i}/2" and summary["counts"]["failed"] == 0
        done.append(_ids(summary["done"]))
    assert sorted(done[0] + done[1]) == ["a", "b", "c", "d", "e"]  # complete and disjoint
    assert not set(done[0]) & set(done[1])
    names = sorted(p.name for p in (tmp_path / RUNS).iterdir())
    assert len(names) == 2 and names[0].startswith("shard-0-of-2_")
    assert names[1].startswith("shard-1-of-2_")


def test_a_shard_planned_while_another_runs_still_cleans_its_own_scenes(model, tmp_path):
    """The tasks of an array share the project folder: shard 1 plans and runs between shard 0's
    plan and the rest of shard 0's run, which still cleans its own scenes (a plan per shard)."""
    folder = _scenes(tmp_path, ids=("a", "b", "c", "d"))  # round robin: a, c | b, d
    params = {i: base_params(scenes_dir=str(folder), shard=f"{i}/2") for i in range(2)}
    whole = create_pipeline()
    catalog = run(model, params[0], tmp_path, pipeline=whole.filter(node_names=["plan_inference"]))
    run(model, params[1], tmp_path)
    run(model, params[0], tmp_path, catalog=catalog, pipeline=whole.from_nodes("make_cloud_masks"))
    plans = catalog.load("inference_plan")
    assert sorted(plans) == ["shard-0-of-2", "shard-1-of-2"]
    assert [s["scene_id"] for s in plans["shard-0-of-2"]()["scenes"]] == ["a", "c"]
    by_shard = {s["shard"]: _ids(s["done"]) for s in _summaries(tmp_path)}
    assert by_shard == {"0/2": ["a", "c"], "1/2": ["b", "d"]}
    reports = catalog.load("inference_report")
    assert {k: _ids(r()["scenes"]) for k, r in reports.items()} == {
        "shard-0-of-2": ["a", "c"], "shard-1-of-2": ["b", "d"]
    }  # fmt: skip


def test_a_node_of_a_shard_that_was_not_planned_is_refused_naming_it(model, tmp_path):
    folder = _scenes(tmp_path, ids=("a", "b"))
    run(model, base_params(scenes_dir=str(folder), shard="0/2"), tmp_path)
    later = create_pipeline().from_nodes("make_cloud_masks")
    with pytest.raises(Exception, match=r"inference.shard '1/2': no inference plan shard-1-of-2 "
                       r"\(planned: shard-0-of-2\); run the plan_inference node"):  # fmt: skip
        run(model, base_params(scenes_dir=str(folder), shard="1/2"), tmp_path, pipeline=later)


def test_a_second_run_skips_every_scene_without_a_model_pass_or_a_mask(
    model, tmp_path, monkeypatch
):
    """13-band scenes get a detector mask: the second run computes neither masks nor tiles."""
    from tml_cloudremoval.inference import masks

    folder = tmp_path / "scenes"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for sid in ("a", "b", "c"):
        dn = rng.integers(500, 2500, (64, 72, 13)).astype(np.uint16)
        write_tif(folder / f"{sid}_s2_cloudy.tif", dn, TRANSFORM, nodata=0)
        sar = rng.uniform(-20, -5, (16, 18, 2)).astype(np.float32)
        write_tif(folder / f"{sid}_s1.tif", sar, TRANSFORM * TRANSFORM.scale(4))
    params = base_params(scenes_dir=str(folder), fill="clouds")
    run(model, params, tmp_path)
    calls = _counting(model, monkeypatch)
    real_detector = masks.detector_mask
    detected: list[str] = []
    monkeypatch.setattr(
        masks, "detector_mask", lambda info, *a: detected.append(info) or real_detector(info, *a)
    )
    catalog = run(model, params, tmp_path)
    assert calls == [] and detected == []
    (summary,) = [s for s in _summaries(tmp_path) if s["run_id"] == _last_run(catalog)]
    assert summary["counts"] == {"done": 0, "skipped": 3, "failed": 0}
    # the products are there
    assert shard_output(catalog, "inference_report")["total"]["scenes"] == 3
    # another setting: every scene again, masks kept (they do not depend on it)
    catalog = run(model, {**params, "feather_px": 2}, tmp_path)
    (summary,) = [s for s in _summaries(tmp_path) if s["run_id"] == _last_run(catalog)]
    assert summary["counts"]["done"] == 3 and calls and detected == []


def _last_run(catalog, shard: str = "all") -> str:
    return shard_output(catalog, "inference_plan", shard)["run_id"]


def _corrupt(folder: Path) -> Path:
    bad = folder / "b_s2_cloudy.tif"
    bad.write_bytes(b"II*\x00 this is not a GeoTIFF")
    return bad


def test_a_corrupt_scene_among_three_is_reported_and_the_others_go_on(model, tmp_path):
    folder = _scenes(tmp_path)
    bad = _corrupt(folder)
    catalog = run(model, base_params(scenes_dir=str(folder)), tmp_path)
    (summary,) = _summaries(tmp_path)
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    assert _ids(summary["done"]) == ["a", "c"]
    (failed,) = summary["failed"]
    assert failed["scene_id"] == "b" and failed["stage"] == "check"
    assert str(bad) in failed["fault"] and failed["s2_path"] == str(bad)
    assert sorted(catalog.load("cloudfree_scenes")) == ["a", "c"]
    assert sorted(catalog.load("scene_quicklooks")) == ["a", "c"]
    assert shard_output(catalog, "inference_plan")["failed"][0]["scene_id"] == "b"


def test_with_on_bad_scene_error_the_corrupt_scene_stops_the_run_first(
    model, tmp_path, monkeypatch
):
    folder = _scenes(tmp_path)
    bad = _corrupt(folder)
    monkeypatch.setattr(model, "predict_on_batch", lambda *a: pytest.fail("predicted"))
    with pytest.raises(SceneError, match=rf"1 fault\(s\).*nothing was predicted:\n  {bad}"):
        run(model, base_params(scenes_dir=str(folder), on_bad_scene="error"), tmp_path)
    assert not (tmp_path / CLOUDFREE).exists()


def test_a_pass_that_fails_is_recorded_and_the_next_run_cleans_it(model, tmp_path):
    """b's pixels cannot be decoded (its headers are fine): its pass fails, a and c are done;
    once b is mended the next run cleans b only."""
    folder = _scenes(tmp_path)
    good = (folder / "b_s2_cloudy.tif").read_bytes()
    corrupt_first_block(folder / "b_s2_cloudy.tif")
    run(model, base_params(scenes_dir=str(folder)), tmp_path)
    (summary,) = _summaries(tmp_path)
    (failed,) = summary["failed"]
    assert failed["stage"] == "prediction" and "b_s2_cloudy.tif" in failed["fault"]
    assert _ids(summary["done"]) == ["a", "c"]
    record = tmp_path / CLOUDFREE / "b_cloudfree.tif.failed.json"
    assert record.is_file() and not (tmp_path / CLOUDFREE / "b_cloudfree.tif").exists()
    (folder / "b_s2_cloudy.tif").write_bytes(good)
    catalog = run(model, base_params(scenes_dir=str(folder)), tmp_path)
    (summary,) = [s for s in _summaries(tmp_path) if s["run_id"] == _last_run(catalog)]
    assert _ids(summary["done"]) == ["b"] and _ids(summary["skipped"]) == ["a", "c"]
    assert not record.exists()


def test_the_shard_from_the_environment(tmp_path, monkeypatch):
    """oc.env is registered for every config file (settings.py): a Slurm array task's id."""
    from kedro.config import OmegaConfigLoader

    from tml_cloudremoval.settings import CONFIG_LOADER_ARGS

    conf = tmp_path / "conf"
    for env in ("base", "local"):
        (conf / env).mkdir(parents=True)
    text = "inference:\n  shard: ${oc.env:SLURM_ARRAY_TASK_ID}/8\n"
    (conf / "base" / "parameters_inference.yml").write_text(text)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    loader = OmegaConfigLoader(str(conf), **CONFIG_LOADER_ARGS)
    assert loader["parameters"]["inference"]["shard"] == "3/8"
