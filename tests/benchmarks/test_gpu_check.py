"""benchmarks/gpu_check.py: backend choice, the scene it writes, the verdicts, a tiny dry run."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import gpu_check


def test_an_explicit_keras_backend_is_kept(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert gpu_check.pick_backend() == "jax"


def test_the_first_backend_whose_probe_passes_is_picked(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    probes = {"tensorflow": "raise SystemExit(1)", "jax": "pass", "torch": "pass"}
    monkeypatch.setattr(gpu_check, "PROBES", probes)
    assert gpu_check.pick_backend() == "jax"
    no_gpu = {"no_such_module_x": "raise SystemExit(1)", "json": "raise SystemExit(1)"}
    monkeypatch.setattr(gpu_check, "PROBES", no_gpu)
    assert gpu_check.pick_backend() == "json"  # no GPU: the first that imports ("json" does)
    monkeypatch.setattr(gpu_check, "PROBES", {"no_such_module_x": "raise SystemExit(1)"})
    assert gpu_check.pick_backend() == "tensorflow"  # nothing imports: TF, which says why


@pytest.mark.parametrize("size", [300, 301])
def test_the_synthetic_scene_has_the_headers_of_a_tml_scene(tmp_path, size):
    s2, s1 = gpu_check.write_scene(tmp_path, size)
    with rasterio.open(s2) as src:
        assert (src.height, src.width, src.count, src.dtypes[0]) == (size, size, 10, "uint16")
        assert (src.nodata, src.crs.to_epsg(), src.res) == (0, 32632, (10.0, 10.0))
        optical = src.read()
    with rasterio.open(s1) as src:
        side = math.ceil(size / 4)
        assert (src.height, src.width, src.count, src.res) == (side, side, 2, (40.0, 40.0))
    assert optical.min() >= 1 and optical.max() <= 10000  # no nodata inside the scene


def _step(samples_per_s: float) -> dict:
    return {"samples_per_s": samples_per_s, "step_ms": 1.0, "compile_s": 1.0, "peak_gpu_gib": 2}


def _rows(text: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:]]
    return {row[0]: row[1:] for row in rows}


def test_the_verdicts_hold_each_figure_against_its_target():
    results = {
        "train b64 bfloat16 jit": _step(2600.0),
        "train b16 bfloat16 jit": _step(2400.0),
        "train b64 float32 jit": _step(900.0),
        "train b16 float32 plain": {"error": "RuntimeError: boom"},
        "input b64": {"samples_per_s": 2000.0},
        "input b16": {"samples_per_s": 4800.0},
        "scene": {"seconds": 14.0, "mpx_per_s": 8.6, "scene_px": 10980, "peak_gpu_gib": None},
    }
    rows = _rows(gpu_check.report(results, gpu_check.Sizes(), tiny=False))
    assert rows["train b64 bfloat16 jit"][2:] == [">= 2500 samples/s", "PASS"]
    assert rows["train b16 bfloat16 jit"][2:] == [">= 2500 samples/s", "MISS"]
    assert rows["train b64 float32 jit"][2:] == ["", ""]  # the target is for mixed precision
    assert rows["train b16 float32 plain"][0] == "RuntimeError: boom"
    assert rows["scene"][1:] == ["-", "< 15 s", "PASS"]
    # the input against the fastest step of its batch: 2000 / 2600 and 4800 / 2400
    assert rows["input keeps up b64"] == ["input / fastest step = 0.77", "", ">= 1", "no"]
    assert rows["input keeps up b16"] == ["input / fastest step = 2.00", "", ">= 1", "yes"]
    results["scene"]["seconds"] = 15.5
    assert _rows(gpu_check.report(results, gpu_check.Sizes(), tiny=False))["scene"][3] == "MISS"
    assert _rows(gpu_check.report(results, gpu_check.Sizes(), tiny=True))["scene"][3] == "dry run"


@pytest.mark.slow
def test_a_tiny_dry_run_measures_every_row_and_writes_its_figures(tmp_path, monkeypatch, capsys):
    """The whole check on the CPU under the default backend, cut to one batch and mode."""
    tiny = dataclasses.replace(gpu_check.TINY, batches=(2,), scene=256, tile_size=256)
    monkeypatch.setattr(gpu_check, "TINY", tiny)
    monkeypatch.setattr(gpu_check, "jit_modes", lambda backend: (False,))
    assert gpu_check.main(["--tiny", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    keys = {"train b2 float32 plain", "train b2 bfloat16 plain", "input b2",
            "fit+input b2 bfloat16 plain", "scene"}  # fmt: skip
    assert keys <= set(figures)
    assert [k for k in keys if "error" in figures[k]] == []
    for key in keys - {"scene"}:
        assert figures[key]["samples_per_s"] > 0
    step = figures["train b2 float32 plain"]
    assert step["samples_per_s"] * step["step_ms"] == pytest.approx(2 * 1000)  # batch x 1000
    assert math.isfinite(step["loss"])
    scene = figures["scene"]
    assert scene["mpx_per_s"] == pytest.approx(256**2 / 1e6 / scene["seconds"])
    assert "dry run" in capsys.readouterr().out
