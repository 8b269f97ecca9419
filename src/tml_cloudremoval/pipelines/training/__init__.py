"""Training pipeline: train DSen2-CR on the training-ready patch stores."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
