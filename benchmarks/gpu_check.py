"""The prepared GPU check (issue 14, item 7): training steps and a whole-scene inference on one GPU.

Run through ``benchmarks/gpu_check.sh`` (installs the carried wheels, then runs this):

    bash benchmarks/gpu_check.sh                  # on the GPU machine, under 8 minutes
    bash benchmarks/gpu_check.sh --tiny           # a dry run anywhere: tiny model, small scene
    KERAS_BACKEND=jax python benchmarks/gpu_check.py --tiny    # one backend, on a CPU

Backend: ``KERAS_BACKEND`` when set, else the first of tensorflow, jax, torch that imports and
sees a GPU (each probed in a subprocess), else the first that imports (CPU). It measures, for
the default model (F = 64, B = 16), crop 128:

- the training step (``CloudRemovalTrainer``, CARL, Nadam) at batch 16 and 64, float32 and
  ``mixed_bfloat16``, with and without jit/XLA where the backend has both (JAX: jit only), on a
  batch already on the device (``train_on_batch``, synchronised every step: a lower bound of
  what ``fit`` reaches);
- the real input path: a patch store written on the spot with the project's writer
  (``tests/support/synthetic_stores.py``), read as training reads it (``training.input:
  auto``: tf.data on TensorFlow, else ``data.patch_sequence.TrainSequence`` with its default
  worker threads): input alone and ``fit`` through it, and whether input keeps up with the step;
- tiled inference (``inference.scene.predict_scene``, default settings: COG output) of a
  synthetic 10980 x 10980 scene written first as an uncompressed GeoTIFF: wall time including
  reading and writing, Mpx/s and the backend's peak GPU memory.

It prints a table with the targets of issue 14 (>= 2500 samples/s at crop 128 with mixed
precision; a whole 10980 x 10980 scene in < 15 s) and PASS / MISS, and writes ``gpu_check.json``
into ``--out``, also when stopped by SIGTERM (the rows done so far). Targets are judged only at
full size (``--tiny`` prints "dry run").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]  # common.py; support/ (test data)

from gpu_check_report import report  # noqa: E402 (after the path): the table and the verdicts

PROBES = {
    "tensorflow": "import tensorflow as t; assert t.config.list_physical_devices('GPU')",
    "jax": "import jax; assert any(d.platform == 'gpu' for d in jax.devices())",
    "torch": "import torch; assert torch.cuda.is_available()",
}


@dataclass(frozen=True)
class Sizes:
    """What one check runs: model, batches, crop (px), timed / untimed steps, scene side (px)."""

    features: int = 64
    blocks: int = 16
    batches: tuple[int, ...] = (16, 64)
    crop: int = 128
    steps: int = 20
    warmup: int = 3
    store_patches: int = 256
    patch: int = 256
    scene: int = 10980
    tile_size: int = 1280


TINY = Sizes(8, 2, (2, 4), 32, 3, 1, 12, 64, 1024, 512)


def _passes(code: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    return probe.returncode == 0


def pick_backend() -> str:
    """``KERAS_BACKEND`` if set, else the first backend of :data:`PROBES` that sees a GPU, else
    the first that imports (a dry run on a CPU), else tensorflow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    for name, code in PROBES.items():
        if _passes(code):
            return name
    return next((name for name in PROBES if _passes(f"import {name}")), "tensorflow")


