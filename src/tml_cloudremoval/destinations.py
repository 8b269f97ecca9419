"""Run-level guards on plain paths: what a run writes never overwrites what it reads.

Before any node runs (:mod:`tml_cloudremoval.hooks` gathers the paths from the catalog and the
parameters), every path the run WRITES is checked against every path it READS and every other
path it writes, and every destination must be creatable and writable; versioned inputs must
have the version asked for. Each fault names both paths and the catalog entries or parameter
keys behind them; all faults come in one :class:`~tml_cloudremoval.errors.ProjectError`.
No Kedro import: the checks work on :class:`Place` values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tml_cloudremoval.atomic import is_temporary, same_file
from tml_cloudremoval.errors import ProjectError

# Parameters that name files or folders a pipeline READS, by section: they count when the run
# has ``params:<section>`` as an input (the sample_data pipeline writes data.root's default
# folder, but does not read it). tests/test_destinations.py checks they are config fields.
INPUT_PATH_PARAMETERS: dict[str, tuple[str, ...]] = {
    "data": ("root", "file_list"),
    "inference": ("s2_path", "s1_path", "scenes_dir"),
}


class DestinationError(ProjectError):
    """A run would overwrite its input or another output, or cannot write where it must."""


@dataclass(frozen=True)
class Place:
    """A path of a run and what the user knows it by.

    ``name``: e.g. ``catalog entry cloudfree_scenes`` or ``parameter inference.s2_path``;
    ``path``: absolute (relative paths are taken from the project root).
    """

    name: str
    path: Path

    def __str__(self) -> str:
        return f"{self.name} ({self.path})"


def place(name: str, path: str | os.PathLike, root: str | os.PathLike) -> Place:
    """A :class:`Place` with ``path`` made absolute against ``root`` (``..`` kept as given)."""
    path = Path(path).expanduser()
    return Place(name, path if path.is_absolute() else Path(root) / path)


def parameter_reads(
    params: Mapping[str, Any], sections: Iterable[str], root: str | os.PathLike
) -> list[Place]:
    """The input paths named in the parameter ``sections`` a run reads (null values skipped)."""
    places = []
    for section in sections:
        values = params.get(section) or {}
        for key in INPUT_PATH_PARAMETERS.get(section, ()):
            if values.get(key):
                places.append(place(f"parameter {section}.{key}", values[key], root))
    return places


def _inside(inner: Path, outer: Path) -> bool:
    """True when ``inner`` lies strictly inside the folder ``outer`` (symlinks, ``..`` resolved)."""
    inner, outer = inner.resolve(), outer.resolve()
    return inner != outer and inner.is_relative_to(outer)


def _clash(output: Place, other: Place, role: str) -> str | None:
    """Why writing ``output`` harms ``other`` (an input or another output), or None."""
    if same_file(output.path, other.path):
        return f"output {output} is the same path as {role} {other}"
    if _inside(other.path, output.path):
        return f"{role} {other} lies inside output {output}"
    if _inside(output.path, other.path):
        return f"output {output} would be written inside {role} {other}"
    return None


def overlap_faults(writes: list[Place], reads: list[Place]) -> list[str]:
    """Every output that is, contains or lies inside an input or another output.

    Writing into an input folder, or replacing a folder an input lies in, destroys data as
    surely as writing onto the input itself; so does one output landing in another.
    """
    faults = []
    for i, output in enumerate(writes):
        for other in writes[i + 1 :]:
            faults.append(_clash(output, other, "output"))
        for source in reads:
            faults.append(_clash(output, source, "input"))
    return [fault for fault in faults if fault]


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor)


def destination_fault(output: Place) -> str | None:
    """Why ``output`` cannot be written (its folder not creatable or not writable), or None.

    An existing folder must be writable (products are written into it); a file is replaced
    through a temporary sibling, so its folder must be; a missing path needs its closest
    existing ancestor to be a writable folder.
    """
    path = output.path.absolute()
    existing = _nearest_existing(path)
    if existing != path and not existing.is_dir():
        return f"output {output} cannot be created: {existing} is a file, not a folder"
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"output {output} cannot be written: folder {folder} is not writable"
    return None


def saved_versions(folder: Path) -> list[str]:
    """The versions saved in a versioned dataset's ``folder`` (``<folder>/<version>/<name>``)."""
    if not folder.is_dir():
        return []
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.is_dir() and not is_temporary(entry) and (entry / folder.name).exists()
    )


def version_faults(
    requested: Mapping[str, str], versioned: Mapping[str, Path], needed: Iterable[str]
) -> list[str]:
    """Faults of ``--load-versions`` (``requested``: entry -> version) and of versioned inputs.

    ``versioned``: entry -> its folder, for every versioned catalog entry; ``needed``: the
    versioned entries the run loads (its free inputs): each must have a saved version.
    """
    faults = []
    for name, version in requested.items():
        if name not in versioned:
            choices = ", ".join(sorted(versioned)) or "none"
            faults.append(
                f"--load-versions {name}:{version}: {name} is not a versioned catalog entry "
                f"(versioned entries: {choices})"
            )
        elif version not in saved_versions(versioned[name]):
            saved = ", ".join(saved_versions(versioned[name])) or "none yet"
            faults.append(
                f"--load-versions {name}:{version}: no such version in {versioned[name]} "
                f"(saved versions: {saved})"
            )
    for name in sorted(set(needed) - set(requested)):
        if name in versioned and not saved_versions(versioned[name]):
            faults.append(
                f"input catalog entry {name}: no version saved in {versioned[name]} yet "
                "(run the pipeline that writes it first)"
            )
    return faults


def check_run(faults: list[str]) -> None:
    """Raise one :class:`DestinationError` listing ``faults``, if any, before any work."""
    if faults:
        raise DestinationError(
            "run refused before any node ran (nothing was written): " + "; ".join(faults)
        )
