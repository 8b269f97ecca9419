"""kedro-viz: a static build succeeds, and the server answers /api/main with every pipeline.

The server test starts `kedro viz run --no-browser` in the project root in its own process group
(it spawns a child that serves), and stops the whole group, checking nothing is left behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = Path(sys.executable).with_name("kedro")
PIPELINES = {"sample_data", "data_processing", "training", "evaluation", "inference", "ablation"}
STARTUP_S = 90


def kedro_env() -> dict[str, str]:
    return {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def free_port() -> int:
    """A free TCP port below 49152 (kedro viz refuses ports in the ephemeral range)."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 49000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found in 20000-49000")


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pipeline_ids(main: dict) -> set[str]:
    return {p["id"] for p in main["pipelines"]}


def test_viz_build(tmp_path):
    """`kedro viz build` in a copy of the project (it writes build/ into the working folder)."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(PROJECT / "pyproject.toml", copy)
    shutil.copytree(PROJECT / "conf", copy / "conf", ignore=shutil.ignore_patterns("local"))
    for folder in ("conf/local", "logs", "src"):  # src: bootstrap wants it; package is installed
        (copy / folder).mkdir(exist_ok=True)
    result = subprocess.run(
        [str(KEDRO), "viz", "build"],
        cwd=copy,
        env=kedro_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (copy / "build" / "index.html").is_file()
    main = json.loads((copy / "build" / "api" / "main").read_text())
    assert pipeline_ids(main) >= PIPELINES | {"__default__"}
    # The lineage reaches the products: triplet table -> ... -> model -> cloud-free scenes.
    path = lineage(main, "triplets", "cloudfree_scenes")
    assert path is not None, "no path from triplets to cloudfree_scenes in the lineage"
    assert {"dsen2cr_model", "train_model", "predict_cloudfree_scenes"} <= set(path)
    assert lineage(main, "train_patches", "dsen2cr_model") is not None
    assert lineage(main, "sen12mscr_official_split", "split_triplets") is not None  # an input
    assert lineage(main, "dsen2cr_model", "model_card") is not None
    assert lineage(main, "cloudfree_scenes", "scene_quicklooks") is not None
    assert lineage(main, "training_run", "dsen2cr_model") is not None
    # The ablation (its own page): each variant of conf/base, in its modular pipeline, from
    # the shared stores to the comparison.
    ablation = json.loads((copy / "build" / "api" / "pipelines" / "ablation").read_text())
    for variant in ("reference", "no_sar", "sar_bilinear", "l1", "tail_he_uniform", "aleatoric"):
        path = lineage(ablation, "train_patches", "ablation_comparison", via=variant)
        assert path is not None, f"no path from train_patches through {variant} to the comparison"
        assert "train_model" in path
        model = f"ablation.{variant}.dsen2cr_model"
        assert {model, "evaluate_model", f"ablation.{variant}.evaluation_metrics"} <= set(
            lineage(ablation, model, "ablation_comparison", via=variant) or []
        )
    assert lineage(ablation, "test_patches", "ablation_figure") is not None


def lineage(main: dict, source: str, target: str, via: str = "") -> list[str] | None:
    """Names along one path of kedro-viz edges from dataset ``source`` to ``target`` (BFS);
    with ``via``, only through nodes of the modular pipeline ``ablation.<via>``, the endpoints
    and the ablation's own nodes (``compare_variants``, ``plot_variants``)."""
    names = {n["id"]: n["name"] for n in main["nodes"]}
    if via:
        keep = {n["id"] for n in main["nodes"] if _in_namespace(n, f"ablation.{via}")}
        ends = (source, target, "compare_variants", "plot_variants")
        keep |= {n["id"] for n in main["nodes"] if n["name"] in ends}
        main = {**main, "edges": [e for e in main["edges"] if {e["source"], e["target"]} <= keep]}
    ids = {name: node_id for node_id, name in names.items()}
    following: dict[str, list[str]] = {}
    for edge in main["edges"]:
        following.setdefault(edge["source"], []).append(edge["target"])
    start, goal = ids.get(source), ids.get(target)
    came_from: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            path = []
            while node is not None:
                path.append(names[node])
                node = came_from[node]
            return path[::-1]
        for nxt in following.get(node, []):
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return None


def _in_namespace(node: dict, namespace: str) -> bool:
    """A kedro-viz node (task or dataset) belongs to ``namespace`` (its full name or its
    modular pipelines say so)."""
    full = str(node.get("id_name") or node.get("full_name") or node["name"])
    pipes = node.get("modular_pipelines") or []
    return full.startswith(f"{namespace}.") or any(str(p) == namespace for p in pipes)


def stop_group(proc: subprocess.Popen) -> list[psutil.Process]:
    """SIGTERM the process group (SIGKILL after 15 s); returns the processes still alive."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _, alive = psutil.wait_procs(family, timeout=15)
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(alive, timeout=5)
    proc.wait(timeout=5)
    return alive


def test_viz_server_lists_all_pipelines(tmp_path):
    port = free_port()
    log = tmp_path / "viz.log"
    viz_existed = (PROJECT / ".viz").exists()
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [str(KEDRO), "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT,
            env=kedro_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the server's child goes down with it
        )
    try:
        main, deadline = None, time.monotonic() + STARTUP_S
        while main is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"kedro viz run exited early with status {proc.returncode}:\n"
                    + log.read_text()[-3000:]
                )
            try:
                url = f"http://127.0.0.1:{port}/api/main"
                with urllib.request.urlopen(url, timeout=5) as response:
                    main = json.loads(response.read())
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(1)
        assert main is not None, (
            f"/api/main did not answer within {STARTUP_S} s:\n" + log.read_text()[-3000:]
        )
        family = psutil.Process(proc.pid).children(recursive=True)
        assert family, "kedro viz run is expected to serve from a child process"
    finally:
        alive = stop_group(proc)
        if not viz_existed:
            shutil.rmtree(PROJECT / ".viz", ignore_errors=True)
    assert not alive, f"still running after the group kill: {alive}"
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)
    assert not listening(port), f"port {port} still accepts connections"
    assert pipeline_ids(main) >= PIPELINES | {"__default__"}
    assert {n["name"] for n in main["nodes"]} >= {"evaluate_model", "plot_band_errors"}
