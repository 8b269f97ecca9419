"""The lazy products of one scene: written by one pass when the last target arrives, whatever
the order the datasets save them in (threads included)."""

from __future__ import annotations

import threading

import pytest

from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.inputs import SceneSource, check_scenes
from tml_cloudremoval.inference.predictors import ALEATORIC, PREDICTION
from tml_cloudremoval.inference.scene_run import SceneRun, scene_products

CONFIG = InferenceConfig(tile_size=48, progress=False, sar_method="mean")


def _pair(scene):
    return check_scenes([SceneSource("s", scene["s2"], scene["s1"])], CONFIG)[0]


def _counting(model, monkeypatch) -> list[int]:
    calls: list[int] = []
    real = model.predict_on_batch

    def counted(inputs):
        calls.append(1)
        return real(inputs)

    monkeypatch.setattr(model, "predict_on_batch", counted)
    return calls


@pytest.mark.parametrize("order", [(PREDICTION, ALEATORIC), (ALEATORIC, PREDICTION)])
def test_the_last_product_runs_one_pass_for_both(aleatoric, scene, tmp_path, monkeypatch, order):
    calls = _counting(aleatoric, monkeypatch)
    run = SceneRun([aleatoric], _pair(scene), CONFIG)
    assert run.parts == (PREDICTION, ALEATORIC)
    targets = {PREDICTION: tmp_path / "a" / "s_cloudfree.tif", ALEATORIC: tmp_path / "b" / "u.tif"}
    products = {part: run.product(part) for part in order}
    first, second = order
    assert products[first].write(targets[first]) is None  # waits for the other
    assert not targets[first].exists() and calls == []
    facts = products[second].write(targets[second])
    assert facts["uncertainty_path"] == str(targets[ALEATORIC]) and len(calls) == 8  # one pass
    assert targets[PREDICTION].is_file() and targets[ALEATORIC].is_file()
    with pytest.raises(RuntimeError, match="handed over twice"):
        products[first].write(targets[first])


def test_products_saved_from_threads(aleatoric, scene, tmp_path):
    run = SceneRun([aleatoric], _pair(scene), CONFIG)
    targets = {PREDICTION: tmp_path / "c.tif", ALEATORIC: tmp_path / "u.tif"}
    results, errors = {}, []

    def save(part):
        try:
            results[part] = run.product(part).write(targets[part])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(p,)) for p in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(r is None for r in results.values()) == [False, True]
    assert all(p.is_file() for p in targets.values())


def test_plain_model_has_one_product_written_at_once(model, scene, tmp_path):
    runs = {"s": SceneRun([model], _pair(scene), CONFIG)}
    assert scene_products(runs, ALEATORIC) == {}
    product = scene_products(runs, PREDICTION)["s"]
    assert product.sources == (scene["s2"], scene["s1"])
    facts = product.write(tmp_path / "s.tif")
    assert facts["uncertainty_path"] is None and (tmp_path / "s.tif").is_file()
    with pytest.raises(ValueError, match="not 'aleatoric'"):
        runs["s"].product(ALEATORIC)


def test_targets_of_two_products_may_not_clash(aleatoric, scene, tmp_path, monkeypatch):
    calls = _counting(aleatoric, monkeypatch)
    run = SceneRun([aleatoric], _pair(scene), CONFIG)
    out = tmp_path / "out"
    run.product(PREDICTION).write(out / "x.tif")
    with pytest.raises(ValueError, match="have the same path"):
        run.product(ALEATORIC).write(out / "x.tif")
    assert calls == [] and not out.exists()  # refused before any prediction or file
