"""Which scenes a run cleans, their ids, and the checks made before the first prediction.

- :func:`scene_id` is the naming rule: the optical file name without its optical suffix (and the
  separator before it), or the folder name when nothing else is left: ``T32TMT_2024_s2_cloudy.tif``
  -> ``T32TMT_2024``; ``data/01_raw/tml_scene/s2_cloudy.tif`` -> ``tml_scene``.
- :func:`find_scene_pairs` pairs ``<id><optical_suffix>.tif`` with ``<id><sar_suffix>.tif``.
- :func:`scenes_of` lists the scenes a config asks for (one scene, or a folder of them);
  :func:`shard_scenes` those of its ``inference.shard``.
- :func:`check_scenes` reads every header and raises one ``SceneError`` listing every fault;
  :func:`inspect_scenes` / :func:`checked_scenes` give the bad scenes instead
  (``inference.on_bad_scene: skip``).
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
from tml_cloudremoval.inference.shards import listing_digest, select_shard

logger = logging.getLogger(__name__)

TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
_SEPARATORS = "_-. "


@dataclass(frozen=True)
class BadScene:
    """A scene that failed the input checks: its id, optical file and faults (each naming the
    file and what is wrong with it)."""

    scene_id: str
    s2_path: Path
    faults: tuple[str, ...]

    @property
    def fault(self) -> str:
        return "; ".join(self.faults) or f"{self.s2_path}: failed the input checks"

    def as_json(self) -> dict[str, Any]:
        """The entry of the plan's ``failed`` list and the run summary."""
        return {
            "scene_id": self.scene_id,
            "s2_path": str(self.s2_path),
            "stage": "check",
            "fault": self.fault,
            "seconds": 0.0,
        }


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


