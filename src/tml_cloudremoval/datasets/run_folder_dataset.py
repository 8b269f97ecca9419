"""``RunFolderDataset``: the folder of a training run as a Kedro catalog entry.

Catalog::

    training_run:
      type: tml_cloudremoval.datasets.run_folder_dataset.RunFolderDataset
      filepath: data/06_models/training_run

The run folder is state that ``train_model`` reads (to resume, or to reuse a finished run) and
writes (checkpoints, log, final model) while it trains, so it is an *input* of that node:
``load()`` hands over a :class:`~tml_cloudremoval.training.run_folder.RunFolder` handle, also
when the folder does not exist yet (a new run). ``save()`` is refused: the training loop
writes the folder itself, checkpoint by checkpoint, each write atomic.

For a user, ``catalog.load("training_run")`` is the way into a run: ``.log()`` (one row per
epoch, a DataFrame), ``.finished()`` (the summary of a finished run), ``.checkpoint_folders()``,
``.final_model`` (path) and ``.load_final_model()``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from kedro.io import DatasetError

from tml_cloudremoval.datasets.folder import FolderDataset
from tml_cloudremoval.training.run_folder import RunFolder


class RunFolderDataset(FolderDataset[Any, RunFolder]):
    """A training run folder (``checkpoints/``, ``training_log.csv``, ``tensorboard/``,
    ``final_model.keras``, ``FINISHED.json``; see ``training.run_folder``)."""

    def load(self) -> RunFolder:
        return RunFolder(self._path)

    def save(self, data: Any) -> NoReturn:
        raise DatasetError(
            f"{self._filepath}: a training run folder is written by the training loop "
            "(tml_cloudremoval.training.loop.train) while it trains, not saved as a whole; "
            "use training_run as an input of the node that trains"
        )
