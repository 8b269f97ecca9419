"""Folders replaced together or not at all: the train, val and test stores of one build.

:class:`FolderGroup` writes each member folder into a temporary sibling
(:func:`tml_cloudremoval.atomic.resumable_folder`) under that folder's
:func:`~tml_cloudremoval.atomic.output_lock`, and keeps it there; only when the last member is
complete are all renamed into place (three renames, after all the work). A failure in any
member (a content fault, a full disk) removes every temporary folder of the group: the previous
folders all stay as they were. A run killed (``kill -9``, ``Ctrl-C``) keeps its temporary
folders: the next run with the same ``resume_key`` continues them, any other starts over. A
second run writing one of the folders at the same time stops with
:class:`~tml_cloudremoval.errors.LockedError`.

Free disk is checked before any work: :meth:`FolderGroup.expect` announces each member's bytes,
the first :meth:`FolderGroup.write` of a fresh build checks their sum (:func:`check_free_disk`).

:func:`tml_cloudremoval.atomic.remove_stale_temporaries` (under the lock) removes what a
killed run left next to a folder, and puts back a previous folder that a run killed between its
two renames had moved aside.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path

from tml_cloudremoval.atomic import (
    output_lock,
    remove_stale_temporaries,
    resumable_folder,
    resumable_sibling,
)
from tml_cloudremoval.data.errors import DataError

__all__ = ["FolderGroup", "check_free_disk", "human_bytes"]

log = logging.getLogger(__name__)


def human_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary units, 1 decimal)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def check_free_disk(folder: str | os.PathLike, needed: int, what: str = "the patch store") -> None:
    """Raise :class:`DataError` naming ``folder`` when its file system has fewer than ``needed``
    bytes free (``shutil.disk_usage``; the folder or its nearest existing parent)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise DataError(
            f"{folder}: not enough free disk for {what}: it needs {human_bytes(needed)} "
            f"({needed:,} bytes), the file system has {human_bytes(free)} ({free:,} bytes) free; "
            "free some space or write the store elsewhere (its catalog filepath)"
        )


def _abandon(stack: ExitStack) -> None:
    """Finalizer of a group never completed: remove its temporary folders, release its locks."""
    error = DataError("the group of folders was abandoned before every member was written")
    stack.__exit__(DataError, error, None)


class FolderGroup:
    """Member folders (``members``: names, e.g. the splits) replaced together or not at all.

    :meth:`write` fills one member's folder through a callback; the last :meth:`write` puts
    every member in place. A group of one member is a plain locked atomic folder write.
    """

    def __init__(self, members: Iterable[str]) -> None:
        self.members = tuple(members)
        if not self.members or len(set(self.members)) != len(self.members):
            raise ValueError(f"a folder group needs distinct member names, got {self.members}")
        self._written: dict[str, Path] = {}
        self._expected: dict[str, int] = {}
        self._failed = False
        self._stack = ExitStack()
        self._mutex = threading.Lock()  # Kedro's async saving may call write from threads
        self._finalizer = weakref.finalize(self, _abandon, self._stack)

    @property
    def pending(self) -> tuple[str, ...]:
        """Members not written yet."""
        return tuple(m for m in self.members if m not in self._written)

    def expect(self, member: str, nbytes: int) -> None:
        """Announce that ``member`` will take ``nbytes`` of disk (checked at the first write)."""
        if member not in self.members:
            raise ValueError(f"{member!r} is not a member of {self.members}")
        self._expected[member] = int(nbytes)

    def _check_disk(self, path: Path) -> None:
        """Before the first member of a fresh build: every announced byte against the free
        disk of ``path``'s folder (the members' folders are taken to share a file system, as
        the catalog's do). A continued build skips this: its kept folders already hold their
        blocks, and each store checks its own remaining bytes when it starts."""
        if self._written or not self._expected or resumable_sibling(path).exists():
            return
        check_free_disk(
            path.parent,
            sum(self._expected.values()),
            f"the {len(self.members)} stores ({', '.join(self.members)})",
        )

    def write(
        self,
        member: str,
        path: str | os.PathLike,
        fill: Callable[[Path], None],
        resume_key: str | None = None,
    ) -> None:
        """Lock ``path``, remove stale temporaries of killed runs, and let ``fill(folder)``
        write the member into its temporary folder; after the last member, rename all.

        ``resume_key`` (the inputs and settings, as text): a folder a killed run with the same
        key left is handed to ``fill`` as it was (``fill`` continues it); None: always empty.
        Any failure aborts the whole group (every temporary folder removed, every lock
        released, no member replaced) and is raised; an ``OSError`` (disk full, file too
        large, read-only folder) becomes a :class:`DataError` naming the folder.
        """
        path = Path(path)
        with self._mutex:
            if self._failed:
                raise DataError(f"{path}: not written: another folder of its group failed")
            if member not in self.pending:
                raise ValueError(f"{member!r} is not a pending member of {self.members}")
            try:
                self._stack.enter_context(output_lock(path))
                remove_stale_temporaries(path.parent, of=path)
                self._check_disk(path)
                fill(self._stack.enter_context(resumable_folder(path, resume_key)))
            except OSError as exc:
                error = DataError(
                    f"{path}: writing failed ({exc.strerror or exc}); nothing was replaced, "
                    "the previous version is intact"
                )
                self._abort(error)
                raise error from exc
            except BaseException as exc:
                self._abort(exc)
                raise
            self._written[member] = path
            if not self.pending:
                self._finalizer.detach()
                self._stack.close()  # renames every member into place, releases the locks

    def _abort(self, exc: BaseException) -> None:
        self._finalizer.detach()
        self._failed = True  # nothing more may be written
        self._stack.__exit__(type(exc), exc, exc.__traceback__)
