"""The resumable patch-store build: workers write their rows straight into the store.

:func:`build_patch_store` makes the store's arrays (disk reserved, free disk checked first) in
the store's temporary build folder (:func:`tml_cloudremoval.atomic.resumable_folder`) and lets a
:class:`RowSource` (``TripletSamples``) fill row ranges, in worker processes, each with
:func:`write_rows` (plain ``pwrite`` of each row, then ``fdatasync``). Nothing of a sample passes
through the parent: it hands out row ranges and table rows and keeps a :class:`BuildJournal` of
the ranges flushed. A build killed at any moment (``kill -9`` included) keeps its folder; the
next one with the same resume key (table fingerprint, settings, ``STORE_FORMAT``) continues from
the journal, and the finished store is byte-identical to one built without interruption.
(A worker whose parent was killed ends after its current chunk; the rows it still writes hold
the same bytes the continued build writes there, so it cannot change the result.)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.lib.format as fmt
import pandas as pd

from tml_cloudremoval.atomic import write_json_atomic
from tml_cloudremoval.data.patch_store import (
    ARRAYS,
    allocate_arrays,
    array_shapes,
    check_store_disk,
    validate_size,
    write_index_and_meta,
)
from tml_cloudremoval.data.store_group import FolderGroup

__all__ = ["JOURNAL", "BuildJournal", "RowSource", "build_patch_store", "write_rows"]

log = logging.getLogger(__name__)

JOURNAL = ".journal.json"
"""The :class:`BuildJournal` file inside a store's temporary build folder."""


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset (bytes) of a ``.npy`` file, from its header."""
    with open(path, "rb") as f:
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
        return tuple(shape), dtype, f.tell()


def write_rows(folder: Path, start: int, samples: Iterable[Mapping[str, np.ndarray]]) -> int:
    """Write samples into rows ``start, start + 1, ...`` of the store arrays in ``folder`` (made
    by :func:`build_patch_store`; any process may write its own rows) and flush them to disk
    (``fdatasync``) before returning: the journal entry comes after. Plain ``pwrite`` of each
    row, no memory map, so a writer's memory does not grow with the rows it writes. A sample of
    another shape or a row past the end is a ``ValueError``. Returns the row count."""
    files: dict[str, tuple[int, tuple[int, ...], np.dtype, int]] = {}
    try:
        for name, (dtype, _) in ARRAYS.items():
            shape, found, offset = _header(folder / f"{name}.npy")
            if found != dtype:
                raise ValueError(f"{folder / name}.npy holds {found}, not {dtype}")
            files[name] = (os.open(folder / f"{name}.npy", os.O_RDWR), shape, dtype, offset)
        count = 0
        for count, sample in enumerate(samples, start=1):
            row = start + count - 1
            for name, (fd, shape, dtype, offset) in files.items():
                value = np.ascontiguousarray(sample[name], dtype=dtype)
                if value.shape != shape[1:] or not 0 <= row < shape[0]:
                    raise ValueError(
                        f"{name}: row {row} of shape {value.shape} does not fit {shape}"
                    )
                os.pwrite(fd, value.data, offset + row * value.nbytes)
        for fd, *_ in files.values():
            os.fdatasync(fd)
    finally:
        for fd, *_ in files.values():
            os.close(fd)
    return count


Ranges = list[tuple[int, int]]


class BuildJournal:
    """The row ranges ``[start, stop)`` of a store build whose arrays are flushed to disk.

    Kept in :data:`JOURNAL` inside the build folder, rewritten atomically (``fsync``) after
    every range: the data is on disk before the journal names it, so after ``kill -9`` every
    range the journal lists is whole and every other row is redone.
    """

    def __init__(self, folder: Path, n: int, done: Sequence[Sequence[int]] = ()) -> None:
        self.path, self.n = folder / JOURNAL, int(n)
        self.done: Ranges = _merged([(int(a), int(b)) for a, b in done])

    @classmethod
    def load(cls, folder: Path, n: int) -> BuildJournal | None:
        """The journal a killed build left in ``folder`` (None: none, or for another size)."""
        try:
            data = json.loads((folder / JOURNAL).read_text())
        except (OSError, ValueError):
            return None
        return cls(folder, n, data["done"]) if data.get("n") == n else None

    @property
    def rows_done(self) -> int:
        return sum(b - a for a, b in self.done)

    def save(self) -> None:
        write_json_atomic(self.path, {"n": self.n, "done": self.done}, indent=None)

    def mark(self, start: int, stop: int) -> None:
        """Record rows ``[start, stop)`` as written and flushed."""
        self.done = _merged([*self.done, (start, stop)])
        self.save()

    def todo(self, chunk: int) -> Ranges:
        """The rows not done, in ranges of at most ``chunk`` rows, in row order."""
        out, at = [], 0
        for a, b in [*self.done, (self.n, self.n)]:
            out += [(s, min(s + chunk, a)) for s in range(at, a, chunk)]
            at = b
        return out


def _merged(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


class RowSource(Protocol):
    """What :func:`build_patch_store` builds from (e.g. ``TripletSamples``)."""

    index: pd.DataFrame
    meta: dict[str, Any]
    height: int
    width: int
    resume_key: str
    chunk: int

    def __len__(self) -> int: ...

    def write_rows(self, folder: Path, todo: Ranges, done: Callable[[int, int], None]) -> None:
        """Write every range of ``todo`` with :func:`write_rows`; call ``done(start, stop)``
        after each range is flushed."""


def _arrays_whole(folder: Path, n: int, height: int, width: int) -> bool:
    """True when every array file of a kept build has the shape and dtype of this one."""
    try:
        return all(
            (a := np.load(folder / f"{name}.npy", mmap_mode="r")).shape == shape
            and a.dtype == ARRAYS[name][0]
            for name, shape in array_shapes(n, height, width).items()
        )
    except (OSError, ValueError):
        return False


def _fill_from_source(folder: Path, path: Path, source: RowSource) -> None:
    """Make or continue the build in ``folder``: arrays, journal, the source's rows, index/meta."""
    n, height, width = len(source), int(source.height), int(source.width)
    journal = BuildJournal.load(folder, n)
    if journal is None or not _arrays_whole(folder, n, height, width):
        check_store_disk(path, folder, n, height, width, source.index)
        allocate_arrays(folder, n, height, width)  # made, reserved, flushed at close
        journal = BuildJournal(folder, n)
        journal.save()
    else:
        log.info("%s: %d of %d patches already built, continuing", path, journal.rows_done, n)
    source.write_rows(folder, journal.todo(max(1, int(source.chunk))), journal.mark)
    if journal.rows_done != n:
        raise ValueError(f"{path}: the source wrote {journal.rows_done} of {n} patches")
    write_index_and_meta(folder, n, height, width, source.index, source.meta)


def build_patch_store(
    path: str | os.PathLike,
    source: RowSource,
    group: FolderGroup | None = None,
    member: str = "store",
) -> Path:
    """Build the store at ``path`` from a :class:`RowSource` that writes its rows itself (in
    worker processes: nothing of a sample passes through this process), resumably.

    The same guarantees as :func:`write_patch_store` (lock, atomic swap, group, free disk
    checked before anything is written); in addition a build killed at any point (``kill -9``
    included) leaves its folder with a :class:`BuildJournal`, and the next build with the same
    ``source.resume_key`` (table fingerprint, settings, :data:`STORE_FORMAT`) continues from the
    journal; the finished store is byte-identical to one built without interruption. A
    different key starts over (logged).
    """
    path = Path(path)
    n, height, width = len(source), int(source.height), int(source.width)
    validate_size(n, height, width, source.index)
    group = group if group is not None else FolderGroup([member])
    group.write(
        member,
        path,
        lambda folder: _fill_from_source(folder, path, source),
        resume_key=source.resume_key,
    )
    return path
