"""Which scenes a run cleans, their ids, and the checks made before the first prediction.

- :func:`scene_id` is the naming rule: the optical file name without its optical suffix (and the
  separator before it), or the folder name when nothing else is left: ``T32TMT_2024_s2_cloudy.tif``
  -> ``T32TMT_2024``; ``data/01_raw/tml_scene/s2_cloudy.tif`` -> ``tml_scene``.
- :func:`find_scene_pairs` pairs ``<id><optical_suffix>.tif`` with ``<id><sar_suffix>.tif``.
- :func:`scenes_of` lists the scenes a config asks for (one scene, or a folder of them).
- :func:`check_scenes` reads every header and raises one ``SceneError`` listing every fault.
- :func:`scene_plan` / :func:`scenes_from_plan`: the checked scenes as JSON and back;
  :func:`products_of`: the product files of the run's scenes.
- :func:`target_faults` refuses product paths that are inputs (through symlinks, ``..`` or hard
  links), or the target of two products.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tml_cloudremoval.atomic import same_file
from tml_cloudremoval.errors import SceneError
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.reader import ScenePair, inspect_scene

logger = logging.getLogger(__name__)

TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
_SEPARATORS = "_-. "


@dataclass(frozen=True)
class SceneSource:
    """One scene to clean: its id (names the products), optical file, SAR file (None: none)."""

    scene_id: str
    s2_path: Path
    s1_path: Path | None


def scene_id(s2_path: str | os.PathLike, optical_suffix: str) -> str:
    """The id of the scene in ``s2_path``: its stem without ``optical_suffix`` and the separator
    before it; the parent folder's name when that leaves nothing (see the module docstring)."""
    path = Path(s2_path)
    stem = path.stem
    if optical_suffix and stem.endswith(optical_suffix):
        stem = stem[: len(stem) - len(optical_suffix)]
    stem = stem.rstrip(_SEPARATORS)
    return stem or path.resolve().parent.name


