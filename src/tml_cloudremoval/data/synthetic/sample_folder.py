"""A generated sample folder: written atomically, with a manifest, skipped when up to date.

A *sample product* (:class:`SampleProduct`: the synthetic SEN12MS-CR tree or the sample TML
scene) knows its ``kind``, its ``settings`` (JSON-able, seed included), the ``files`` it writes
(POSIX paths relative to its root) and how to write them into an empty folder.
:func:`write_sample_folder` puts it in place as a whole with
:func:`tml_cloudremoval.atomic.atomic_folder`, the manifest ``manifest.json`` written last
inside it. A folder that already holds a complete product of the same kind, generator version
and settings is left alone (unless ``overwrite``); a folder holding anything the generator did
not write is never touched (the generator must never write into a user's real data).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tml_cloudremoval.atomic import atomic_folder, is_temporary, write_json_atomic

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "SAMPLE_COMPRESSION",
    "SampleProduct",
    "is_complete",
    "jsonable",
    "read_manifest",
    "write_sample_folder",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
"""Bumped whenever the generated content changes: an older manifest then no longer matches."""

MANIFEST_NAME = "manifest.json"
"""Written last into the product root; lists the settings and every file the generator wrote."""

SAMPLE_COMPRESSION: dict[str, Any] = {"compress": "zstd", "creation_options": {"zstd_level": 1}}
"""ZSTD level 1 with a predictor: about half the size of an uncompressed file at nearly the
write speed of none (GDAL >= 2.3 reads it); level 9, the default, is 10 x slower to write."""


class SampleProduct(Protocol):
    """What :func:`write_sample_folder` writes (the lazy product a sample_data node returns)."""

    kind: str
    overwrite: bool

    def settings(self) -> dict[str, Any]:
        """JSON-able settings, seed included: equal settings -> identical files."""

    def files(self) -> list[str]:
        """Every file the product writes, relative to its root (POSIX)."""

    def write_into(self, folder: Path) -> dict[str, Any]:
        """Write every file under the empty ``folder`` -> manifest extras (``summary``, ...)."""


def jsonable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` as plain JSON types (tuples become lists), as a manifest holds them."""
    return json.loads(json.dumps(dict(settings)))


class SeededSample:
    """Mixin of the two sample products: a ``seed`` and a frozen ``config`` dataclass whose
    ``overwrite`` flag says whether to rewrite a folder that is up to date."""

    seed: int
    config: Any

    @property
    def overwrite(self) -> bool:
        return bool(self.config.overwrite)

    def settings(self) -> dict[str, Any]:
        """The seed and every setting but ``overwrite``: equal settings -> identical files."""
        settings = dataclasses.asdict(self.config)
        del settings["overwrite"]
        return jsonable({"seed": int(self.seed), **settings})


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The generator's manifest in ``root``, or None where there is none (or it is unreadable)."""
    path = Path(root) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(
    root: str | os.PathLike[str], kind: str, settings: Mapping[str, Any] | None = None
) -> bool:
    """True where ``root`` holds a complete product of ``kind`` (and these settings, if given)."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is None or manifest.get("status") != "complete" or manifest.get("kind") != kind:
        return False
    if manifest.get("generator_version") != GENERATOR_VERSION:
        return False
    if settings is not None and manifest.get("settings") != settings:
        return False
    return all((root / f).is_file() for f in manifest.get("files", []))


def _foreign_files(root: Path, manifest: Mapping[str, Any] | None) -> list[str]:
    """Files under root the generator did not write (hidden temporaries of a killed run aside)."""
    if not root.is_dir():
        return []
    ours = set(manifest.get("files", [])) | {MANIFEST_NAME} if manifest else set()
    return sorted(
        rel
        for path in root.rglob("*")
        if not path.is_dir() and not is_temporary(path)
        if (rel := path.relative_to(root).as_posix()) not in ours
    )


def _refuse_foreign(root: Path, kind: str) -> None:
    """Raise ``FileExistsError`` unless root is absent, empty or a product of ``kind``."""
    manifest = read_manifest(root)
    if manifest is not None and manifest.get("kind") != kind:
        raise FileExistsError(
            f"{root / MANIFEST_NAME} describes a {manifest.get('kind')!r} sample, not {kind!r}"
        )
    foreign = _foreign_files(root, manifest)
    if foreign:
        raise FileExistsError(
            f"{root} already holds {foreign[:5]}, which the sample generator did not write "
            f"(no {MANIFEST_NAME} lists them): refusing to write synthetic data into it; "
            "choose another folder or empty it"
        )


def _summary(root: Path, manifest: Mapping[str, Any], skipped: bool, seconds: float) -> dict:
    return {
        "kind": manifest["kind"],
        "root": str(root),
        "skipped": skipped,
        "seconds": round(seconds, 3),
        "n_files": len(manifest["files"]),
        **manifest.get("summary", {}),
        "settings": manifest["settings"],
    }


def write_sample_folder(root: str | os.PathLike[str], product: SampleProduct) -> dict[str, Any]:
    """Write ``product`` as the folder ``root``, atomically -> a JSON-able summary.

    Does nothing (summary ``skipped: True``) when ``root`` holds the same product already,
    unless ``product.overwrite``. Raises ``FileExistsError`` before any work when ``root`` holds
    files the generator did not write. The summary: kind, root, skipped, seconds, n_files, the
    product's own summary and its settings.
    """
    t0 = time.perf_counter()
    root = Path(root)
    settings = product.settings()
    if not product.overwrite and is_complete(root, product.kind, settings):
        logger.info("%s sample in %s is up to date: nothing to do", product.kind, root)
        return _summary(root, read_manifest(root) or {}, True, time.perf_counter() - t0)
    _refuse_foreign(root, product.kind)
    files = product.files()
    with atomic_folder(root) as folder:
        extras = product.write_into(folder)
        manifest = {
            "kind": product.kind, "generator_version": GENERATOR_VERSION, "status": "complete",
            "settings": settings, "files": files, **extras,
        }  # fmt: skip
        write_json_atomic(folder / MANIFEST_NAME, manifest, indent=1)
    seconds = time.perf_counter() - t0
    logger.info(
        "Wrote the %s sample (%d files) to %s in %.1f s", product.kind, len(files), root, seconds
    )
    return _summary(root, manifest, False, seconds)
