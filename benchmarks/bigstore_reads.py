"""The store of ``bench_input_bigstore.py``: writing it fast (a tiled random block), dropping it
from the page cache, and the read patterns compared there, each (index, row, col) -> the crops
of cloudy, target, mask and SAR (store dtypes, channels_last) that the input path's reader
returns."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np

CROP, SIZE, FACTOR = 128, 256, 4
BLOCK = 32  # samples per written block (the tiled random content)
ARRAYS = {  # name -> (dtype, sample shape); the PatchStore layout
    "s2_cloudy": (np.uint16, (SIZE, SIZE, 10)),
    "s2": (np.uint16, (SIZE, SIZE, 10)),
    "mask": (np.uint8, (SIZE, SIZE)),
    "s1": (np.float32, (SIZE // FACTOR, SIZE // FACTOR, 2)),
}
SAMPLE_BYTES = sum(np.dtype(d).itemsize * int(np.prod(s)) for d, s in ARRAYS.values())
RECORD_BYTES = -(-SAMPLE_BYTES // 4096) * 4096  # patch-major records, page-aligned

# ---------------------------------------------------------------------------------------------
# The store: writing, evicting, deleting
# ---------------------------------------------------------------------------------------------


def random_block(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """BLOCK samples of every array, values in the real ranges (DN, 0/1, dB)."""
    return {
        "s2_cloudy": rng.integers(0, 10000, (BLOCK, SIZE, SIZE, 10), dtype=np.uint16),
        "s2": rng.integers(0, 10000, (BLOCK, SIZE, SIZE, 10), dtype=np.uint16),
        "mask": rng.integers(0, 2, (BLOCK, SIZE, SIZE), dtype=np.uint8),
        "s1": rng.uniform(-25, 0, (BLOCK, SIZE // FACTOR, SIZE // FACTOR, 2)).astype(np.float32),
    }


def write_stores(folder: Path, n: int, patch_major: bool) -> dict[str, Path]:
    """A PatchStore folder ``row/`` of n patches (and ``patches.bin``, the patch-major layout)."""
    block = random_block(np.random.default_rng(0))
    row = folder / "row"
    row.mkdir(parents=True)
    files = {}
    for name, (dtype, shape) in ARRAYS.items():
        path = row / f"{name}.npy"
        offset = np.lib.format.open_memmap(path, "w+", dtype, (n, *shape)).offset
        with open(path, "r+b") as f:
            f.seek(offset)
            for start in range(0, n, BLOCK):
                f.write(block[name][: min(BLOCK, n - start)].tobytes())
            os.fsync(f.fileno())
        files[name] = path
    (row / "index.csv").write_text("patch\n" + "".join(f"{i}\n" for i in range(n)))
    meta = {"n": n, "height": SIZE, "width": SIZE, "note": "bench_input_bigstore"}
    (row / "meta.json").write_text(json.dumps(meta))
    if patch_major:
        records = np.zeros((BLOCK, RECORD_BYTES), np.uint8)
        for j in range(BLOCK):
            flat = b"".join(block[name][j].tobytes() for name in ARRAYS)
            records[j, : len(flat)] = np.frombuffer(flat, np.uint8)
        path = folder / "patches.bin"
        with open(path, "wb") as f:
            for start in range(0, n, BLOCK):
                f.write(records[: min(BLOCK, n - start)].tobytes())
            os.fsync(f.fileno())
        files["patch_major"] = path
    return files


def evict(paths) -> int:
    """Drop the files from the page cache; returns the bytes still resident (-1: unknown)."""
    gc.collect()  # memory maps of closed stores: mapped pages cannot be dropped
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    if not shutil.which("fincore"):
        return -1
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    return sum(int(v) for v in out.stdout.split()) if out.returncode == 0 else -1


# ---------------------------------------------------------------------------------------------
# Read patterns: (index, row, col) -> (cloudy, target, mask, sar) crops
# ---------------------------------------------------------------------------------------------


class Geometry:
    """Byte ranges of the row-layout files: header offset, bytes per sample and per row."""

    def __init__(self, files: dict[str, Path], n: int):
        self.fds = {name: os.open(files[name], os.O_RDONLY) for name in ARRAYS}
        self.fd_patch = os.open(files["patch_major"], os.O_RDONLY) if "patch_major" in files else -1
        self.offset, self.row_bytes, self.sample_bytes = {}, {}, {}
        for name, (dtype, shape) in ARRAYS.items():
            self.offset[name] = np.load(files[name], mmap_mode="r").offset
            self.row_bytes[name] = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
            self.sample_bytes[name] = self.row_bytes[name] * shape[0]

    def rows(self, name: str, i: int, r: int, whole: bool = False) -> tuple[int, int, int]:
        """(offset, length, first row) of the crop's rows of patch i (or the whole patch)."""
        first, count = (r // FACTOR, CROP // FACTOR) if name == "s1" else (r, CROP)
        if whole:
            first, count = 0, ARRAYS[name][1][0]
        start = self.offset[name] + i * self.sample_bytes[name] + first * self.row_bytes[name]
        return start, count * self.row_bytes[name], first

    def close(self) -> None:
        for fd in [*self.fds.values(), self.fd_patch]:
            if fd >= 0:
                os.close(fd)


def _cut(name: str, buf: bytes, rows: int, r_in: int, c: int) -> np.ndarray:
    """The crop of array ``name`` from ``rows`` whole rows; ``r_in`` its first row in them."""
    dtype, shape = ARRAYS[name]
    block = np.frombuffer(buf, dtype).reshape(rows, *shape[1:])
    k = FACTOR if name == "s1" else 1
    size = CROP // k
    return np.ascontiguousarray(block[r_in : r_in + size, c // k : c // k + size])


def read_mmap(store, geo, i, r, c):
    """The input path's reader, ``sampling.crop_reader`` (memory-map slices): ``store`` is
    :func:`open_store`'s."""
    return store.crop(i, r, c)


def open_store(folder: Path) -> SimpleNamespace:
    """The row layout opened as the input path opens it, with its crop reader."""
    from tml_cloudremoval.data.patch_store import PatchStore
    from tml_cloudremoval.data.sampling import crop_reader

    store = PatchStore.open(folder)
    return SimpleNamespace(store=store, crop=crop_reader(store, CROP, CROP))


def read_pread(store, geo, i, r, c, whole=False):
    out = []
    for name in ("s2_cloudy", "s2", "mask", "s1"):
        start, length, first = geo.rows(name, i, r, whole)
        buf = os.pread(geo.fds[name], length, start)
        row0 = r // FACTOR if name == "s1" else r
        out.append(_cut(name, buf, length // geo.row_bytes[name], row0 - first, c))
    return tuple(out)


def read_patch_major(store, geo, i, r, c):
    buf = memoryview(os.pread(geo.fd_patch, SAMPLE_BYTES, i * RECORD_BYTES))
    out, pos = {}, 0
    for name in ARRAYS:
        length = geo.sample_bytes[name]
        rows = ARRAYS[name][1][0]
        out[name] = _cut(name, buf[pos : pos + length], rows, r // FACTOR if name == "s1" else r, c)
        pos += length
    return out["s2_cloudy"], out["s2"], out["mask"], out["s1"]


def will_need(geo, i, r) -> None:
    """Read-ahead: ask the kernel for the crop rows of patch i, asynchronously."""
    for name in ARRAYS:
        start, length, _ = geo.rows(name, i, r)
        os.posix_fadvise(geo.fds[name], start, length, os.POSIX_FADV_WILLNEED)


PATTERNS = {
    "mmap_crop": read_mmap,
    "pread_rows": read_pread,
    "pread_whole": lambda s, g, i, r, c: read_pread(s, g, i, r, c, whole=True),
    "patch_major": read_patch_major,
}
