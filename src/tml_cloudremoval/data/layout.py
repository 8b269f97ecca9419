"""THE definition of the SEN12MS-CR file layouts: folder and file naming, patch name parsing.

A triplet is one patch seen three times (:data:`MODALITIES`): Sentinel-1, cloud-free
Sentinel-2 and cloudy Sentinel-2. Two on-disk layouts exist (``detect_layout`` tells them apart):

- official (the TUM download)::

      <root>/ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p30.tif
      <root>/ROIs1158_spring_s2/s2_1/ROIs1158_spring_s2_1_p30.tif
      <root>/ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p30.tif

- flattened (the original DSen2-CR code)::

      <root>/s1/ROIs1158_spring_1_p30.tif
      <root>/s2_cloudFree/ROIs1158_spring_1_p30.tif
      <root>/s2_cloudy/ROIs1158_spring_1_p30.tif

Discovery (:mod:`tml_cloudremoval.data.discovery`) reads these layouts and the sample generator
(:mod:`tml_cloudremoval.data.synthetic.sen12mscr_sample`) writes the official one, both through
the functions here. A ``scene_id`` is ROI, season and scene (``"ROIs1158_spring_1"``), a
``patch`` is ``"p30"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tml_cloudremoval.data.errors import DataError

__all__ = [
    "FLATTENED_FOLDERS",
    "MODALITIES",
    "detect_layout",
    "flattened_folders_present",
    "flattened_name",
    "flattened_paths",
    "layouts_present",
    "match_any_name",
    "match_official_name",
    "official_folders_present",
    "official_glob",
    "official_paths",
    "official_relpaths",
    "parse_patch_name",
    "sort_key",
]

MODALITIES: tuple[str, ...] = ("s1", "s2", "s2_cloudy")
"""The three members of a triplet; ``f"{m}_path"`` is the triplet-table column."""

FLATTENED_FOLDERS: dict[str, tuple[str, ...]] = {
    "s1": ("s1",),
    "s2": ("s2_cloudFree", "s2_cloudfree"),
    "s2_cloudy": ("s2_cloudy",),
}
"""Folder names of the flattened DSen2-CR layout (the first is used for files not found)."""

_OFFICIAL_NAME = {
    m: re.compile(rf"^(?P<rs>.+)_{m}_(?P<scene>\d+)_p(?P<patch>\d+)\.tiff?$", re.IGNORECASE)
    for m in MODALITIES
}
_ANY_NAME = re.compile(
    r"^(?P<rs>.+?)_(?:s1_|s2_cloudy_|s2_)?(?P<scene>\d+)_p(?P<patch>\d+)\.tiff?$", re.IGNORECASE
)


def _patch_number(patch: int | str) -> str:
    return str(patch).lstrip("pP")


def official_relpaths(roi_season: str, scene: int | str, patch: int | str) -> dict[str, str]:
    """Official-layout paths of one triplet relative to the root (POSIX), per modality.

    ``roi_season`` e.g. ``"ROIs1158_spring"``, ``scene`` e.g. ``1``, ``patch`` ``30`` or
    ``"p30"``.
    """
    p = _patch_number(patch)
    return {
        m: f"{roi_season}_{m}/{m}_{scene}/{roi_season}_{m}_{scene}_p{p}.tif" for m in MODALITIES
    }


def official_paths(
    root: str | Path, roi_season: str, scene: int | str, patch: int | str
) -> dict[str, Path]:
    """Where a triplet lives in the official layout: ``{"s1": .., "s2": .., "s2_cloudy": ..}``."""
    root = Path(root)
    return {m: root / rel for m, rel in official_relpaths(roi_season, scene, patch).items()}


def official_glob(modality: str) -> str:
    """Glob pattern (relative to the root) of one modality's files in the official layout."""
    return f"*_{modality}/{modality}_*/*.tif"


def flattened_name(roi_season: str, scene: int | str, patch: int | str) -> str:
    """File name of a triplet in the flattened layout (the same in the three folders)."""
    return f"{roi_season}_{scene}_p{_patch_number(patch)}.tif"


