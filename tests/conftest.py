"""Shared fixtures: telemetry off, the real SEN12MS-CR samples."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.append(str(Path(__file__).resolve().parent))  # tests can import support.<module>

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLES = PROJECT_ROOT.parent / "shared" / "data" / "sen12mscr_samples"


def real_samples_path() -> Path:
    """Where the real SEN12MS-CR samples are expected (env SEN12MSCR_SAMPLES overrides)."""
    return Path(os.environ.get("SEN12MSCR_SAMPLES", DEFAULT_SAMPLES))


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The Kedro project root (the folder holding pyproject.toml)."""
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def real_samples_root() -> Path:
    """The folder of real SEN12MS-CR triplets; skips the test, saying why, where it is absent."""
    path = real_samples_path()
    if not path.is_dir() or not any(path.glob("*_s2_cloudy")):
        pytest.skip(
            f"real SEN12MS-CR samples not found at {path}: set SEN12MSCR_SAMPLES to the folder"
        )
    return path
