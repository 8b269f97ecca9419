"""``ModelDataset``: a trained model with its contract and card, one version folder each.

Catalog::

    dsen2cr_model:
      type: tml_cloudremoval.datasets.model_dataset.ModelDataset
      filepath: data/06_models/dsen2cr.keras
      versioned: true

``save(TrainedModel)`` writes ``<filepath>/<version>/`` as one atomic folder: the Keras model
(``dsen2cr.keras``, stock layers only), ``contract.json`` and ``MODEL_CARD.md`` (a killed save
leaves only a hidden temporary folder, removed by the next save). ``load()`` gives
a :class:`~tml_cloudremoval.models.contract.TrainedModel` (the model loaded with ``safe_mode``,
its contract, its version folder); ``--load-versions dsen2cr_model:<version>`` is the one
switch that picks a version, contract and card included. A version saved before contracts
existed loads with a logged warning and a contract marked unknown (``known: false``): such a
model stays usable, and everything that would have come from its contract is logged as taken
from the parameters instead.

``ModelCardDataset`` (catalog entry ``model_card``) writes the card of the version a node
evaluated, with its figures: the version folder comes from the saved data, so the card always
belongs to the model that was evaluated.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, AbstractVersionedDataset, DatasetError
from kedro.io.core import Version

from tml_cloudremoval.atomic import atomic_folder, remove_stale_temporaries, write_text_atomic
from tml_cloudremoval.models.contract import (
    CONTRACT_FILE,
    TrainedModel,
    contract_to_dict,
    read_contract,
    unknown_contract,
)
from tml_cloudremoval.models.model_card import CARD_FILE, ModelCardUpdate, card_text

logger = logging.getLogger(__name__)


class ModelDataset(AbstractVersionedDataset[TrainedModel, TrainedModel]):
    """A versioned Keras model + ``contract.json`` + ``MODEL_CARD.md`` (see the module doc)."""

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=PurePosixPath(filepath), version=version)
        self._load_args = {"safe_mode": True, **(load_args or {})}
        self.metadata = metadata

    def load(self) -> TrainedModel:
        return load_trained_model(Path(self._get_load_path()), self._load_args)

    def save(self, data: TrainedModel) -> None:
        if not isinstance(data, TrainedModel):
            raise DatasetError(
                f"{self._filepath}: ModelDataset saves a TrainedModel (model + contract), got "
                f"{type(data).__name__}"
            )
        path = Path(self._get_save_path())
        remove_stale_temporaries(path.parent.parent)  # version folders of killed saves
        with atomic_folder(path.parent, durable=True) as tmp:
            data.model.save(tmp / path.name)
            contract = json.dumps(contract_to_dict(data.contract), indent=2)
            (tmp / CONTRACT_FILE).write_text(contract + "\n", encoding="utf-8")
            card = card_text(data.contract, version=path.parent.name)
            (tmp / CARD_FILE).write_text(card, encoding="utf-8")

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).exists()
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}


def load_trained_model(path: Path, load_args: dict[str, Any] | None = None) -> TrainedModel:
    """The model file ``path`` (``<root>/<version>/<name>.keras``) with the contract beside it
    (``load_args`` go to ``keras.saving.load_model``; default ``safe_mode=True``)."""
    import keras

    folder = path.parent
    model = keras.saving.load_model(path, **{"safe_mode": True, **(load_args or {})})
    if (folder / CONTRACT_FILE).is_file():
        return TrainedModel(model, read_contract(folder / CONTRACT_FILE), folder)
    logger.warning(
        "%s: no %s (saved before models carried one); its preprocessing is unknown and the "
        "parameters are used as given",
        folder,
        CONTRACT_FILE,
    )
    return TrainedModel(model, unknown_contract(), folder)


def load_model_version(root: str | Path, version: str) -> TrainedModel:
    """Version ``version`` of the versioned ModelDataset at ``root`` (Kedro's layout:
    ``<root>/<version>/<root name>``), as ``load()`` gives it (e.g. an ensemble member)."""
    root = Path(root)
    return load_trained_model(root / version / root.name)


class ModelCardDataset(AbstractDataset[ModelCardUpdate, dict[str, str]]):
    """The cards of the model versions under ``filepath`` (the ``dsen2cr_model`` folder).

    ``save(ModelCardUpdate)`` rewrites ``<update.folder>/MODEL_CARD.md`` atomically; the folder
    must be a version folder under ``filepath``. ``load()`` gives ``{version: card text}``.
    Its description names ``models_folder``, not ``filepath``: the card is meant to be written
    inside a model version that the same run reads, which the run checks would refuse.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, str]:
        root = Path(self._filepath)
        cards = sorted(root.glob(f"*/{CARD_FILE}")) if root.is_dir() else []
        return {card.parent.name: card.read_text(encoding="utf-8") for card in cards}

    def save(self, data: ModelCardUpdate) -> None:
        root = Path(self._filepath).resolve()
        folder = Path(data.folder).resolve()
        if folder.parent != root or not folder.is_dir():
            raise DatasetError(
                f"{data.folder}: not a saved version folder of {self._filepath}; the card is "
                "written only into the version that was evaluated"
            )
        remove_stale_temporaries(folder)
        write_text_atomic(folder / CARD_FILE, data.text)
        logger.info("Model card with evaluation figures: %s", folder / CARD_FILE)

    def _exists(self) -> bool:
        return bool(self.load())

    def _describe(self) -> dict[str, Any]:
        return {"models_folder": str(self._filepath), "file": CARD_FILE}