def gpu_memory(reset: bool = False) -> float | None:
    """Peak GPU memory in GiB since the last reset, from the backend's own API (None: no GPU)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return None
            if reset:
                tf.config.experimental.reset_memory_stats("GPU:0")
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30
        if backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            stats = gpus[0].memory_stats() if gpus else None
            # JAX keeps no resettable peak: the peak since the process started
            return stats["peak_bytes_in_use"] / 2**30 if stats else None
        import torch

        if not torch.cuda.is_available():
            return None
        if reset:
            torch.cuda.reset_peak_memory_stats()
        return torch.cuda.max_memory_allocated() / 2**30
    except (RuntimeError, ValueError, KeyError):
        return None


def jit_modes(backend: str) -> tuple[bool, ...]:
    """Compile modes worth timing: JAX without jit runs op by op (not a training mode)."""
    return (True,) if backend == "jax" else (False, True)


def _trainer(sizes: Sizes, precision: str, jit: bool):
    import keras

    from tml_cloudremoval.models.dsen2cr import build_dsen2cr
    from tml_cloudremoval.training.trainer import CloudRemovalTrainer

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    dtype = "mixed_bfloat16" if precision == "bfloat16" else None
    trainer = CloudRemovalTrainer(build_dsen2cr(sizes.features, sizes.blocks, dtype=dtype), "carl")
    trainer.compile(optimizer=keras.optimizers.Nadam(7e-5), jit_compile=jit)
    return trainer


def train_on_device(sizes: Sizes, batch: int, precision: str, jit: bool) -> dict:
    """Samples/s of ``train_on_batch`` on one batch already on the device."""
    import keras
    from common import training_batch

    trainer = _trainer(sizes, precision, jit)
    x, y = (
        {k: keras.ops.convert_to_tensor(v) for k, v in part.items()}
        for part in training_batch(batch, sizes.crop)
    )
    gpu_memory(reset=True)
    start = time.perf_counter()
    for _ in range(sizes.warmup):
        trainer.train_on_batch(x, y)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(sizes.steps):
        loss = trainer.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    return {
        "samples_per_s": batch * sizes.steps / seconds,
        "step_ms": 1000 * seconds / sizes.steps,
        "compile_s": first,
        "peak_gpu_gib": gpu_memory(),
        "loss": float(loss[0] if isinstance(loss, list | tuple) else loss),
    }


def input_dataset(store, batch: int, crop: int):
    """The project's training input over ``store`` on this backend (``training.input: auto``):
    tf.data on TensorFlow, else the PyDataset with ``training.input_workers: null`` threads."""
    from tml_cloudremoval.training.backend import input_path, input_workers

    args = {"seed": 0, "steps_per_epoch": 8}
    if input_path("auto") == "tf_data":
        from tml_cloudremoval.data.input_pipeline import train_dataset

        return train_dataset(store, batch, crop, **args)
    from tml_cloudremoval.data.patch_sequence import TrainSequence

    return TrainSequence(store, batch, crop, **args, workers=input_workers(None))


def input_alone(store, sizes: Sizes, batch: int) -> dict:
    """Samples/s of the input path alone, batches as host numpy arrays: tf.data's own
    parallelism, or the PyDataset's items read by as many threads as Keras' enqueuer uses."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    source = input_dataset(store, batch, sizes.crop)
    n = max(sizes.steps, 10)
    if hasattr(source, "workers"):  # a keras.utils.PyDataset
        with ThreadPoolExecutor(source.workers) as pool:
            list(pool.map(source.__getitem__, range(2)))
            start = time.perf_counter()
            list(pool.map(source.__getitem__, range(2, 2 + n)))
        return {"samples_per_s": batch * n / (time.perf_counter() - start), "path": "pydataset"}
    it = iter(source)
    for _ in range(2):
        next(it)
    start = time.perf_counter()
    for _ in range(n):
        np.asarray(next(it)[0]["optical"])
    return {"samples_per_s": batch * n / (time.perf_counter() - start), "path": "tf_data"}


def fit_through_input(store, sizes: Sizes, batch: int, precision: str, jit: bool) -> dict:
    """Samples/s of ``fit`` over the input path (median step after the untimed ones)."""
    import keras
    import numpy as np

    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, step, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, step, logs=None):
            float(logs["loss"])
            times.append(time.perf_counter() - self.t)

    trainer = _trainer(sizes, precision, jit)
    total = sizes.warmup + sizes.steps
    ds = input_dataset(store, batch, sizes.crop)
    trainer.fit(ds, steps_per_epoch=total, epochs=1, verbose=0, callbacks=[Clock()], shuffle=False)
    return {"samples_per_s": batch / float(np.median(times[sizes.warmup :]))}


