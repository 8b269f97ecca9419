"""benchmarks/bench_training.py and its worker pipe (benchmarks/common.py): figures from rounds,
by hand; the long-lived worker protocol; the --quick run's printed table (slow, not timings)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from argparse import Namespace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_training import forward_flops_per_pixel, step_flops, summarise, verdict
from common import Worker
from interleave import spread

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_flops_of_the_default_model_by_hand():
    # head 2*9*12*64, body 16 blocks x 2 convs x 2*9*64*64, tail 2*9*64*10
    per_px = 13824 + 16 * 2 * 73728 + 11520
    assert forward_flops_per_pixel(64, 16) == per_px
    assert step_flops(64, 16, 128) == 3 * per_px * 128 * 128  # about 117 GFLOP per sample


def test_summary_of_interleaved_rounds_by_hand():
    args = Namespace(batch=4, features=4, blocks=1, crop=8)
    flops = step_flops(4, 1, 8)
    measured = {
        "rounds": {"plain": [2.0, 4.0, 1.0], "xla": [1.0, 5.0, 2.0], "matmul": [10.0, 20.0, 10.0]},
        "warmup": {m: {"first_step_s": 9.0, "params": 123} for m in ("plain", "xla")},
        "peak_rss_gb": {"plain": 1.5, "xla": 2.5, "matmul": 0.5},
    }
    out = summarise(measured, args)
    assert out["plain"]["step_s"] == spread([2.0, 4.0, 1.0])
    assert out["plain"]["samples_per_s"] == spread([2.0, 1.0, 4.0])  # batch 4 / step s
    # % of the peak divides each round by the matmul round beside it
    gflops = [flops * s / 1e9 for s in (2.0, 1.0, 4.0)]
    pct = [100 * g / p for g, p in zip(gflops, (10.0, 20.0, 10.0), strict=True)]
    assert out["plain"]["pct_peak"].median == pytest.approx(sorted(pct)[1])
    assert out["plain"]["pct_peak"].high == pytest.approx(max(pct))
    # XLA / plain samples/s per round = plain step / xla step: 2, 0.8, 0.5
    ratio = out["xla_over_plain"]
    assert (ratio.median, ratio.low, ratio.high, ratio.n) == (0.8, 0.5, 2.0, 3)
    assert out["xla"]["peak_rss_gb"] == 2.5
    assert out["matmul"]["gflops"] == spread([10.0, 20.0, 10.0])
    assert verdict(ratio) == "rounds on both sides of 1: no clear difference"
    assert verdict(spread([1.1, 1.3])) == "above 1 in every round"
    assert verdict(spread([0.7, 0.9])) == "below 1 in every round"


def _worker(body: str) -> list[str]:
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r})\n" + textwrap.dedent(body)
    return [sys.executable, "-c", code]


def test_worker_answers_each_request_in_turn():
    body = """
        from common import serve
        count = [0]
        def one_round():
            count[0] += 1
            print("library chatter on stdout")
            return {"value": count[0]}
        serve({"round": one_round})
    """
    with Worker("counter", _worker(body)) as worker:
        assert [worker.ask("round")["value"] for _ in range(3)] == [1, 2, 3]


def test_a_dying_worker_is_reported_with_its_stderr():
    body = """
        from common import serve
        def broken():
            raise ValueError("no such model")
        serve({"round": broken})
    """
    with Worker("broken", _worker(body)) as worker, pytest.raises(RuntimeError) as err:
        worker.ask("round")
    assert "broken worker exited (1)" in str(err.value)
    assert "ValueError: no such model" in str(err.value)


@pytest.mark.slow
def test_quick_run_prints_every_mode_and_the_ratio():
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_training.py"), "--quick", "--repeats", "2",
         "--modes", "plain,xla,matmul"],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("machine: ") and "load avg" in line for line in lines)
    assert any(line.startswith("matmul peak") and "n=2" in line for line in lines)
    rows = {line.split("|")[1].strip() for line in lines if line.startswith("| ")}
    assert {"plain", "xla"} <= rows
    assert any(line.startswith("XLA / plain samples/s, per round:") for line in lines)
