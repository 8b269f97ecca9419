"""Seeded fuzzing of the project's raster readers (the way GDAL tests its drivers).

Each case corrupts a COPY of one file of a triplet (bit flips, truncation, TIFF directory edits,
random spans, rewrites with other band counts, dtypes, nodata tags, NaN or inf) and runs every
reader on it: ``raster.read_header``, ``raster.read_raster``, ``checks.validate_triplets``,
``triplets.read_triplet`` + ``prepare_patch`` and ``inference.reader.inspect_optical`` /
``inspect_sar``. A case passes when each reader returns (a read that passes the content checks
gives finite, well-shaped samples) or raises a ``ProjectError`` naming a file of the triplet,
and no file was written. :func:`run_fuzz` returns the counts and the failures.
"""

from __future__ import annotations

import shutil
import struct
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from tml_cloudremoval.data.checks import validate_triplets
from tml_cloudremoval.data.layout import MODALITIES
from tml_cloudremoval.data.triplets import prepare_patch, read_triplet
from tml_cloudremoval.errors import ProjectError
from tml_cloudremoval.inference.reader import inspect_optical, inspect_sar
from tml_cloudremoval.raster import read_header, read_raster

Triplet = dict[str, Path]


# ---- corruptions: bytes -> bytes, or a rewrite through rasterio ------------------------------


