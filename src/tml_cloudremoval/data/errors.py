"""The error of unusable input data (one class, shared by discovery, splits and checks)."""

from __future__ import annotations

from tml_cloudremoval.errors import ProjectError

__all__ = ["DataError"]


class DataError(ProjectError):
    """The dataset as a whole is unusable: empty root, unreadable file list, empty split..."""
