"""Atomic writes: the one way this project puts a file or a folder in place.

A product is written under a temporary sibling name (same folder, so the final rename never
crosses a file system) and renamed onto its path only when complete. A reader never sees a
half-written file; a run killed at any moment (``kill -9`` included) leaves the previous
version untouched and at most a hidden ``.<name>.<pid>.<random>.tmp`` sibling behind.

- :func:`atomic_file` yields the temporary path of one file (the caller's writer creates it).
- :func:`atomic_folder` yields a temporary folder; the old folder is replaced as a whole.
- :func:`resumable_folder` the same, but the temporary folder has a fixed name and outlives a
  killed run, so the next run with the same key continues it (a long store build).
- :func:`write_text_atomic` and :func:`write_json_atomic` for small text files.
- :func:`temporary_sibling` names the temporary path (one naming scheme for the project).
- :func:`output_lock` keeps two runs from writing one output at once.
- :func:`remove_stale_temporaries` removes the temporary siblings of dead runs in a folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tml_cloudremoval.errors import LockedError

TMP_MARK = ".tmp"
"""Every temporary sibling is ``.<name>.<pid>.<12 hex>.tmp<suffix>``."""

_OWNER = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{12}" + re.escape(TMP_MARK))
"""The pid of the run that made a temporary sibling (see :func:`temporary_sibling`)."""

log = logging.getLogger(__name__)


def temporary_sibling(path: str | os.PathLike, suffix: str = "") -> Path:
    """A unique, hidden name next to ``path`` (nothing is created).

    ``suffix`` keeps an extension a writer insists on (Keras saves only to ``*.keras``). The
    caller's writer creates the file with the usual permissions (``tempfile.mkstemp`` would make
    it 0600 and ``os.replace`` would carry that over to the product).
    """
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{TMP_MARK}{suffix}"


def is_temporary(path: str | os.PathLike) -> bool:
    """True for a name made by :func:`temporary_sibling` (a leftover of a killed run)."""
    name = Path(path).name
    return name.startswith(".") and TMP_MARK in name


def temporary_owner(path: str | os.PathLike) -> int | None:
    """The pid of the run that made temporary sibling ``path`` (None: not one of ours)."""
    match = _OWNER.match(Path(path).name)
    return int(match.group(1)) if match and is_temporary(path) else None


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (one of another user included)."""
    if pid <= 0:
        return True  # 0 / negative would signal a process group: never "dead"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size_of(path: Path) -> int:
    """Bytes of a file, or of every file below a folder."""
    if not path.is_dir():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())


_TARGET = re.compile(r"^\.(.+)\.\d+\.[0-9a-f]{12}" + re.escape(TMP_MARK))


def temporary_target(path: str | os.PathLike) -> Path | None:
    """The path a temporary sibling stands in for (None: not one of ours)."""
    match = _TARGET.match(Path(path).name)
    return Path(path).parent / match.group(1) if match and is_temporary(path) else None


def _remove(path: Path) -> int | None:
    """Remove a file or folder; its size in bytes, or None where another run removed it first."""
    try:
        size = _size_of(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return None
    return size


def remove_stale_temporaries(
    folder: str | os.PathLike, of: str | os.PathLike | None = None
) -> list[Path]:
    """Remove the temporary siblings in ``folder`` that runs which ended left behind.

    Without ``of``: those whose run is dead (the pid in the name no longer exists); a live
    process's are never touched. With ``of`` (the caller holds ``output_lock(of)``, so no run is
    writing it): every temporary sibling of ``of``. A previous version that a killed run had
    moved aside (``*.tmp.old``) while its product is missing is put back, not removed. Each is
    logged (removed ones with their size). Returns the paths removed or put back.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    done = []
    for p in sorted(folder.iterdir()):
        target, pid = temporary_target(p), temporary_owner(p)
        if target is None or (of is not None and target != Path(of)):
            continue
        if of is None and (pid is None or pid_alive(pid)):
            continue
        if p.name.endswith(f"{TMP_MARK}.old") and not target.exists():
            p.rename(target)
            log.warning("%s: put back the previous version run %s had moved aside", target, pid)
        elif (size := _remove(p)) is not None:
            log.info("removed %s (%d bytes), left by run %s that has ended", p, size, pid)
        else:
            continue
        done.append(p)
    return done


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: equal resolved paths (symlinks, ``..``) or, for
    files that exist, the same inode (hard links). Writers use it to refuse overwriting an input."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename) to disk where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Write ``path`` atomically: yield a temporary sibling, rename it onto ``path`` on success.

    On any exception (``KeyboardInterrupt`` included) the temporary file is removed and
    ``path`` keeps its old content. The parent folder is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, suffix)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{path}: the writer created no file at {tmp}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_tree(path: str | os.PathLike) -> None:
    """Flush every file below ``path``, then the folders, to disk."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(root)


@contextmanager
def atomic_folder(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Write the folder ``path`` atomically: yield an empty temporary sibling folder.

    On success an existing ``path`` is moved aside, the new folder renamed into place and the
    old one removed; on failure the temporary folder is removed and ``path`` is untouched.
    ``durable``: flush the new folder's files to disk before the rename (a power cut then never
    shows a folder whose files are still only in the page cache; costs a sync of its size).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        if durable:
            fsync_tree(tmp)
        _put_in_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)