def _bit_flips(data: bytes, rng: np.random.Generator, limit: int | None = None) -> bytes:
    out = bytearray(data)
    span = min(len(out), limit or len(out))
    for _ in range(int(rng.integers(1, 33))):
        pos = int(rng.integers(0, span))
        out[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def _truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def _random_span(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    start = int(rng.integers(0, len(out)))
    size = int(rng.integers(1, 257))
    out[start : start + size] = rng.integers(
        0, 256, min(size, len(out) - start), np.uint8
    ).tobytes()
    return bytes(out)


def _ifd_edit(data: bytes, rng: np.random.Generator) -> bytes:
    """Overwrite the type, count or value of one entry of the first TIFF directory."""
    if len(data) < 16 or data[:2] not in (b"II", b"MM"):
        return _bit_flips(data, rng, 64)
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return _bit_flips(data, rng, 64)
    (n_entries,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    if n_entries == 0 or ifd + 2 + 12 * n_entries > len(data):
        return _bit_flips(data, rng, 64)
    entry = ifd + 2 + 12 * int(rng.integers(0, n_entries))
    field_at = entry + int(rng.choice([2, 4, 8]))  # type, count or value/offset
    width = 2 if field_at == entry + 2 else 4
    value = int(rng.choice([0, 1, 2, 3, 7, 13, 0xFFFF, 0xFFFFFFFF, int(rng.integers(0, 2**31))]))
    out = bytearray(data)
    fmt = order + ("H" if width == 2 else "I")
    out[field_at : field_at + width] = struct.pack(
        fmt, value & (0xFFFF if width == 2 else ~0 & 0xFFFFFFFF)
    )
    return bytes(out)


def _rewrite(path: Path, image: np.ndarray, nodata: float | None = None) -> None:
    """Write ``image`` (H, W, C) as a plain GeoTIFF at ``path`` (no georeferencing)."""
    height, width, count = image.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            height=height,
            width=width,
            count=count,
            dtype=image.dtype,
            nodata=nodata,
        ) as dst:
            dst.write(np.moveaxis(image, -1, 0))


def _pixels(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return np.moveaxis(src.read(), 0, -1)


def _band_count(path: Path, rng: np.random.Generator) -> None:
    image = _pixels(path)
    count = int(rng.integers(1, 16))
    _rewrite(path, image[..., np.arange(count) % image.shape[-1]].copy())


def _nan_inf(path: Path, rng: np.random.Generator) -> None:
    image = _pixels(path).astype(np.float32)
    band = int(rng.integers(0, image.shape[-1]))
    value = float(rng.choice([np.nan, np.inf, -np.inf]))
    if rng.random() < 0.5:
        image[..., band] = value
    else:
        mask = rng.random(image.shape[:2]) < rng.uniform(0.001, 0.5)
        image[mask, band] = value
    _rewrite(path, image)


def _dtype(path: Path, rng: np.random.Generator) -> None:
    image = _pixels(path)
    dtype = rng.choice(["uint8", "int16", "float64", "uint16", "float32", "int32"])
    with np.errstate(invalid="ignore"):  # NaN cast to an integer type: any value will do
        _rewrite(path, image.astype(dtype))


def _nodata_tag(path: Path, rng: np.random.Generator) -> None:
    image = _pixels(path)
    flat = image.reshape(-1)
    _rewrite(path, image, nodata=float(flat[int(rng.integers(0, flat.size))]))


def _values(path: Path, rng: np.random.Generator) -> None:
    """Implausible values: a constant band, huge DN / dB, or sizes off the 40 m grid."""
    image = _pixels(path)
    kind = int(rng.integers(0, 3))
    if kind == 0:
        image[..., int(rng.integers(0, image.shape[-1]))] = image.reshape(-1)[0]
    elif kind == 1:
        big = 50000 if image.dtype == np.uint16 else 1e6
        image.reshape(-1)[int(rng.integers(0, image.size))] = big
    else:
        cut = int(rng.integers(1, 4))
        image = image[:-cut, : image.shape[1] - int(rng.integers(0, 4))].copy()
    _rewrite(path, image)


BYTE_CORRUPTIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "bit_flips": _bit_flips,
    "header_bit_flips": lambda data, rng: _bit_flips(data, rng, 4096),
    "truncate": _truncate,
    "random_span": _random_span,
    "ifd_edit": _ifd_edit,
}
REWRITES: dict[str, Callable[[Path, np.random.Generator], None]] = {
    "band_count": _band_count,
    "nan_inf": _nan_inf,
    "dtype": _dtype,
    "nodata_tag": _nodata_tag,
    "values": _values,
}
KINDS: tuple[str, ...] = (*BYTE_CORRUPTIONS, *REWRITES)


# ---- one case ---------------------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _check_sample(sample: dict[str, np.ndarray], height: int, width: int) -> None:
    """A sample prepared from files that passed the content checks is finite and well shaped."""
    assert sample["s2"].shape == sample["s2_cloudy"].shape == (height, width, 10)
    assert sample["s1"].shape == (height // 4, width // 4, 2)
    assert np.isfinite(sample["s1"]).all(), "prepared SAR holds NaN/inf"
    assert set(np.unique(sample["mask"])) <= {0, 1}


def _readers(triplet: Triplet, modality: str) -> list[tuple[str, Callable[[], object]]]:
    path = triplet[modality]
    row = {f"{m}_path": str(p) for m, p in triplet.items()}

    def prepare() -> None:
        raw = read_triplet(row, check_content=True)
        sample = prepare_patch(raw, source=row["s1_path"])
        _check_sample(sample, *raw["s2"].shape[:2])

    def validate() -> None:
        table = pd.DataFrame([{"scene_id": "x_0", "patch": "p0", **row, "split": "train"}])
        problems = validate_triplets(table)
        assert all(p.path in row.values() for p in problems), problems

    readers = [
        ("read_header", lambda: read_header(path)),
        ("read_raster", lambda: read_raster(path, nodata_to_nan=modality == "s1")),
        ("validate_triplets", validate),
        ("read_triplet+prepare_patch", prepare),
    ]
    if modality == "s1":
        readers.append(("inspect_sar", lambda: inspect_sar(path, inspect_optical(triplet["s2"]))))
    else:
        readers.append(("inspect_optical", lambda: inspect_optical(path)))
    return readers


@dataclass
class FuzzResult:
    cases: int = 0
    calls: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _run_case(triplet: Triplet, modality: str, result: FuzzResult, label: str) -> None:
    folder = triplet[modality].parent.parent
    before = _snapshot(folder)
    names = [str(p) for p in triplet.values()]
    for reader, call in _readers(triplet, modality):
        result.calls += 1
        try:
            call()
            result.outcomes[f"{reader}: read"] += 1
        except ProjectError as exc:
            if not any(name in str(exc) for name in names):
                result.failures.append(f"{label} {reader}: error names no file: {exc}")
            result.outcomes[f"{reader}: {type(exc).__name__}"] += 1
        except Exception as exc:  # the fuzzer records every other exception
            tail = "".join(traceback.format_exception_only(exc)).strip()
            result.failures.append(f"{label} {reader}: {tail}")
    if _snapshot(folder) != before:
        result.failures.append(f"{label}: a reader wrote a file in {folder}")


def _copy_triplet(source: Triplet, folder: Path) -> Triplet:
    """Fresh copies of the triplet's files in ``folder/<modality>/`` (earlier copies removed:
    unlinking files is much cheaper than removing folders on some file systems)."""
    copy = {}
    for modality, path in source.items():
        target = folder / modality / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        for old in target.parent.iterdir():
            old.unlink()
        shutil.copyfile(path, target)
        copy[modality] = target
    return copy


def run_fuzz(sources: list[Triplet], n_cases: int, seed: int, workdir: Path) -> FuzzResult:
    """``n_cases`` seeded cases over the triplets ``sources`` ({modality: path}), each on fresh
    copies under ``workdir``; the source files are never touched."""
    rng = np.random.default_rng(seed)
    result = FuzzResult()
    for case in range(n_cases):
        source = sources[int(rng.integers(0, len(sources)))]
        modality = MODALITIES[int(rng.integers(0, len(MODALITIES)))]
        kind = KINDS[case % len(KINDS)]
        triplet = _copy_triplet(source, workdir / "case")
        path = triplet[modality]
        if kind in BYTE_CORRUPTIONS:
            path.write_bytes(BYTE_CORRUPTIONS[kind](path.read_bytes(), rng))
        else:
            REWRITES[kind](path, rng)
        result.cases += 1
        _run_case(
            triplet, modality, result, f"case {case} ({kind}, {modality}, {source[modality].name})"
        )
    return result
