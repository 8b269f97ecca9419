"""``ProjectError``: the one base of every error that is a user's mistake, not a bug.

A bad parameter (:class:`~tml_cloudremoval.config.ConfigError`), a bad file
(:class:`~tml_cloudremoval.raster.RasterError`), a bad dataset
(:class:`~tml_cloudremoval.data.errors.DataError`), a busy output (:class:`LockedError`): each
says what is wrong and where in its message. The command line reports a ``ProjectError`` as
that message alone; any other exception is a bug and keeps its traceback. It subclasses
``ValueError`` so callers that caught ``ValueError`` keep working.
"""

from __future__ import annotations


class ProjectError(ValueError):
    """A user's mistake: the message names the file or key and the fault."""


class LockedError(ProjectError):
    """Another run holds the lock of an output (a store, a run folder, a product folder)."""


class SceneError(ProjectError):
    """A scene that cannot be cleaned as asked: its files (missing, no SAR partner, faults found
    in the input checks) or settings that do not fit the scene or the model."""