def list_scene_pairs(
    folder: str | os.PathLike, optical_suffix: str, sar_suffix: str | None
) -> tuple[list[SceneSource], list[BadScene]]:
    """Pair optical and SAR files in ``folder``, sorted by file name: (the pairs, the optical
    files without a SAR partner as :class:`BadScene`).

    Every ``<prefix><optical_suffix>.tif`` (or ``.tiff``) is an optical scene, and its SAR is
    ``<prefix><sar_suffix>.tif`` (or ``.tiff``) in the same folder; e.g. with the suffixes
    "s2_cloudy" and "s1": ``T32TMT_2024_s2_cloudy.tif`` + ``T32TMT_2024_s1.tif`` (id
    "T32TMT_2024"). ``sar_suffix`` None: no SAR. Raises ``SceneError`` naming the folder when it
    does not exist or holds no optical scene.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SceneError(f"{folder}: scenes folder does not exist")
    pairs: list[SceneSource] = []
    missing: list[BadScene] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in TIFF_SUFFIXES or not path.stem.endswith(optical_suffix):
            continue
        prefix = path.stem[: len(path.stem) - len(optical_suffix)]
        sar = None
        if sar_suffix is not None:
            candidates = [folder / f"{prefix}{sar_suffix}{ext}" for ext in TIFF_SUFFIXES]
            sar = next((c for c in candidates if c.is_file()), None)
            if sar is None:
                fault = f"{path}: no SAR partner {candidates[0].name} in {folder}"
                missing.append(BadScene(scene_id(path, optical_suffix), path, (fault,)))
                continue
        pairs.append(SceneSource(scene_id(path, optical_suffix), path, sar))
    if not pairs and not missing:
        raise SceneError(
            f"{folder}: no optical scene named <id>{optical_suffix}.tif in this folder"
        )
    return pairs, missing


def refuse_bad(bad: Sequence[BadScene]) -> None:
    """Raise one ``SceneError`` listing the scenes without SAR among ``bad`` (if any)."""
    if bad:
        raise SceneError(
            "scene(s) without SAR:\n  " + "\n  ".join(f for b in bad for f in b.faults)
        )


def find_scene_pairs(
    folder: str | os.PathLike, optical_suffix: str, sar_suffix: str | None
) -> list[SceneSource]:
    """:func:`list_scene_pairs` that raises one ``SceneError`` naming every optical file
    without a SAR partner."""
    pairs, missing = list_scene_pairs(folder, optical_suffix, sar_suffix)
    refuse_bad(missing)
    return pairs


def scenes_of(config: InferenceConfig) -> list[SceneSource]:
    """The scenes of a run: every pair in ``scenes_dir``, else the one ``s2_path`` + ``s1_path``
    (all of them, whatever ``config.shard``; ``SceneError`` for scenes without SAR)."""
    pairs, missing = _listed(config)
    refuse_bad(missing)
    return pairs


def _listed(config: InferenceConfig) -> tuple[list[SceneSource], list[BadScene]]:
    if config.scenes_dir:
        return list_scene_pairs(config.scenes_dir, config.optical_suffix, config.sar_suffix)
    s1 = None if config.s1_path is None else Path(config.s1_path)
    s2 = Path(config.s2_path)
    return [SceneSource(scene_id(s2, config.optical_suffix), s2, s1)], []


def shard_scenes(config: InferenceConfig) -> tuple[list[SceneSource], list[BadScene], str]:
    """The scenes of this run's shard (``config.shard``; :mod:`inference.shards`), those of its
    scenes that have no SAR partner, and the listing's digest (``shards.listing_digest`` of
    every scene id listed). ``on_bad_scene: error`` (and one scene): a scene without SAR is one
    ``SceneError`` naming every such file; ``skip``: it is returned, logged."""
    pairs, missing = _listed(config)
    listed: list[SceneSource | BadScene] = [*pairs, *missing]
    digest = listing_digest(s.scene_id for s in listed)
    chosen = select_shard(listed, config.shard, lambda s: s.scene_id)
    pairs = [s for s in chosen if isinstance(s, SceneSource)]
    missing = [s for s in chosen if isinstance(s, BadScene)]
    if config.bad_scene_policy == "error":
        refuse_bad(missing)
    for bad in missing:
        logger.error("%s: skipped (inference.on_bad_scene: skip): %s", bad.scene_id, bad.fault)
    if config.shard is not None:
        where = config.scenes_dir or config.s2_path
        logger.info("Shard %s: %d of the %d scene(s) of %s (listing %s)", config.shard,
                    len(chosen), len(listed), where, digest)  # fmt: skip
    return pairs, missing, digest


def inspect_scenes(
    scenes: Sequence[SceneSource], config: InferenceConfig | None = None
) -> tuple[list[tuple[SceneSource, ScenePair]], list[BadScene], list[str]]:
    """Check every scene (headers only): (the good scenes with their checked pair, the bad
    scenes with their faults, every fault as :func:`check_scenes` lists it).

    Faults: unreadable, truncated or missing files, wrong band counts, a missing band or bands on
    inconsistent grids in a product, an L2A product (unless ``config.allow_l2a``), a
    ``config.dn_offset`` contradicting the metadata, SAR that does not overlap its scene, two
    scenes with the same id (they would write the same products: both are bad, the fault is
    listed once, at the second). Logs each good scene's radiometry.
    """
    config = config or InferenceConfig()
    problems: list[str] = []
    faults_of: dict[int, list[str]] = {}
    pairs: dict[int, ScenePair] = {}
    seen: dict[str, int] = {}
    for n, source in enumerate(scenes):
        faults_of[n] = []
        if source.scene_id in seen:
            first = seen[source.scene_id]
            fault = (
                f"{source.s2_path}: scene id {source.scene_id!r} is also the id of "
                f"{scenes[first].s2_path}"
            )
            problems.append(fault)
            faults_of[n].append(fault)
            faults_of[first].append(fault)
        seen.setdefault(source.scene_id, n)
        pair, faults = inspect_scene(
            source.s2_path, source.s1_path, config.dn_offset, config.allow_l2a
        )
        problems.extend(faults)
        faults_of[n].extend(faults)
        if pair is not None:
            pairs[n] = pair
    good, bad = [], []
    for n, source in enumerate(scenes):
        if faults_of[n] or n not in pairs:
            bad.append(BadScene(source.scene_id, source.s2_path, tuple(faults_of[n])))
            continue
        info = pairs[n].optical
        logger.info("%s (%s): %s", source.scene_id, info.band_source, info.radiometry.reason)
        good.append((source, pairs[n]))
    return good, bad, problems


def check_scenes(
    scenes: Sequence[SceneSource], config: InferenceConfig | None = None
) -> list[ScenePair]:
    """Check every scene (headers only, :func:`inspect_scenes`); raise one ``SceneError``
    listing every fault; the checked pairs in the order of ``scenes``."""
    good, _bad, problems = inspect_scenes(scenes, config)
    if problems:
        raise SceneError(
            f"{len(problems)} fault(s) in the input checks of {len(scenes)} scene(s); nothing "
            "was predicted:\n  " + "\n  ".join(problems)
        )
    return [pair for _source, pair in good]


def checked_scenes(
    scenes: Sequence[SceneSource], config: InferenceConfig
) -> tuple[list[tuple[SceneSource, ScenePair]], list[BadScene]]:
    """The scenes that pass the checks, by ``config.bad_scene_policy``: ``error``:
    :func:`check_scenes` (one ``SceneError`` listing every fault); ``skip``: the good ones and
    the bad ones (each logged, naming its files and faults)."""
    if config.bad_scene_policy == "error":
        pairs = check_scenes(scenes, config)
        return list(zip(scenes, pairs, strict=True)), []
    good, bad, _problems = inspect_scenes(scenes, config)
    for scene in bad:
        logger.error("%s: skipped (inference.on_bad_scene: skip): %s", scene.scene_id, scene.fault)
    return good, bad


def without_mask(
    checked: Sequence[tuple[SceneSource, ScenePair]], config: InferenceConfig
) -> tuple[list[tuple[SceneSource, ScenePair]], list[BadScene]]:
    """``fill: clouds`` needs a cloud/shadow mask for every scene (``masks.check_fill``):
    ``on_bad_scene: error``: one ``SceneError`` naming every scene without one; ``skip``: (the
    scenes with a mask source, those without as :class:`BadScene`, logged)."""
    from tml_cloudremoval.inference import masks

    if config.bad_scene_policy == "error":
        masks.check_fill([pair for _s, pair in checked], config.fill, config.mask_path)
        return list(checked), []
    if config.fill != "clouds":
        return list(checked), []
    good, bad = [], []
    for source, pair in checked:
        if masks.mask_source(pair.optical, config.mask_path) is not None:
            good.append((source, pair))
            continue
        fault = (
            f"{source.s2_path}: inference.fill: clouds needs a cloud/shadow mask, but neither "
            "the detector (13-band input) nor inference.mask_path gives one"
        )
        logger.error("%s: skipped (inference.on_bad_scene: skip): %s", source.scene_id, fault)
        bad.append(BadScene(source.scene_id, source.s2_path, (fault,)))
    return good, bad


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
