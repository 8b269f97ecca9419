"""sample_data pipeline: the embedded synthetic SEN12MS-CR dataset and sample TML scene."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
