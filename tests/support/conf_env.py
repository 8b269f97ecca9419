"""A temporary copy of the project's conf/ with an env that moves catalog entries."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[2]
ENV = "guard"
SAVED_VERSION = "2026-01-01T00.00.00.000Z"


def base_entry(name: str) -> dict:
    """The entry ``name`` of conf/base/catalog_*.yml."""
    for path in (PROJECT / "conf" / "base").glob("catalog_*.yml"):
        entries = yaml.safe_load(path.read_text())
        if name in entries:
            return dict(entries[name])
    raise KeyError(name)


def _moved(entry: dict, path: Path) -> dict:
    """``entry`` with its file or folder (a ``PartitionedDataset``'s ``path``) at ``path``."""
    return {**entry, ("path" if "path" in entry else "filepath"): str(path)}


def conf_env(tmp_path: Path, **filepaths: Path) -> Path:
    """``tmp_path/conf``: conf/ with an env :data:`ENV` whose catalog.yml puts the model (one
    empty saved version, :data:`SAVED_VERSION`), the inference plans (``tmp_path/plans``) and
    the entries in ``filepaths`` elsewhere, as a user's conf/local/catalog.yml would."""
    conf = tmp_path / "conf"
    if not conf.exists():
        shutil.copytree(PROJECT / "conf", conf, ignore=shutil.ignore_patterns("local"))
        (conf / ENV).mkdir()
    model = tmp_path / "models" / "dsen2cr.keras"
    (model / SAVED_VERSION).mkdir(parents=True, exist_ok=True)
    (model / SAVED_VERSION / "dsen2cr.keras").write_bytes(b"")
    moved = {"dsen2cr_model": model, "inference_plan": tmp_path / "plans", **filepaths}
    catalog = {name: _moved(base_entry(name), p) for name, p in moved.items()}
    (conf / ENV / "catalog.yml").write_text(yaml.safe_dump(catalog))
    return conf
