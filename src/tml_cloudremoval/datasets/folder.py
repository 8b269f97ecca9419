"""``FolderDataset``: the common part of the project's datasets, each a folder on disk."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Generic, TypeVar

from kedro.io import AbstractDataset

In = TypeVar("In")
Out = TypeVar("Out")


class FolderDataset(AbstractDataset[In, Out], Generic[In, Out]):
    """A catalog entry whose ``filepath`` is a folder (relative to the project root or absolute).

    ``metadata`` is free-form (e.g. the kedro-viz layer) and ignored by the dataset. Subclasses
    implement ``load`` and ``save`` (and ``_exists`` where a complete folder has a mark).
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    @property
    def _path(self) -> Path:
        return Path(self._filepath)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