def write_scene(folder: Path, size: int) -> tuple[Path, Path]:
    """A size x size 10-band uint16 scene (uncompressed, tiled 512) and its 40 m SAR file."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    transform = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)
    s2, s1 = folder / "s2_cloudy.tif", folder / "s1.tif"
    profile = {
        "driver": "GTiff", "height": size, "width": size, "count": 10, "dtype": "uint16",
        "crs": "EPSG:32632", "transform": transform, "nodata": 0, "tiled": True,
        "blockxsize": 512, "blockysize": 512,
    }  # fmt: skip
    xx = np.arange(size)
    with rasterio.open(s2, "w", **profile) as dst:
        for y0 in range(0, size, 1024):
            yy = np.arange(y0, min(y0 + 1024, size))[:, None]
            ground = 1500 + 700 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
            cloudy = ground + 5000 * (np.sin(xx / 300.0 + yy / 200.0) > 0.6)
            band = np.clip(cloudy, 1, 10000).astype(np.uint16)
            block = np.broadcast_to(band, (10, *band.shape))
            dst.write(block, window=Window(0, y0, size, band.shape[0]))
    side = -(-size // 4)
    rng = np.random.default_rng(0)
    sar = np.stack([rng.uniform(-20, -5, (side, side)), rng.uniform(-28, -12, (side, side))])
    with rasterio.open(
        s1, "w", driver="GTiff", height=side, width=side, count=2, dtype="float32",
        crs="EPSG:32632", transform=transform @ Affine.scale(4), nodata=float("nan"),
    ) as dst:  # fmt: skip
        dst.write(sar.astype(np.float32))
    return s2, s1


def scene_check(sizes: Sizes, folder: Path) -> dict:
    """``predict_scene`` of a whole synthetic scene, default settings, untrained default model."""
    import keras

    from tml_cloudremoval.inference.config import InferenceConfig
    from tml_cloudremoval.inference.scene import predict_scene
    from tml_cloudremoval.models.dsen2cr import build_dsen2cr

    start = time.perf_counter()
    s2, s1 = write_scene(folder, sizes.scene)
    written = time.perf_counter() - start
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_dsen2cr(sizes.features, sizes.blocks)
    config = InferenceConfig(tile_size=sizes.tile_size, progress=False, sar_method="mean")
    gpu_memory(reset=True)
    start = time.perf_counter()
    facts = predict_scene(model, s2, s1, folder / "cloudfree.tif", config)
    seconds = time.perf_counter() - start
    return {
        "scene_px": sizes.scene,
        "input_written_s": written,
        "seconds": seconds,
        "mpx_per_s": sizes.scene**2 / 1e6 / seconds,
        "model_seconds": facts.get("model_seconds"),
        "tiles": facts.get("tiles"),
        "peak_gpu_gib": gpu_memory(),
        "output_mb": (folder / "cloudfree.tif").stat().st_size / 2**20,
    }


def guarded(results: dict, key: str, deadline: float, fn, *args) -> None:
    """``results[key] = fn(*args)``, or the error / "skipped: out of time" in its place."""
    if time.perf_counter() > deadline:
        results[key] = {"error": "skipped: out of time"}
        return
    try:
        results[key] = fn(*args)
    except Exception as exc:  # a failed measurement is a row of the table, not the end
        first_line = (str(exc).splitlines() or [""])[0][:160]
        results[key] = {"error": f"{type(exc).__name__}: {first_line}"}
    print(f"[{time.strftime('%H:%M:%S')}] {key}: {results[key]}", flush=True)


def run_checks(sizes: Sizes, backend: str, budget_s: float, work: Path, results: dict) -> None:
    """Every measurement of the module docstring into ``results``, each guarded, most telling
    first (the targets' rows and the scene), so that a run out of ``budget_s`` (or stopped:
    ``main`` reports what is there) loses the least."""
    from support.synthetic_stores import synthetic_patch_store

    deadline = time.perf_counter() + budget_s
    fast, big = jit_modes(backend)[-1], max(sizes.batches)
    modes = [(b, p, j) for b in sizes.batches for p in ("float32", "bfloat16") for j in
             jit_modes(backend)]  # fmt: skip
    modes.sort(key=lambda m: (m != (big, "bfloat16", fast), m[1] != "bfloat16", -m[0]))
    for i, (batch, precision, jit) in enumerate(modes):
        key = f"train b{batch} {precision} {'jit' if jit else 'plain'}"
        guarded(results, key, deadline, train_on_device, sizes, batch, precision, jit)
        if i == 0:  # the scene has its own target: never skipped for training time
            guarded(results, "scene", math.inf, scene_check, sizes, work)
    store = synthetic_patch_store(work / "store", n=sizes.store_patches, size=sizes.patch)
    for batch in sorted(sizes.batches, reverse=True):
        guarded(results, f"input b{batch}", deadline, input_alone, store, sizes, batch)
        key = f"fit+input b{batch} bfloat16 {'jit' if fast else 'plain'}"
        guarded(results, key, deadline, fit_through_input, store, sizes, batch, "bfloat16", fast)


def reading_order(results: dict) -> dict:
    """The rows as the table shows them: training, input, fit through input, scene."""
    order = ("train", "input", "fit+input", "scene")
    return dict(sorted(results.items(), key=lambda kv: (order.index(kv[0].split()[0]), kv[0])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model and scene (dry run)")
    parser.add_argument("--out", default=os.environ.get("OUT", "."), help="gpu_check.json here")
    parser.add_argument("--budget-s", type=float, default=330, help="training/input time budget")
    args = parser.parse_args(argv)
    sizes = TINY if args.tiny else Sizes()
    backend = pick_backend()
    os.environ["KERAS_BACKEND"] = backend  # before keras is first imported
    import keras
    from common import machine_line

    print(f"gpu_check: backend {backend}, Keras {keras.__version__}, sizes {asdict(sizes)}")
    print(machine_line(), flush=True)
    # `timeout` (gpu_check.sh) sends SIGTERM: end through the finally below, table and file too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    results: dict = {}
    try:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            run_checks(sizes, backend, args.budget_s, Path(tmp), results)
    finally:
        results = reading_order(results)
        print(report(results, sizes, args.tiny))
        out = Path(args.out) / "gpu_check.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        figures = {"backend": backend, "sizes": asdict(sizes), **results}
        out.write_text(json.dumps(figures, indent=1))
        print(f"figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
