"""The model's contract: the preprocessing a trained model expects, readable without TensorFlow.

Every saved model version holds ``contract.json`` beside its ``.keras`` (written by
:class:`~tml_cloudremoval.datasets.model_dataset.ModelDataset`): band names and order, optical and
SAR normalisation, SAR method and factor, cloud threshold, the radiometry of the product family
it was trained on (SEN12MS-CR: L1C top of atmosphere, no radiometric offset), model and training
parameters, a fingerprint of the training split and the project version.

Evaluation and inference take their preprocessing from it: :func:`settle` gives the value to use
for one setting, and a parameter that contradicts the contract is a :class:`ContractError`
naming both values, unless the override key is true (then a logged warning). A version saved
before contracts existed loads with a warning and :func:`unknown_contract` (``known: false``):
the parameters are then used as given, each logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from tml_cloudremoval import normalise
from tml_cloudremoval.bands import S1_BAND_NAMES, SAR_FACTOR, TML_BAND_NAMES
from tml_cloudremoval.errors import ProjectError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the contract.json layout; a newer one is refused (this code cannot read it)."""

CONTRACT_FILE = "contract.json"
"""Name of the contract inside a model version folder."""

SAR_DEFAULT_WITHOUT_CONTRACT = "mean"
"""SAR method assumed for a model without a contract: the only method before contracts existed
unless ``data.sar_method`` was changed by hand (logged as a warning each time it is used)."""


class ContractError(ProjectError):
    """A contract that cannot be read, or a parameter that contradicts the model's contract."""


@dataclass(frozen=True)
class Radiometry:
    """What the optical DN of the training products mean: reflectance = (DN + dn_offset) /
    quantification. SEN12MS-CR: Sentinel-2 L1C (top of atmosphere) of 2018, before processing
    baseline 04.00, so no radiometric offset."""

    product_family: str = "SEN12MS-CR"
    level: str = "L1C"
    dn_offset: int = 0
    quantification: int = int(normalise.REFLECTANCE_SCALE)


@dataclass(frozen=True)
class OpticalNormalisation:
    """Optical DN clipped to ``clip_dn`` and divided by ``scale`` (model units in [0, 5])."""

    bands: tuple[str, ...] = TML_BAND_NAMES
    clip_dn: tuple[float, float] = normalise.OPTICAL_CLIP_DN
    scale: float = normalise.OPTICAL_SCALE


@dataclass(frozen=True)
class SarNormalisation:
    """SAR in dB per band clipped to ``clip_db``, mapped to [0, max_val_sar]; averaged onto the
    ``factor`` x coarser grid (4: 40 m) with ``method`` (``mean`` of dB or ``linear_power``)."""

    bands: tuple[str, ...] = S1_BAND_NAMES
    clip_db: tuple[tuple[float, float], ...] = normalise.SAR_CLIP_DB
    max_val_sar: float = normalise.MAX_VAL_SAR
    method: str | None = None
    factor: int = SAR_FACTOR


@dataclass(frozen=True)
class ModelContract:
    """The contract of one trained model version (see the module docstring)."""

    known: bool = True
    schema_version: int = SCHEMA_VERSION
    project_version: str | None = None
    bands: tuple[str, ...] = TML_BAND_NAMES
    optical: OpticalNormalisation = field(default_factory=OpticalNormalisation)
    sar: SarNormalisation = field(default_factory=SarNormalisation)
    cloud_threshold: float | None = None
    radiometry: Radiometry = field(default_factory=Radiometry)
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    training_split: dict[str, Any] = field(default_factory=dict)


def project_version() -> str | None:
    """The installed tml_cloudremoval version (importlib.metadata), None when not installed."""
    try:
        return metadata.version("tml_cloudremoval")
    except metadata.PackageNotFoundError:
        return None


def split_fingerprint(store: Any) -> dict[str, Any]:
    """Fingerprint of a patch store (``.path``, ``.meta``, ``len``): sha256 of its ``index.csv``
    bytes and of its ``meta.json`` content (sorted keys), with the number of patches."""
    digest = hashlib.sha256()
    index = Path(store.path) / "index.csv"
    digest.update(index.read_bytes() if index.is_file() else b"")
    digest.update(json.dumps(dict(store.meta), sort_keys=True, default=str).encode())
    return {"n_patches": len(store), "sha256": digest.hexdigest()}


def _plain(config: Any) -> dict[str, Any]:
    return asdict(config) if is_dataclass(config) else dict(config or {})


def build_contract(model_config: Any, training_config: Any, train_store: Any) -> ModelContract:
    """The contract of a model trained with these validated configs on ``train_store`` (a
    :class:`~tml_cloudremoval.data.patch_store.PatchStore`): its ``meta`` says how the store was
    made (``sar_method``, ``cloud_threshold``: the ``data`` section at build time)."""
    meta = dict(train_store.meta)
    return ModelContract(
        project_version=project_version(),
        bands=tuple(meta.get("bands", TML_BAND_NAMES)),
        optical=OpticalNormalisation(bands=tuple(meta.get("bands", TML_BAND_NAMES))),
        sar=SarNormalisation(
            bands=tuple(meta.get("sar_bands", S1_BAND_NAMES)),
            method=meta.get("sar_method"),
            factor=int(meta.get("sar_factor", SAR_FACTOR)),
        ),
        cloud_threshold=meta.get("cloud_threshold"),
        model=_plain(model_config),
        training=_plain(training_config),
        training_split=split_fingerprint(train_store),
    )


