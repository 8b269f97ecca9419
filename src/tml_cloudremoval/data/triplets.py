"""Reading and preparing SEN12MS-CR triplets: raw arrays, patch-store samples, a lazy sequence.

:func:`read_triplet` reads one row of the triplet table (see
:mod:`tml_cloudremoval.data.discovery`), :func:`prepare_patch` turns it into one patch-store
sample (TML bands, cloud/shadow mask, SAR at 40 m) and :class:`TripletSamples` is the lazy
sequence of samples that ``PatchStoreDataset.save`` builds a store from
(:func:`~tml_cloudremoval.data.store_build.build_patch_store`: worker processes write their
rows straight into the store, resumably); :func:`split_samples` makes one per split, written
together.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tml_cloudremoval import __version__
from tml_cloudremoval.bands import select_tml_bands
from tml_cloudremoval.data.cloud_mask import cloud_shadow_mask
from tml_cloudremoval.data.content import check_triplet_content
from tml_cloudremoval.data.discovery import TRIPLET_COLUMNS, table_fingerprint
from tml_cloudremoval.data.errors import DataError
from tml_cloudremoval.data.patch_store import STORE_FORMAT, store_bytes
from tml_cloudremoval.data.store_build import write_rows
from tml_cloudremoval.data.store_group import FolderGroup
from tml_cloudremoval.data.workers import ordered_in_processes
from tml_cloudremoval.raster import read_header, read_raster
from tml_cloudremoval.sar import SAR_METHODS, fill_nan_with_channel_mean, sar_to_40m

__all__ = ["TripletSamples", "prepare_patch", "read_triplet", "split_samples", "usable_cores"]


def read_triplet(
    row: Mapping[str, Any] | Any, window: Any = None, check_content: bool = False
) -> dict[str, np.ndarray]:
    """Read one triplet (a table row) -> raw arrays, channels_last, optionally a window.

    ``{"s1": float32 (H, W, 2) dB (VV, VH), NaN where missing,
       "s2": uint16 (H, W, 13) DN, "s2_cloudy": uint16 (H, W, 13) DN}``.
    ``window``: a rasterio ``Window`` or ``(row_slice, col_slice)``. ``check_content``: raise
    :class:`~tml_cloudremoval.data.errors.DataError` naming every file and band whose pixels
    are unusable (:func:`~tml_cloudremoval.data.content.content_faults`; meant for whole
    patches). Raises :class:`~tml_cloudremoval.raster.RasterError` naming the file on read
    failures.
    """
    s1 = read_raster(row["s1_path"], window=window, nodata_to_nan=True).astype(
        np.float32, copy=False
    )
    raw = {
        "s1": s1,
        "s2": read_raster(row["s2_path"], window=window),
        "s2_cloudy": read_raster(row["s2_cloudy_path"], window=window),
    }
    if check_content:
        check_triplet_content(row, raw)
    s1[~np.isfinite(s1)] = np.nan
    return raw


def prepare_patch(
    raw: Mapping[str, np.ndarray],
    cloud_threshold: float = 0.2,
    sar_method: str = "mean",
    source: str | None = None,
) -> dict[str, np.ndarray]:
    """Raw triplet (from :func:`read_triplet`, whole patch) -> one patch-store sample.

    ``{"s2_cloudy": uint16 (H, W, 10), "s2": uint16 (H, W, 10)`` (TML bands, DN),
    ``"s1": float32 (H/4, W/4, 2)`` dB at 40 m (NaN filled with the per-channel patch mean, then
    4 x 4 block averaged with ``sar_method``), ``"mask": uint8 (H, W)`` (1 = cloud or shadow,
    detected on the raw 13-band cloudy patch with ``cloud_threshold``)}.
    ``source`` names the S1 file in error messages (:class:`DataError` for an S1 band without
    any finite value).
    """
    try:
        s1 = fill_nan_with_channel_mean(raw["s1"])
    except ValueError as exc:
        raise DataError(f"{source or 'S1'}: S1 {exc}") from exc
    return {
        "s2_cloudy": select_tml_bands(raw["s2_cloudy"]).astype(np.uint16, copy=False),
        "s2": select_tml_bands(raw["s2"]).astype(np.uint16, copy=False),
        "s1": sar_to_40m(s1, method=sar_method).astype(np.float32, copy=False),
        "mask": cloud_shadow_mask(raw["s2_cloudy"], cloud_threshold=cloud_threshold).astype(
            np.uint8, copy=False
        ),
    }


def _prepare_row(
    row: Mapping[str, Any], cloud_threshold: float, sar_method: str
) -> dict[str, np.ndarray]:
    """Read and prepare one triplet (a table row as a dict): what a worker process runs."""
    raw = read_triplet(row, check_content=True)
    return prepare_patch(raw, cloud_threshold, sar_method, source=row["s1_path"])


def _write_chunk(
    folder: str, start: int, rows: list[dict[str, Any]], cloud_threshold: float, sar_method: str
) -> tuple[int, int]:
    """Prepare ``rows`` and write them into store rows ``start...`` in ``folder``, flushed:
    what a worker process runs. Returns the range written (the acknowledgement)."""
    samples = (_prepare_row(row, cloud_threshold, sar_method) for row in rows)
    return start, start + write_rows(Path(folder), start, samples)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class TripletSamples(Sequence):
    """Lazy sequence of patch-store samples over a triplet table (read + prepare on access).

    ``len()``, ``[i]`` (one sample dict, see :func:`prepare_patch`) and iteration (in table
    order, with a tqdm progress bar). ``index`` is the table (patch-store ``index.csv``),
    ``meta`` the settings (patch-store ``meta.json``), ``height``/``width`` the patch size (from
    the first header). This is what ``PatchStoreDataset.save`` takes.

    ``workers``: processes that read and prepare triplets during iteration (None: one per usable
    core; 1: in this process). Each sample costs about 35 ms of one core (reads, cloud mask, SAR
    averaging), so the 122,218 SEN12MS-CR triplets take about 70 min on one core and scale with
    the cores. Starting a worker costs about as much as 40 triplets, so a worker is started only
    for every ``min_per_worker`` triplets (a 72-triplet sample set runs in this process). At
    most ``4 x workers`` samples are in flight, so memory stays bounded.

    :meth:`write_rows` (what ``PatchStoreDataset.save`` uses) is the store build: each worker
    gets ``chunk`` table rows at a time, writes their samples straight into the store's arrays
    and answers with the row range; the parent only keeps the journal (at most ``2 x workers``
    chunks in flight: memory independent of the table's length). ``resume_key`` names the
    inputs and settings (table fingerprint, ``cloud_threshold``, ``sar_method``, patch size,
    store format, package version) a killed build must match to be continued.

    Every file's pixels are checked while read (a :class:`DataError` names the file and band).
    ``store_group`` / ``store_member``: the stores written together with this one (see
    ``PatchStoreDataset.save``). ``patch_size``: ``(H, W)`` px of the patches, else read from
    the first triplet's header; an empty table needs it (its store holds 0 patches of that size).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        cloud_threshold: float = 0.2,
        sar_method: str = "mean",
        progress: bool = True,
        description: str = "patches",
        workers: int | None = None,
        min_per_worker: int = 100,
        store_group: FolderGroup | None = None,
        store_member: str | None = None,
        patch_size: tuple[int, int] | None = None,
        chunk: int = 64,
    ) -> None:
        if sar_method not in SAR_METHODS:
            raise ValueError(f"unknown sar_method {sar_method!r}; use one of {SAR_METHODS}")
        if not 0.0 < float(cloud_threshold) <= 1.0:
            raise ValueError(f"cloud_threshold must be in (0, 1], got {cloud_threshold}")
        if int(chunk) < 1:
            raise ValueError(f"chunk must be >= 1 rows, got {chunk}")
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers must be >= 1 or None (one per core), got {workers}")
        self.index = table.reset_index(drop=True)[list(TRIPLET_COLUMNS)].copy()
        self.cloud_threshold = float(cloud_threshold)
        self.sar_method = sar_method
        self.progress = progress
        self.description = description
        self.workers = usable_cores() if workers is None else int(workers)
        self.min_per_worker = max(1, int(min_per_worker))
        self.meta: dict[str, Any] = {
            "sar_method": sar_method,
            "cloud_threshold": self.cloud_threshold,
        }
        self.store_group = store_group
        self.store_member = store_member
        self._size = None if patch_size is None else (int(patch_size[0]), int(patch_size[1]))
        self.chunk = int(chunk)

    def __len__(self) -> int:
        return len(self.index)

    def _size_from_header(self) -> tuple[int, int]:
        if self._size is None:
            if not len(self):
                raise ValueError("no triplets: the patch size is unknown")
            header = read_header(self.index.loc[0, "s2_path"])
            self._size = (header.height, header.width)
        return self._size

    @property
    def height(self) -> int:
        return self._size_from_header()[0]

    @property
    def width(self) -> int:
        return self._size_from_header()[1]

    @property
    def resume_key(self) -> str:
        """What a kept, killed build must have been made from to be continued (JSON text)."""
        key = {
            "store_format": STORE_FORMAT,
            "version": __version__,
            "table": table_fingerprint(self.index),
            "n": len(self),
            "size": list(self._size_from_header()) if len(self) else list(self._size or ()),
            "cloud_threshold": self.cloud_threshold,
            "sar_method": self.sar_method,
        }
        return json.dumps(key, sort_keys=True)

    @property
    def nbytes(self) -> int:
        """Disk bytes of the store this sequence becomes (exact; see ``store_bytes``)."""
        return store_bytes(len(self), self.height, self.width, self.index)

    def write_rows(self, folder: Path, todo: Sequence[tuple[int, int]], done: Callable) -> None:
        """Prepare and write the row ranges ``todo`` into the store arrays in ``folder``, in
        worker processes (see the class docstring); ``done(start, stop)`` after each range is
        flushed, in the order they were handed out. A worker's error is raised here whole."""
        n_todo = sum(b - a for a, b in todo)
        workers = min(self.workers, n_todo // self.min_per_worker)
        args = (self.cloud_threshold, self.sar_method)
        with tqdm(
            total=len(self),
            initial=len(self) - n_todo,
            desc=self.description,
            unit="patch",
            disable=not self.progress,
        ) as bar:
            if workers <= 1:
                acks: Iterator[tuple[int, int]] = (
                    _write_chunk(str(folder), a, self._records(a, b), *args) for a, b in todo
                )
            else:
                acks = self._chunks_in_workers(folder, todo, workers)
            try:
                for start, stop in acks:
                    done(start, stop)
                    bar.update(stop - start)
            finally:
                acks.close()

    def _records(self, start: int, stop: int) -> list[dict[str, Any]]:
        return self.index.iloc[start:stop].to_dict("records")

    def _chunks_in_workers(
        self, folder: Path, todo: Sequence[tuple[int, int]], workers: int
    ) -> Iterator[tuple[int, int]]:
        """Acknowledged ranges, 2 x workers chunks in flight (``workers.ordered_in_processes``)."""
        calls = (
            (str(folder), a, self._records(a, b), self.cloud_threshold, self.sar_method)
            for a, b in todo
        )
        return ordered_in_processes(_write_chunk, calls, workers, in_flight=2 * workers)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:  # type: ignore[override]
        if not isinstance(i, int | np.integer):
            raise TypeError(f"TripletSamples index must be an int, got {type(i).__name__}")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range for {n} triplets")
        return _prepare_row(
            self.index.iloc[int(i)].to_dict(), self.cloud_threshold, self.sar_method
        )

    def _rows(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self.index.iloc[i].to_dict()

    def _in_workers(self, workers: int) -> Iterator[dict[str, np.ndarray]]:
        """Samples in table order, prepared by ``workers`` processes, 4 x workers in flight."""
        calls = ((row, self.cloud_threshold, self.sar_method) for row in self._rows())
        return ordered_in_processes(_prepare_row, calls, workers, in_flight=4 * workers)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        n = len(self)
        workers = min(self.workers, n // self.min_per_worker)
        if workers <= 1:
            samples: Iterator[dict[str, np.ndarray]] = (self[i] for i in range(n))
        else:
            samples = self._in_workers(workers)
        try:
            with tqdm(
                total=n, desc=self.description, unit="patch", disable=not self.progress
            ) as bar:
                for sample in samples:
                    yield sample
                    bar.update()
        finally:
            samples.close()  # stops the worker processes at once when iteration stops early

    def __repr__(self) -> str:
        return (
            f"TripletSamples(n={len(self)}, cloud_threshold={self.cloud_threshold}, "
            f"sar_method={self.sar_method!r}, workers={self.workers})"
        )


def split_samples(
    tables: Mapping[str, pd.DataFrame], meta: Mapping[str, Any] | None = None, **settings: Any
) -> dict[str, TripletSamples]:
    """One :class:`TripletSamples` per split table (``settings``: its keywords, e.g.
    ``cloud_threshold``), in one :class:`FolderGroup`: the stores are put in place together, a
    fault in any replaces none. ``meta`` (how the splits were made) and ``split`` (the split's
    name) go into every store's ``meta.json``. A split without triplets (the official split on
    a subset of SEN12MS-CR) becomes a store of 0 patches of the other splits' patch size.
    """
    group = FolderGroup(tuple(tables))

    def samples_of(name: str, size: tuple[int, int] | None = None) -> TripletSamples:
        samples = TripletSamples(
            tables[name],
            description=f"{name} patches",
            store_group=group,
            store_member=name,
            patch_size=size,
            **settings,
        )
        samples.meta.update({**(meta or {}), "split": name})
        return samples

    out = {name: samples_of(name) for name, table in tables.items() if len(table)}
    size = next(((s.height, s.width) for s in out.values()), None)
    out |= {name: samples_of(name, size) for name, table in tables.items() if not len(table)}
    if size is not None:
        for name, samples in out.items():
            group.expect(name, samples.nbytes)  # free disk for all, before the first is built
    return {name: out[name] for name in tables}
