"""Inference pipeline: cloud-free TML scenes of any size, georeferenced."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