def flattened_paths(
    root: str | Path,
    roi_season: str,
    scene: int | str,
    patch: int | str,
    folders: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Where a triplet lives in the flattened DSen2-CR layout (same file name in 3 folders)."""
    root = Path(root)
    folders = {m: FLATTENED_FOLDERS[m][0] for m in MODALITIES} | dict(folders or {})
    name = flattened_name(roi_season, scene, patch)
    return {m: root / folders[m] / name for m in MODALITIES}


def match_official_name(modality: str, filename: str) -> tuple[str, str, str] | None:
    """``(roi_season, scene, patch number)`` of an official-layout file name, else None."""
    match = _OFFICIAL_NAME[modality].match(filename)
    return (match["rs"], match["scene"], match["patch"]) if match else None


def match_any_name(filename: str) -> tuple[str, str, str] | None:
    """``(roi_season, scene, patch number)`` of an official or flattened file name, else None."""
    match = _ANY_NAME.match(Path(filename).name)
    return (match["rs"], match["scene"], match["patch"]) if match else None


def parse_patch_name(filename: str) -> tuple[str, str]:
    """File name -> ``(scene_id, patch)``, official or flattened naming.

    ``"ROIs1158_spring_s1_1_p30.tif"`` and ``"ROIs1158_spring_1_p30.tif"`` both give
    ``("ROIs1158_spring_1", "p30")``. Raises ``ValueError`` for other names.
    """
    parts = match_any_name(filename)
    if parts is None:
        raise ValueError(
            f"{filename!r} does not follow the SEN12MS-CR naming "
            "<ROIsXXXX_season>[_s1|_s2|_s2_cloudy]_<scene>_p<patch>.tif"
        )
    roi_season, scene, patch = parts
    return f"{roi_season}_{scene}", f"p{patch}"


def sort_key(scene_id: str, patch: str) -> tuple[str, int, int, str, str]:
    """Natural order of triplets: ROI/season, scene number, patch number (p4 before p30)."""
    roi_season, _, scene = scene_id.rpartition("_")
    digits = _patch_number(patch)
    return (
        roi_season,
        int(scene) if scene.isdigit() else -1,
        int(digits) if digits.isdigit() else -1,
        scene_id,
        patch,
    )


def flattened_folders_present(root: Path) -> dict[str, Path]:
    """The flattened-layout folders present under root, per modality."""
    found = {}
    for modality, names in FLATTENED_FOLDERS.items():
        for name in names:
            if (root / name).is_dir():
                found[modality] = root / name
                break
    return found


def official_folders_present(root: Path) -> list[Path]:
    """The official-layout modality folders (``*_s1``, ``*_s2``, ``*_s2_cloudy``) under root."""
    return sorted({p for m in MODALITIES for p in root.glob(f"*_{m}") if p.is_dir()})


def layouts_present(root: str | Path) -> tuple[str, ...]:
    """The layouts whose folders root holds: ``()``, ``("official",)``, ``("flattened",)`` or
    both (a root holding a flattened copy next to the official download)."""
    root = Path(root)
    found = []
    if official_folders_present(root):
        found.append("official")
    if flattened_folders_present(root):
        found.append("flattened")
    return tuple(found)


def detect_layout(root: str | Path) -> str:
    """``"flattened"`` if root holds ``s1/`` (and the S2 folders), ``"official"`` if it holds
    ``*_s1`` / ``*_s2`` / ``*_s2_cloudy`` folders. Raises :class:`DataError` when it holds
    neither, or both (which one to read is the user's choice: ``data.layout``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist or is not a folder")
    present = layouts_present(root)
    if len(present) == 1:
        return present[0]
    if present:
        raise DataError(
            f"{root}: holds both the official layout (<ROI>_<season>_s1/_s2/_s2_cloudy) and the "
            "flattened layout (s1/, s2_cloudFree/, s2_cloudy/); set data.layout=official or "
            "data.layout=flattened to choose one"
        )
    raise DataError(
        f"{root}: no SEN12MS-CR data found: expected folders <ROI>_<season>_s1/_s2/_s2_cloudy "
        "(official layout) or s1/, s2_cloudFree/, s2_cloudy/ (flattened DSen2-CR layout)"
    )
