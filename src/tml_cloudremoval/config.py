"""Validated configuration objects: one frozen dataclass per parameter section.

Every pipeline's first node turns its raw ``params:<section>`` dict into a config object with
:func:`from_params` before any work: an unknown key is rejected with the closest valid name, a
value of the wrong type or outside its range is rejected naming ``section.key``, and all faults
of a section are reported together in one :class:`ConfigError`.

Field types come from the annotations (``int``, ``float``, ``bool``, ``str``, ``Literal[...]``,
``X | None``, ``list[...]``/``tuple[...]``, nested config dataclasses, ``dict``); an ``int``
is accepted where a ``float`` is expected, a ``bool`` never counts as a number. Ranges are
field metadata: ``field(default=..., metadata=bounds(lo=0, lo_open=True))``. The defaults of the
dataclasses are the YAML defaults in ``conf/base`` (a test proves they agree): code and
configuration never disagree about a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from tml_cloudremoval.errors import ProjectError

T = TypeVar("T")


class ConfigError(ProjectError):
    """Bad parameters: every fault of one section, each naming its key."""


def bounds(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    multiple_of: int | None = None,
) -> dict[str, Any]:
    """Field metadata for a numeric range (``lo_open``: strictly greater than ``lo``)."""
    return {"bounds": (lo, hi, lo_open, hi_open, multiple_of)}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping (" + ", ".join(f.name for f in dataclasses.fields(tp)) + ")"
    return getattr(tp, "__name__", str(tp))


def _close_choice(value: Any, tp: Any) -> str:
    """`` (did you mean 'x'?)`` where a string is close to one of the union's literal choices."""
    if not isinstance(value, str):
        return ""
    choices = [
        a
        for option in typing.get_args(tp)
        if typing.get_origin(option) is Literal
        for a in typing.get_args(option)
        if isinstance(a, str)
    ]
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _convert_union(value: Any, tp: Any, key: str) -> Any:
    """The first option ``value`` converts to. Where none does, a mapping given for a config
    dataclass option reports that dataclass's own faults (``section.key.sub: ...``), else the
    error lists the options (and the closest literal choice of a misspelt string)."""
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    nested: ConfigError | None = None
    for option in (a for a in args if a is not type(None)):
        try:
            return _convert(value, option, key)
        except ConfigError as exc:
            nested = nested or exc
        except TypeError:
            continue
    if nested is not None:
        raise nested
    raise TypeError(f"{key}: expected {_type_name(tp)}, got {value!r}{_close_choice(value, tp)}")


def _convert_sequence(value: Any, tp: Any, key: str) -> list | tuple:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if not isinstance(value, list | tuple):
        raise TypeError(f"{key}: expected a list, got {value!r} ({type(value).__name__})")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise TypeError(f"{key}: expected {len(args)} values, got {value!r}")
        kinds = list(args)
    else:
        kinds = [args[0] if args else Any] * len(value)
    items = [
        _convert(v, k, f"{key}[{i}]") for i, (v, k) in enumerate(zip(value, kinds, strict=True))
    ]
    return tuple(items) if origin is tuple else items


_SCALARS: dict[type, Any] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}


def _convert_literal(value: Any, tp: Any, key: str) -> Any:
    args = typing.get_args(tp)
    if value in args and type(value) in {type(a) for a in args}:
        return value
    raise TypeError(f"{key}: expected one of {list(args)}, got {value!r}")


