"""Export folders that were damaged or written by hand: every one is refused in one line, through the Python API
(a UserError) and the CLI alike, and nothing they ask for is allocated beyond the declared limits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vidsynth
from vidsynth.errors import UserError


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    from vidsynth.pretrained import export
    from vidsynth.training import RunConfig, model_config, train_config
    from vidsynth.training.loop import train
    from vidsynth.config import DataConfig
    root = tmp_path_factory.mktemp("export")
    cfg = RunConfig(DataConfig(resolution=32, num_frames=8, length=8),
                    model_config("vgan", g_channels=8, d_channels=8, max_channels=16, z_dim=8),
                    train_config("vgan", steps=1, batch_size=2, num_samples=1, checkpoint_every=1, sample_every=1))
    return export(train(cfg, root / "runs", progress=False), root / "exported")


def _config(folder: Path, change) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def _set(section: str, key: str, value):
    return lambda c: c[section].__setitem__(key, value)


DAMAGE = {
    "truncated weights": lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:200]),
    "garbage weights": lambda f: (f / "model.safetensors").write_bytes(os.urandom(4000)),
    "empty weights": lambda f: (f / "model.safetensors").write_bytes(b""),
    "config not JSON": lambda f: (f / "config.json").write_text("{model: vgan"),
    "config empty object": lambda f: (f / "config.json").write_text("{}"),
    "config a list": lambda f: (f / "config.json").write_text("[1, 2]"),
    "model a list": lambda f: _config(f, lambda c: c.__setitem__("model", [1])),
    "unknown family": lambda f: _config(f, _set("model", "name", "nosuch")),
    "string for a number": lambda f: _config(f, _set("model", "g_channels", "eight")),
    "bool for a number": lambda f: _config(f, _set("model", "z_dim", True)),
    "huge g_channels": lambda f: _config(f, _set("model", "g_channels", 10_000_000)),
    "huge num_classes": lambda f: _config(f, _set("model", "num_classes", 2**40)),
    "huge num_frames": lambda f: _config(f, _set("model", "num_frames", 10**9)),
    "negative resolution": lambda f: _config(f, _set("model", "resolution", -32)),
    "nan in data": lambda f: _config(f, _set("data", "val_fraction", float("nan"))),
    "newer format": lambda f: _config(f, lambda c: c.__setitem__("format_version", 99)),
    "class names not a list": lambda f: _config(f, lambda c: c.__setitem__("class_names", 5)),
    "weights of another size": lambda f: _config(f, _set("model", "z_dim", 12)),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_export_is_refused_in_one_line(exported, tmp_path, damage):
    folder = tmp_path / "exported"
    shutil.copytree(exported, folder)
    damage(folder)
    with pytest.raises(UserError) as e:
        vidsynth.load_pretrained(folder)
    assert "\n" not in str(e.value)
    out = subprocess.run([str(Path(sys.executable).with_name("vidsynth")), "sample", str(folder), "--seeds", "0",
                          "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr and str(e.value) in out.stderr


def test_the_intact_export_loads(exported):
    assert vidsynth.load_pretrained(exported).sample([0]).shape == (1, 3, 8, 32, 32)
