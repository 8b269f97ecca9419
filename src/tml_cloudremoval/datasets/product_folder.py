"""``ProductFolderDataset``: a folder of one product file per scene, saved lazily.

The base of the inference products (``GeoTiffFolderDataset``, ``PngFolderDataset``). The folder
holds ``<scene_id><suffix>`` files; ``load()`` gives ``{scene_id: loader}`` (nothing is read until
a loader is called, as with kedro-datasets' ``PartitionedDataset``); ``save(products)`` takes
``{scene_id: product}`` of *lazy* products, objects with

- ``sources``: the input files the product is made from, and
- ``write(path)``: compute the product and write it to ``path`` atomically (temporary sibling,
  rename; ``tml_cloudremoval.atomic``), streaming where the product is large.

Before the first product is computed, ``save`` refuses every target that is one of the inputs of
any product (through symlinks, ``..`` or hard links) or the target of two products, naming both;
removes the temporary files that dead runs left in the folder (``atomic.remove_stale_temporaries``:
a run killed while writing leaves a hidden ``.<file>.<pid>.<hex>.tmp`` as big as the product); and
takes the lock (``atomic.output_lock``) of every target, held until all are written, so a second
run writing the same products stops at once with a ``LockedError`` naming the file and the pid.
Files of other scenes already in the folder are kept (as ``PartitionedDataset`` does); hidden files
(temporaries, locks) are never scenes.

A scene whose pass failed (``inference.on_bad_scene: skip``) has no product but may have a
failure record ``<scene_id><suffix>.failed.json`` (``inference.report.failure_record_path``);
``load()`` gives them as the ``failures`` attribute ({scene_id: record}) of the loaded mapping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from tml_cloudremoval.atomic import output_lock, remove_stale_temporaries
from tml_cloudremoval.datasets.folder import FolderDataset
from tml_cloudremoval.inference.inputs import refuse_targets
from tml_cloudremoval.inference.report import FAILURE_SUFFIX

_SCENE_ID = re.compile(r"^[^./\\\x00][^/\\\x00]*$")
"""A scene id is a file-name part that is not hidden (hidden files are temporaries, locks)."""


class ProductFolderDataset(FolderDataset[Mapping[str, Any], dict[str, Callable[[], Any]]]):
    """A folder of ``<scene_id><suffix>`` product files (see the module docstring).

    Subclasses set ``DEFAULT_SUFFIX``, ``LOAD_MODES`` (the first is the default) and
    :meth:`_load_one` (what a loader returns for one file in a given mode).
    """

    DEFAULT_SUFFIX = ""
    LOAD_MODES: tuple[str, ...] = ("path",)

    def __init__(
        self,
        *,
        filepath: str,
        suffix: str | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """``filepath``: the folder (relative to the project root or absolute); ``suffix``: file
        name after the scene id; ``load_args``: ``{"mode": one of LOAD_MODES}``; ``metadata``:
        free-form (e.g. kedro-viz layer), ignored by the dataset."""
        super().__init__(filepath=filepath, metadata=metadata)
        self._suffix = self.DEFAULT_SUFFIX if suffix is None else suffix
        self._load_args = dict(load_args or {})
        unknown = set(self._load_args) - {"mode"}
        mode = self._load_args.get("mode", self.LOAD_MODES[0])
        if unknown or mode not in self.LOAD_MODES:
            raise DatasetError(
                f"{type(self).__name__} {filepath}: load_args must be {{mode: "
                f"{' | '.join(self.LOAD_MODES)}}}, got {self._load_args}"
            )
        self._mode = mode

    def path_of(self, scene_id: str) -> Path:
        """The file of ``scene_id`` in this folder."""
        return self._path / f"{scene_id}{self._suffix}"

    def scene_ids(self) -> list[str]:
        """Scene ids of the product files now in the folder, sorted (hidden files: temporaries
        and locks, skipped)."""
        if not self._path.is_dir():
            return []
        names = (p.name for p in self._path.iterdir() if p.is_file() and not p.name.startswith("."))
        cut = len(self._suffix)
        return sorted(n[: len(n) - cut] for n in names if n.endswith(self._suffix) and len(n) > cut)

    def _load_one(self, path: Path, mode: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def failures(self) -> dict[str, dict[str, Any]]:
        """{scene_id: failure record} of the records in the folder (module docstring); an
        unreadable record reads as {"fault": why}."""
        ending = self._suffix + FAILURE_SUFFIX
        if not self._path.is_dir():
            return {}
        records = {}
        for path in sorted(self._path.glob(f"*{ending}")):
            sid = path.name[: len(path.name) - len(ending)]
            try:
                records[sid] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                records[sid] = {"scene_id": sid, "fault": f"{path}: unreadable ({exc})"}
        return records

    def load(self) -> ProductFolder:
        if not self._path.is_dir():
            raise DatasetError(f"{self._path}: product folder does not exist (run the pipeline)")
        loaded = ProductFolder(
            {sid: ProductLoader(self, self.path_of(sid)) for sid in self.scene_ids()}
        )
        loaded.failures = self.failures()
        return loaded

    def save(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise DatasetError(f"{self._path}: save takes {{scene_id: lazy product}}")
        bad = [
            repr(k) for k, v in data.items()
            if not (isinstance(k, str) and _SCENE_ID.match(k))
            or not (hasattr(v, "write") and hasattr(v, "sources"))
        ]  # fmt: skip
        if bad:
            raise DatasetError(
                f"{self._path}: scene ids must be file-name parts (not hidden) and products need "
                f"'sources' and 'write(path)'; faulty: {', '.join(bad)}"
            )
        targets = {sid: self.path_of(sid) for sid in data}
        refuse_targets(targets, [s for product in data.values() for s in product.sources])
        self._path.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self._path)
        with ExitStack() as locks:
            for target in targets.values():
                locks.enter_context(output_lock(target))
            for sid, product in data.items():
                product.write(targets[sid])

    def _exists(self) -> bool:
        return bool(self.scene_ids())

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "suffix": self._suffix, "mode": self._mode}


class ProductFolder(dict):
    """What ``load()`` gives: {scene_id: :class:`ProductLoader`}, and ``failures`` ({scene_id:
    failure record} of the scenes whose pass failed)."""

    failures: dict[str, dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = {}


class ProductLoader:
    """Loads one product file when called (in the dataset's mode); ``path`` is the file."""

    def __init__(self, dataset: ProductFolderDataset, path: Path) -> None:
        self._dataset, self.path = dataset, path

    def __call__(self) -> Any:
        return self._dataset._load_one(self.path, self._dataset._mode)

    def __repr__(self) -> str:
        return f"ProductLoader({self.path})"
