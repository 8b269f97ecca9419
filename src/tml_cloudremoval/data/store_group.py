"""Folders replaced together or not at all: the train, val and test stores of one build.

:class:`FolderGroup` writes each member folder into a temporary sibling
(:func:`tml_cloudremoval.atomic.atomic_folder`) under that folder's
:func:`~tml_cloudremoval.atomic.output_lock`, and keeps it there; only when the last member is
complete are all renamed into place (three renames, after all the work). A failure in any
member (a content fault, a full disk, ``Ctrl-C``) removes every temporary folder of the group:
the previous folders all stay as they were. A second run writing one of the folders at the same
time stops with :class:`~tml_cloudremoval.errors.LockedError`.

:func:`tml_cloudremoval.atomic.remove_stale_temporaries` (under the lock) removes what a
killed run (``kill -9``) left next to a folder, and puts back a previous folder that a run
killed between its two renames had moved aside.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path

from tml_cloudremoval.atomic import atomic_folder, output_lock, remove_stale_temporaries
from tml_cloudremoval.data.errors import DataError

__all__ = ["FolderGroup"]

log = logging.getLogger(__name__)


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
        self._failed = False
        self._stack = ExitStack()
        self._mutex = threading.Lock()  # Kedro's async saving may call write from threads
        self._finalizer = weakref.finalize(self, _abandon, self._stack)

    @property
    def pending(self) -> tuple[str, ...]:
        """Members not written yet."""
        return tuple(m for m in self.members if m not in self._written)

    def write(self, member: str, path: str | os.PathLike, fill: Callable[[Path], None]) -> None:
        """Lock ``path``, remove stale temporaries of killed runs, and let ``fill(folder)``
        write the member into an empty temporary folder; after the last member, rename all.

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
                fill(self._stack.enter_context(atomic_folder(path)))
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
