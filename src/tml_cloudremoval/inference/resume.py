"""Resume (``inference.skip_existing``): is the complete output of a scene already there?

A scene's output is complete when every file of its pass (the cloud-free product, the
uncertainty rasters its model gives, the ``_20m`` siblings of the native layout) exists, each
carries the run facts (``TML_INFERENCE``), the facts of all of them are equal (one pass wrote
them), and the facts' ``settings`` equal what this run would write (:func:`product_settings`:
the model version(s), the size and modification time of each input file, the mask file used,
and every option that changes the pixels or the files). Files are put in place by renaming a
finished temporary (``tml_cloudremoval.atomic``), so a file that exists is whole; a half-written
temporary is hidden and never counts. Any difference is logged and the scene is cleaned again.

A scene whose pass fails (``inference.on_bad_scene: skip``) leaves no product but a failure
record beside its target (``report.failure_record_path``, JSON: scene id, run id, file, fault,
seconds); the run summary reads it, and the next successful pass removes it.

The cloud/shadow masks (``cloud_masks``, made before the pass) resume the same way: a mask file
whose facts hold the same :func:`mask_settings` is not made again (:class:`ResumableProduct`).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.predictors import PREDICTION
from tml_cloudremoval.inference.report import (
    failure_record_path,
    read_run_facts,
    record_failure,
)
from tml_cloudremoval.inference.scene import scene_targets
from tml_cloudremoval.output_errors import OutputWriteError
from tml_cloudremoval.raster import RasterError

SETTINGS_KEYS: tuple[str, ...] = (
    "tile_size",
    "overlap",
    "output_dtype",
    "compress",
    "output_format",
    "output_layout",
    "mask_path",
    "fill",
    "feather_px",
    "sar_method",
    "dn_offset",
    "allow_l2a",
)
"""The ``inference.*`` options that change a product's pixels or file (batch_size, progress,
gdal_cache_mb and the quicklook size do not)."""

logger = logging.getLogger(__name__)


def new_run_id() -> str:
    """A unique id of one run: UTC time to the millisecond plus 4 random hex digits,
    e.g. ``2026-12-01T12.50.00.123Z-1a2b`` (sortable, a file-name part)."""
    now = datetime.now(UTC)
    return f"{now.strftime('%Y-%m-%dT%H.%M.%S')}.{now.microsecond // 1000:03d}Z-" + (
        secrets.token_hex(2)
    )


def file_stamp(path: str | os.PathLike | None) -> list[int] | None:
    """``[bytes, mtime in ns]`` of a file or folder (a ``.SAFE``), None when absent."""
    if path is None:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def product_settings(
    config: InferenceConfig,
    model_id: str | list[str] | None,
    sources: Sequence[str | os.PathLike],
    mask_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """What a scene's products are made of and with (JSON): ``model`` (the version of the
    model, the versions of an ensemble; None for a model never saved), ``inputs`` ({file:
    [bytes, mtime ns]}), ``mask`` (the stamp of the mask file a ``fill: clouds`` pass reads)
    and the options of :data:`SETTINGS_KEYS` (``config`` settled against the model's contract).
    """
    options = {key: getattr(config, key) for key in SETTINGS_KEYS}
    uses_mask = config.fill == "clouds" and mask_file is not None
    return {
        "model": model_id,
        "inputs": {str(p): file_stamp(p) for p in sources},
        "mask": file_stamp(mask_file) if uses_mask else None,
        **options,
    }


def model_id_of(folder: str | os.PathLike | None, versions: Sequence[str] | None) -> Any:
    """The model's identity in :func:`product_settings`: an ensemble's versions, else the name
    of the version folder the model was loaded from (None when never saved)."""
    if versions is not None:
        return list(versions)
    return None if folder is None else Path(folder).name


def _settings_diff(old: Any, new: Mapping[str, Any]) -> str:
    if not isinstance(old, Mapping):
        return "its run facts record no settings (an older version of this pipeline)"
    keys = sorted(set(old) | set(new))
    changed = [
        k if isinstance(new.get(k), Mapping) else f"{k} {old.get(k)!r} -> {new.get(k)!r}"
        for k in keys
        if old.get(k) != new.get(k)
    ]
    return "made with other settings: " + ", ".join(changed)


def complete_output(
    targets: Mapping[str, str | os.PathLike], layout: str, settings: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """(the run facts, "") when the files of ``targets`` ({part: file}) are a complete output
    made with ``settings`` (module docstring), else (None, why not: naming the file)."""
    files = scene_targets(targets, layout)
    facts: dict[str, dict[str, Any]] = {}
    for name, path in files.items():
        if not path.is_file():
            return None, f"{path} does not exist"
        try:
            facts[name] = read_run_facts(path)
        except (RasterError, ValueError) as exc:
            return None, str(exc)
    main = facts[PREDICTION]
    others = [str(files[n]) for n, f in facts.items() if f != main]
    if others:
        return None, f"{', '.join(others)}: written by another run than {files[PREDICTION]}"
    if main.get("settings") != dict(settings):
        return None, f"{files[PREDICTION]}: " + _settings_diff(main.get("settings"), settings)
    return main, ""


def mask_settings(config: InferenceConfig, sources: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """What a scene's cloud/shadow mask is made of and with: its input files' stamps
    ({file: [bytes, mtime ns]}: the optical file, ``inference.mask_path``), ``mask_path``, and
    the file options."""
    return {
        "product": "cloud_mask",
        "inputs": {str(p): file_stamp(p) for p in sources},
        "mask_path": config.mask_path,
        "output_format": config.output_format,
        "compress": config.compress,
    }


def complete_file(path: str | os.PathLike, settings: Mapping[str, Any]) -> bool:
    """Whether ``path`` exists and its run facts' ``settings`` equal ``settings``."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return read_run_facts(path).get("settings") == dict(settings)
    except (RasterError, ValueError):
        return False


class ResumableProduct:
    """A lazy product (``sources``, ``write(path)``) that is not computed when its target
    already holds it (:func:`complete_file` with ``settings``; ``skip``: the
    ``inference.skip_existing`` switch). With ``policy`` ``"skip"`` a failing ``write`` is
    logged and leaves a failure record beside the target (the scene id, ``run_id``, the
    fault), so the product folder's other scenes are still written."""

    def __init__(
        self,
        product: Any,
        settings: Mapping[str, Any],
        skip: bool,
        policy: str = "error",
        *,
        scene_id: str = "",
        run_id: str | None = None,
    ) -> None:
        self.product, self.settings, self.skip = product, dict(settings), skip
        self.policy, self.scene_id, self.run_id = policy, scene_id, run_id

    @property
    def sources(self) -> tuple[Path, ...]:
        return tuple(self.product.sources)

    def write(self, path: str | os.PathLike) -> Any:
        if self.skip and complete_file(path, self.settings):
            logger.info("%s: skipped: complete and made with the same settings", path)
            return None
        try:
            written = self.product.write(path)
        except Exception as exc:
            if self.policy == "error" or isinstance(exc, OutputWriteError):
                raise
            fault = record_failure(path, self.scene_id, self.run_id, self.sources[0], exc)
            logger.error("%s: %s failed, the other scenes go on: %s", self.scene_id, path, fault)
            return None
        failure_record_path(path).unlink(missing_ok=True)
        return written

    def __repr__(self) -> str:
        return f"ResumableProduct({self.product!r})"
