"""Training-ready store: SEN12MS-CR triplets packed once into memory-mappable arrays.

A store is a folder holding, for N patches of H x W pixels at 10 m (channels_last):

- ``s2_cloudy.npy`` uint16 (N, H, W, 10): cloudy optical input, TML bands, DN
- ``s2.npy``        uint16 (N, H, W, 10): cloud-free target, TML bands, DN
- ``s1.npy``        float32 (N, H/4, W/4, 2): VV, VH in dB on the 40 m grid, NaN-free
- ``mask.npy``      uint8 (N, H, W): 1 = cloud or cloud shadow
- ``index.csv``     the triplet rows the patches came from, same order
- ``meta.json``     sizes, band names and the settings the store was made with

Training then reads crops with plain array slicing instead of decoding three GeoTIFFs, running
the cloud detector and resampling SAR for every sample of every epoch.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tml_cloudremoval.bands import S1_BAND_NAMES, SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.data.store_group import FolderGroup

ARRAYS: dict[str, tuple[np.dtype, str]] = {
    "s2_cloudy": (np.dtype(np.uint16), "optical"),
    "s2": (np.dtype(np.uint16), "optical"),
    "s1": (np.dtype(np.float32), "sar"),
    "mask": (np.dtype(np.uint8), "mask"),
}
"""Array name -> (dtype, kind); the kind fixes the shape of one sample."""


def sample_shape(kind: str, height: int, width: int) -> tuple[int, ...]:
    """Shape of one sample of an array kind for an H x W (10 m) patch."""
    if kind == "optical":
        return (height, width, len(TML_BAND_NAMES))
    if kind == "sar":
        return (height // SAR_FACTOR, width // SAR_FACTOR, len(S1_BAND_NAMES))
    return (height, width)


@dataclass
class PatchStore:
    """An opened store: read-only memory maps plus the index and metadata."""

    path: Path
    s2_cloudy: np.ndarray
    s2: np.ndarray
    s1: np.ndarray
    mask: np.ndarray
    index: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.s2.shape[0])

    @property
    def height(self) -> int:
        return int(self.s2.shape[1])

    @property
    def width(self) -> int:
        return int(self.s2.shape[2])

    @classmethod
    def open(cls, path: str | os.PathLike) -> PatchStore:
        """Open a store folder; arrays are memory-mapped read-only."""
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{path} is not a patch store: {meta_path.name} is missing")
        meta = json.loads(meta_path.read_text())
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        index = pd.read_csv(path / "index.csv", dtype=str, keep_default_na=False)
        n = int(meta["n"])
        for name, array in arrays.items():
            if array.shape[0] != n:
                raise ValueError(
                    f"{path / (name + '.npy')} holds {array.shape[0]} patches, meta.json says {n}"
                )
        return cls(path=path, index=index, meta=meta, **arrays)


def _allocated_memmap(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.memmap:
    """A new ``.npy`` memory map whose disk blocks are reserved up front: a full disk (or a file
    size limit) raises ``OSError`` here, not a ``SIGBUS`` at the first write to a hole."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
    return array


def _write_arrays(
    folder: Path, samples: Iterable[Mapping[str, np.ndarray]], n: int, height: int, width: int
) -> None:
    """Fill ``<folder>/<name>.npy`` for every array of :data:`ARRAYS` with exactly n samples."""
    arrays = {
        name: _allocated_memmap(
            folder / f"{name}.npy", dtype, (n, *sample_shape(kind, height, width))
        )
        for name, (dtype, kind) in ARRAYS.items()
    }
    count = 0
    for i, sample in enumerate(samples):
        if i >= n:
            raise ValueError(f"more than the announced {n} samples")
        for name, array in arrays.items():
            array[i] = sample[name]
        count += 1
    if count != n:
        raise ValueError(f"got {count} samples, announced {n}")
    for array in arrays.values():
        array.flush()


def fill_patch_store(
    folder: Path,
    samples: Iterable[Mapping[str, np.ndarray]],
    n: int,
    height: int,
    width: int,
    index: pd.DataFrame,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write the files of a store (arrays, ``index.csv``, ``meta.json``) into an empty folder."""
    _write_arrays(folder, samples, n, height, width)
    index.to_csv(folder / "index.csv", index=False)
    full_meta = {
        "n": n,
        "height": height,
        "width": width,
        "bands": list(TML_BAND_NAMES),
        "sar_bands": list(S1_BAND_NAMES),
        "sar_factor": SAR_FACTOR,
        **(meta or {}),
    }
    (folder / "meta.json").write_text(json.dumps(full_meta, indent=2))


def write_patch_store(
    path: str | os.PathLike,
    samples: Iterable[Mapping[str, np.ndarray]],
    n: int,
    height: int,
    width: int,
    index: pd.DataFrame,
    meta: Mapping[str, Any] | None = None,
    group: FolderGroup | None = None,
    member: str = "store",
) -> Path:
    """Write ``n`` samples (dicts with keys s2_cloudy, s2, s1, mask) into a store at ``path``.

    The store is built in a temporary sibling folder under the store's output lock and swapped
    into place when complete (:class:`~tml_cloudremoval.data.store_group.FolderGroup`), so an
    interrupted write never leaves a half-written store and an existing one stays intact until
    the new one is whole; a second concurrent build of the same store stops with
    :class:`~tml_cloudremoval.errors.LockedError`. With ``group`` (e.g. the three splits of one
    build), the store is put in place only with the group's other members (``member`` is its
    name there); a failure in any member leaves every store as it was.
    """
    path = Path(path)
    if len(index) != n:
        raise ValueError(f"index has {len(index)} rows for {n} patches")
    if height % SAR_FACTOR or width % SAR_FACTOR:
        raise ValueError(f"patch size {height}x{width} is not a multiple of {SAR_FACTOR}")
    group = group if group is not None else FolderGroup([member])
    group.write(
        member,
        path,
        lambda folder: fill_patch_store(folder, samples, n, height, width, index, meta),
    )
    return path
