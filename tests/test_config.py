"""The declared limits: every number any family reads is bounded in one table, checked in one place."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from vidsynth.config import LIMITS, DataConfig, check_limits, in_limits
from vidsynth.errors import UserError
from vidsynth.training import FAMILIES


def _config_classes():
    yield DataConfig
    for family in FAMILIES.values():
        yield family.model_config
        yield family.train_config


def test_every_number_of_every_family_has_a_declared_limit():
    missing = set()
    for cls in _config_classes():
        hints = typing.get_type_hints(cls)
        missing |= {f.name for f in dataclasses.fields(cls) if hints[f.name] in (int, float) and f.name not in LIMITS}
    assert not missing, f"declare limits for {sorted(missing)} in config.LIMITS"
    for cls in _config_classes():  # the defaults lie inside them (resolution and num_frames come from the data)
        defaults = cls()
        for f in dataclasses.fields(cls):
            value = getattr(defaults, f.name)
            if f.name in LIMITS and f.name not in ("resolution", "num_frames"):
                assert in_limits(f.name, value), (cls.__name__, f.name, value)


@pytest.mark.parametrize("key, value, inside", [
    ("beta2", 0.999, True), ("beta2", 1.0, False), ("beta2", 0.0, True), ("lr", 0.0, False), ("lr", 10.0, True),
    ("lr", float("nan"), False), ("lr", float("inf"), False), ("batch_size", 65536, True),
    ("batch_size", 65537, False), ("keep_checkpoints", -1, False), ("keep_checkpoints", 0, True),
])
def test_intervals_are_read_as_written(key, value, inside):
    assert in_limits(key, value) is inside


@pytest.mark.parametrize("values, message", [
    ({"resolution": "64"}, "resolution='64' is not a valid int"),
    ({"flip": 1}, "flip=1 is not a valid bool"),
    ({"length": True}, "length=True is not a valid int"),
    ({"root": 5}, "root=5 is not a valid str or none"),
    ({"cache_gb": 2}, None),  # an int where a float goes is fine
    ({"val_fraction": float("nan")}, "val_fraction=nan is out of range: use a value in [0, 1)"),
])
def test_types_and_ranges_are_checked_together(values, message):
    cfg = DataConfig(**values)
    if message is None:
        check_limits(cfg)
        return
    with pytest.raises(UserError) as e:
        cfg.check()
    assert str(e.value).startswith(message), str(e.value)
