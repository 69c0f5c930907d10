from dataclasses import dataclass, field
from typing import Literal

import pytest

from circadian_core.config import ConfigError, deep_merge, from_dict


@dataclass
class Inner:
    width: int = 4


@dataclass
class Cfg:
    lr: float = 0.1
    mode: Literal["a", "b"] = "a"
    inner: Inner = field(default_factory=Inner)
    seeds: list[int] = field(default_factory=list)


def test_builds_nested_and_coerces_int_to_float():
    cfg = from_dict(Cfg, {"lr": 1, "inner": {"width": 8}, "seeds": [1, 2]})
    assert cfg == Cfg(lr=1.0, inner=Inner(width=8), seeds=[1, 2])
    assert isinstance(cfg.lr, float)


def test_unknown_key_names_the_fix():
    with pytest.raises(ConfigError, match=r"unknown key 'lr_rate'.*did you mean 'lr'.*valid keys"):
        from_dict(Cfg, {"lr_rate": 0.1}, where="cpc_shift")


def test_wrong_type_and_literal_rejected():
    with pytest.raises(ConfigError, match="inner.width: expected int"):
        from_dict(Cfg, {"inner": {"width": "wide"}})
    with pytest.raises(ConfigError, match="not one of"):
        from_dict(Cfg, {"mode": "c"})


def test_deep_merge_does_not_touch_inputs():
    base = {"a": {"b": 1, "c": 2}, "d": [1]}
    over = {"a": {"b": 5}}
    merged = deep_merge(base, over)
    assert merged == {"a": {"b": 5, "c": 2}, "d": [1]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]}


def test_floats_are_checked_and_numeric_text_names_the_yaml_fix():
    import dataclasses

    from circadian_core.config import ConfigError, from_dict

    @dataclasses.dataclass
    class C:
        lr: float = 0.1

    with pytest.raises(ConfigError, match="C.lr: expected a number, got 'fast'"):
        from_dict(C, {"lr": "fast"}, where="C")
    with pytest.raises(ConfigError, match=r"write it with a decimal point, e.g. 2e-05"):
        from_dict(C, {"lr": "2e-5"}, where="C")
    with pytest.raises(ConfigError, match="expected a number"):
        from_dict(C, {"lr": True}, where="C")


def test_bounded_fields_are_range_checked():
    import dataclasses

    from circadian_core.config import ConfigError, bounded, from_dict

    @dataclasses.dataclass
    class C:
        fraction: float = bounded(0.2, low=0.0, high=1.0)
        steps: int = bounded(1, low=1)
        opt: float | None = bounded(None, low=0.0)

    assert from_dict(C, {"fraction": 1, "steps": 3}).fraction == 1.0
    assert from_dict(C, {}).opt is None
    with pytest.raises(ConfigError, match=r"C.fraction: 1.5 is out of range; it must be <= 1.0"):
        from_dict(C, {"fraction": 1.5}, where="C")
    with pytest.raises(ConfigError, match=r"C.steps: 0 is out of range; it must be >= 1"):
        from_dict(C, {"steps": 0}, where="C")
    with pytest.raises(ConfigError, match="NaN"):
        from_dict(C, {"fraction": float("nan")}, where="C")
