"""Training-ready store: SEN12MS-CR triplets packed once into memory-mappable arrays.

A store is a folder holding, for N patches of H x W pixels at 10 m (channels_last):

- ``s2_cloudy.npy`` uint16 (N, H, W, 10): cloudy optical input, TML bands, DN
- ``s2.npy``        uint16 (N, H, W, 10): cloud-free target, TML bands, DN
- ``s1.npy``        float32 (N, H/4, W/4, 2): VV, VH in dB on the 40 m grid, NaN-free
- ``mask.npy``      uint8 (N, H, W): 1 = cloud or cloud shadow
- ``index.csv``     the triplet rows the patches came from, same order
- ``meta.json``     sizes, band names and the settings the store was made with (nothing
  run-dependent: no time, host or path, so two builds of the same inputs are byte-identical)

Training then reads crops with plain array slicing instead of decoding three GeoTIFFs, running
the cloud detector and resampling SAR for every sample of every epoch.

Two ways to fill one: :func:`write_patch_store` here copies an iterable of samples in this
process; :func:`tml_cloudremoval.data.store_build.build_patch_store` lets worker processes write
row ranges straight into the arrays, resumably. Both check the free disk first
(:func:`store_bytes`, exact).
"""

from __future__ import annotations

import errno
import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tml_cloudremoval.bands import S1_BAND_NAMES, SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.data.store_group import FolderGroup, check_free_disk

STORE_FORMAT = 2
"""Version of the store's files and of how samples are made; part of every resume key (bump it
when the arrays of the same inputs would change, so no build continues one of the old kind)."""

META_BYTES = 64 * 1024
"""Disk allowance for ``meta.json`` (a few hundred bytes) and the build's bookkeeping files."""

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


def array_shapes(n: int, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Shape of every array of :data:`ARRAYS` for n patches of H x W px."""
    return {name: (n, *sample_shape(kind, height, width)) for name, (_, kind) in ARRAYS.items()}


def npy_bytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    """Exact size of a ``.npy`` file as ``open_memmap`` writes it: header + data."""
    header = io.BytesIO()
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(header, d)
    return len(header.getvalue()) + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def store_bytes(n: int, height: int, width: int, index: pd.DataFrame) -> int:
    """Disk bytes of a store of n H x W patches: the four arrays exactly, ``index.csv``
    exactly and :data:`META_BYTES` (SEN12MS-CR, 122,218 x 256 x 256: 332.4 GB = 309.6 GiB)."""
    arrays = sum(
        npy_bytes(ARRAYS[name][0], shape) for name, shape in array_shapes(n, height, width).items()
    )
    return arrays + len(index.to_csv(index=False).encode()) + META_BYTES


def _held_bytes(folder: Path) -> int:
    """Disk bytes already allocated to the files of ``folder`` (a continued build's)."""
    return sum(p.stat().st_blocks * 512 for p in folder.iterdir() if p.is_file())


def check_store_disk(path: Path, folder: Path, n: int, height: int, width: int, index) -> None:
    """Free disk for store ``path`` being built in ``folder``, before its arrays are made."""
    needed = store_bytes(n, height, width, index) - _held_bytes(folder)
    check_free_disk(path.parent, max(needed, 0), f"the patch store {path.name} ({n} patches)")


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


def allocate_arrays(folder: Path, n: int, height: int, width: int) -> dict[str, np.memmap]:
    """New, disk-reserved ``<folder>/<name>.npy`` for every array of :data:`ARRAYS`."""
    return {
        name: _allocated_memmap(folder / f"{name}.npy", ARRAYS[name][0], shape)
        for name, shape in array_shapes(n, height, width).items()
    }


def _write_arrays(
    folder: Path, samples: Iterable[Mapping[str, np.ndarray]], n: int, height: int, width: int
) -> None:
    """Fill ``<folder>/<name>.npy`` for every array of :data:`ARRAYS` with exactly n samples."""
    arrays = allocate_arrays(folder, n, height, width)
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


def write_index_and_meta(folder: Path, n, height, width, index, meta) -> None:
    index.to_csv(folder / "index.csv", index=False)
    full_meta = {
        "n": n,
        "height": height,
        "width": width,
        "bands": list(TML_BAND_NAMES),
        "sar_bands": list(S1_BAND_NAMES),
        "sar_factor": SAR_FACTOR,
        "store_format": STORE_FORMAT,
        **(meta or {}),
    }
    (folder / "meta.json").write_text(json.dumps(full_meta, indent=2))


def fill_patch_store(
    folder: Path,
    samples: Iterable[Mapping[str, np.ndarray]],
    n: int,
    height: int,
    width: int,
    index: pd.DataFrame,
    meta: Mapping[str, Any] | None = None,
    path: Path | None = None,
) -> None:
    """Write the files of a store (arrays, ``index.csv``, ``meta.json``) into an empty folder
    (``path``: the store it becomes, named in the free-disk error)."""
    check_store_disk(path or folder, folder, n, height, width, index)
    _write_arrays(folder, samples, n, height, width)
    write_index_and_meta(folder, n, height, width, index, meta)


def validate_size(n: int, height: int, width: int, index: pd.DataFrame) -> None:
    if len(index) != n:
        raise ValueError(f"index has {len(index)} rows for {n} patches")
    if height % SAR_FACTOR or width % SAR_FACTOR:
        raise ValueError(f"patch size {height}x{width} is not a multiple of {SAR_FACTOR}")


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
    name there); a failure in any member leaves every store as it was. Too little free disk is
    a :class:`~tml_cloudremoval.data.errors.DataError` before anything is written.
    """
    path = Path(path)
    validate_size(n, height, width, index)
    group = group if group is not None else FolderGroup([member])
    group.write(
        member,
        path,
        lambda folder: fill_patch_store(folder, samples, n, height, width, index, meta, path),
    )
    return path
