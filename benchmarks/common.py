"""What every benchmark prints about the machine it ran on, and where the data lives."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLES = Path(
    os.environ.get("SEN12MSCR_SAMPLES", REPO.parent / "shared" / "data" / "sen12mscr_samples")
)
if str(REPO / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_line() -> str:
    """One line: CPU, cores, memory, load, Python and the installed numeric stack's versions.

    GPUs are listed when TensorFlow is already imported (importing it here would cost seconds
    and memory in processes that do not use it).
    """
    import numpy as np

    from tml_cloudremoval.data.triplets import usable_cores

    parts = [cpu_model(), f"{usable_cores()} cores"]
    try:
        import psutil

        parts.append(f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM")
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        parts.append("load avg " + " / ".join(f"{v:.1f}" for v in os.getloadavg()))
    parts += [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for package, name in (("tensorflow", "TF"), ("keras", "Keras"), ("rasterio", "rasterio")):
        try:
            parts.append(f"{name} {version(package)}")
        except PackageNotFoundError:
            pass
    if "tensorflow" in sys.modules:
        gpus = [d.name for d in sys.modules["tensorflow"].config.list_physical_devices("GPU")]
        parts.append(f"GPUs: {', '.join(gpus)}" if gpus else "no GPU")
    return ", ".join(parts)


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain Markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def training_batch(batch: int, crop: int, seed: int = 0) -> tuple[dict, dict]:
    """A random in-memory training batch ``(x, y)`` as ``CloudRemovalTrainer`` takes it: optical
    (batch, crop, crop, 10) in [0, 5], SAR (batch, crop/4, crop/4, 2) in [0, 2], target, mask."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = {
        "optical": rng.uniform(0, 5, (batch, crop, crop, 10)).astype(np.float32),
        "sar": rng.uniform(0, 2, (batch, crop // 4, crop // 4, 2)).astype(np.float32),
    }
    y = {
        "target": rng.uniform(0, 5, (batch, crop, crop, 10)).astype(np.float32),
        "mask": (rng.uniform(0, 1, (batch, crop, crop, 1)) > 0.5).astype(np.float32),
    }
    return x, y
