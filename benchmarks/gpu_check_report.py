"""The table of ``benchmarks/gpu_check.py``: every row, the targets of issue 14, PASS / MISS."""

from __future__ import annotations

from typing import Any

from common import table

TARGET_SAMPLES_PER_S = 2500
"""Training samples/s of the default model at crop 128 with mixed precision, one H100/H200."""
TARGET_SCENE_S = 15.0
"""Seconds for a whole 10980 x 10980 scene, reading and writing included."""


def verdict(ok: bool, tiny: bool) -> str:
    """PASS / MISS at full size; a dry run (``--tiny``) is judged against nothing."""
    return "dry run" if tiny else ("PASS" if ok else "MISS")


def report(results: dict, sizes: Any, tiny: bool) -> str:
    """The table: every row, its figure, the target where one applies, PASS / MISS."""
    rows = []
    for key, r in results.items():
        if "error" in r:
            rows.append([key, r["error"], "", "", ""])
        elif key.startswith("train"):
            ok = r["samples_per_s"] >= TARGET_SAMPLES_PER_S
            mixed = "bfloat16" in key  # the target is set for mixed precision
            target = f">= {TARGET_SAMPLES_PER_S} samples/s" if mixed else ""
            figure = (
                f"{r['samples_per_s']:.1f} samples/s, step {r['step_ms']:.2f} ms, "
                f"first steps {r['compile_s']:.1f} s"
            )
            rows.append([key, figure, _gib(r), target, verdict(ok, tiny) if mixed else ""])
        elif key.startswith(("input", "fit")):
            rows.append([key, f"{r['samples_per_s']:.1f} samples/s", "", "", ""])
        else:
            ok = r["seconds"] < TARGET_SCENE_S
            figure = f"{r['seconds']:.1f} s, {r['mpx_per_s']:.2f} Mpx/s ({r['scene_px']}^2)"
            rows.append([key, figure, _gib(r), f"< {TARGET_SCENE_S:.0f} s", verdict(ok, tiny)])
    rows += keeps_up(results, sizes)
    return table(rows, ["check", "figure", "peak GPU GiB", "target", "verdict"])


def _gib(r: dict) -> str:
    return "-" if r.get("peak_gpu_gib") is None else f"{r['peak_gpu_gib']:.2f}"


def keeps_up(results: dict, sizes: Any) -> list[list[str]]:
    """Rows "input keeps up": the input alone vs the fastest on-device step of that batch."""
    rows = []
    for batch in sizes.batches:
        feed = results.get(f"input b{batch}")
        steps = [
            r["samples_per_s"]
            for k, r in results.items()
            if k.startswith(f"train b{batch} ") and "error" not in r
        ]
        if feed and "error" not in feed and steps:
            ratio = feed["samples_per_s"] / max(steps)
            rows.append(
                [f"input keeps up b{batch}", f"input / fastest step = {ratio:.2f}", "", ">= 1",
                 "yes" if ratio >= 1 else "no"]
            )  # fmt: skip
    return rows