def unknown_contract() -> ModelContract:
    """The contract of a model version saved without one: nothing about its preprocessing known."""
    return ModelContract(
        known=False,
        schema_version=0,
        bands=TML_BAND_NAMES,
        radiometry=Radiometry(product_family="unknown", level="unknown"),
    )


def contract_to_dict(contract: ModelContract) -> dict[str, Any]:
    """Plain JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(asdict(contract)))


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


_PARTS: dict[str, type] = {
    "optical": OpticalNormalisation,
    "sar": SarNormalisation,
    "radiometry": Radiometry,
}


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ContractError(f"{where}: unknown contract key(s) {', '.join(unknown)}")
    kwargs = {}
    for key, value in data.items():
        part = _PARTS.get(key) if cls is ModelContract else None
        if part is not None:
            if not isinstance(value, Mapping):
                raise ContractError(f"{where}: {key} must be an object, got {value!r}")
            kwargs[key] = _build(part, value, where)
        else:
            kwargs[key] = value if isinstance(value, dict) else _tuples(value)
    return cls(**kwargs)


def contract_from_dict(data: Any, source: str | Path = "contract") -> ModelContract:
    """Inverse of :func:`contract_to_dict`; raises :class:`ContractError` naming ``source``."""
    if not isinstance(data, Mapping):
        raise ContractError(f"{source}: a contract is a JSON object, got {type(data).__name__}")
    schema = data.get("schema_version")
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise ContractError(
            f"{source}: schema_version {schema!r} is not one this project reads "
            f"(<= {SCHEMA_VERSION}); update tml_cloudremoval"
        )
    try:
        return _build(ModelContract, data, str(source))
    except TypeError as exc:
        raise ContractError(f"{source}: malformed contract: {exc}") from exc


def read_contract(path: str | Path) -> ModelContract:
    """Read ``contract.json``; a missing, unreadable or malformed file is a ContractError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path}: cannot read the model contract: {exc}") from exc
    return contract_from_dict(data, path)


def settle(
    key: str,
    given: Any,
    contracted: Any,
    source: str | Path,
    override_key: str,
    override: bool,
) -> Any:
    """The value to use for setting ``key`` (e.g. ``inference.sar_method``).

    ``given`` None: the contract's value. Equal values: that value. Different: a
    :class:`ContractError` naming both values, ``source`` and ``override_key``, unless
    ``override`` (then ``given``, with a logged warning). ``contracted`` None (the contract does
    not know it): ``given``, logged.
    """
    if contracted is None:
        if given is not None:
            logger.warning(
                "%s %r used as given: the model's contract (%s) does not say", key, given, source
            )
        return given
    if given is None or given == contracted:
        return contracted
    message = f"{key} {given!r} contradicts the model's contract {contracted!r} ({source})"
    if not override:
        raise ContractError(f"{message}; remove it or set {override_key}: true")
    logger.warning("%s; used anyway because %s is true", message, override_key)
    return given


def settle_inference(config: Any, contract: ModelContract, source: str | Path) -> Any:
    """``config`` (an :class:`~tml_cloudremoval.inference.config.InferenceConfig`) with its
    preprocessing settled against ``contract``: ``sar_method`` from the contract unless set
    (a contradiction is an error unless ``inference.override_contract``). A model without a
    contract and no ``inference.sar_method`` uses :data:`SAR_DEFAULT_WITHOUT_CONTRACT`, logged."""
    sar_method = settle(
        "inference.sar_method",
        config.sar_method,
        contract.sar.method,
        source,
        "inference.override_contract",
        config.override_contract,
    )
    if sar_method is None:
        sar_method = SAR_DEFAULT_WITHOUT_CONTRACT
        logger.warning(
            "The model (%s) has no contract and inference.sar_method is null: using %r; set "
            "inference.sar_method to the data.sar_method it was trained with",
            source,
            sar_method,
        )
    return replace(config, sar_method=sar_method)


def check_store(
    store_meta: Mapping[str, Any],
    store_source: str | Path,
    contract: ModelContract,
    source: str | Path,
    override: bool,
) -> None:
    """Check a patch store (e.g. the test split for evaluation) was made with the contract's
    preprocessing: bands, SAR method and cloud threshold (its ``meta.json``). A difference is a
    :class:`ContractError` naming both values unless ``override`` (``evaluation.override_contract``;
    then a warning)."""
    pairs = {
        "bands": (list(store_meta.get("bands", [])) or None, list(contract.bands)),
        "sar_method": (store_meta.get("sar_method"), contract.sar.method),
        "cloud_threshold": (store_meta.get("cloud_threshold"), contract.cloud_threshold),
    }
    for key, (made_with, contracted) in pairs.items():
        if made_with is None and contracted is not None:
            logger.warning("%s: its meta.json does not say its %s; not checked", store_source, key)
            continue
        settle(
            f"{store_source} {key}",
            made_with,
            contracted,
            source,
            "evaluation.override_contract",
            override,
        )


@dataclass(frozen=True)
class TrainedModel:
    """A Keras model with its contract, as the catalog entry ``dsen2cr_model`` loads and saves
    it. ``folder``: the version folder it was loaded from (None before it is saved)."""

    model: Any
    contract: ModelContract = field(default_factory=unknown_contract)
    folder: Path | None = None

    @property
    def contract_source(self) -> str:
        """Where the contract is (or would be): named in every contract message."""
        if self.folder is None:
            return "the model's contract (not saved yet)"
        return str(self.folder / CONTRACT_FILE)