def find_scene_pairs(
    folder: str | os.PathLike, optical_suffix: str, sar_suffix: str | None
) -> list[SceneSource]:
    """Pair optical and SAR files in ``folder``, sorted by file name.

    Every ``<prefix><optical_suffix>.tif`` (or ``.tiff``) is an optical scene, and its SAR is
    ``<prefix><sar_suffix>.tif`` (or ``.tiff``) in the same folder; e.g. with the suffixes
    "s2_cloudy" and "s1": ``T32TMT_2024_s2_cloudy.tif`` + ``T32TMT_2024_s1.tif`` (id
    "T32TMT_2024"). ``sar_suffix`` None: no SAR. Raises ``SceneError`` naming the folder or the
    optical file when the folder holds no scene or a scene has no SAR partner.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SceneError(f"{folder}: scenes folder does not exist")
    pairs: list[SceneSource] = []
    missing: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in TIFF_SUFFIXES or not path.stem.endswith(optical_suffix):
            continue
        prefix = path.stem[: len(path.stem) - len(optical_suffix)]
        sar = None
        if sar_suffix is not None:
            candidates = [folder / f"{prefix}{sar_suffix}{ext}" for ext in TIFF_SUFFIXES]
            sar = next((c for c in candidates if c.is_file()), None)
            if sar is None:
                missing.append(f"{path}: no SAR partner {candidates[0].name} in {folder}")
                continue
        pairs.append(SceneSource(scene_id(path, optical_suffix), path, sar))
    if missing:
        raise SceneError("scene(s) without SAR:\n  " + "\n  ".join(missing))
    if not pairs:
        raise SceneError(
            f"{folder}: no optical scene named <id>{optical_suffix}.tif in this folder"
        )
    return pairs


def scenes_of(config: InferenceConfig) -> list[SceneSource]:
    """The scenes of a run: every pair in ``scenes_dir``, else the one ``s2_path`` + ``s1_path``."""
    if config.scenes_dir:
        return find_scene_pairs(config.scenes_dir, config.optical_suffix, config.sar_suffix)
    s1 = None if config.s1_path is None else Path(config.s1_path)
    s2 = Path(config.s2_path)
    return [SceneSource(scene_id(s2, config.optical_suffix), s2, s1)]


def check_scenes(
    scenes: Sequence[SceneSource], config: InferenceConfig | None = None
) -> list[ScenePair]:
    """Check every scene (headers only); raise one ``SceneError`` listing every fault.

    Faults: unreadable, truncated or missing files, wrong band counts, a missing band or bands on
    inconsistent grids in a product, an L2A product (unless ``config.allow_l2a``), a
    ``config.dn_offset`` contradicting the metadata, SAR that does not overlap its scene, two
    scenes with the same id (they would write the same products). Logs each scene's radiometry.
    """
    config = config or InferenceConfig()
    problems: list[str] = []
    pairs: list[ScenePair] = []
    seen: dict[str, Path] = {}
    for source in scenes:
        if source.scene_id in seen:
            problems.append(
                f"{source.s2_path}: scene id {source.scene_id!r} is also the id of "
                f"{seen[source.scene_id]}"
            )
        seen.setdefault(source.scene_id, source.s2_path)
        pair, faults = inspect_scene(
            source.s2_path, source.s1_path, config.dn_offset, config.allow_l2a
        )
        problems.extend(faults)
        if pair is not None:
            logger.info(
                "%s (%s): %s",
                source.scene_id,
                pair.optical.band_source,
                pair.optical.radiometry.reason,
            )
            pairs.append(pair)
    if problems:
        raise SceneError(
            f"{len(problems)} fault(s) in the input checks of {len(scenes)} scene(s); nothing "
            "was predicted:\n  " + "\n  ".join(problems)
        )
    return pairs


def target_faults(
    targets: Mapping[str, str | os.PathLike], sources: Iterable[str | os.PathLike]
) -> list[str]:
    """Faults of product paths ({name: target}) against the input files of the run.

    A target may not be an input, nor the target of another product, nor an existing folder;
    each fault names the target and the input (or product) it clashes with.
    """
    sources = [Path(s) for s in sources]
    faults: list[str] = []
    seen: list[tuple[str, Path]] = []
    for name, target in targets.items():
        target = Path(target)
        faults += [
            f"{target}: product {name!r} would overwrite the input file {s}: refusing"
            for s in sources
            if same_file(target, s)
        ]
        faults += [
            f"{target}: product {name!r} and product {other!r} have the same path"
            for other, path in seen
            if same_file(target, path)
        ]
        if target.exists() and not target.is_file():
            faults.append(f"{target}: product {name!r} path exists and is not a file")
        seen.append((name, target))
    return faults


def refuse_targets(
    targets: Mapping[str, str | os.PathLike], sources: Iterable[str | os.PathLike]
) -> None:
    """Raise one ``SceneError`` listing every :func:`target_faults` fault (before any work)."""
    faults = target_faults(targets, sources)
    if faults:
        raise SceneError(
            f"{len(faults)} fault(s) in the output paths; nothing was written:\n  "
            + "\n  ".join(faults)
        )


def _json_number(value: float | None) -> float | str | None:
    """NaN / inf as text: JSON has no literal for them."""
    return value if value is None or math.isfinite(value) else str(value)


def scene_plan(scenes: Sequence[SceneSource], pairs: Sequence[ScenePair]) -> dict[str, Any]:
    """The checked scenes of a run as JSON: {"scenes": [{scene_id, s2_path, s1_path, height,
    width, bands_from, crs, nodata}]}."""
    entries = []
    for source, pair in zip(scenes, pairs, strict=True):
        info = pair.optical
        entries.append(
            {
                "scene_id": source.scene_id,
                "s2_path": str(source.s2_path),
                "s1_path": None if source.s1_path is None else str(source.s1_path),
                "height": info.height,
                "width": info.width,
                "bands_from": info.band_source,
                "crs": None if info.crs is None else info.crs.to_string(),
                "nodata": _json_number(info.nodata),
                "radiometry": info.radiometry.as_json(),
            }
        )
    return {"scenes": entries}


def scenes_from_plan(plan: Mapping[str, Any]) -> list[SceneSource]:
    """The scenes of a :func:`scene_plan` (to check again before predicting)."""
    return [
        SceneSource(s["scene_id"], Path(s["s2_path"]), s["s1_path"] and Path(s["s1_path"]))
        for s in plan["scenes"]
    ]


def products_of(scenes: Sequence[SceneSource], products: Mapping[str, Any]) -> dict[str, Path]:
    """{scene_id: product path} of the run's scenes from a loaded product folder ({scene_id:
    loader with a ``path``}); ``SceneError`` naming every scene whose product is missing."""
    missing = [s.scene_id for s in scenes if s.scene_id not in products]
    if missing:
        raise SceneError(f"no product for scene(s) {missing}; the folder holds {sorted(products)}")
    return {s.scene_id: Path(products[s.scene_id].path) for s in scenes}
