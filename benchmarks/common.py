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


# ---------------------------------------------------------------------------------------------
# Long-lived worker subprocesses, asked for one measurement at a time (ABAB rounds across
# processes: each keeps its own peak RSS, and only the one asked runs while the others wait)
# ---------------------------------------------------------------------------------------------

RESULT_PREFIX = "@bench-result "
"""Marks the worker's answer lines on stdout (libraries may print other lines there)."""


def serve(handlers: dict) -> None:
    """Worker side of :class:`Worker`: for each request line on stdin, call ``handlers[line]()``
    (a dict of JSON-able figures) and print it as one answer line; ``quit`` or EOF ends."""
    import json

    for line in sys.stdin:
        request = line.strip()
        if request == "quit":
            return
        print(RESULT_PREFIX + json.dumps(handlers[request]()), flush=True)


class Worker:
    """A subprocess running ``cmd`` that answers requests through :func:`serve`.

    ``ask("round")`` writes one request line and waits for the answer (a dict); stderr goes to
    a temporary file (an unread pipe could fill and stall the worker) and its tail is in the
    error raised when the worker dies. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, name: str, cmd: list[str]):
        import subprocess
        import tempfile

        self.name = name
        self._stderr = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, bufsize=1, env=env,
        )  # fmt: skip

    def ask(self, request: str) -> dict:
        """Send ``request``; the worker's answer (blocks until it comes)."""
        import json

        try:
            self._proc.stdin.write(request + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker is gone: reported below
        for line in self._proc.stdout:
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        self._proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-3000:]
        raise RuntimeError(f"{self.name} worker exited ({self._proc.returncode}):\n{tail}")

    def close(self) -> None:
        """Ask the worker to quit and wait for it (killed after 2 minutes)."""
        import subprocess

        if self._proc.poll() is None:
            try:
                self._proc.stdin.write("quit\n")
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self._proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
