"""Validated settings of the training pipeline: ``params:model`` and ``params:training``.

Both are frozen dataclasses built with :func:`tml_cloudremoval.config.from_params`: an unknown
key (with the closest valid name), a wrong type or an out-of-range value is a ``ConfigError``
naming ``model.<key>`` or ``training.<key>``, raised before any work. The defaults are those of
``conf/base/parameters_training.yml`` (a test proves they agree); the YAML documents each key.

``steps_per_epoch`` has Keras' meaning: batches per epoch (see
:func:`tml_cloudremoval.data.input_pipeline.epoch_size`). The run folder is not a parameter:
it is the catalog entry ``training_run`` (``RunFolderDataset``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tml_cloudremoval.bands import SAR_FACTOR
from tml_cloudremoval.config import ConfigError, bounds, from_params
from tml_cloudremoval.models.dsen2cr import SAR_UPSAMPLING, TAIL_INITIALISERS
from tml_cloudremoval.models.losses import LOSSES
from tml_cloudremoval.models.uncertainty import Uncertainty

Distribution = Literal["none", "mirrored", "multi_worker"]
"""``none``: default strategy; ``mirrored``: all local GPUs (or logical CPUs); ``multi_worker``:
MultiWorkerMirroredStrategy from TF_CONFIG (see ``training.strategy``)."""

MixedPrecision = Literal["float16", "bfloat16"]
"""The 16-bit compute type of ``training.mixed_precision`` (weights and the output stay float32):
``float16`` (Keras ``mixed_float16``, with dynamic loss scaling) or ``bfloat16``
(``mixed_bfloat16``: float32's exponent range, no loss scaling; the type of Ampere, Hopper).
``true`` is ``float16`` (its meaning before ``bfloat16`` existed), ``false`` is float32."""

PRECISION_POLICIES: dict[bool | str, str] = {
    True: "mixed_float16",
    "float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
}
"""``training.mixed_precision`` (other than false) -> Keras dtype policy, on every backend."""

InputPath = Literal["auto", "tf_data", "pydataset"]
"""``auto`` (tf_data on the TensorFlow backend, else pydataset) | ``tf_data``
(``data.input_pipeline``) | ``pydataset`` (``data.patch_sequence``): see ``training.backend``."""

IfFinished = Literal["error", "reuse", "overwrite"]
"""What a run folder holding a finished run does: refuse, return its model, or train again."""

LossName = Literal[LOSSES]  # type: ignore[valid-type]
"""``carl`` or ``l1`` (``models.losses.LOSSES``)."""

SarUpsampling = Literal[SAR_UPSAMPLING]  # type: ignore[valid-type]
"""``nearest`` or ``bilinear`` (``models.dsen2cr.SAR_UPSAMPLING``)."""

TailInit = Literal[TAIL_INITIALISERS]  # type: ignore[valid-type]
"""``zeros`` (the untrained model is the identity) or ``he_uniform`` (the seed's)."""


@dataclass(frozen=True)
class ModelConfig:
    """``model:`` parameters, the arguments of ``models.dsen2cr.build_dsen2cr``."""

    features: int = field(default=64, metadata=bounds(lo=1))
    blocks: int = field(default=16, metadata=bounds(lo=0))
    residual_scale: float = 0.1
    include_sar: bool = True
    sar_upsampling: SarUpsampling = "nearest"
    tail_init: TailInit = "zeros"
    uncertainty: Uncertainty = "none"
    """``none`` (one output) or ``aleatoric`` (a Laplace log-scale head too; trained with the
    negative log-likelihood form of ``training.loss``, see ``models.losses``)."""


@dataclass(frozen=True)
class TrainingConfig:
    """``training:`` parameters (documented in conf/base/parameters_training.yml).

    ``mixed_precision``: False, True (= ``"float16"``), ``"float16"`` or ``"bfloat16"``
    (:data:`MixedPrecision`; applied on a GPU only, ``training.backend.compute_dtype``).

    Crop sizes are in 10 m pixels and multiples of ``SAR_FACTOR`` (4) so that a crop starts
    and ends on the 40 m SAR grid; ``batch_size`` is the global batch over all replicas.
    """

    epochs: int = field(default=8, metadata=bounds(lo=1))
    batch_size: int = field(default=16, metadata=bounds(lo=1))
    crop_size: int | None = field(
        default=128, metadata=bounds(lo=SAR_FACTOR, multiple_of=SAR_FACTOR)
    )
    learning_rate: float = field(default=7e-5, metadata=bounds(lo=0, lo_open=True))
    beta_1: float = field(default=0.9, metadata=bounds(lo=0, hi=1, hi_open=True))
    beta_2: float = field(default=0.999, metadata=bounds(lo=0, hi=1, hi_open=True))
    epsilon: float = field(default=1e-8, metadata=bounds(lo=0, lo_open=True))
    loss: LossName = "carl"
    carl_lambda: float = field(default=1.0, metadata=bounds(lo=0))
    seed: int = field(default=42, metadata=bounds(lo=0))
    steps_per_epoch: int | None = field(default=None, metadata=bounds(lo=1))
    val_batch_size: int | None = field(default=None, metadata=bounds(lo=1))
    warmup_steps: int = field(default=0, metadata=bounds(lo=0))
    """Optimizer steps of a linear learning-rate ramp up to ``learning_rate`` (0: none);
    ``training.schedule.warmup_learning_rate``."""
    xla: bool = False
    mixed_precision: bool | MixedPrecision = False
    distribution: Distribution = "none"
    input: InputPath = "auto"
    input_workers: int | None = field(default=None, metadata=bounds(lo=1))
    if_finished: IfFinished = "error"
    keep_checkpoints: int | None = field(default=None, metadata=bounds(lo=1))
    tensorboard: bool = True
    verbose: int = field(default=1, metadata=bounds(lo=0, hi=2))


FINGERPRINT_KEYS = (
    "batch_size",
    "crop_size",
    "learning_rate",
    "warmup_steps",
    "beta_1",
    "beta_2",
    "epsilon",
    "loss",
    "carl_lambda",
    "seed",
    "steps_per_epoch",
)
"""Training settings a resumed run must share with the interrupted one (with the model's)."""


def load_configs(
    model: Mapping[str, Any] | None, training: Mapping[str, Any] | None
) -> tuple[ModelConfig, TrainingConfig]:
    """``params:model`` and ``params:training`` as validated config objects.

    Raises one ``ConfigError`` with the faults of both sections, each naming ``section.key``.
    """
    faults: list[str] = []
    configs: list[Any] = []
    for cls, params, section in (
        (ModelConfig, model, "model"),
        (TrainingConfig, training, "training"),
    ):
        try:
            configs.append(from_params(cls, params, section))
        except ConfigError as exc:
            faults.append(str(exc))
    if faults:
        raise ConfigError("; ".join(faults))
    return configs[0], configs[1]
