"""Resume: a scene whose complete output (same model, inputs, settings) is there is not cleaned
again; a failed pass leaves no product but a failure record (on_bad_scene: skip)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace

import pytest
from support.inference_run import corrupt_first_block

from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.inputs import SceneSource, check_scenes
from tml_cloudremoval.inference.predictors import ALEATORIC, PREDICTION
from tml_cloudremoval.inference.report import failure_record_path, read_run_facts
from tml_cloudremoval.inference.resume import (
    complete_output,
    model_id_of,
    new_run_id,
    product_settings,
)
from tml_cloudremoval.inference.scene_run import SceneRun

CONFIG = InferenceConfig(tile_size=48, progress=False, sar_method="mean", scenes_dir="x")


def _counting(model, monkeypatch) -> list[int]:
    calls: list[int] = []
    real = model.predict_on_batch
    monkeypatch.setattr(model, "predict_on_batch", lambda x: calls.append(1) or real(x))
    return calls


def _clean(models, scene, targets, config=CONFIG, run_id=None, model_id="v1"):
    pair = check_scenes([SceneSource("s", scene["s2"], scene["s1"])], config)[0]
    run = SceneRun(models, pair, config, scene_id="s", run_id=run_id or new_run_id(),
                   model_id=model_id)  # fmt: skip
    result = None
    for part in run.parts:
        result = run.product(part).write(targets[part]) or result
    return result


def test_run_ids_are_unique_file_name_parts():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all("/" not in i and ":" not in i for i in ids)


def test_model_id():
    assert model_id_of("data/06_models/dsen2cr.keras/2026-01-01T00.00.00.000Z", None) == (
        "2026-01-01T00.00.00.000Z"
    )
    assert model_id_of(None, ["a", "b"]) == ["a", "b"] and model_id_of(None, None) is None


def test_second_pass_is_skipped_and_changes_are_not(model, scene, tmp_path, monkeypatch, caplog):
    calls = _counting(model, monkeypatch)
    targets = {PREDICTION: tmp_path / "s_cloudfree.tif"}
    first = _clean([model], scene, targets, run_id="run-1")
    assert first["run_id"] == "run-1" and len(calls) > 0
    n = len(calls)
    before = targets[PREDICTION].read_bytes()
    again = _clean([model], scene, targets, run_id="run-2")
    assert again["run_id"] == "run-1" and len(calls) == n  # no model pass
    assert targets[PREDICTION].read_bytes() == before
    caplog.set_level(logging.INFO)
    _clean([model], scene, targets, replace(CONFIG, tile_size=64), run_id="run-3")
    assert len(calls) > n and "tile_size 48 -> 64" in caplog.text
    assert read_run_facts(targets[PREDICTION])["run_id"] == "run-3"
    n = len(calls)
    _clean([model], scene, targets, replace(CONFIG, tile_size=64), "run-4", model_id="v2")
    assert len(calls) > n and "model 'v1' -> 'v2'" in caplog.text
    n = len(calls)
    _clean([model], scene, targets, replace(CONFIG, tile_size=64, skip_existing=False), "r5", "v2")
    assert len(calls) > n  # forced


def test_a_touched_input_is_cleaned_again(model, scene, tmp_path, monkeypatch):
    targets = {PREDICTION: tmp_path / "s_cloudfree.tif"}
    _clean([model], scene, targets, run_id="run-1")
    calls = _counting(model, monkeypatch)
    stat = os.stat(scene["s1"])
    os.utime(scene["s1"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert _clean([model], scene, targets, run_id="run-2")["run_id"] == "run-2" and calls


def test_complete_output_needs_every_file_of_one_pass(aleatoric, scene, tmp_path):
    targets = {PREDICTION: tmp_path / "c" / "s.tif", ALEATORIC: tmp_path / "u" / "s.tif"}
    _clean([aleatoric], scene, targets, run_id="run-1")
    pair = check_scenes([SceneSource("s", scene["s2"], scene["s1"])], CONFIG)[0]
    settings = product_settings(CONFIG, "v1", pair.sources)
    facts, why = complete_output(targets, "stack_10m", settings)
    assert facts["run_id"] == "run-1" and why == ""
    kept = tmp_path / "kept.tif"
    shutil.move(targets[ALEATORIC], kept)
    # a half-written temporary (hidden, as atomic.py names them) does not count
    (targets[ALEATORIC].parent / f".{targets[ALEATORIC].name}.123.abcd.tmp").write_bytes(b"x")
    facts, why = complete_output(targets, "stack_10m", settings)
    assert facts is None and why == f"{targets[ALEATORIC]} does not exist"
    other = {PREDICTION: tmp_path / "c2" / "s.tif", ALEATORIC: targets[ALEATORIC]}
    _clean([aleatoric], scene, other, run_id="run-2")  # the uncertainty of another run
    facts, why = complete_output(targets, "stack_10m", settings)
    assert facts is None and "written by another run" in why


def test_a_failed_pass_leaves_a_record_and_no_product(model, scene, tmp_path):
    corrupt_first_block(scene["s2"])
    target = tmp_path / "out" / "s_cloudfree.tif"
    target.parent.mkdir()
    assert _clean([model], scene, {PREDICTION: target}, run_id="run-1") is None
    record = json.loads(failure_record_path(target).read_text())
    assert record["run_id"] == "run-1" and record["scene_id"] == "s"
    assert str(scene["s2"]) in record["fault"] and record["seconds"] >= 0
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")) == [
        "s_cloudfree.tif.failed.json"
    ]  # no product, no temporary
    with pytest.raises(Exception, match="s2_cloudy.tif"):  # on_bad_scene: error
        _clean([model], scene, {PREDICTION: target}, replace(CONFIG, on_bad_scene="error"))
