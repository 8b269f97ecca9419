"""Ablation pipeline: the training and evaluation pipelines once per variant, compared."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
