"""The strict config loader: unknown keys (closest name), types, ranges, cross-field rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from tml_cloudremoval.config import ConfigError, bounds, defaults_of, from_params


@dataclass(frozen=True)
class Inner:
    a: int = 1


@dataclass(frozen=True)
class Example:
    rate: float = field(default=0.5, metadata=bounds(0.0, lo_open=True))
    size: int = field(default=8, metadata=bounds(4, multiple_of=4))
    mode: Literal["fast", "slow"] = "fast"
    cap: int | None = None
    pair: tuple[float, float] = (0.0, 1.0)
    names: list[str] = field(default_factory=lambda: ["x"])
    inner: Inner = field(default_factory=Inner)
    flag: bool = True

    def check(self) -> list[str]:
        return [] if self.pair[0] <= self.pair[1] else [f"pair: low > high in {self.pair}"]


def test_defaults_and_conversion():
    cfg = from_params(Example, {"rate": 1, "inner": {"a": 3}, "pair": [0, 2]}, "ex")
    assert cfg.rate == 1.0 and isinstance(cfg.rate, float)
    assert cfg.inner == Inner(3) and cfg.pair == (0.0, 2.0)
    assert from_params(Example, None, "ex") == Example()
    assert defaults_of(Example)["inner"] == {"a": 1}


def test_unknown_key_names_the_closest_valid_one():
    with pytest.raises(
        ConfigError, match=r"ex\.sise: unknown parameter \(did you mean ex\.size\?\)"
    ):
        from_params(Example, {"sise": 8}, "ex")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rate": -1}, r"ex\.rate: must be > 0\.0, got -1"),
        ({"rate": 0.0}, r"ex\.rate: must be > 0\.0"),
        ({"size": 6}, r"ex\.size: must be a multiple of 4"),
        ({"size": 2}, r"ex\.size: must be >= 4"),
        ({"size": "8"}, r"ex\.size: expected int, got '8'"),
        ({"size": True}, r"ex\.size: expected int"),
        ({"flag": 1}, r"ex\.flag: expected bool"),
        ({"mode": "bogus"}, r"ex\.mode: expected one of \['fast', 'slow'\]"),
        ({"cap": 1.5}, r"ex\.cap: expected int or null"),
        ({"inner": {"b": 1}}, r"ex\.inner\.b: unknown parameter"),
        ({"pair": [2, 1]}, r"ex\.pair: low > high"),
        ({"pair": [1]}, r"ex\.pair: expected 2 values"),
    ],
)
def test_faults_name_the_key(params, message):
    with pytest.raises(ConfigError, match=message):
        from_params(Example, params, "ex")


@dataclass(frozen=True)
class Either:
    inner: Inner | Literal["auto", "off"] = "auto"


def test_a_union_of_a_config_and_choices_takes_either():
    assert from_params(Either, {"inner": {"a": 2}}, "ex").inner == Inner(2)
    assert from_params(Either, {"inner": "off"}, "ex").inner == "off"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": "2"}, r"ex\.inner\.a: expected int"),  # the mapping's own fault, not the union's
        ({"b": 1}, r"ex\.inner\.b: unknown parameter"),
        ("aoto", r"ex\.inner: expected a mapping \(a\) or 'auto' \| 'off', got 'aoto' \(did"),
        (3, r"ex\.inner: expected a mapping \(a\) or 'auto' \| 'off', got 3$"),
    ],
)
def test_a_union_of_a_config_and_choices_names_the_fault(value, message):
    with pytest.raises(ConfigError, match=message):
        from_params(Either, {"inner": value}, "ex")


def test_all_faults_of_a_section_in_one_error():
    with pytest.raises(ConfigError) as err:
        from_params(Example, {"rate": -1, "mode": "x", "typo": 1}, "ex")
    text = str(err.value)
    assert "ex.rate" in text and "ex.mode" in text and "ex.typo" in text
