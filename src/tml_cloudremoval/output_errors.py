"""``OutputWriteError``: a product, checkpoint or model that could not be written for want of
room (disk full, quota, a file-size limit), named with the file and the likely cause.

:func:`write_errors` wraps a write: an ``OSError`` of ENOSPC / EFBIG / EDQUOT, or a GDAL write
failure (``RasterioIOError``, which carries no errno: GDAL prints the cause to stderr), becomes an
``OutputWriteError`` naming the file, the cause found (``ulimit -f`` limit, free bytes of the
device) and the original error. Every other error passes unchanged (a bug keeps its traceback).
The atomic writers around the write (``tml_cloudremoval.atomic``) remove the partial file, so the
previous output stays intact. Used by the inference writer and the training run folder.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rasterio.errors import RasterioIOError

from tml_cloudremoval.errors import ProjectError

ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
"""Write errors that mean: no room for the file."""

LOW_SPACE_BYTES = 64 * 2**20
"""Free bytes under which a failed write is put down to a full device."""


class OutputWriteError(ProjectError):
    """An output could not be written for want of room; the previous output is intact."""


def _file_limit() -> int | None:
    """The largest file this process may write (``ulimit -f``), None without a limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _free_bytes(path: str | os.PathLike) -> tuple[Path, int]:
    """(the nearest existing folder of ``path``, the free bytes of its device)."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder, shutil.disk_usage(folder).free


def _too_large(limit: int) -> str:
    return f"file too large: this process may write files of at most {limit} bytes (ulimit -f)"


def room_left(path: str | os.PathLike) -> str:
    """Why a write to ``path`` may have failed: the file-size limit, the device's free space."""
    limit = _file_limit()
    if limit is not None:
        return _too_large(limit)
    folder, free = _free_bytes(path)
    if free < LOW_SPACE_BYTES:
        return f"no space left on the device of {folder} ({free} bytes free)"
    return "the write failed (disk full, quota or file-size limit, or an I/O error)"


def check_room(path: str | os.PathLike, largest_file: int, total: int) -> None:
    """Refuse, before writing, an output ``path`` whose largest file needs about
    ``largest_file`` bytes and all its files ``total`` bytes when the file-size limit or the
    device's free space cannot hold them (for writers that crash rather than fail on a full
    disk: HDF5 ends the process when it cannot close a file)."""
    limit = _file_limit()
    if limit is not None and largest_file > limit:
        reason = f"{_too_large(limit)}, and a file of it needs about {largest_file} bytes"
    else:
        folder, free = _free_bytes(path)
        if total <= free:
            return
        reason = f"no space left on the device of {folder} ({free} bytes free, {total} needed)"
    raise OutputWriteError(f"{path}: not written: {reason}; the previous version, if any, is kept")


@contextmanager
def write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a failed write of ``path`` for want of room into an :class:`OutputWriteError`."""
    try:
        yield
    except OSError as exc:
        if not (isinstance(exc, RasterioIOError) or exc.errno in ROOM_ERRNOS):
            raise
        raise OutputWriteError(
            f"{path}: not written: {room_left(path)}; the previous version, if any, is kept "
            f"({type(exc).__name__}: {exc})"
        ) from exc
