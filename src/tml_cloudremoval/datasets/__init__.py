"""Kedro datasets the project needs and kedro-datasets lacks.

Referenced in the catalog by full path, e.g.
``type: tml_cloudremoval.datasets.patch_store_dataset.PatchStoreDataset``.
"""