def _put_in_place(tmp: Path, path: Path) -> None:
    """Rename the finished folder ``tmp`` onto ``path``; an existing ``path`` is moved aside
    first and removed after (a run killed in between is repaired by
    :func:`remove_stale_temporaries`)."""
    if path.exists():
        old = temporary_sibling(path, ".old")
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(path)


RESUME_KEY = ".resume_key"
"""The file in a :func:`resumable_folder` holding the key of the run that started it."""


def resumable_sibling(path: str | os.PathLike) -> Path:
    """The fixed hidden name ``.<name>.partial.tmp`` of the resumable build folder of ``path``
    (no pid in it: the next run finds it; :func:`remove_stale_temporaries` leaves it alone)."""
    path = Path(path)
    return path.parent / f".{path.name}.partial{TMP_MARK}"


@contextmanager
def resumable_folder(path: str | os.PathLike, key: str | None) -> Iterator[Path]:
    """Write the folder ``path`` atomically in a temporary folder a killed run leaves behind.

    Yields :func:`resumable_sibling` of ``path``: as a run with the same ``key`` (a text naming
    the inputs and settings) left it, else emptied (logged) and new. The caller must hold
    :func:`output_lock` of ``path`` and writes its own progress into the folder; names starting
    with ``.`` there are bookkeeping, removed before the folder is renamed onto ``path`` (an
    existing ``path`` stays intact until then). On an ``Exception`` the folder is removed; on
    ``kill -9``, ``KeyboardInterrupt`` or ``SystemExit`` it is kept for the next run (with
    ``key`` None it is never continued, so it is removed too).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, kept = resumable_sibling(path), None
    if tmp.is_dir():
        kept = (tmp / RESUME_KEY).read_text() if (tmp / RESUME_KEY).is_file() else ""
        if key is None or kept != key:
            log.warning(
                "%s: the build kept in %s had other inputs or settings: starting over",
                path,
                tmp.name,
            )
            shutil.rmtree(tmp)
        else:
            log.info("%s: continuing the build kept in %s", path, tmp.name)
    elif tmp.exists():
        tmp.unlink()
    tmp.mkdir(exist_ok=True)
    try:
        if key is not None and kept != key:
            write_text_atomic(tmp / RESUME_KEY, key)
        yield tmp
        for entry in tmp.iterdir():
            if entry.name.startswith("."):
                _remove(entry)
        _put_in_place(tmp, path)
    except BaseException as exc:
        if key is None or isinstance(exc, Exception):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log.warning(
                "%s: interrupted; the next run with the same inputs continues %s", path, tmp.name
            )
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, flushed to disk. Returns the path."""
    path = Path(path)
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return path


def _json_default(value: Any) -> Any:
    """numpy scalars and paths as plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON (numpy scalars and paths allowed) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, default=_json_default) + "\n")


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of output ``path``: the hidden sibling ``.<name>.lock``."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextmanager
def output_lock(path: str | os.PathLike, wait_s: float = 0.0) -> Iterator[Path]:
    """Hold the exclusive lock of output ``path`` (a store, a run folder, a product) while
    writing it, so a second run on the same output stops with a clear message instead of
    mixing two results.

    The lock is an ``flock`` on :func:`lock_path`: the OS releases it when the holder exits, a
    ``kill -9`` included, so a dead run never leaves a stale lock. ``wait_s``: how long to wait
    for another holder before raising :class:`~tml_cloudremoval.errors.LockedError`.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise LockedError(
                        f"{path}: another run (pid {holder}) is writing it; wait for that run "
                        "to finish, or write to another output"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield Path(path)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
