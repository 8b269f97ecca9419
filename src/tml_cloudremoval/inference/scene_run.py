"""The lazy products of one scene, written together by one tiled pass.

The pipeline hands the catalog one lazy product per scene and output: the cloud-free scene
(``cloudfree_scenes``) and, for an aleatoric model or an ensemble, its uncertainty rasters
(``uncertainty_scenes``, ``epistemic_scenes``). Nothing is predicted until the datasets save
them, each to the path the catalog owns (``datasets.product_folder``: inputs refused, stale
temporaries removed, the target locked).

All products of a scene come from one pass of the model (one prediction per tile gives the
result and its uncertainty), so they share a :class:`SceneRun`: each product's ``write(path)``
hands the run its target, and the one that completes the set runs the pass that writes every
file (each atomically), holding the locks of the targets handed over before it. The order in
which Kedro saves the outputs does not matter (threads of ``--async`` included); a plain model
has one product, written at once.

Before the pass, with ``inference.skip_existing``, the run looks at the targets: when they hold
the complete output of this scene made with the same model and settings
(``inference.resume``), nothing is computed. A pass that fails (a read error, a corrupt block)
with ``inference.on_bad_scene: skip`` leaves no product (the writers are atomic) but a failure
record naming the file and the fault (``report.failure_record_path``), and the other scenes go
on; ``error`` (or a full disk, which every other scene would hit too) stops the run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tml_cloudremoval.atomic import output_lock
from tml_cloudremoval.inference.config import InferenceConfig
from tml_cloudremoval.inference.inputs import refuse_targets
from tml_cloudremoval.inference.predictors import PREDICTION, output_parts
from tml_cloudremoval.inference.reader import ScenePair
from tml_cloudremoval.inference.report import failure_record_path, record_failure
from tml_cloudremoval.inference.resume import complete_output, product_settings
from tml_cloudremoval.inference.scene import predict_pair, scene_targets
from tml_cloudremoval.output_errors import OutputWriteError
from tml_cloudremoval.raster import read_raster

logger = logging.getLogger(__name__)

LOCK_WAIT_S = 30.0
"""How long the pass waits for the lock of a target another dataset has just handed over (it
releases it as its save returns)."""


class SceneRun:
    """The pass shared by the products of one scene (module docstring).

    ``models``: one model or an ensemble's members (``versions``: their names); ``mask_file``:
    the scene's mask raster (``cloud_masks``), read when ``fill: clouds``; ``scene_id`` and
    ``run_id`` name the scene and the run in its facts and failure record; ``model_id``: the
    model's identity the resume compares (``resume.model_id_of``).
    """

    def __init__(
        self,
        models: Sequence[Any],
        pair: ScenePair,
        config: InferenceConfig,
        mask_file: str | os.PathLike | None = None,
        versions: Sequence[str] | None = None,
        *,
        scene_id: str | None = None,
        run_id: str | None = None,
        model_id: Any = None,
    ) -> None:
        self.models, self.pair, self.config = list(models), pair, config
        self.mask_file = None if mask_file is None else Path(mask_file)
        self.versions = None if versions is None else list(versions)
        self.scene_id = scene_id or pair.optical.path.stem
        self.run_id, self.model_id = run_id, model_id
        self.parts = output_parts(self.models)
        self._targets: dict[str, Path] = {}
        self._lock = threading.Lock()

    def product(self, part: str) -> SceneProduct:
        """The lazy product of ``part`` (one of :attr:`parts`)."""
        if part not in self.parts:
            raise ValueError(f"the model(s) give {list(self.parts)}, not {part!r}")
        return SceneProduct(self, part)

    def hand_over(self, part: str, path: str | os.PathLike) -> dict[str, Any] | None:
        """Record ``part``'s target; run the pass when it completes the set (its run facts),
        else None (the file is written when the last product arrives)."""
        with self._lock:
            if part in self._targets:
                raise RuntimeError(f"{self}: {part} handed over twice")
            self._targets[part] = Path(path)
            if len(self._targets) < len(self.parts):
                waiting = [p for p in self.parts if p not in self._targets]
                logger.info("%s: %s -> %s, written once %s arrive", self, part, path, waiting)
                return None
            targets = {p: self._targets[p] for p in self.parts}
        return self._run(targets, part)

    def _run(self, targets: dict[str, Path], arriving: str) -> dict[str, Any] | None:
        start = time.perf_counter()
        names = {
            f"{self} {k}": v for k, v in scene_targets(targets, self.config.output_layout).items()
        }
        refuse_targets(names, self.pair.sources)
        with ExitStack() as locks:  # the arriving product's dataset holds its own lock
            for part, path in targets.items():
                if part != arriving:
                    locks.enter_context(output_lock(path, wait_s=LOCK_WAIT_S))
            settings = product_settings(
                self.config, self.model_id, self.pair.sources, self.mask_file
            )
            if self.config.skip_existing:
                facts, why = complete_output(targets, self.config.output_layout, settings)
                if facts is not None:
                    logger.info("%s: skipped: its complete output is there (run %s)",
                                self.scene_id, facts.get("run_id"))  # fmt: skip
                    return facts
                if targets[PREDICTION].exists():
                    logger.info("%s: cleaned again: %s", self.scene_id, why)
            return self._pass(targets, settings, start)

    def _pass(
        self, targets: dict[str, Path], settings: dict[str, Any], start: float
    ) -> dict[str, Any] | None:
        """The pass (mask read, predict_pair); a failure by ``on_bad_scene``: recorded (None)
        or raised."""
        extra = {"run_id": self.run_id, "settings": settings}
        try:
            mask = None
            if self.config.fill == "clouds" and self.mask_file is not None:
                mask = read_raster(self.mask_file)[..., 0]
            facts = predict_pair(
                self.models, self.pair, targets, self.config, start, mask, self.versions, extra
            )
        except Exception as exc:
            if self.config.bad_scene_policy == "error" or isinstance(exc, OutputWriteError):
                raise
            seconds = time.perf_counter() - start
            path = self.pair.optical.path
            fault = record_failure(targets[PREDICTION], self.scene_id, self.run_id, path, exc,
                                   seconds)  # fmt: skip
            logger.error("%s: failed, the other scenes go on (inference.on_bad_scene: skip): %s",
                         self.scene_id, fault)  # fmt: skip
            return None
        failure_record_path(targets[PREDICTION]).unlink(missing_ok=True)
        return facts

    def __repr__(self) -> str:
        return f"SceneRun({self.pair.optical.path.name})"


class SceneProduct:
    """One lazy product of a :class:`SceneRun`: ``sources`` (the scene's input files) and
    ``write(path)`` (see :meth:`SceneRun.hand_over`)."""

    def __init__(self, run: SceneRun, part: str) -> None:
        self.run, self.part = run, part

    @property
    def sources(self) -> tuple[Path, ...]:
        return self.run.pair.sources

    def write(self, path: str | os.PathLike) -> dict[str, Any] | None:
        """Hand ``path`` to the scene's run; the run facts once the pass ran (or was skipped),
        else None (waiting for the other products, or failed)."""
        return self.run.hand_over(self.part, path)

    def __repr__(self) -> str:
        return f"SceneProduct({self.run.pair.optical.path.name}, {self.part})"


class FailedProduct:
    """The lazy cloud-free product of a scene that failed just before its pass (``on_bad_scene:
    skip``: its inputs turned faulty since the plan, or its mask could not be made): writing it
    writes the scene's failure record (``report.failure_record_path``), no product."""

    def __init__(self, scene_id: str, sources: Sequence[Path], fault: str, run_id: str | None):
        self.scene_id, self.sources, self.fault = scene_id, tuple(sources), fault
        self.run_id = run_id

    def write(self, path: str | os.PathLike) -> None:
        record_failure(path, self.scene_id, self.run_id, self.sources[0], self.fault)

    def __repr__(self) -> str:
        return f"FailedProduct({self.scene_id})"


def scene_products(runs: dict[str, SceneRun], part: str) -> dict[str, SceneProduct]:
    """{scene_id: lazy product of ``part``} of the runs that give ``part``."""
    return {sid: run.product(part) for sid, run in runs.items() if part in run.parts}
