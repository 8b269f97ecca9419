"""``kedro run`` as a user types it: a subprocess from the project root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
KEDRO = Path(sys.executable).parent / "kedro"


def kedro_run(*args: str, timeout: float = 300, columns: int | None = None) -> tuple[int, str]:
    """``kedro run ARGS`` in a subprocess from the project root: exit code, stdout + stderr.

    ``columns``: width of the console log (rich wraps log lines to it; wide keeps a message on
    one line), else the environment's."""
    env = {
        **os.environ,
        **({"COLUMNS": str(columns)} if columns else {}),
        "PYTHONPATH": os.pathsep.join([str(PROJECT / "src"), os.environ.get("PYTHONPATH", "")]),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    done = subprocess.run(
        [str(KEDRO), "run", *args],
        check=False,
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout
