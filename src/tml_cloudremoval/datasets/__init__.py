"""Kedro datasets the project needs and kedro-datasets lacks, one per product kind.

Referenced in the catalog by full path, e.g.
``type: tml_cloudremoval.datasets.patch_store_dataset.PatchStoreDataset``. Big products use
lazy saving: a node returns a lazy product and ``save`` writes it atomically
(:mod:`tml_cloudremoval.atomic`), so nothing half-written is ever visible under the path.
"""
