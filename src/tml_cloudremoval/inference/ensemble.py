"""``inference.ensemble``: several saved model versions, averaged; their spread is the
epistemic uncertainty.

The members are versions of the catalog entry ``dsen2cr_model``: folders
``<root>/<version>/`` of the ModelDataset (``data/06_models/dsen2cr.keras/<version>/``, each with
``dsen2cr.keras`` and ``contract.json``). ``root`` is the parent of the version folder of the
model the catalog loaded (the latest, or the one ``--load-versions dsen2cr_model:<v>`` names), so
the catalog stays the one place that says where models live and ``--load-versions`` keeps its
meaning: with ``ensemble: null`` it picks the model; with an ensemble the loaded version is
reused when it is a member. ``ensemble``: ``"all"`` (every saved version, oldest first) or a
list of versions (in that order). The first member's contract settles the preprocessing; every
other member's must agree with it (bands, optical and SAR normalisation, SAR method and factor,
radiometry), else a :class:`~tml_cloudremoval.models.contract.ContractError` naming the version.
Contracts are read (plain JSON, no TensorFlow) before any model is loaded.

No Kedro here: the node hands :meth:`Ensemble.load` the loader of one version
(``datasets.model_dataset.load_model_version``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tml_cloudremoval.config import ConfigError
from tml_cloudremoval.inference.predictors import is_aleatoric, uses_sar
from tml_cloudremoval.models.contract import (
    CONTRACT_FILE,
    ContractError,
    ModelContract,
    TrainedModel,
    contract_to_dict,
    read_contract,
    unknown_contract,
)

logger = logging.getLogger(__name__)

PREPROCESSING = ("known", "bands", "optical", "sar", "radiometry")
"""The contract keys every member must share with the first (what its inputs mean)."""


def versions_root(model: TrainedModel) -> Path:
    """The folder of saved versions that holds ``model`` (its version folder's parent)."""
    if model.folder is None:
        raise ConfigError(
            "inference.ensemble needs the saved versions of dsen2cr_model, but the model was "
            "not loaded from a version folder (set inference.ensemble: null)"
        )
    return Path(model.folder).parent


def saved_versions(root: Path) -> list[str]:
    """Versions saved under ``root`` (a folder holding ``<root.name>``), sorted: timestamps
    sort oldest first. Hidden folders (temporaries of killed saves) are not versions."""
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if not p.name.startswith(".") and (p / root.name).is_file()
    )


def member_versions(root: Path, spec: str | Sequence[str]) -> list[str]:
    """The members' versions for ``inference.ensemble`` (``"all"`` or a list): every one must
    be saved under ``root``, at least two; ``ConfigError`` naming the key and the folder."""
    saved = saved_versions(root)
    versions = saved if spec == "all" else list(spec)
    missing = [v for v in versions if v not in saved]
    if missing:
        raise ConfigError(
            f"inference.ensemble: no saved version {', '.join(missing)} in {root} (saved "
            f"versions: {', '.join(saved) or 'none'})"
        )
    if len(versions) < 2:
        raise ConfigError(
            f"inference.ensemble: an ensemble needs at least 2 saved versions, {root} has "
            f"{len(versions)} ({', '.join(versions) or 'none'})"
        )
    return versions


def member_contract(root: Path, version: str) -> ModelContract:
    """The contract of one saved version (a version saved without one: unknown)."""
    path = root / version / CONTRACT_FILE
    return read_contract(path) if path.is_file() else unknown_contract()


def check_contracts(root: Path, contracts: Mapping[str, ModelContract]) -> None:
    """Every member's preprocessing (:data:`PREPROCESSING`) equals the first's;
    ``ContractError`` naming each disagreeing version, key and both values."""
    (first, reference), *others = contracts.items()
    want = {k: contract_to_dict(reference)[k] for k in PREPROCESSING}
    faults = []
    for version, contract in others:
        got = contract_to_dict(contract)
        faults += [
            f"{version}: {key} {got[key]!r} != {want[key]!r}"
            for key in PREPROCESSING
            if got[key] != want[key]
        ]
    if faults:
        raise ContractError(
            f"inference.ensemble: the members' contracts ({root}/<version>/{CONTRACT_FILE}) must "
            f"agree with the first member's ({first}) preprocessing: " + "; ".join(faults)
        )


def check_members(members: Mapping[str, Any]) -> None:
    """The loaded members {version: Keras model} take the same inputs (SAR or not) and give
    the same outputs (all aleatoric or all plain); ``ContractError`` naming the versions."""
    (first, model), *others = members.items()
    faults = []
    for version, other in others:
        if uses_sar(other) != uses_sar(model):
            faults.append(f"{version} {'takes' if uses_sar(other) else 'has no'} SAR input")
        if is_aleatoric(other) != is_aleatoric(model):
            kind = "aleatoric" if is_aleatoric(other) else "plain"
            faults.append(f"{version} is {kind}")
    if faults:
        kind = "aleatoric" if is_aleatoric(model) else "plain"
        sar = "with" if uses_sar(model) else "without"
        raise ContractError(
            f"inference.ensemble: every member must be like the first ({first}: {kind}, "
            f"{sar} SAR): " + "; ".join(faults)
        )


LoadVersion = Callable[[Path, str], TrainedModel]
"""(versions folder, version) -> the loaded version (``datasets.model_dataset``)."""


@dataclass(frozen=True)
class Ensemble:
    """The checked members of ``inference.ensemble``: their folder, versions (in order) and
    contracts (which agree on the preprocessing)."""

    root: Path
    versions: tuple[str, ...]
    contracts: dict[str, ModelContract]

    @property
    def reference(self) -> TrainedModel:
        """The first member's contract and folder (no model): what settles the parameters."""
        first = self.versions[0]
        return TrainedModel(None, self.contracts[first], self.root / first)

    def load(self, loaded: TrainedModel, load_version: LoadVersion) -> list[Any]:
        """The members' Keras models, in order (``loaded``, the model the catalog loaded, is
        reused when it is a member), checked to be of one kind (:func:`check_members`)."""
        name = None if loaded.folder is None else Path(loaded.folder).name
        members = {v: loaded if v == name else load_version(self.root, v) for v in self.versions}
        check_members({v: m.model for v, m in members.items()})
        return [m.model for m in members.values()]


def plan_ensemble(model: TrainedModel, spec: str | Sequence[str] | None) -> Ensemble | None:
    """``inference.ensemble`` (``spec``) of the model the catalog loaded: None for no
    ensemble, else its members with their contracts read and checked (no model loaded yet)."""
    if spec is None:
        return None
    root = versions_root(model)
    versions = member_versions(root, spec)
    contracts = {v: member_contract(root, v) for v in versions}
    check_contracts(root, contracts)
    logger.info("Ensemble of %d versions of %s: %s", len(versions), root, ", ".join(versions))
    return Ensemble(root, tuple(versions), contracts)
