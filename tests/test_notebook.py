"""notebooks/explore.ipynb runs top to bottom (nbclient) on a tiny copy of the project.

The copy holds the project's pyproject.toml and conf/, the notebook, a test patch store made from
the real SEN12MS-CR samples (synthetic patches where those are absent) and a tiny DSen2-CR saved
through the project's own `dsen2cr_model` catalog entry. The kernel is the interpreter running
the tests (a kernel spec written into tmp_path), never whatever `python3` a machine has.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from kedro.io import DataCatalog
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.data.patch_store import PatchStore, write_patch_store
from tml_cloudremoval.evaluation.evaluate import evaluate_store
from tml_cloudremoval.models.contract import ModelContract, SarNormalisation, TrainedModel
from tml_cloudremoval.models.dsen2cr import build_dsen2cr

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOK = PROJECT / "notebooks" / "explore.ipynb"
SAMPLES = Path(
    os.environ.get("SEN12MSCR_SAMPLES", PROJECT.parent / "shared" / "data" / "sen12mscr_samples")
)
STORE = "data/05_model_input/test"
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;[^\x1b]*\x1b\\\\")


def write_store(path: Path) -> PatchStore:
    """Two test patches: real samples (one half-cloudy, one partly cloudy) or synthetic ones."""
    if any(SAMPLES.glob("*_s2_cloudy")):
        from tml_cloudremoval.data.discovery import discover_triplets
        from tml_cloudremoval.data.triplets import TripletSamples

        table = discover_triplets(SAMPLES)
        keep = table["patch"].isin(["p839", "p1302"])
        samples = TripletSamples(table[keep], progress=False)
        write_patch_store(
            path, iter(samples), len(samples), samples.height, samples.width, samples.index
        )
    else:
        rng = np.random.default_rng(0)
        size = 64
        mask = np.zeros((size, size), np.uint8)
        mask[:, : size // 2] = 1
        items = []
        for _ in range(2):
            target = rng.integers(300, 3000, (size, size, 10)).astype(np.uint16)
            items.append(
                {
                    "s2_cloudy": target + mask[..., None].astype(np.uint16) * np.uint16(4000),
                    "s2": target,
                    "s1": rng.uniform(-20, -5, (size // SAR_FACTOR, size // SAR_FACTOR, 2)),
                    "mask": mask,
                }
            )
        index = pd.DataFrame({"scene_id": ["synthetic_1", "synthetic_1"], "patch": ["p1", "p2"]})
        write_patch_store(path, items, 2, size, size, index)
    return PatchStore.open(path)


def catalog_entry(conf: Path, name: str) -> dict:
    for path in sorted((conf / "base").glob("catalog*.yml")):
        entries = yaml.safe_load(path.read_text()) or {}
        if name in entries:
            return entries[name]
    raise AssertionError(f"catalog entry {name} not found in {conf / 'base'}")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A tiny project state: conf, notebook, test store, saved model and an evaluation report."""
    root = tmp_path_factory.mktemp("nb") / "project"
    root.mkdir()
    shutil.copy(PROJECT / "pyproject.toml", root)
    (root / "src").mkdir()  # bootstrap_project wants it; the package is the installed one
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "notebooks").mkdir()
    shutil.copy(NOTEBOOK, root / "notebooks")

    assert catalog_entry(root / "conf", "test_patches")["filepath"] == STORE
    store = write_store(root / STORE)
    model = build_dsen2cr(features=8, blocks=1, tail_init="he_uniform")
    entry = catalog_entry(root / "conf", "dsen2cr_model")
    entry["filepath"] = str(root / entry["filepath"])
    trained = TrainedModel(model, ModelContract(sar=SarNormalisation(method="mean")))
    DataCatalog.from_config({"dsen2cr_model": entry}).save("dsen2cr_model", trained)

    metrics, _ = evaluate_store(model, store, batch_size=2)
    report = catalog_entry(root / "conf", "evaluation_metrics")["filepath"]
    (root / report).parent.mkdir(parents=True, exist_ok=True)
    (root / report).write_text(json.dumps(metrics))
    return root


def venv_kernel(tmp_path: Path) -> KernelManager:
    """A kernel manager whose kernel runs this interpreter (sys.executable)."""
    spec = tmp_path / "kernels" / "tml-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "tml test", "language": "python"})
    )
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    return KernelManager(kernel_name="tml-test", kernel_spec_manager=specs)


def outputs_of(cell) -> tuple[set[str], str]:
    """(mime types shown, all plain text) of one executed cell."""
    mimes, text = set(), []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            text.append(out["text"])
        for mime, value in out.get("data", {}).items():
            mimes.add(mime)
            if mime == "text/plain":
                text.append(value)
    return mimes, "\n".join(text)


def test_notebook_runs_top_to_bottom(project, tmp_path, monkeypatch):
    monkeypatch.delenv("TML_PROJECT_DIR", raising=False)  # the notebook finds the project itself
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    nb = nbformat.read(project / "notebooks" / "explore.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook without outputs"
    )
    client = NotebookClient(
        nb,
        km=venv_kernel(tmp_path),
        timeout=120,
        resources={"metadata": {"path": str(project / "notebooks")}},
    )
    try:
        client.execute()
    except CellExecutionError as err:  # kedro shows tracebacks with rich: add what the cells showed
        shown = "\n".join(outputs_of(c)[1] for c in nb.cells if c.cell_type == "code")
        raise AssertionError(f"{err}\n--- cell outputs ---\n{ANSI.sub('', shown)}") from None

    code = [c for c in nb.cells if c.cell_type == "code"]
    _, setup = outputs_of(code[0])
    assert f"Kedro project: {project.resolve()}" in setup
    mimes, text = outputs_of(code[1])
    assert "image/png" in mimes and "2 test patches" in text
    mimes, text = outputs_of(code[2])
    assert "image/png" in mimes and "text/html" in mimes and "parameters" in text
    assert "SAR method 'mean'" in text
    _, report = outputs_of(code[3])
    assert "Evaluation on 2 patches" in report
