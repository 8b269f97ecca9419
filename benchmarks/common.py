"""What every benchmark prints about the machine it ran on, and where the data lives."""

from __future__ import annotations

import os
import platform
import sys
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
    """One line: CPU, cores, memory, Python and the numeric stack's versions."""
    import numpy as np

    parts = [cpu_model(), f"{os.cpu_count()} cores"]
    try:
        import psutil

        parts.append(f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM")
    except ImportError:
        pass
    parts += [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        gpus = tf.config.list_physical_devices("GPU")
        parts.append(
            f"TF {tf.__version__} ({len(gpus)} GPU)" if gpus else f"TF {tf.__version__} CPU"
        )
    return ", ".join(parts)


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain Markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])
