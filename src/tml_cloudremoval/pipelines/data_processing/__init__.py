"""data_processing: SEN12MS-CR triplets -> scene splits -> checked lists -> patch stores."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
