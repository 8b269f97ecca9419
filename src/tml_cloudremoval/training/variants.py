"""Ablation variants: named overrides of ``params:model`` / ``params:training``, validated.

``params:ablation`` (``conf/base/parameters_ablation.yml``) names each variant and what it
changes, e.g. ``no_sar: {model: {include_sar: false}}``; a variant's settings are the run's
``model`` and ``training`` sections with its overrides merged key by key on top. A variant set
to ``null`` is left out (so an environment can drop a variant of ``conf/base``: parameters are
soft-merged, key by key). Everything is checked before any work: an unknown or ill-typed override
is a ``ConfigError`` naming ``ablation.variants.<name>.<section>.<key>`` (with the closest valid
key), as the other sections' errors name ``section.key``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tml_cloudremoval.config import ConfigError, bounds, from_params, unknown_key_message
from tml_cloudremoval.training.config import ModelConfig, TrainingConfig, load_configs

VARIANT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
"""A variant name: a letter, then letters, digits or ``_`` (it becomes a Kedro namespace and a
folder name, so no dots, spaces or slashes)."""

OVERRIDABLE = {"model": ModelConfig, "training": TrainingConfig}
"""The sections a variant may override and their config classes."""

DEFAULT_VARIANTS: dict[str, Any] = {
    "reference": {},
    "no_sar": {"model": {"include_sar": False}},
    "sar_bilinear": {"model": {"sar_upsampling": "bilinear"}},
    "l1": {"training": {"loss": "l1"}},
    "tail_he_uniform": {"model": {"tail_init": "he_uniform"}},
    "aleatoric": {"model": {"uncertainty": "aleatoric"}},
}
"""The variants of conf/base/parameters_ablation.yml (a test proves they agree)."""


def _override_faults(name: str, overrides: Any) -> list[str]:
    """Faults of one variant, each naming ``variants.<name>...`` (``from_params`` adds the
    ``ablation.`` in front)."""
    where = f"variants.{name}"
    if not VARIANT_NAME.match(str(name)):
        return [f"{where}: a variant name is a letter then letters, digits or _ , got {name!r}"]
    if overrides is None:
        return []
    if not isinstance(overrides, Mapping):
        return [f"{where}: expected a mapping of model/training overrides, got {overrides!r}"]
    faults = [
        unknown_key_message(f"ablation.{where}", key, list(OVERRIDABLE)).removeprefix("ablation.")
        for key in overrides
        if key not in OVERRIDABLE
    ]
    for section, cls in OVERRIDABLE.items():
        try:
            from_params(cls, overrides.get(section), f"ablation.{where}.{section}")
        except ConfigError as exc:
            # from_params of the ablation section puts "ablation." before each fault it returns
            text = str(exc).removeprefix("invalid parameters: ").removeprefix("ablation.")
            faults.append(text)
    return faults


@dataclass(frozen=True)
class AblationConfig:
    """``ablation:`` parameters (documented in conf/base/parameters_ablation.yml).

    ``variants`` maps a name to its overrides ``{model: {...}, training: {...}}`` (``{}``: the
    run's own settings; ``null``: left out). ``n_examples`` test patches (or exactly
    ``example_indices``, store positions) are shown for every variant in ``ablation_figure``.
    """

    variants: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_VARIANTS))
    n_examples: int = field(default=2, metadata=bounds(lo=0))
    example_indices: list[int] | None = None

    def check(self) -> list[str]:
        """Faults of the variants (names, sections, override keys, types, ranges)."""
        faults = [f for name, ov in self.variants.items() for f in _override_faults(name, ov)]
        if not faults and not active_variants(self.variants):
            faults.append("variants: no variant left to run (all are null)")
        return faults


def active_variants(variants: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The variants to run, in their YAML order: those not set to ``null``."""
    return {name: dict(ov or {}) for name, ov in variants.items() if ov is not None}


def variant_names(variants: Any) -> list[str]:
    """Names of the variants to run, leniently: ``[]`` for anything but a mapping, and names
    a Kedro namespace cannot take are left out (the parameter check reports them before any
    node runs). Used where pipelines are registered, which must not fail on bad parameters."""
    if not isinstance(variants, Mapping):
        return []
    return [name for name in active_variants(variants) if VARIANT_NAME.match(str(name))]


def variant_configs(
    name: str,
    overrides: Mapping[str, Any] | None,
    model: Mapping[str, Any] | None,
    training: Mapping[str, Any] | None,
) -> tuple[ModelConfig, TrainingConfig]:
    """The validated settings of variant ``name``: ``model`` and ``training`` (the run's
    sections) with ``overrides`` merged key by key on top.

    Raises ``ConfigError`` naming ``ablation.variants.<name>.<section>.<key>`` for a bad
    override, or the merged sections' faults, labelled with the variant.
    """
    faults = _override_faults(name, overrides)
    if faults:
        raise ConfigError("invalid parameters: " + "; ".join(f"ablation.{f}" for f in faults))
    overrides = overrides or {}
    merged = {
        section: {**(base or {}), **(overrides.get(section) or {})}
        for section, base in (("model", model), ("training", training))
    }
    try:
        return load_configs(merged["model"], merged["training"])
    except ConfigError as exc:
        raise ConfigError(
            f"ablation variant {name!r} (its overrides merged over model/training): {exc}"
        ) from exc
