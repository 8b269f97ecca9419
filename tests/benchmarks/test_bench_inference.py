"""benchmarks/bench_inference.py: the figures of interleaved rounds (medians, per-round
ratios), by hand; no scene is run here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_inference import summarise_scene
from interleave import Spread


def _scene(seconds: float, cpu: float, rss: float) -> dict:
    report = {"tiles": 2, "tile_grid": [2, 1], "largest_tile": [72, 128], "overlap": 16}
    return {
        "report": {**report, "tiling_efficiency": 0.9},
        "seconds": seconds,
        "cpu_seconds": cpu,
        "mpx_per_s": 1.0 / seconds,
        "mpx_per_cpu_s": 1.0 / cpu,
        "output_mb": 2.0,
        "model_share": 0.5,
        "peak_rss_mb": rss,
    }


def test_medians_and_per_round_ratios_by_hand():
    raw = [{"mpx_per_s": v, "mpx_per_cpu_s": v / 2, "devices": ["CPU"]} for v in (2.0, 1.0, 4.0)]
    runs = {
        "raw": raw,
        "gtiff": [_scene(1.0, 2.0, 100.0), _scene(2.0, 4.0, 130.0), _scene(0.5, 1.0, 120.0)],
        "cog": [_scene(2.0, 4.0, 150.0), _scene(2.0, 4.0, 160.0), _scene(1.0, 2.0, 140.0)],
    }
    out = summarise_scene(runs, (128, 128))
    assert out["repeats"] == 3
    assert out["seconds"] == 1.0 and out["mpx_per_s"] == 1.0  # medians of the gtiff rounds
    assert out["raw_mpx_per_s"] == 2.0
    assert out["peak_rss_mb"] == 100.0  # after the first gtiff run, before any COG copy
    assert out["cog_peak_rss_mb"] == 150.0
    # tiled / raw per round: (1 / 2, 0.5 / 1, 2 / 4) = 0.5 each round
    assert Spread(**out["ratios"]["tiled_raw"]) == Spread(0.5, 0.5, 0.5, 3)
    # cog / gtiff time per round: 2, 1, 2
    assert Spread(**out["ratios"]["cog_gtiff_time"]) == Spread(2.0, 1.0, 2.0, 3)
    assert "safe_seconds" not in out
