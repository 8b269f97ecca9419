"""Evaluation pipeline: model and cloudy-input baseline metrics, report figures."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