def _convert_plain(value: Any, tp: Any, key: str) -> Any:
    """Scalars, dicts and nested config dataclasses."""
    if tp is Any:
        return value
    if tp in _SCALARS and _SCALARS[tp](value):
        return float(value) if tp is float else value
    if (typing.get_origin(tp) is dict or tp is dict) and isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return from_params(tp, value, key)
    raise TypeError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` as type ``tp``, or raise ``TypeError`` with a message naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return _convert_union(value, tp, key)
    if origin is Literal:
        return _convert_literal(value, tp, key)
    if origin in (list, tuple):
        return _convert_sequence(value, tp, key)
    return _convert_plain(value, tp, key)


def _check_bounds(value: Any, meta: Mapping[str, Any], key: str) -> str | None:
    if "bounds" not in meta or value is None:
        return None
    lo, hi, lo_open, hi_open, multiple_of = meta["bounds"]
    values = value if isinstance(value, list | tuple) else [value]
    for v in values:
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"{key}: must be {'>' if lo_open else '>='} {lo}, got {value!r}"
        if hi is not None and (v >= hi if hi_open else v > hi):
            return f"{key}: must be {'<' if hi_open else '<='} {hi}, got {value!r}"
        if multiple_of and v % multiple_of:
            return f"{key}: must be a multiple of {multiple_of}, got {value!r}"
    return None


def unknown_key_message(section: str, key: str, known: list[str]) -> str:
    """``section.key`` is unknown, with the closest valid name where one is close."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" (did you mean {section}.{close[0]}?)" if close else ""
    return f"{section}.{key}: unknown parameter{hint}; valid: {', '.join(sorted(known))}"


def from_params(cls: type[T], params: Mapping[str, Any] | None, section: str) -> T:
    """Build the config dataclass ``cls`` from ``params`` (missing keys take the defaults).

    Raises :class:`ConfigError` listing every unknown key, wrong type and out-of-range value,
    each as ``section.key``; then runs the class's own ``check()`` (cross-field rules), if any.
    """
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"{section}: expected a mapping of parameters, got {params!r}")
    params = dict(params or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    problems = [unknown_key_message(section, k, list(fields)) for k in params if k not in fields]
    values: dict[str, Any] = {}
    for name, value in params.items():
        if name not in fields:
            continue
        key = f"{section}.{name}"
        try:
            values[name] = _convert(value, hints[name], key)
        except (ConfigError, TypeError) as exc:
            problems.append(str(exc).removeprefix("invalid parameters: "))
            continue
        fault = _check_bounds(values[name], fields[name].metadata, key)
        if fault:
            problems.append(fault)
    if problems:
        raise ConfigError("invalid parameters: " + "; ".join(problems))
    config = cls(**values)
    check = getattr(config, "check", None)
    if check is not None:
        faults = [f"{section}.{fault}" for fault in check()]
        if faults:
            raise ConfigError("invalid parameters: " + "; ".join(faults))
    return config


def defaults_of(cls: type) -> dict[str, Any]:
    """The dataclass defaults of ``cls`` as a plain dict (nested configs as dicts)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out


SECTIONS: dict[str, str] = {
    "sample_data": "tml_cloudremoval.data.config:SampleDataConfig",
    "data": "tml_cloudremoval.data.config:DataConfig",
    "model": "tml_cloudremoval.training.config:ModelConfig",
    "training": "tml_cloudremoval.training.config:TrainingConfig",
    "evaluation": "tml_cloudremoval.evaluation.config:EvaluationConfig",
    "inference": "tml_cloudremoval.inference.config:InferenceConfig",
    "ablation": "tml_cloudremoval.training.variants:AblationConfig",
}
"""Every parameter section (one ``conf/base/parameters_<pipeline>.yml`` each, training has two)
and its config class, as ``module:Class`` (imported when needed). ``ablation`` checks each
variant's overrides against the ``model`` and ``training`` classes too."""


def config_class(section: str) -> type:
    """The config class of ``section`` (see :data:`SECTIONS`)."""
    module, name = SECTIONS[section].split(":")
    return getattr(importlib.import_module(module), name)


def validate_sections(params: Mapping[str, Any]) -> None:
    """Validate every known section present in ``params`` (all of a run's parameters).

    Raises one :class:`ConfigError` with the faults of all sections, each naming its key.
    """
    faults = []
    for section in SECTIONS:
        if section in params:
            try:
                from_params(config_class(section), params[section], section)
            except ConfigError as exc:
                faults.append(str(exc).removeprefix("invalid parameters: "))
    if faults:
        raise ConfigError("invalid parameters: " + "; ".join(faults))
